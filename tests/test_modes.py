"""Observation modes (features, LIDAR, pixels), per-episode randomization and difficulty presets."""

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from flappy_rl import REFERENCE_ID, Flappy, binding
from conftest import make_buffers, scripted_action

FEATURES, LIDAR, PIXELS = dict(), dict(obs_mode="lidar"), dict(obs_mode="pixels")


def state(env, i=0):
    return binding.env_get(env.c_envs, i)


def scripted(env):
    """The scripted player, from each env's state (any observation mode)."""
    return np.array([scripted_action(state(env, i)) for i in range(env.num_agents)], np.int32)


@pytest.mark.parametrize("params,shape,dtype,low,high", [
    (FEATURES, (8,), np.float32, -1, 1),
    (LIDAR, (181,), np.float32, 0, 1),
    (dict(obs_mode="lidar", lidar_rays=3), (4,), np.float32, 0, 1),
    (PIXELS, (2, 64, 36), np.uint8, 0, 255),
    (dict(obs_mode="pixels", pixels_stack=4, pixels_width=20, pixels_height=30), (4, 30, 20), np.uint8, 0, 255),
])
def test_observation_space_follows_the_mode(params, shape, dtype, low, high):
    env = Flappy(num_envs=3, **params)
    space = env.single_observation_space
    assert space.shape == shape and space.dtype == dtype and space.high.max() == high
    assert space.low.min() == (-1 if params.get("obs_mode") == "lidar" else low)  # lidar's last value is the speed
    assert env.observations.shape == (3, *shape) and env.observations.dtype == dtype
    for _ in range(300):
        obs, *_ = env.step(scripted(env))
        assert space.contains(obs[0]) and space.contains(obs[2])
    if params.get("obs_mode") == "lidar":
        assert space.low[-1] == -1 and (space.low[:-1] == 0).all()


def march(s, angle_deg, reach, step=0.02):
    """Distance along a ray from the beak to the first ground or pipe point, by walking it in
    small steps: slow and independent of the analytic LIDAR."""
    ox, oy = binding.LIDAR_X, s["bird_y"] + binding.BIRD_HEIGHT / 2
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    t = 0.0
    while t < reach:
        x, y = ox + t * dx, oy + t * dy
        if y >= binding.GROUND_Y:
            return t
        for pipe in s["pipes"]:
            if pipe["x"] <= x <= pipe["x"] + binding.PIPE_WIDTH and not pipe["gap_top"] <= y <= pipe["gap_bottom"]:
                return t
        t += step
    return reach


@pytest.mark.parametrize("rays,reach", [(180, 196.0), (37, 256.0), (8, 60.0)])
def test_lidar_distances_match_a_ray_march(rays, reach):
    env = Flappy(obs_mode="lidar", lidar_rays=rays, lidar_range=reach, seed=4)
    rng = np.random.default_rng(1)
    checked = hits = 0
    for t in range(420):
        obs, _, term, trunc, _ = env.step(scripted(env))
        if term[0] or trunc[0] or t % 20:
            continue
        s = state(env)
        for k in rng.choice(rays, size=min(rays, 12), replace=False):
            angle = -90 + (k + 0.5) * 180 / rays
            expected = march(s, angle, reach)
            assert obs[0, k] * reach == pytest.approx(expected, abs=0.05), (t, k, angle)
            checked += 1
            hits += expected < reach
        assert obs[0, -1] == pytest.approx(np.clip(s["bird_vy"] / 10, -1, 1))
    assert checked > 100 and 0 < hits < checked  # both hits and clear rays were checked


def test_lidar_sees_the_ground_below_and_nothing_straight_up():
    env = Flappy(obs_mode="lidar", lidar_rays=180)
    obs = env.observations[0]
    bird_centre = binding.BIRD_START_Y + binding.BIRD_HEIGHT / 2
    down = binding.GROUND_Y - bird_centre  # 148.48 px below the beak, within 196
    assert obs[179] * 196 == pytest.approx(down / math.cos(math.radians(0.5)), abs=1e-3)  # the ray at 89.5 degrees
    assert obs[0] == 1.0  # straight up: sky, pipes are far ahead at reset
    assert (obs[:90] == 1.0).all()  # nothing above the horizon within reach at reset
    assert obs[180] == pytest.approx(-0.9)  # the speed: -9 / 10


