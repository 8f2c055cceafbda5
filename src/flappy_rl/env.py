"""`Flappy`: the native PufferLib env. A thin shell over the C core; no game logic here."""

import gymnasium
import numpy as np

import pufferlib

from flappy_rl import binding
from flappy_rl.gym_env import RENDER_MODES, check_render_mode, observation_space
from flappy_rl.render import RaylibWindow, check_fps, check_scale


class Flappy(pufferlib.PufferEnv):
    """Flappy Bird, `num_envs` birds simulated in C, writing in place into PufferLib's buffers.

    The rules, observation table, rewards and parameters are those of
    `flappy_rl.FlappyGymnasiumEnv`, whose docstring is the specification; this env reproduces
    it bit for bit, about a thousand times faster.

    - Observation space (one agent): by `obs_mode`, as the twin's docstring tables them:
      features `Box(-1, 1, (8,), float32)`; lidar `Box(0, 1, (lidar_rays + 1,), float32)` (the
      last value, the vertical speed, in [-1, 1]); pixels `Box(0, 255, (pixels_stack,
      pixels_height, pixels_width), uint8)`. Action space: `Discrete(2)`, 0 = do nothing, 1 = flap.
    - Each step overwrites rewards, terminals and truncations for every env. An env whose
      episode ended (terminal on a crash, truncation at `max_steps`) resets itself at once, and
      its observation is the first of the new episode.
    - Every `log_interval` steps, if episodes ended since the last report (or the last
      `reset`, which starts the statistics afresh), `step` returns in its info list one dict
      of means over them: score (pipes), episode_return,
      episode_length, perf (score / 50, capped at 1), the episodes' gap, pipe_speed,
      pipe_spacing and gravity (which vary with the *_spread parameters) and n (their number).
    - Seeding: env i draws its pipes from a PCG32 generator seeded with (seed, i), so its
      game does not depend on how many envs run beside it. `reset(seed)` reseeds every env;
      `reset(None)` starts new episodes and keeps each generator where it is. The envs are
      seeded and reset at construction, so `step` may come before `reset`.
    - Parameters: keyword arguments, passed to the C core untouched; `binding.params()` lists
      them as {name: (default, min, max)}. An unknown name raises TypeError, a value out of
      range ValueError.
    - Rendering shows env 0. `render_mode="rgb_array"`: `render()` returns a new (512, 288, 3)
      uint8 frame drawn in C, no display needed. `render_mode="human"`: the first `render()`
      opens a raylib window (`render_scale` times the world's size, paced at `render_fps`
      frames per second, 0 for no pacing), and each `render()` draws a frame; once the user
      closes it (ESC or the close button) `window_closed` is true and `render()` does nothing.
      Without a display it raises `flappy_rl.errors.NoDisplayError`. A frame is drawn per step,
      so with `frame_skip` k it shows every k-th game frame and, paced at `render_fps`, plays k
      times faster than the game's 30 frames per second.
    - `close()` frees the C envs and closes the window; closing again does nothing, stepping
      afterwards raises.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": int(binding.FPS)}

    def __init__(self, num_envs=1, render_mode=None, log_interval=128, buf=None, seed=0, *, render_scale=1.0,
                 render_fps=int(binding.FPS), **params):
        check_render_mode(render_mode)
        self.render_scale = check_scale(render_scale, "render_scale")
        self.render_fps = check_fps(render_fps, "render_fps")
        self.window = None  # the raylib window, opened by the first render() in human mode
        if isinstance(log_interval, bool) or not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f"log_interval must be a positive int, got {log_interval!r}")
        self.single_observation_space = observation_space(**params)  # checks params before any allocation
        self.single_action_space = gymnasium.spaces.Discrete(2)
        self.num_agents = num_envs
        self.render_mode = render_mode
        self.log_interval = log_interval
        super().__init__(buf)
        self.c_envs = binding.vec_init(
            self.observations, self.actions, self.rewards, self.terminals, self.truncations, num_envs, seed, **params
        )
        self.params = binding.check_params(**params)
        self.steps_since_log = 0
        self.closed = False

    @property
    def agents_per_batch(self):
        # PuffeRL's recurrent path reads this name from the vector env; pufferlib's PufferEnv
        # spells it agent_per_batch, so the native backend needs it here.
        return self.num_agents

    def reset(self, seed=0):
        binding.vec_reset(self.c_envs, seed)
        binding.vec_log(self.c_envs)  # drop the episodes before the reset: a report covers those after it
        self.steps_since_log = 0
        return self.observations, []

    def step(self, actions):
        binding.vec_step(self.c_envs, actions)
        info = []
        self.steps_since_log += 1
        if self.steps_since_log == self.log_interval:
            self.steps_since_log = 0
            log = binding.vec_log(self.c_envs)
            if log["n"] > 0:
                info.append(log)
        return self.observations, self.rewards, self.terminals, self.truncations, info

    def frame(self, i=0):
        """A new (512, 288, 3) uint8 RGB frame of env i, drawn in C, whatever the render mode."""
        frame = np.empty((int(binding.WORLD_HEIGHT), int(binding.WORLD_WIDTH), 3), np.uint8)
        binding.render(self.c_envs, i, frame)
        return frame

    def render(self):
        """rgb_array: a new (512, 288, 3) uint8 frame of env 0. human: draw env 0 in the window,
        opening it on the first call, and wait until the frame is due. None: nothing."""
        if self.render_mode == "rgb_array":
            return self.frame(0)
        if self.render_mode == "human":
            state = binding.env_get(self.c_envs, 0)  # raises on a closed env, before a window opens
            if self.window is None:
                self.window = RaylibWindow(self.render_scale, self.render_fps)
            self.window.draw(state, self.params)
        return None

    @property
    def window_closed(self):
        """True once the user closed the render window: an eval loop should stop."""
        return self.window is not None and self.window.closed

    def close(self):
        if self.window is not None:
            self.window.close()
        if not self.closed:
            binding.vec_close(self.c_envs)
            self.closed = True


def steps_per_second(num_envs=4096, seconds=1.0):
    """Random play in one `Flappy` of num_envs birds: steps per second, the median of windows
    of `seconds` (flappy_rl.speed)."""
    from flappy_rl.speed import measure, stepping

    env = Flappy(num_envs=num_envs)
    rate = measure(stepping(env, num_envs), num_envs, seconds)["median"]
    env.close()
    return rate


if __name__ == "__main__":
    # The check every Ocean env file runs: python src/flappy_rl/env.py, or python -m flappy_rl.env
    print(f"SPS: {steps_per_second():,.0f} (4096 envs, random actions, one core)")
