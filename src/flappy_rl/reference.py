"""The rules of Flappy in plain Python: the readable specification and the parity oracle.

`FlappyGymnasiumEnv` is one Gymnasium env that plays exactly the game of `csrc/flappy.h`, with
the same random generator, so that for the same seed, env index and actions it produces the
same observations, rewards, terminals and truncations bit for bit (the parity tests check
this). It is written for reading, not for speed: the C env is about a thousand times faster.

The geometry constants and the parameter table come from the C core (`flappy_rl.binding`),
where they are defined once; the rules below are written out independently. Two things are
not: pixel observations and rgb_array frames are drawn by the C rasterizer (through
`binding.render_state`), so the twin checks how frames are stacked, not how they are drawn.
"""

import math

import gymnasium
import numpy as np

from flappy_rl import binding
from flappy_rl.gym_env import observation_space

MASK64 = (1 << 64) - 1

# Positions the step compares against (derived exactly as in csrc/flappy.h).
BIRD_RIGHT = binding.BIRD_X + binding.BIRD_WIDTH
SCORE_X = binding.BIRD_X + binding.BIRD_WIDTH / 2 - binding.PIPE_WIDTH / 2
GROUND_TOUCH_Y = binding.GROUND_Y - binding.BIRD_HEIGHT
OBS_Y_SCALE = 2.0 / binding.GROUND_Y
OBS_X_SCALE = 1.0 / binding.WORLD_WIDTH
OBS_GAP_SCALE = 1.0 / binding.GROUND_Y

# The parameters drawn anew each episode when their <name>_spread is not 0, in drawing order.
EPISODE_PARAMETERS = ("gap", "pipe_speed", "pipe_spacing", "gravity")


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


class Rays:
    """The LIDAR's ray directions, float32, from libm's cos and sin in double as in C."""

    def __init__(self, count):
        radians = [(-90.0 + (k + 0.5) * (180.0 / count)) * (math.pi / 180.0) for k in range(count)]
        self.dx = np.array([math.cos(r) for r in radians], np.float32)
        self.dy = np.array([math.sin(r) for r in radians], np.float32)
        with np.errstate(divide="ignore"):  # a horizontal ray's 1 / dy is inf, as in C
            self.inv_dx = np.float32(1.0) / self.dx
            self.inv_dy = np.float32(1.0) / self.dy