def test_pixel_frames_are_the_rasterizer_from_above_the_screen_and_stack():
    env = Flappy(obs_mode="pixels", pixels_stack=3, seed=2)
    first = env.observations[0].copy()
    assert (first == first[-1]).all()  # a new episode: every frame of the stack is its first
    previous = first
    for t in range(60):
        obs, _, term, trunc, _ = env.step(scripted(env))
        expected = np.empty((64, 36), np.uint8)
        binding.render_state({**state(env), "show_score": False, "view_top": binding.PIXELS_TOP}, expected)
        np.testing.assert_array_equal(obs[0, -1], expected)
        if not (term[0] or trunc[0]):
            np.testing.assert_array_equal(obs[0, :-1], previous[1:])  # the stack slides by one frame
        previous = obs[0].copy()


def test_pixels_show_a_bird_above_the_screen():
    """Flapping without pause takes the bird above the screen (y < 0): the observation, which
    starts at PIXELS_TOP = -96, still shows it, in the bird's gray, where it is."""
    env = Flappy(obs_mode="pixels", pixels_width=144, pixels_height=304, pixels_stack=1)  # 2 world px a pixel
    for _ in range(40):
        obs, *_ = env.step(np.ones(1, np.int32))
    s = state(env)
    assert s["bird_y"] < -binding.BIRD_HEIGHT  # wholly above the screen
    row = int((s["bird_y"] + binding.BIRD_HEIGHT / 2 - binding.PIXELS_TOP) / 2)
    column = int((binding.BIRD_X + binding.BIRD_WIDTH / 4) / 2)
    assert obs[0, 0, row, column] == binding.palette_gray()["bird"]
    assert binding.palette_gray()["bird"] not in obs[0, 0, :(96 - 93) // 2]  # it never rises above y = -93


SPREAD = dict(gap_spread=40.0, pipe_speed_spread=2.0, pipe_spacing_spread=40.0, gravity_spread=0.5)  # none clips


def test_randomized_episodes_draw_each_value_within_its_spread():
    env = Flappy(num_envs=256, max_steps=5, seed=9, **SPREAD)  # a new episode every 5 frames
    drawn = {name: [] for name in ("gap", "pipe_speed", "pipe_spacing", "gravity")}
    for _ in range(40):
        env.step(np.zeros(256, np.int32))
        for i in range(0, 256, 7):
            s = state(env, i)
            for name in drawn:
                drawn[name].append(s[name])
    for name, values in drawn.items():
        values, base, spread = np.array(values), env.params[name], env.params[f"{name}_spread"]
        assert (np.abs(values - base) <= spread).all(), name
        # uniform over base +- spread: spread out to both ends, centred on base
        assert values.min() < base - 0.9 * spread and values.max() > base + 0.9 * spread, name
        assert abs(values.mean() - base) < 0.1 * spread, name


def test_randomized_values_stay_within_the_parameter_ranges():
    env = Flappy(num_envs=64, max_steps=2, gap=230, gap_spread=50, gravity=0.1, gravity_spread=3)
    for _ in range(20):
        env.step(np.zeros(64, np.int32))
        for i in range(64):
            s = state(env, i)
            assert 180 <= s["gap"] <= 240 and 0.1 <= s["gravity"] <= 3.1


@pytest.mark.parametrize("name,value,spread,inside", [
    ("gravity", 1.0, 10.0, (0.1, 10.0)),  # the review's case: 44 % of episodes had gravity 0
    ("gap", 230.0, 50.0, (180.0, 240.0)),
    ("pipe_speed", 0.5, 39.5, (0.5, 40.0)),
    ("pipe_spacing", 1000.0, 900.0, (100.0, 1000.0)),
])
def test_spread_draws_are_uniform_over_the_range_not_piled_on_a_bound(name, value, spread, inside):
    """A spread reaching past a bound draws over the part inside the range: no value on the
    bound, and the draws spread evenly (mean and quartiles of a uniform law) over that part."""
    env = Flappy(num_envs=4096, max_steps=1, seed=5, **{name: value, f"{name}_spread": spread})
    values = []
    for _ in range(3):
        env.step(np.zeros(4096, np.int32))  # every episode ends after one frame: new draws
        values += [state(env, i)[name] for i in range(0, 4096, 4)]
    values = np.array(values)
    low, high = inside
    assert low <= values.min() and values.max() <= high
    assert not np.isin(values, [low, high]).any()
    width = high - low
    assert abs(values.mean() - (low + high) / 2) < 0.03 * width
    quartiles = np.quantile(values, [0.25, 0.75])
    np.testing.assert_allclose(quartiles, [low + width / 4, low + 3 * width / 4], atol=0.03 * width)


def test_the_rules_use_the_episodes_values():
    """An episode's gap and speed, not the parameter's, place and move the pipes."""
    env = Flappy(gap_spread=50, pipe_speed_spread=3, seed=1)
    s = state(env)
    assert s["gap"] != 100 and s["pipe_speed"] != 4
    assert all(p["gap_bottom"] - p["gap_top"] == pytest.approx(s["gap"]) for p in s["pipes"])
    env.step(np.zeros(1, np.int32))
    assert state(env)["pipes"][0]["x"] == pytest.approx(binding.FIRST_PIPE_X - s["pipe_speed"])


def test_logs_report_the_means_of_the_drawn_values():
    env = Flappy(num_envs=512, max_steps=3, log_interval=30, seed=3, **SPREAD)
    logs = [info for _ in range(30) for info in env.step(np.zeros(512, np.int32))[4]]
    (log,) = logs
    assert log["n"] == 512 * 10
    for name in ("gap", "pipe_speed", "pipe_spacing", "gravity"):
        assert log[name] == pytest.approx(env.params[name], rel=0.02), name
    plain = Flappy(num_envs=4, max_steps=3, log_interval=3)
    (log,) = [info for _ in range(3) for info in plain.step(np.zeros(4, np.int32))[4]]
    assert (log["gap"], log["pipe_speed"], log["pipe_spacing"], log["gravity"]) == (100, 4, 144, 1)


def test_randomization_is_deterministic_and_off_by_default():
    a, b = Flappy(num_envs=8, seed=5, **SPREAD), Flappy(num_envs=8, seed=5, **SPREAD)
    for _ in range(200):
        actions = scripted(a)
        oa, ob = a.step(actions)[0], b.step(actions)[0]
        np.testing.assert_array_equal(oa, ob)
    plain = Flappy(num_envs=8, seed=5)
    assert all(state(plain, i)["gap"] == 100 for i in range(8))


@pytest.mark.parametrize("difficulty,expected", [
    ("easy", dict(gap=130, pipe_speed=3, pipe_spacing=180, gap_spread=0)),
    ("normal", dict(gap=100, pipe_speed=4, pipe_spacing=144, gap_spread=0)),
    ("hard", dict(gap=85, pipe_speed=5, pipe_spacing=130, gap_spread=15, pipe_speed_spread=1, gravity_spread=0.15)),
])
def test_difficulty_presets(difficulty, expected):
    params = binding.check_params(difficulty=difficulty)
    assert {k: params[k] for k in expected} == expected
    assert Flappy(difficulty=difficulty).params == params


def test_difficulty_keeps_parameters_given_explicitly():
    params = binding.check_params(difficulty="hard", gap=120, pipe_speed_spread=0.5)
    assert (params["gap"], params["pipe_speed_spread"], params["pipe_speed"]) == (120, 0.5, 5)
    assert binding.check_params(**params) == params  # resolving again changes nothing


def test_observation_buffers_are_checked_against_the_mode(buffers):
    obs, *rest = make_buffers(4)
    with pytest.raises(TypeError, match="^observations must have dtype uint8, got float32$"):
        binding.vec_init(obs, *rest, 4, 0, obs_mode="pixels")
    with pytest.raises(ValueError, match=r"^observations must have shape \(4, 181\), got \(4, 8\)$"):
        binding.vec_init(obs, *rest, 4, 0, obs_mode="lidar")
    pixels = np.zeros((4, 2, 64, 36), np.uint8)
    with pytest.raises(ValueError, match=r"^observations must have shape \(4, 3, 64, 36\), got \(4, 2, 64, 36\)$"):
        binding.vec_init(pixels, *rest, 4, 0, obs_mode="pixels", pixels_stack=3)
    binding.vec_close(binding.vec_init(pixels, *rest, 4, 0, obs_mode="pixels"))


def test_the_twin_declares_the_same_spaces():
    from flappy_rl import FlappyGymnasiumEnv

    for params in (FEATURES, LIDAR, PIXELS, dict(obs_mode="lidar", lidar_rays=9)):
        assert FlappyGymnasiumEnv(**params).observation_space == Flappy(**params).single_observation_space
    for mode in ("lidar", "pixels"):
        check_env(gymnasium.make(REFERENCE_ID, obs_mode=mode).unwrapped)
