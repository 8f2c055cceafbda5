"""Gymnasium envs backed by the C core: `FlappyEnv` (one env) and `FlappyVectorEnv` (N envs
stepped in one C call). Thin shells over the binding, no game logic; neither imports PufferLib
or torch. `import flappy_rl` registers them as "flappy_rl/FlappyBird-v0":

    env = gymnasium.make("flappy_rl/FlappyBird-v0")
    envs = gymnasium.make_vec("flappy_rl/FlappyBird-v0", num_envs=4096, vectorization_mode="vector_entry_point")
"""

import collections.abc
import numbers

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from flappy_rl import binding
from flappy_rl.render import RaylibWindow, check_fps, check_scale

RENDER_MODES = ["human", "rgb_array"]


def observation_space(**params):
    """One env's observation space for these parameters, as the C core defines it."""
    spec = binding.obs_spec(**params)
    low = np.array(spec["low"], spec["dtype"]) if isinstance(spec["low"], list) else spec["low"]
    return gymnasium.spaces.Box(low, spec["high"], spec["shape"], np.dtype(spec["dtype"]))


def check_render_mode(render_mode):
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None, 'human' or 'rgb_array', got {render_mode!r}")
    return render_mode


def check_seed(seed):
    """seed as an int in [0, 2**64), or None; the errors Gymnasium's seeding gives for others."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise gymnasium.error.Error(f"Seed must be a python integer, actual type: {type(seed)}")
    if not 0 <= seed < 2**64:
        raise gymnasium.error.Error(f"Seed must be in [0, 2**64), got {seed!r}")
    return int(seed)


class CoreVector:
    """The C envs and the buffers they write into, in next-step autoreset mode (csrc/flappy.h)."""

    def __init__(self, num_envs, params):
        space = observation_space(**params)  # checks params before any allocation
        if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.observations = np.zeros((num_envs, *space.shape), space.dtype)
        self.actions = np.zeros(num_envs, np.int32)
        self.rewards = np.zeros(num_envs, np.float32)
        self.terminals = np.zeros(num_envs, bool)
        self.truncations = np.zeros(num_envs, bool)
        self.handle = binding.vec_init(self.observations, self.actions, self.rewards, self.terminals,
                                       self.truncations, int(num_envs), 0, True, **params)
        self.params = binding.check_params(**params)
        self.window = None  # the raylib window, opened by the first human render
        self.closed = False

    def frame(self, i):
        frame = np.empty((int(binding.WORLD_HEIGHT), int(binding.WORLD_WIDTH), 3), np.uint8)
        binding.render(self.handle, i, frame)
        return frame

    def show(self, i, scale, fps):
        """Draw env i in the window, opening it on the first call."""
        state = binding.env_get(self.handle, i)  # raises on a closed env, before a window opens
        if self.window is None:
            self.window = RaylibWindow(scale, fps)
        self.window.draw(state, self.params)

    def close(self):
        if self.window is not None:
            self.window.close()
        if not self.closed:
            binding.vec_close(self.handle)  # the handle stays: using it raises "this Flappy env is closed"
            self.closed = True


class FlappyEnv(gymnasium.Env):
    """Flappy Bird, one env simulated in C, with Gymnasium's semantics.

    The rules, observations, rewards and parameters are those of `flappy_rl.FlappyGymnasiumEnv`
    (registered as "flappy_rl/FlappyBird-reference-v0"), whose docstring is the specification;
    this env plays the same games bit for bit.

    - Action space: `Discrete(2)`, 0 = do nothing, 1 = flap; anything else raises
      `gymnasium.error.InvalidAction` and changes nothing.
    - Observation space: by `obs_mode`, as `flappy_rl.gym_env.observation_space(**params)` gives
      it. Each call returns a new array.
    - Episode end: terminated on a crash; truncated when an episode reaches `max_steps` frames
      (a core parameter, default 10000), so the registration sets no `max_episode_steps` and
      no TimeLimit wrapper is added. The observation then is the episode's last one; `step`
      raises `gymnasium.error.ResetNeeded` until `reset` is called. `info` is always empty.
    - Seeding: `reset(seed=s)` seeds the pipes' PCG32 generator with (s, env_index), so env
      `env_index` of `flappy_rl.Flappy` reset with s plays the same game (and, with the
      default env_index 0, env i of `FlappyVectorEnv` reset with s - i). `reset()` without a
      seed continues the generator (the first one draws a seed from `self.np_random`, seeded
      from entropy).
    - Rendering shows the game: `render_mode="rgb_array"` returns a new (512, 288, 3) uint8
      frame drawn in C (no display needed); `render_mode="human"` draws into a raylib window
      (`render_scale`, `render_fps`) on every `step` and `reset`, and raises
      `flappy_rl.errors.NoDisplayError` without a display.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": int(binding.FPS)}

    def __init__(self, render_mode=None, env_index=0, render_scale=1.0, render_fps=int(binding.FPS), **params):
        self.render_mode = check_render_mode(render_mode)
        self.render_scale = check_scale(render_scale, "render_scale")
        self.render_fps = check_fps(render_fps, "render_fps")
        if isinstance(env_index, bool) or not isinstance(env_index, numbers.Integral) or env_index < 0:
            raise ValueError(f"env_index must be a non-negative int, got {env_index!r}")
        self.env_index = int(env_index)
        self.core = CoreVector(1, params)
        self.params = self.core.params
        self.observation_space = observation_space(**params)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.seeded = False
        self.episode_over = True  # reset() first

    def reset(self, *, seed=None, options=None):
        super().reset(seed=check_seed(seed))
        if seed is None and not self.seeded:
            seed = int(self.np_random.integers(2**63))
        if seed is not None:
            binding.vec_reset(self.core.handle, seed, self.env_index)
            self.seeded = True
        else:
            binding.vec_reset(self.core.handle)
        self.episode_over = False
        if self.render_mode == "human":
            self.render()
        return self.core.observations[0].copy(), {}

    def step(self, action):
        if self.episode_over:
            raise gymnasium.error.ResetNeeded(
                "the episode is over (terminated or truncated): call reset() before step()")
        if not self.action_space.contains(action):
            raise gymnasium.error.InvalidAction(f"action {action!r} is not 0 (do nothing) or 1 (flap)")
        core = self.core
        core.actions[0] = action
        binding.vec_step(core.handle)
        terminated, truncated = bool(core.terminals[0]), bool(core.truncations[0])
        self.episode_over = terminated or truncated
        if self.render_mode == "human":
            self.render()
        return core.observations[0].copy(), float(core.rewards[0]), terminated, truncated, {}

    def render(self):
        if self.render_mode == "rgb_array":
            return self.core.frame(0)
        if self.render_mode == "human":
            self.core.show(0, self.render_scale, self.render_fps)
        return None

    def close(self):
        self.core.close()