class FlappyGymnasiumEnv(gymnasium.Env):
    """Flappy Bird, one env, in pure Python: the specification of `flappy_rl.Flappy` and of the
    C-backed Gymnasium envs (`flappy_rl.FlappyEnv`, `flappy_rl.FlappyVectorEnv`). Registered as
    "flappy_rl/FlappyBird-reference-v0".

    The world is the original game's screen, 288 x 512 px, y growing downwards, 30 frames per
    second; one step is frame_skip frames (1 by default). The bird's box (34 x 24 px) stays at
    x = 57.6; pipes 52 px wide scroll left; the ground's top is at y = 404.48.

    ## Action space
    `Discrete(2)`: 0 = do nothing, 1 = flap.

    ## Observation space (by `obs_mode`)
    `features` (default): `Box(-1, 1, (8,), float32)`, every value clipped to [-1, 1]:

    | index | observation                                                               |
    |-------|---------------------------------------------------------------------------|
    | 0     | bird height: centre y scaled so the screen's top is -1 and the ground +1  |
    | 1     | bird vertical speed / max(flap_speed, max_fall_speed), positive = falling |
    | 2     | next pipe: (left edge - bird's left edge) / 288                           |
    | 3     | next pipe: (gap top - bird top) / 404.48; > 0: bird's top above the gap   |
    | 4     | next pipe: (gap bottom - bird bottom) / 404.48; < 0: bird's bottom below  |
    | 5-7   | the same three for the pipe after the next                                |

    The next pipe is the first whose right edge is right of the bird's left edge.

    `lidar`: `Box(0, 1, (lidar_rays + 1,), float32)`:

    | index          | observation                                                          |
    |----------------|----------------------------------------------------------------------|
    | 0 .. rays - 1  | distance along ray k to the first pipe or ground, / lidar_range, <= 1 |
    | rays           | bird vertical speed, as feature 1, in [-1, 1]                        |

    Ray k leaves the bird's beak (x = 91.6, the bird's mid-height) at -90 + (k + 0.5) * 180 /
    lidar_rays degrees, y down: the half-plane ahead, top to bottom. 1 means nothing in range.
    A beak at or below the ground's top (the last frame of a crash into the ground) reads 0 on
    every ray pointing down. Computed in float32.

    `pixels`: `Box(0, 255, (pixels_stack, pixels_height, pixels_width), uint8)`: the last
    `pixels_stack` grayscale frames, oldest first, drawn without the score. A frame shows the
    world from y = -96 down to the bottom of the screen, so that a bird above the screen (its
    top never rises above y = -96) still sees itself; the bird covers at least one pixel each
    way at the smallest frame (9 x 26), so every frame shows it. At an episode's start every
    frame of the stack is its first frame. The observation shows the state after a step's last
    frame (for pixels, the stack holds one frame per step, as with Atari's frame skipping).

    ## Dynamics, one step
    The action is held for frame_skip frames (a flap pressed on each one), fewer when a frame
    ends the episode: the step stops on that frame. The step's reward is the sum of its frames'
    rewards, in float32.

    ## Dynamics, one frame
    1. A flap (while the bird's top is below y = -48, two bird heights above the screen) sets
       the vertical speed to -flap_speed; otherwise gravity is added, capped at max_fall_speed.
       Then the bird moves by its speed; a bird whose top would rise above y = -96 (the pixel
       view's top) stops there with speed 0. With the default flap_speed and gravity a bird
       rises to y = -93 at most, so only stronger flaps or weaker gravity meet this ceiling.
    2. The pipes move left by pipe_speed. Once the oldest pipe has left the screen it is
       recycled as the newest, pipe_spacing after the last, with a gap top drawn uniformly from
       [0.2 * 404.48, 0.8 * 404.48 - gap).
    3. A pipe is passed on the frame its centre reaches the bird's centre.
    4. The bird crashes when its box overlaps a pipe (upper pipes reach up without end) or its
       bottom reaches the ground.

    ## Reward
    Per frame: reward_pipe for each pipe passed, plus reward_crash on the crash frame, else
    reward_alive; a step's reward sums its frames'.

    ## Episode end
    Terminated on a crash; truncated after max_steps frames (frames, whatever frame_skip is: the
    info's score, episode_return and episode_length count alike for every frame_skip). An
    episode starts by drawing its gap, pipe_speed, pipe_spacing and gravity (no draw for a
    spread of 0; otherwise uniformly over the part of <name> +- <name>_spread inside <name>'s
    range: a first draw over the whole interval is kept if it lands in the range, else a second
    draw spans the part inside, so no value piles up on a bound), then the bird's top
    at y = 244 moving up at flap_speed, and four pipes, the first at x = 488.

    ## Parameters (keyword arguments; the C table in csrc/flappy.h is the source)

    | name                | default  | range                     | meaning                                   |
    |---------------------|----------|---------------------------|-------------------------------------------|
    | gap                 | 100      | [30, 240]                 | height of the opening between the pipes   |
    | pipe_speed          | 4        | [0.5, 40]                 | px the pipes move left each frame         |
    | pipe_spacing        | 144      | [100, 1000]               | px between consecutive pipes              |
    | gravity             | 1        | [0.1, 10]                 | added to the fall speed per frame         |
    | flap_speed          | 9        | [1, 30]                   | upward speed a flap sets, px/frame        |
    | max_fall_speed      | 10       | [1, 50]                   | cap on the fall speed, px/frame           |
    | reward_pipe         | 1        | [-100, 100]               | reward for each pipe passed               |
    | reward_crash        | -1       | [-100, 100]               | reward on the crash frame                 |
    | reward_alive        | 0        | [-100, 100]               | reward on every frame without a crash     |
    | max_steps           | 10000    | [1, 1e9]                  | frames after which an episode is truncated |
    | frame_skip          | 1        | [1, 16]                   | frames each action is repeated for        |
    | obs_mode            | features | features, lidar, pixels   | what the agent observes (above)           |
    | lidar_rays          | 180      | [1, 1024]                 | lidar: rays over the half-plane ahead     |
    | lidar_range         | 196      | [16, 256]                 | lidar: distance that reads 1, px          |
    | pixels_width        | 36       | [9, 288]                  | pixels: frame width                       |
    | pixels_height       | 64       | [26, 512]                 | pixels: frame height                      |
    | pixels_stack        | 2        | [1, 8]                    | pixels: frames observed at once           |
    | gap_spread          | 0        | [0, 210]                  | each episode's gap: gap +- this           |
    | pipe_speed_spread   | 0        | [0, 39.5]                 | each episode's pipe_speed: +- this        |
    | pipe_spacing_spread | 0        | [0, 900]                  | each episode's pipe_spacing: +- this      |
    | gravity_spread      | 0        | [0, 10]                   | each episode's gravity: +- this           |
    | difficulty          | normal   | easy, normal, hard        | a preset for the parameters at default    |

    `difficulty` sets each parameter of its preset that is at its default: easy = gap 130,
    pipe_speed 3, pipe_spacing 180; hard = gap 85, pipe_speed 5, pipe_spacing 130, gap_spread
    15, pipe_speed_spread 1, gravity_spread 0.15. `self.params` holds the result.

    The ranges keep every game playable and every observation in its space: gravity is at
    least 0.1 so every bird falls after a flap, and a frame is at least 9 x 26 pixels so the
    bird (34 x 24 px of a 288 x 608 px view) covers a pixel in each direction.

    ## Seeding
    Pipes (and drawn episode values) come from a PCG32 generator seeded with (seed,
    env_index). `env_index` is the position this env would have in a `flappy_rl.Flappy`
    vector (default 0), so `FlappyGymnasiumEnv(env_index=i)` reset with seed s replays env i of
    `Flappy(seed=s)`. `reset()` without a seed continues the generator, as the C env does after
    an episode.

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
        self.observation_space = observation_space(**params)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.rays = Rays(p["lidar_rays"]) if p["obs_mode"] == "lidar" else None
        self.rng = None

    # -- episode start -------------------------------------------------------------------------

    def draw_episode_value(self, name):
        value, spread = self.params[name], self.params[f"{name}_spread"]
        if spread == 0.0:
            return value
        _, low, high = binding.params()[name]
        drawn = value + spread * (2.0 * self.rng.unit() - 1.0)
        if low <= drawn <= high:
            return drawn
        # Outside the range: a second draw over the part of value +- spread inside it. Each
        # draw is uniform over that part given the first one's outcome, so their mix is too.
        inside_low, inside_high = max(value - spread, low), min(value + spread, high)
        drawn = inside_low + (inside_high - inside_low) * self.rng.unit()
        return low if drawn < low else (high if drawn > high else drawn)  # rounding only

    def draw_gap_top(self):
        return binding.GAP_TOP_MIN + self.rng.unit() * (binding.GAP_SPAN - self.gap)

    def reset(self, seed=None, options=None):
        if seed is not None and not 0 <= seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed!r}")
        super().reset(seed=seed)
        if seed is not None:
            self.rng = PCG32(seed, self.env_index)
        elif self.rng is None:
            self.rng = PCG32(int(self.np_random.integers(2**63)), self.env_index)
        self.gap, self.pipe_speed, self.pipe_spacing, self.gravity = map(self.draw_episode_value, EPISODE_PARAMETERS)
        self.bird_y = binding.BIRD_START_Y
        self.bird_vy = -self.params["flap_speed"]
        # Pipe j (oldest first) has its left edge at front_x + j * pipe_spacing; gap_tops[0] is
        # the oldest pipe's.
        self.front_x = binding.FIRST_PIPE_X
        self.gap_tops = [self.draw_gap_top() for _ in range(binding.NUM_PIPES)]
        self.tick = 0
        self.score = 0
        self.episode_return = 0.0
        self.frames = None  # the pixel observation's stack, started by observation()
        return self.observation(), {}

    # -- one step: frame_skip frames ----------------------------------------------------------

    def step(self, action):
        if action not in (0, 1):
            raise ValueError(f"action {action!r} is not 0 (do nothing) or 1 (flap)")
        # The first frame's reward as it is (a sum from 0 would turn -0.0 into +0.0), then the
        # others added in float32, as C sums them into the reward buffer.
        reward, crashed, truncated = self.play_frame(action)
        for _ in range(1, self.params["frame_skip"]):
            if crashed or truncated:
                break
            frame_reward, crashed, truncated = self.play_frame(action)
            reward += frame_reward
        info = {}
        if crashed or truncated:
            info = {"score": self.score, "episode_return": self.episode_return, "episode_length": self.tick}
        return self.observation(), float(reward), crashed, truncated, info

    # -- one frame -----------------------------------------------------------------------------

    def next_pipe(self):
        """(index in gap_tops, left edge x) of the first pipe not wholly behind the bird."""
        behind = self.front_x + binding.PIPE_WIDTH <= binding.BIRD_X
        return (1, self.front_x + self.pipe_spacing) if behind else (0, self.front_x)

    def play_frame(self, action):
        """One frame with the action held: (float32 reward, crashed, truncated)."""
        p = self.params

        if action == 1 and self.bird_y > binding.FLAP_CEILING:
            self.bird_vy = -p["flap_speed"]
        else:
            self.bird_vy = min(self.bird_vy + self.gravity, p["max_fall_speed"])
        self.bird_y += self.bird_vy
        if self.bird_y < binding.BIRD_TOP_MIN:  # the bird stops where the pixel view's top is
            self.bird_y, self.bird_vy = binding.BIRD_TOP_MIN, 0.0

        self.front_x -= self.pipe_speed
        if self.front_x + binding.PIPE_WIDTH < 0.0:
            self.front_x += self.pipe_spacing
            self.gap_tops = self.gap_tops[1:] + [self.draw_gap_top()]

        k, next_x = self.next_pipe()
        passed = next_x <= SCORE_X < next_x + self.pipe_speed

        y, top = self.bird_y, self.gap_tops[k]
        in_column = next_x < BIRD_RIGHT
        hit_pipe = in_column and (y < top or y + binding.BIRD_HEIGHT > top + self.gap)
        crashed = hit_pipe or y >= GROUND_TOUCH_Y

        reward = np.float32(passed * p["reward_pipe"] + (p["reward_crash"] if crashed else p["reward_alive"]))
        self.tick += 1
        self.score += passed
        self.episode_return += float(reward)
        truncated = not crashed and self.tick >= p["max_steps"]
        return reward, crashed, truncated

    # -- what the agent sees -------------------------------------------------------------------

    def observation(self):
        mode = self.params["obs_mode"]
        if mode == "lidar":
            return self.lidar()
        if mode == "pixels":
            return self.pixels()
        return self.features()

    def features(self):
        k, next_x = self.next_pipe()
        y = self.bird_y
        obs = [
            (y + binding.BIRD_HEIGHT / 2) * OBS_Y_SCALE - 1.0,
            self.bird_vy * self.speed_scale,
        ]
        for j in range(2):
            x = next_x + j * self.pipe_spacing
            top = self.gap_tops[k + j]
            obs += [
                (x - binding.BIRD_X) * OBS_X_SCALE,
                (top - y) * OBS_GAP_SCALE,
                (top + self.gap - (y + binding.BIRD_HEIGHT)) * OBS_GAP_SCALE,
            ]
        return np.array([clip_unit(v) for v in obs], dtype=np.float32)

    def lidar(self):
        """Every ray at once, in float32, with the operations of C's flappy_write_lidar."""
        rays, f32 = self.rays, np.float32
        reach = self.params["lidar_range"]
        ox, oy = f32(binding.LIDAR_X), f32(self.bird_y + binding.BIRD_HEIGHT / 2)
        with np.errstate(all="ignore"):  # inf * 0 on a horizontal ray is masked out, as in C
            to_ground = max(f32(binding.GROUND_Y) - oy, f32(0))  # a beak in the ground reads 0
            t = to_ground * rays.inv_dy
            distance = np.where((rays.dy > 0) & (t < f32(reach)), t, f32(reach))
            k, next_x = self.next_pipe()
            for j in range(binding.NUM_PIPES - k):  # the pipes ahead that the env keeps
                x = next_x + j * self.pipe_spacing
                if x - binding.LIDAR_X >= reach:
                    break
                top = self.gap_tops[k + j]
                front, back = f32(x) - ox, f32(x + binding.PIPE_WIDTH) - ox
                gap_top, gap_bottom = f32(top) - oy, f32(top + self.gap) - oy  # relative to the beak
                t_in = front * rays.inv_dx
                t_in = np.where(t_in > 0, t_in, f32(0))  # 0: the beak is in the column already
                t_out = back * rays.inv_dx
                y_in = t_in * rays.dy
                on_face = (y_in < gap_top) | (y_in > gap_bottom)
                t_edge = np.where(rays.dy < 0, gap_top, gap_bottom) * rays.inv_dy
                on_edge = (t_edge >= t_in) & (t_edge < t_out)
                t = np.where(on_face, t_in, t_edge)
                hit = (on_face | on_edge) & (t_out > 0) & (t < distance)
                distance = np.where(hit, t, distance)
        scaled = distance * f32(1.0 / reach)
        speed = f32(clip_unit(self.bird_vy * self.speed_scale))
        return np.append(np.where(scaled < 1, scaled, f32(1)), speed).astype(np.float32)

    def pixels(self):
        p = self.params
        frame = np.empty((p["pixels_height"], p["pixels_width"]), np.uint8)
        binding.render_state({**self.state(), "show_score": False, "view_top": binding.PIXELS_TOP}, frame, **p)
        if self.frames is None:  # an episode's first observation: every frame is this one
            self.frames = np.repeat(frame[None], p["pixels_stack"], axis=0)
        else:
            self.frames = np.concatenate([self.frames[1:], frame[None]])
        return self.frames.copy()

    # -- what people see -----------------------------------------------------------------------

    def state(self):
        """The state as `binding.env_get` gives the C env's: bird, pipes oldest first, score."""
        k, _ = self.next_pipe()
        pipes = [{"x": self.front_x + j * self.pipe_spacing, "gap_top": top, "gap_bottom": top + self.gap}
                 for j, top in enumerate(self.gap_tops)]
        return {"bird_x": binding.BIRD_X, "bird_y": self.bird_y, "bird_vy": self.bird_vy, "pipes": pipes,
                "next_pipe": k, "score": self.score, "tick": self.tick, "episode_return": self.episode_return,
                "gap": self.gap, "pipe_speed": self.pipe_speed, "pipe_spacing": self.pipe_spacing,
                "gravity": self.gravity}

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
    import pufferlib.emulation  # here, so that the twin alone needs no PufferLib (nor torch)

    return pufferlib.emulation.GymnasiumPufferEnv(env=FlappyGymnasiumEnv(**kwargs), buf=buf, seed=seed)
