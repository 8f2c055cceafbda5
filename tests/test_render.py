"""Headless frames: the C rasterizer seen through the binding, Flappy.render, the twin, GIFs."""

import math
import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

from flappy_rl import REFERENCE_ID, Flappy, FlappyGymnasiumEnv, binding
from flappy_rl.errors import NoDisplayError
from flappy_rl.render import gif_durations, save_gif
from conftest import scripted_actions

PALETTE = binding.palette()
GRAY = binding.palette_gray()
H, W = int(binding.WORLD_HEIGHT), int(binding.WORLD_WIDTH)
DEFAULTS = {name: d for name, (d, _, _) in binding.params().items()}


def frame_of(handle, i, shape=(H, W, 3)):
    frame = np.zeros(shape, np.uint8)
    binding.render(handle, i, frame)
    return frame


def draw(state, shape=(H, W, 3)):
    frame = np.zeros(shape, np.uint8)
    binding.render_state(state, frame)
    return frame


def colour_at(frame, x, y):
    """Name of the palette colour of the pixel whose area holds world point (x, y), at scale 1."""
    rgb = tuple(int(v) for v in frame[int(y), int(x)])
    names = [name for name, c in PALETTE.items() if c == rgb]
    return names[0] if names else rgb


def played_states(seed, num_envs=4, checkpoints=(70, 130, 200, 320)):
    """States (as env_get gives them) at several moments of mostly scripted, partly random play,
    with default parameters. Checks on the way that render draws what render_state draws."""
    env = Flappy(num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    for t in range(max(checkpoints) + 1):
        if t in checkpoints:
            for i in range(num_envs):
                state = binding.env_get(env.c_envs, i)
                np.testing.assert_array_equal(frame_of(env.c_envs, i), draw(state))
                yield state
        actions = scripted_actions(env.observations)
        env.step(np.where(rng.random(num_envs) < 0.005, 1 - actions, actions))


STATES = [s for seed in (0, 7) for s in played_states(seed)]


def test_palette_has_one_distinct_gray_per_colour():
    assert list(PALETTE) == ["sky", "pipe", "pipe_cap", "ground", "grass_light", "grass_dark", "bird", "bird_eye",
                             "bird_beak", "score", "overlay", "text"]
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE.values())
    assert len(set(PALETTE.values())) == len(PALETTE)
    assert list(GRAY) == list(PALETTE) and len(set(GRAY.values())) == len(GRAY)


@pytest.mark.parametrize("state", STATES)
def test_pixels_show_bird_pipes_sky_and_ground_where_the_state_puts_them(state):
    frame = draw(state)
    y = state["bird_y"]
    # The bird's back half is body colour; its box holds only bird colours.
    if 1 <= y and y + binding.BIRD_HEIGHT <= binding.GROUND_Y - 1:
        for bx in np.arange(binding.BIRD_X + 0.5, binding.BIRD_X + binding.BIRD_EYE_X - 0.5, 1.0):
            for by in (y + 0.5, y + binding.BIRD_HEIGHT / 2, y + binding.BIRD_HEIGHT - 0.5):
                assert colour_at(frame, bx, by) == "bird"
        box = frame[math.ceil(y):int(y + binding.BIRD_HEIGHT), math.ceil(binding.BIRD_X):int(binding.BIRD_X + 34)]
        colours = {tuple(c) for c in box.reshape(-1, 3)}
        assert colours == {PALETTE["bird"], PALETTE["bird_eye"], PALETTE["bird_beak"]}

    score_rows = (binding.SCORE_TOP - 1, binding.SCORE_TOP + 5 * binding.SCORE_CELL + 1)
    bird_rows = (y - 1, y + binding.BIRD_HEIGHT + 1)
    cap = binding.PIPE_CAP_HEIGHT
    for pipe in state["pipes"]:
        centre = pipe["x"] + binding.PIPE_WIDTH / 2
        if not 0 <= centre < W:
            continue
        top, bottom = pipe["gap_top"], pipe["gap_bottom"]
        expected = [(0, top - cap, "pipe"), (top - cap, top, "pipe_cap"), (top, bottom, "sky"),
                    (bottom, bottom + cap, "pipe_cap"), (bottom + cap, binding.GROUND_Y, "pipe")]
        for row_top, row_bottom, name in expected:
            for py in np.arange(max(row_top, 0) + 0.5, row_bottom - 0.5, 1.0):
                covered = score_rows[0] < py < score_rows[1] or (name == "sky" and bird_rows[0] < py < bird_rows[1])
                if not covered:
                    assert colour_at(frame, centre, py) == name, (pipe, py)
        # caps stick out on both sides of the pipe's column
        for cx in (pipe["x"] - binding.PIPE_CAP_OVERHANG / 2, pipe["x"] + 52 + binding.PIPE_CAP_OVERHANG / 2):
            if 0 <= cx < W:
                assert colour_at(frame, cx, bottom + cap / 2) == "pipe_cap"
                assert colour_at(frame, cx, bottom + cap + 2) == "sky"

    grass_bottom = binding.GROUND_Y + binding.GRASS_HEIGHT
    ground = frame[math.ceil(grass_bottom):]
    assert (ground == PALETTE["ground"]).all()
    grass = {tuple(c) for c in frame[math.ceil(binding.GROUND_Y):int(grass_bottom)].reshape(-1, 3)}
    assert grass == {PALETTE["grass_light"], PALETTE["grass_dark"]}


