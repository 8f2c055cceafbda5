"""The rules of Flappy in plain Python: the readable specification and the parity oracle.

`FlappyGymnasiumEnv` is one Gymnasium env that plays exactly the game of `csrc/flappy.h`, with
the same random generator, so that for the same seed, env index and actions it produces the
same observations, rewards, terminals and truncations bit for bit (the parity tests check
this). It is written for reading, not for speed: the C env is about a thousand times faster.

The geometry constants and the parameter table come from the C core (`flappy_rl.binding`),
where they are defined once; the rules below are written out independently.
"""

import gymnasium
import numpy as np

import pufferlib.emulation

from flappy_rl import binding

MASK64 = (1 << 64) - 1

# Positions the step compares against (derived exactly as in csrc/flappy.h).
BIRD_RIGHT = binding.BIRD_X + binding.BIRD_WIDTH
SCORE_X = binding.BIRD_X + binding.BIRD_WIDTH / 2 - binding.PIPE_WIDTH / 2
GROUND_TOUCH_Y = binding.GROUND_Y - binding.BIRD_HEIGHT
OBS_Y_SCALE = 2.0 / binding.GROUND_Y
OBS_X_SCALE = 1.0 / binding.WORLD_WIDTH
OBS_GAP_SCALE = 1.0 / binding.GROUND_Y


class PCG32:
    """O'Neill's PCG-XSH-RR generator: 64-bit state, 32-bit outputs, a stream per env index."""

    MULTIPLIER = 6364136223846793005

    def __init__(self, seed, stream):
        self.state = 0
        self.inc = ((stream << 1) | 1) & MASK64
        self.next_u32()
        self.state = (self.state + seed) & MASK64
        self.next_u32()

    def next_u32(self):
        old = self.state
        self.state = (old * self.MULTIPLIER + self.inc) & MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & 0xFFFFFFFF

    def unit(self):
        """Uniform in [0, 1): 32 random bits scaled by 2**-32."""
        return self.next_u32() * 2.0**-32


def clip_unit(value):
    return -1.0 if value < -1.0 else (1.0 if value > 1.0 else value)