class LazyFrames(collections.abc.Sequence):
    """The frames of every env, each drawn in C when it is indexed: Gymnasium's vector
    `render()` returns one frame per env, and a recorder that keeps only the first (as
    `RecordVideo(record_first_only=True)` does) should not pay for thousands."""

    def __init__(self, core, count):
        self.core, self.count = core, count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.count))]
        if not -self.count <= i < self.count:
            raise IndexError(f"env index {i} out of range for {self.count} envs")
        return self.core.frame(i % self.count)


class FlappyVectorEnv(gymnasium.vector.VectorEnv):
    """Flappy Bird, `num_envs` envs stepped in one C call, as a Gymnasium vector env.

    Env i plays exactly as a `FlappyEnv` reset with seed + i and given the same actions would.

    - Autoreset: next-step (`metadata["autoreset_mode"]` is `AutoresetMode.NEXT_STEP`, as
      Gymnasium defines it): on the step an episode ends, that env's observation is the
      episode's last; on the next step the env starts its new episode, ignoring its action,
      with reward 0 and neither terminated nor truncated. `info` is always empty.
    - Spaces: `single_observation_space` as `FlappyEnv`'s, `observation_space` batched;
      `action_space` `MultiDiscrete([2] * num_envs)`. `step` takes an integer array of shape
      (num_envs,) with values 0 or 1; anything else raises (ValueError or TypeError, one
      line) and changes nothing.
    - Rewards are float32, as the core computes them (SyncVectorEnv's are float64).
    - The arrays returned by `step` and `reset` are the env's own buffers, overwritten by the
      next call (as PufferLib's are, and as `SyncVectorEnv(copy=False)`): copy what you keep,
      or pass `copy=True` for new arrays each call.
    - Seeding, as Gymnasium's vector envs seed: `reset(seed=s)` seeds env i as `FlappyEnv`
      reset with s + i, so `gymnasium.make_vec` in every vectorization mode plays the same
      games for the same seed and actions. `reset(seed=[s0, s1, ...])` (one per env) seeds env
      i with s_i; None in the list, or `reset()`, continues that env's generator (the first
      draws a seed from `self.np_random`).
    - Episode length: `max_steps` frames (a core parameter), and `max_episode_steps` steps when
      given (`gymnasium.make_vec` passes it on), counted as Gymnasium's TimeLimit counts them
      for `gymnasium.make`: the step that reaches it is truncated, terminated or not (the
      core's `max_steps` becomes at most `max_episode_steps * frame_skip`, as `self.params`
      shows).
    - `render()`: rgb_array, a sequence of `num_envs` frames (512, 288, 3), each drawn when
      indexed; human, env 0 in a raylib window.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": int(binding.FPS), "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs=1, render_mode=None, copy=False, render_scale=1.0, render_fps=int(binding.FPS),
                 max_episode_steps=None, **params):
        self.render_mode = check_render_mode(render_mode)
        self.render_scale = check_scale(render_scale, "render_scale")
        self.render_fps = check_fps(render_fps, "render_fps")
        if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or not isinstance(
                max_episode_steps, numbers.Integral) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps
        if max_episode_steps is not None:
            # The core ends the episode at that step too (its max_steps counts frames), so that
            # the env restarts on the next step as a TimeLimit-wrapped env would be reset.
            resolved = binding.check_params(**params)
            params = {**params, "max_steps": min(resolved["max_steps"], max_episode_steps * resolved["frame_skip"])}
        self.core = CoreVector(num_envs, params)
        self.params = self.core.params
        self.num_envs = int(num_envs)
        self.copy = bool(copy)
        self.single_observation_space = observation_space(**params)
        self.single_action_space = gymnasium.spaces.Discrete(2)
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.seeded = np.zeros(self.num_envs, bool)
        self.elapsed_steps = np.zeros(self.num_envs, np.int64)  # in the current episodes, for max_episode_steps
        self.episode_ended = np.zeros(self.num_envs, bool)  # on the last step: this step starts the next

    def env_seeds(self, seed):
        """One seed (or None) per env: seed + i for an int, the list's entries for a list."""
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(f"a list of seeds needs one per env ({self.num_envs}), got {len(seed)}")
            return [check_seed(s) for s in seed]
        seed = check_seed(seed)
        return [None] * self.num_envs if seed is None else [check_seed(seed + i) for i in range(self.num_envs)]

    def reset(self, *, seed=None, options=None):
        if options and "reset_mask" in options:
            raise ValueError("reset_mask is for autoreset mode Disabled; this env's is NextStep, which restarts "
                             "ended episodes by itself")
        seeds = self.env_seeds(seed)  # checks them all before any env changes
        if not isinstance(seed, (list, tuple)):
            super().reset(seed=seed)  # seeds self.np_random
        for i, env_seed in enumerate(seeds):
            if env_seed is None and not self.seeded[i]:
                env_seed = int(self.np_random.integers(2**63))
            if env_seed is not None:
                binding.vec_seed_env(self.core.handle, i, env_seed, 0)
                self.seeded[i] = True
        binding.vec_reset(self.core.handle)  # new episodes, each from its generator
        self.elapsed_steps[:] = 0
        self.episode_ended[:] = False
        obs = self.core.observations
        return (obs.copy() if self.copy else obs), {}

    def step(self, actions):
        core = self.core
        binding.vec_step(core.handle, actions)
        if self.max_episode_steps is not None:
            # The envs whose episode ended on the last step started the next one on this step.
            self.elapsed_steps = np.where(self.episode_ended, 0, self.elapsed_steps + 1)
            core.truncations |= ~self.episode_ended & (self.elapsed_steps >= self.max_episode_steps)
            self.episode_ended = core.terminals | core.truncations
        if self.render_mode == "human":
            self.render()
        if self.copy:
            return core.observations.copy(), core.rewards.copy(), core.terminals.copy(), core.truncations.copy(), {}
        return core.observations, core.rewards, core.terminals, core.truncations, {}

    def render(self):
        if self.render_mode == "rgb_array":
            return LazyFrames(self.core, self.num_envs)
        if self.render_mode == "human":
            self.core.show(0, self.render_scale, self.render_fps)
        return None

    def close_extras(self, **kwargs):
        self.core.close()