def test_the_pixel_checks_see_pipes_and_birds():
    """Most of STATES have a pipe column and the whole bird on screen, so the checks above bite."""
    pipes = [any(0 <= p["x"] + binding.PIPE_WIDTH / 2 < W for p in s["pipes"]) for s in STATES]
    birds = [1 <= s["bird_y"] <= binding.GROUND_Y - binding.BIRD_HEIGHT - 1 for s in STATES]
    assert sum(pipes) >= 0.7 * len(STATES) and sum(birds) >= 0.7 * len(STATES)


def test_ground_stripes_scroll_with_the_pipes():
    for speed in (4.0, 3.0):
        env = Flappy(seed=1, pipe_speed=speed)
        band = slice(math.ceil(binding.GROUND_Y), int(binding.GROUND_Y + binding.GRASS_HEIGHT))
        before = frame_of(env.c_envs, 0)[band]
        env.step(np.ones(1, np.int32))
        after = frame_of(env.c_envs, 0)[band]
        shift = int(speed)
        assert not (after == before).all()
        np.testing.assert_array_equal(after[:, :W - shift], before[:, shift:])


def test_rasterizer_matches_a_plain_painter_of_the_scene():
    """Paint the scene's rectangles one by one in NumPy (a pixel belongs to a rectangle when its
    centre does, left and top edges included): the C frame must be the same, at any size."""
    for state in STATES[::3]:
        rects = binding.scene(state, **DEFAULTS)
        assert {part for part, *_ in rects} <= {"sky", "pipe", "ground", "bird", "score"}
        for height, width in ((H, W), (177, 100), (64, 36), (36, 64), (1000, 577)):
            sy, sx = height / H, width / W
            expected = np.zeros((height, width, 3), np.uint8)
            for _, colour, x0, y0, x1, y1 in rects:
                assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
                c0, c1 = (min(max(math.ceil(v * sx - 0.5), 0), width) for v in (x0, x1))
                r0, r1 = (min(max(math.ceil(v * sy - 0.5), 0), height) for v in (y0, y1))
                expected[r0:r1, c0:c1] = PALETTE[colour]
            np.testing.assert_array_equal(draw(state, (height, width, 3)), expected)


def test_grayscale_frames_are_the_rgb_frames_through_the_palette():
    rgb_to_gray = {PALETTE[name]: GRAY[name] for name in PALETTE}
    for state in STATES[::4]:
        for height, width in ((H, W), (64, 36), (36, 64), (3, 2)):
            rgb = draw(state, (height, width, 3))
            gray = draw(state, (height, width))
            mapped = np.array([rgb_to_gray[tuple(p)] for p in rgb.reshape(-1, 3)]).reshape(height, width)
            np.testing.assert_array_equal(gray, mapped)


