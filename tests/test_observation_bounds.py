"""Every observation any in-range parameter set produces lies in the declared observation space,
the bird shows in every pixel observation, and every in-range game can be played: in the C env
and in the pure-Python twin alike."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flappy_rl import FlappyEnv, FlappyGymnasiumEnv, FlappyVectorEnv, binding
from conftest import scripted_action

# The bird's colours in grayscale: their luma, as csrc/render.h computes it (no other part shares one).
BIRD_GRAYS = [(r * 77 + g * 150 + b * 29 + 128) >> 8
              for r, g, b in (binding.palette()[name] for name in ("bird", "bird_eye", "bird_beak"))]
CHOICES = {"obs_mode": ["features", "lidar", "pixels"], "difficulty": ["easy", "normal", "hard"]}


def bird_shows(frame):
    """Whether a grayscale frame has a pixel of the bird's colours (no other part has them)."""
    return bool(np.isin(frame, BIRD_GRAYS).any())


def test_lidar_reads_no_negative_distance_after_a_crash_into_the_ground():
    """The review's case: falling at 30 px a frame, the beak ends below the ground line on the
    crash frame, and the rays pointing down read negative distances ([1 1 1 1 -0.197 ...])."""
    params = dict(obs_mode="lidar", lidar_rays=8, max_fall_speed=30, gravity=3)
    for env in (FlappyEnv(**params), FlappyGymnasiumEnv(**params)):
        obs, _ = env.reset(seed=0)
        terminated = False
        while not terminated:
            obs, _, terminated, _, _ = env.step(0)
            assert env.observation_space.contains(obs), obs
        np.testing.assert_array_equal(obs[4:8], 0.0)  # the rays pointing down: the beak is in the ground


def test_a_strong_flap_keeps_the_bird_in_the_pixel_view():
    """The review's case: holding flap at flap_speed 30 took the bird above the view for 48 of
    60 steps. Now its top stops at the view's top, PIXELS_TOP, and every frame shows it."""
    params = dict(obs_mode="pixels", flap_speed=30)
    env, twin = FlappyEnv(**params), FlappyGymnasiumEnv(**params)
    obs, _ = env.reset(seed=0)
    twin.reset(seed=0)
    tops = []
    for _ in range(60):
        obs, *_ = env.step(1)
        twin_obs, *_ = twin.step(1)
        np.testing.assert_array_equal(obs, twin_obs)
        assert bird_shows(obs[-1])
        tops.append(twin.state()["bird_y"])
    assert min(tops) == binding.BIRD_TOP_MIN == binding.PIXELS_TOP


@pytest.mark.parametrize("params,message", [
    (dict(gravity=0), "gravity must be in [0.1, 10], got 0"),
    (dict(obs_mode="pixels", pixels_width=8), "pixels_width must be in [9, 288], got 8"),
    (dict(obs_mode="pixels", pixels_height=25), "pixels_height must be in [26, 512], got 25"),
])
def test_parameters_that_make_unplayable_or_invisible_games_are_refused(params, message):
    with pytest.raises(ValueError) as error:
        FlappyEnv(**params)
    assert str(error.value) == message


# -- property test: random in-range parameter sets ---------------------------------------------

def in_range(name):
    default, low, high = binding.params()[name]
    if name in CHOICES:
        return st.sampled_from(CHOICES[name])
    if isinstance(default, int):
        if name == "max_steps":  # long enough to play, short enough to see truncations
            return st.integers(1, 3000)
        return st.integers(int(low), int(high))
    return st.floats(low, high)


@st.composite
def parameter_sets(draw):
    """Every parameter drawn over its whole range (edges included), spreads and difficulty too."""
    return {name: draw(in_range(name)) for name in binding.params()}


def check_observation(space, obs, params):
    assert space.contains(obs), (obs.min(), obs.max(), params)
    if params["obs_mode"] == "pixels":
        assert bird_shows(obs[-1]), params


def play_in_lockstep(params, seed, policy, steps):
    """The C env and the twin side by side: equal observations, each in its space."""
    env, twin = FlappyEnv(**params), FlappyGymnasiumEnv(**params)
    obs, _ = env.reset(seed=seed)
    twin_obs, _ = twin.reset(seed=seed)
    rng = np.random.default_rng(seed)
    flap_rate = rng.random()
    for _ in range(steps):
        np.testing.assert_array_equal(obs, twin_obs)
        check_observation(env.observation_space, obs, params)
        check_observation(twin.observation_space, twin_obs, params)
        action = scripted_action(twin.state()) if policy == "scripted" else int(rng.random() < flap_rate)
        obs, _, terminated, truncated, _ = env.step(action)
        twin_obs, _, twin_terminated, twin_truncated, _ = twin.step(action)
        assert (terminated, truncated) == (twin_terminated, twin_truncated)
        if terminated or truncated:  # the final observation too
            np.testing.assert_array_equal(obs, twin_obs)
            check_observation(env.observation_space, obs, params)
            check_observation(twin.observation_space, twin_obs, params)
            obs, _ = env.reset()
            twin_obs, _ = twin.reset()
    env.close()


def play_long_in_c(params, seed, steps):
    """Many C envs, each flapping at its own rate (from never to nearly always), every
    observation checked, final ones included (next-step autoreset shows them)."""
    num_envs = 8 if params["obs_mode"] == "pixels" else 64
    envs = FlappyVectorEnv(num_envs=num_envs, **params)
    obs, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.0, 0.95, num_envs)
    for _ in range(steps):
        assert envs.observation_space.contains(obs), params
        if params["obs_mode"] == "pixels":
            assert np.isin(obs[:, -1], BIRD_GRAYS).any(axis=(1, 2)).all(), params
        obs, *_ = envs.step((rng.random(num_envs) < rates).astype(np.int32))
    envs.close()


def check_playable(params):
    """A flap from the start climbs, and a bird left alone falls to the ground: it crashes
    within 2,000 frames (gravity >= 0.1 stops a 30 px/frame climb in 300 frames, and a fall of
    476 px at 1 px/frame or more takes at most 476), unless the episode ends first."""
    env = FlappyEnv(**{**params, "obs_mode": "features", "max_steps": 10**6})
    obs, _ = env.reset(seed=1)
    env.step(1)
    assert env.core.observations[0][0] < obs[0]  # the bird's height: it rose
    env.reset(seed=1)
    frames = 0
    while True:
        _, _, terminated, truncated, _ = env.step(0)
        frames += env.params["frame_skip"]
        if terminated:
            break
        assert not truncated and frames < 2000 + env.params["frame_skip"], params
    env.close()


@settings(max_examples=30)
@given(params=parameter_sets(), seed=st.integers(0, 2**32))
def test_every_observation_of_any_in_range_game_is_in_its_space(params, seed):
    play_in_lockstep(params, seed, "random", 150)
    play_in_lockstep(params, seed, "scripted", 150)
    play_long_in_c(params, seed, 400)
    check_playable(params)