class FlappyGymnasiumEnv(gymnasium.Env):
    """Flappy Bird, one env, in pure Python: the specification of `flappy_rl.Flappy`.

    The world is the original game's screen, 288 x 512 px, y growing downwards, one step per
    frame at 30 frames per second. The bird's box (34 x 24 px) stays at x = 57.6; pipes 52 px
    wide scroll left; the ground's top is at y = 404.48.

    ## Action space
    `Discrete(2)`: 0 = do nothing, 1 = flap.

    ## Observation space
    `Box(-1, 1, (8,), float32)`, every value clipped to [-1, 1]:

    | index | observation                                                               |
    |-------|---------------------------------------------------------------------------|
    | 0     | bird height: centre y scaled so the screen's top is -1 and the ground +1  |
    | 1     | bird vertical speed / max(flap_speed, max_fall_speed), positive = falling |
    | 2     | next pipe: (left edge - bird's left edge) / 288                           |
    | 3     | next pipe: (gap top - bird top) / 404.48; < 0: bird's top above the gap   |
    | 4     | next pipe: (gap bottom - bird bottom) / 404.48; < 0: bird's bottom below  |
    | 5-7   | the same three for the pipe after the next                                |

    The next pipe is the first whose right edge is right of the bird's left edge.

    ## Dynamics, one frame
    1. A flap (while the bird's top is below y = -48, two bird heights above the screen) sets
       the vertical speed to -flap_speed; otherwise gravity is added, capped at max_fall_speed.
       Then the bird moves by its speed.
    2. The pipes move left by pipe_speed. Once the oldest pipe has left the screen it is
       recycled as the newest, pipe_spacing after the last, with a gap top drawn uniformly from
       [0.2 * 404.48, 0.8 * 404.48 - gap).
    3. A pipe is passed on the frame its centre reaches the bird's centre.
    4. The bird crashes when its box overlaps a pipe (upper pipes reach up without end) or its
       bottom reaches the ground.

    ## Reward
    reward_pipe for each pipe passed, plus reward_crash on the crash frame, else reward_alive.

    ## Episode end
    Terminated on a crash; truncated after max_steps frames. An episode starts with the bird's
    top at y = 244 moving up at flap_speed, and the first pipe's left edge at x = 488.

    ## Parameters (keyword arguments; the C table in csrc/flappy.h is the source)

    | name           | default | range          | meaning                                         |
    |----------------|---------|----------------|-------------------------------------------------|
    | gap            | 100     | [30, 240]      | height of the opening between the pipes, px     |
    | pipe_speed     | 4       | [0.5, 40]      | distance the pipes move left each frame, px     |
    | pipe_spacing   | 144     | [100, 1000]    | horizontal distance between pipes, px           |
    | gravity        | 1       | [0, 10]        | added to the fall speed per frame, px/frame     |
    | flap_speed     | 9       | [1, 30]        | upward speed a flap sets, px/frame              |
    | max_fall_speed | 10      | [1, 50]        | cap on the fall speed, px/frame                 |
    | reward_pipe    | 1       | [-100, 100]    | reward for each pipe passed                     |
    | reward_crash   | -1      | [-100, 100]    | reward on the crash frame                       |
    | reward_alive   | 0       | [-100, 100]    | reward on every frame without a crash           |
    | max_steps      | 10000   | [1, 1e9]       | frames after which an episode is truncated      |

    ## Seeding
    Pipes come from a PCG32 generator seeded with (seed, env_index). `env_index` is the
    position this env would have in a `flappy_rl.Flappy` vector (default 0), so
    `FlappyGymnasiumEnv(env_index=i)` reset with seed s replays env i of `Flappy(seed=s)`.
    `reset()` without a seed continues the generator, as the C env does after an episode.

    ## Rendering
    `render_mode="rgb_array"`: `render()` returns a (512, 288, 3) uint8 frame, drawn by the C
    env's rasterizer from `state()`, so it equals the C env's frame. No "human" mode: gymnasium's
    env checker opens every declared mode, and a window needs a display; `flappy_rl.Flappy`
    has one.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(binding.FPS)}

    def __init__(self, render_mode=None, env_index=0, **params):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.env_index = env_index
        self.params = binding.check_params(**params)
        p = self.params
        self.speed_scale = 1.0 / max(p["flap_speed"], p["max_fall_speed"])
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (binding.OBS_SIZE,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.rng = None

    # -- episode start -------------------------------------------------------------------------

    def draw_gap_top(self):
        return binding.GAP_TOP_MIN + self.rng.unit() * (binding.GAP_SPAN - self.params["gap"])

    def reset(self, seed=None, options=None):
        if seed is not None and not 0 <= seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed!r}")
        super().reset(seed=seed)
        if seed is not None:
            self.rng = PCG32(seed, self.env_index)
        elif self.rng is None:
            self.rng = PCG32(int(self.np_random.integers(2**63)), self.env_index)
        self.bird_y = binding.BIRD_START_Y
        self.bird_vy = -self.params["flap_speed"]
        # Pipe j (oldest first) has its left edge at front_x + j * pipe_spacing; gap_tops[0] is
        # the oldest pipe's.
        self.front_x = binding.FIRST_PIPE_X
        self.gap_tops = [self.draw_gap_top() for _ in range(binding.NUM_PIPES)]
        self.tick = 0
        self.score = 0
        self.episode_return = 0.0
        return self.observation(), {}

    # -- one frame -----------------------------------------------------------------------------

    def next_pipe(self):
        """(index in gap_tops, left edge x) of the first pipe not wholly behind the bird."""
        behind = self.front_x + binding.PIPE_WIDTH <= binding.BIRD_X
        return (1, self.front_x + self.params["pipe_spacing"]) if behind else (0, self.front_x)

    def step(self, action):
        if action not in (0, 1):
            raise ValueError(f"action {action!r} is not 0 (do nothing) or 1 (flap)")
        p = self.params

        if action == 1 and self.bird_y > binding.FLAP_CEILING:
            self.bird_vy = -p["flap_speed"]
        else:
            self.bird_vy = min(self.bird_vy + p["gravity"], p["max_fall_speed"])
        self.bird_y += self.bird_vy

        self.front_x -= p["pipe_speed"]
        if self.front_x + binding.PIPE_WIDTH < 0.0:
            self.front_x += p["pipe_spacing"]
            self.gap_tops = self.gap_tops[1:] + [self.draw_gap_top()]

        k, next_x = self.next_pipe()
        passed = next_x <= SCORE_X < next_x + p["pipe_speed"]

        y, top = self.bird_y, self.gap_tops[k]
        in_column = next_x < BIRD_RIGHT
        hit_pipe = in_column and (y < top or y + binding.BIRD_HEIGHT > top + p["gap"])
        crashed = hit_pipe or y >= GROUND_TOUCH_Y

        reward = np.float32(passed * p["reward_pipe"] + (p["reward_crash"] if crashed else p["reward_alive"]))
        self.tick += 1
        self.score += passed
        self.episode_return += float(reward)
        truncated = not crashed and self.tick >= p["max_steps"]
        info = {}
        if crashed or truncated:
            info = {"score": self.score, "episode_return": self.episode_return, "episode_length": self.tick}
        return self.observation(), float(reward), crashed, truncated, info

    # -- what the agent sees -------------------------------------------------------------------

    def observation(self):
        k, next_x = self.next_pipe()
        y, gap, spacing = self.bird_y, self.params["gap"], self.params["pipe_spacing"]
        obs = [
            (y + binding.BIRD_HEIGHT / 2) * OBS_Y_SCALE - 1.0,
            self.bird_vy * self.speed_scale,
        ]
        for j in range(2):
            x = next_x + j * spacing
            top = self.gap_tops[k + j]
            obs += [
                (x - binding.BIRD_X) * OBS_X_SCALE,
                (top - y) * OBS_GAP_SCALE,
                (top + gap - (y + binding.BIRD_HEIGHT)) * OBS_GAP_SCALE,
            ]
        return np.array([clip_unit(v) for v in obs], dtype=np.float32)


    # -- what people see ------------------------------------------------------------------------

    def state(self):
        """The state as `binding.env_get` gives the C env's: bird, pipes oldest first, score."""
        k, _ = self.next_pipe()
        spacing, gap = self.params["pipe_spacing"], self.params["gap"]
        pipes = [{"x": self.front_x + j * spacing, "gap_top": top, "gap_bottom": top + gap}
                 for j, top in enumerate(self.gap_tops)]
        return {"bird_x": binding.BIRD_X, "bird_y": self.bird_y, "bird_vy": self.bird_vy, "pipes": pipes,
                "next_pipe": k, "score": self.score, "tick": self.tick, "episode_return": self.episode_return}

    def render(self):
        if self.render_mode is None:
            return None
        if self.rng is None:
            raise gymnasium.error.ResetNeeded("call reset() before render()")
        frame = np.empty((int(binding.WORLD_HEIGHT), int(binding.WORLD_WIDTH), 3), np.uint8)
        binding.render_state(self.state(), frame, **self.params)
        return frame


def make_gymnasium_env(buf=None, seed=0, **kwargs):
    """FlappyGymnasiumEnv behind PufferLib's emulation layer, for `pufferlib.vector.make`."""
    return pufferlib.emulation.GymnasiumPufferEnv(env=FlappyGymnasiumEnv(**kwargs), buf=buf, seed=seed)