def test_small_frames_sample_the_full_frame():
    """A small frame's pixel has the colour of the world point at its centre (away from edges)."""
    for state in STATES[::4]:
        full = draw(state)
        for height, width in ((64, 36), (128, 72)):
            small = draw(state, (height, width, 3))
            ys = ((np.arange(height) + 0.5) * H / height).astype(int)
            xs = ((np.arange(width) + 0.5) * W / width).astype(int)
            agree = (small == full[np.ix_(ys, xs)]).all(-1).mean()
            assert agree > 0.97


def test_score_is_drawn_centred_at_the_top():
    state = binding.env_get(Flappy(seed=3).c_envs, 0)
    glyphs = set()
    for score in list(range(10)) + [123, 2**31 - 2]:
        frame = np.zeros((H, W, 3), np.uint8)
        binding.render_state({**state, "score": score}, frame)
        ys, xs = np.nonzero((frame == PALETTE["score"]).all(-1))
        digits = len(str(score))
        width = (4 * digits - 1) * binding.SCORE_CELL
        assert ys.min() == binding.SCORE_TOP and ys.max() + 1 == binding.SCORE_TOP + 5 * binding.SCORE_CELL
        assert xs.min() >= (W - width) / 2 and xs.max() + 1 <= (W + width) / 2
        assert xs.min() + xs.max() + 1 == W  # centred
        if digits == 1:
            glyphs.add(frame[ys.min():ys.max() + 1, xs.min():xs.max() + 1].tobytes())
    assert len(glyphs) == 10  # every digit has its own glyph


def test_twin_frames_equal_the_c_env_frames():
    for seed, gap in ((0, 100.0), (5, 150.0)):
        twin = FlappyGymnasiumEnv(render_mode="rgb_array", gap=gap)
        twin.reset(seed=seed)
        env = Flappy(seed=seed, render_mode="rgb_array", gap=gap)
        np.testing.assert_array_equal(twin.render(), env.render())
        episodes = 0
        for t in range(400):
            action = int(scripted_actions(env.observations)[0]) if t % 50 < 45 else 0
            _, _, terminated, truncated, _ = twin.step(action)
            env.step(np.array([action]))
            if terminated or truncated:  # the C env starts its next episode by itself
                twin.reset()
                episodes += 1
            np.testing.assert_array_equal(twin.render(), env.render())
        assert episodes >= 1


def test_twin_render_modes_and_env_checker():
    assert FlappyGymnasiumEnv.metadata == {"render_modes": ["rgb_array"], "render_fps": 30}
    check_env(gymnasium.make(REFERENCE_ID, render_mode="rgb_array").unwrapped)
    assert gymnasium.make(REFERENCE_ID, render_mode="rgb_array").reset(seed=1) is not None
    with pytest.raises(gymnasium.error.ResetNeeded, match=r"^call reset\(\) before render\(\)$"):
        FlappyGymnasiumEnv(render_mode="rgb_array").render()
    assert FlappyGymnasiumEnv().render() is None
    with pytest.raises(ValueError, match="^render_mode must be None or 'rgb_array', got 'human'$"):
        FlappyGymnasiumEnv(render_mode="human")


def test_flappy_rgb_array_render_returns_a_new_frame_of_env_0():
    env = Flappy(num_envs=3, seed=4, render_mode="rgb_array")
    env.step(np.array([1, 0, 0]))
    a, b = env.render(), env.render()
    assert a.shape == (512, 288, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    assert a is not b and np.array_equal(a, b)
    a[:] = 0
    np.testing.assert_array_equal(env.render(), b)
    np.testing.assert_array_equal(b, frame_of(env.c_envs, 0))
    assert not np.array_equal(b, frame_of(env.c_envs, 1))
    assert Flappy.metadata["render_modes"] == ["human", "rgb_array"] and Flappy.metadata["render_fps"] == 30
    assert Flappy().render() is None
    env.close()
    with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
        env.render()


@pytest.mark.parametrize("kwargs,message", [
    (dict(render_mode="rgb"), "render_mode must be None, 'human' or 'rgb_array', got 'rgb'"),
    (dict(render_scale=0), r"render_scale must be a number in \[0.25, 8\], got 0"),
    (dict(render_scale="2"), r"render_scale must be a number in \[0.25, 8\], got '2'"),
    (dict(render_scale=float("nan")), r"render_scale must be a number in \[0.25, 8\], got nan"),
    (dict(render_fps=-1), r"render_fps must be an int >= 0 \(0: as fast as possible\), got -1"),
    (dict(render_fps=29.5), r"render_fps must be an int >= 0 \(0: as fast as possible\), got 29.5"),
])
def test_flappy_bad_render_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        Flappy(**kwargs)


def test_render_options_are_not_game_parameters():
    env = Flappy(render_mode="human", render_scale=2, render_fps=60)
    assert "render_scale" not in env.params and "render_fps" not in env.params
    assert (env.render_scale, env.render_fps) == (2.0, 60)


def test_human_render_without_a_display_raises_one_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    env = Flappy(render_mode="human")
    with pytest.raises(NoDisplayError) as error:
        env.render()
    assert str(error.value) == ('no display to open a window on (DISPLAY is not set): use render_mode="rgb_array" '
                                "for frames without a window, or run under `xvfb-run -a`")
    assert env.window is None and not env.window_closed
    env.close()


# -- the binding's drawing functions: exact one-line errors --------------------------------------

@pytest.fixture
def handle():
    return Flappy(num_envs=2).c_envs


@pytest.mark.parametrize("frame,error,message", [
    ([[0]], TypeError, "frame must be a numpy array, got list"),
    (np.zeros((8, 8, 3), np.float32), TypeError, "frame must have dtype uint8, got float32"),
    (np.zeros((8, 8, 3), np.int8), TypeError, "frame must have dtype uint8, got int8"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, r"frame must have shape \(height, width, 3\) or \(height, width\), "
                                                r"got \(8, 8, 4\)"),
    (np.zeros(8, np.uint8), ValueError, r"frame must have shape \(height, width, 3\) or \(height, width\), got \(8,\)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"frame height and width must be in \[1, 8192\], got shape \(0, 8, 3\)"),
    (np.zeros((8193, 1), np.uint8), ValueError, r"frame height and width must be in \[1, 8192\], got shape \(8193, 1\)"),
    (np.zeros((8, 16, 3), np.uint8)[:, ::2], ValueError, "frame must be C-contiguous, aligned and writeable"),
    (np.zeros((8, 8, 3), np.uint8).T.copy().T, ValueError, "frame must be C-contiguous, aligned and writeable"),
])
def test_render_bad_frames(handle, frame, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        binding.render(handle, 0, frame)
    state = binding.env_get(handle, 0)
    with pytest.raises(error, match=f"^{message}$"):
        binding.render_state(state, frame)


def test_render_read_only_frame_index_and_handle(handle):
    frame = np.zeros((8, 8, 3), np.uint8)
    frame.flags.writeable = False
    with pytest.raises(ValueError, match="^frame must be C-contiguous, aligned and writeable$"):
        binding.render(handle, 0, frame)
    ok = np.zeros((8, 8, 3), np.uint8)
    for i in (-1, 2):
        with pytest.raises(IndexError, match=rf"^env index {i} out of range \[0, 2\)$"):
            binding.render(handle, i, ok)
    with pytest.raises(TypeError, match="^expected a handle from vec_init, got int$"):
        binding.render(3, 0, ok)
    binding.vec_close(handle)
    with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
        binding.render(handle, 0, ok)


def with_pipe(state, j, **changes):
    pipes = [dict(p) for p in state["pipes"]]
    pipes[j].update(changes)
    return {**state, "pipes": pipes}


@pytest.mark.parametrize("make_state,error,message", [
    (lambda s: [s], TypeError, "state must be a dict, got list"),
    (lambda s: {k: v for k, v in s.items() if k != "bird_y"}, ValueError, "state has no 'bird_y'"),
    (lambda s: {**s, "bird_y": "10"}, TypeError, r"state\['bird_y'\] must be a number, got str"),
    (lambda s: {**s, "bird_y": float("inf")}, ValueError, r"state\['bird_y'\] must be finite, got inf"),
    (lambda s: {**s, "score": -1}, ValueError, r"state\['score'\] must be in \[0, 2147483647\), got -1"),
    (lambda s: {**s, "score": 1.0}, TypeError, r"state\['score'\] must be an int, got float"),
    (lambda s: {**s, "tick": 2**40}, ValueError, r"state\['tick'\] must be in \[0, 2147483647\), got 1099511627776"),
    (lambda s: {**s, "pipes": None}, TypeError, r"state\['pipes'\] must be a list, got NoneType"),
    (lambda s: {**s, "pipes": s["pipes"][:3]}, ValueError, r"state\['pipes'\] must hold 4 pipes, got 3"),
    (lambda s: {**s, "pipes": s["pipes"][:3] + [1]}, TypeError, r"state\['pipes'\]\[3\] must be a dict, got int"),
    (lambda s: with_pipe(s, 2, x=float("nan")), ValueError, r"state\['pipes'\]\[2\]\['x'\] must be finite, got nan"),
    (lambda s: with_pipe(s, 1, gap_top=None), TypeError,
     r"state\['pipes'\]\[1\]\['gap_top'\] must be a number, got NoneType"),
    (lambda s: {**s, "pipes": [{"x": 1.0, "gap_top": 2.0}] * 4}, ValueError, r"state\['pipes'\]\[0\] has no 'gap_bottom'"),
])
def test_render_state_and_scene_bad_states(handle, make_state, error, message):
    bad = make_state(binding.env_get(handle, 0))
    with pytest.raises(error, match=f"^{message}$"):
        binding.render_state(bad, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(error, match=f"^{message}$"):
        binding.scene(bad)


def test_render_state_checks_params_like_the_env(handle):
    state = binding.env_get(handle, 0)
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="^unknown parameter 'speed'; valid parameters: gap, "):
        binding.render_state(state, frame, speed=3)
    with pytest.raises(ValueError, match=r"^pipe_speed must be in \[0.5, 40\], got 0$"):
        binding.scene(state, pipe_speed=0)


def test_render_state_draws_what_render_draws_and_accepts_tuples(handle):
    binding.vec_step(handle, np.array([1, 0]))
    state = binding.env_get(handle, 1)
    state["pipes"] = tuple(state["pipes"])
    frame = np.zeros((H, W, 3), np.uint8)
    binding.render_state(state, frame, **DEFAULTS)
    np.testing.assert_array_equal(frame, frame_of(handle, 1))


# -- GIFs ------------------------------------------------------------------------------------------

def test_save_gif_writes_an_animated_gif_of_every_frame(tmp_path):
    env = Flappy(seed=2, render_mode="rgb_array")
    frames = []
    for _ in range(12):
        env.step(scripted_actions(env.observations))
        frames.append(env.render())
    path = tmp_path / "eval.gif"
    save_gif(frames, path, fps=30)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames == 12
        assert gif.info["loop"] == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[k])
    assert durations == gif_durations(12, 30) and sum(durations) == 400


def test_gif_durations_keep_time():
    assert gif_durations(6, 30) == [30, 40, 30, 30, 40, 30]
    assert gif_durations(4, 50) == [20] * 4
    assert sum(gif_durations(3000, 30)) == 100_000


def test_save_gif_merges_identical_frames_but_keeps_time(tmp_path):
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    save_gif([a, a, b], tmp_path / "x.gif", fps=20)
    with Image.open(tmp_path / "x.gif") as gif:
        assert gif.n_frames == 2
        assert gif.info["duration"] == 100


@pytest.mark.parametrize("frames,fps,message", [
    ([], 30, "frames must hold at least one frame"),
    ([np.zeros((4, 4, 3), np.float32)], 30, r"frames[0] must be a (height, width, 3) uint8 array, got ndarray float32 (4, 4, 3)"),
    ([np.zeros((4, 4), np.uint8)], 30, r"frames[0] must be a (height, width, 3) uint8 array, got ndarray uint8 (4, 4)"),
    ([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], 30, "frames[1] has shape (5, 4, 3), frames[0] has (4, 4, 3)"),
    ([np.zeros((4, 4, 3), np.uint8)], 0, "fps must be a number in (0, 50], got 0"),
    ([np.zeros((4, 4, 3), np.uint8)], 60, "fps must be a number in (0, 50], got 60"),
])
def test_save_gif_bad_arguments(tmp_path, frames, fps, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        save_gif(frames, tmp_path / "bad.gif", fps)
    assert not (tmp_path / "bad.gif").exists()
