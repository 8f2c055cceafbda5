"""The C env and the pure-Python twin play the same game, bit for bit."""

import numpy as np
import pytest

from flappy_rl import Flappy, FlappyGymnasiumEnv, binding

from conftest import scripted_action

PARAM_SETS = [
    {},
    dict(gap=200, pipe_speed=7.5, pipe_spacing=100, gravity=0.7, flap_speed=7.25, max_fall_speed=12,
         reward_pipe=0.5, reward_crash=-3, reward_alive=0.01, max_steps=500),
    dict(gap=30, pipe_speed=40, pipe_spacing=1000, gravity=0.1, flap_speed=1, max_fall_speed=1, max_steps=7),
    # too strange for the scripted player to score: pipes crawl, the bird is violent
    dict(gap=137.3, pipe_speed=0.5, pipe_spacing=311.1, gravity=2.2, flap_speed=30, max_fall_speed=50,
         reward_alive=-0.001),
    dict(obs_mode="lidar"),
    dict(obs_mode="lidar", lidar_rays=31, lidar_range=256, pipe_spacing=100, gap_spread=30, gravity_spread=0.2),
    dict(obs_mode="pixels", pixels_stack=3, pixels_width=24, pixels_height=40, max_steps=700),
    dict(gap_spread=40, pipe_speed_spread=2, pipe_spacing_spread=80, gravity_spread=0.4, difficulty="hard"),
]
SCRIPTED_PLAYER_SCORES = [True, True, False, False, True, True, True, True]


@pytest.mark.parametrize("params,scores", list(zip(PARAM_SETS, SCRIPTED_PLAYER_SCORES)))
@pytest.mark.parametrize("seed", [0, 2**64 - 1])
def test_c_env_matches_the_python_twin(params, scores, seed):
    """10,000 steps of 3 C envs against 3 twins (env_index i), mostly good play with random
    flips so that episodes both last (scoring, pipe recycling) and end (crashes, resets)."""
    num_envs, steps = 3, 10_000
    env = Flappy(num_envs=num_envs, seed=seed, **params)
    twins = [FlappyGymnasiumEnv(env_index=i, **params) for i in range(num_envs)]
    twin_obs = np.stack([t.reset(seed=seed)[0] for t in twins])
    np.testing.assert_array_equal(env.observations, twin_obs)
    rng = np.random.default_rng(seed % 1000)
    episodes = scored = 0
    for step in range(steps):
        flip = rng.random(num_envs) < 0.03
        good = np.array([scripted_action(twin.state()) for twin in twins], np.int32)
        actions = np.where(flip, 1 - good, good)
        obs, rew, term, trunc, _ = env.step(actions.astype(np.int32))
        for i, twin in enumerate(twins):
            t_obs, t_rew, t_term, t_trunc, _ = twin.step(int(actions[i]))
            if t_term or t_trunc:
                t_obs, _ = twin.reset()
                episodes += 1
            assert (rew[i], term[i], trunc[i]) == (np.float32(t_rew), t_term, t_trunc), (step, i)
            assert np.array_equal(obs[i], t_obs), (step, i, obs[i], t_obs)
            scored += t_rew > 0
    assert episodes > 10
    if scores:
        assert scored > 50


def test_reset_without_seed_continues_the_generator_in_both():
    env = Flappy(num_envs=2, seed=9)
    twins = [FlappyGymnasiumEnv(env_index=i) for i in range(2)]
    for t in twins:
        t.reset(seed=9)
    for _ in range(3):
        obs, _ = env.reset(seed=None)
        for i, t in enumerate(twins):
            np.testing.assert_array_equal(obs[i], t.reset()[0])


def test_seeds_and_streams_give_different_games():
    firsts = set()
    for seed in range(4):
        env = Flappy(num_envs=4, seed=seed)
        firsts.update(tuple(row) for row in env.observations[:, 3:])
    assert len(firsts) == 16


def edge_cases():
    """Every numeric parameter at the smallest and the largest value it accepts, the others at
    their defaults, in the observation mode that uses it."""
    choices = binding.param_choices()
    for name, (_, low, high) in binding.params().items():
        if name in choices:
            continue
        mode = "lidar" if name.startswith("lidar") else "pixels" if name.startswith("pixels") else "features"
        for value in (low, high):
            yield pytest.param({"obs_mode": mode, name: value}, id=f"{name}={value}")


@pytest.mark.parametrize("params", list(edge_cases()))
def test_every_parameter_at_the_edges_of_its_range(params):
    """Edge values (smallest gap, largest speed, max_steps=1, 1024 rays, one frame...) play the
    twin's game, with observations in their space and rewards finite, through crashes, scores
    and resets."""
    num_envs, steps = 2, 600 if params["obs_mode"] == "pixels" else 2000
    env = Flappy(num_envs=num_envs, seed=5, **params)
    space = env.single_observation_space
    twins = [FlappyGymnasiumEnv(env_index=i, **params) for i in range(num_envs)]
    for twin in twins:
        twin.reset(seed=5)
    rng = np.random.default_rng(5)
    episodes = 0
    for step in range(steps):
        good = np.array([scripted_action(twin.state()) for twin in twins], np.int32)
        actions = np.where(rng.random(num_envs) < 0.05, 1 - good, good).astype(np.int32)
        obs, rew, term, trunc, _ = env.step(actions)
        assert space.contains(obs[0]) and space.contains(obs[1]) and np.isfinite(rew).all(), step
        for i, twin in enumerate(twins):
            t_obs, t_rew, t_term, t_trunc, _ = twin.step(int(actions[i]))
            if t_term or t_trunc:
                t_obs, _ = twin.reset()
                episodes += 1
            assert (rew[i], term[i], trunc[i]) == (np.float32(t_rew), t_term, t_trunc), (step, i)
            assert np.array_equal(obs[i], t_obs), (step, i)
    assert episodes >= 1


FRAME_SKIP_MODES = [
    dict(),
    dict(obs_mode="lidar", lidar_rays=31),
    dict(obs_mode="pixels", pixels_stack=3, pixels_width=24, pixels_height=40),
]


@pytest.mark.parametrize("params", FRAME_SKIP_MODES, ids=["features", "lidar", "pixels"])
@pytest.mark.parametrize("frame_skip", [2, 3, 4])
def test_frame_skip_matches_the_python_twin(frame_skip, params):
    """C against the twin at frame_skip 2, 3 and 4: the scripted player's actions with one in ten
    replaced by a random one, so that birds both score and crash, and max_steps = 151 frames,
    which ends the episodes that last in the middle of a step (151 is no multiple of 2, 3, 4)."""
    num_envs, steps, seed = 3, 1500, 17
    params = dict(params, frame_skip=frame_skip, gap=200, max_steps=151)
    env = Flappy(num_envs=num_envs, seed=seed, **params)
    twins = [FlappyGymnasiumEnv(env_index=i, **params) for i in range(num_envs)]
    np.testing.assert_array_equal(env.observations, np.stack([t.reset(seed=seed)[0] for t in twins]))
    rng = np.random.default_rng(frame_skip)
    ends, scored = {"terminal": 0, "truncated": 0}, 0
    for step in range(steps):
        good = np.array([scripted_action(twin.state()) for twin in twins], np.int32)
        actions = np.where(rng.random(num_envs) < 0.1, rng.integers(0, 2, num_envs), good).astype(np.int32)
        obs, rew, term, trunc, _ = env.step(actions)
        for i, twin in enumerate(twins):
            t_obs, t_rew, t_term, t_trunc, _ = twin.step(int(actions[i]))
            if t_term or t_trunc:
                ends["terminal" if t_term else "truncated"] += 1
                t_obs, _ = twin.reset()
            assert (rew[i], term[i], trunc[i]) == (np.float32(t_rew), t_term, t_trunc), (step, i)
            assert np.array_equal(obs[i], t_obs), (step, i)
            scored += t_rew > 0
    assert ends["terminal"] > 10 and ends["truncated"] > 5 and scored > 10, (ends, scored)


@pytest.mark.parametrize("params", FRAME_SKIP_MODES, ids=["features", "lidar", "pixels"])
def test_frame_skip_one_is_the_default(params):
    """frame_skip=1 plays exactly the game of not passing it, in C and in the twin."""
    num_envs, seed = 2, 3
    plain, skip_one = Flappy(num_envs=num_envs, seed=seed, **params), Flappy(num_envs=num_envs, seed=seed,
                                                                            frame_skip=1, **params)
    twin, twin_one = FlappyGymnasiumEnv(**params), FlappyGymnasiumEnv(frame_skip=1, **params)
    np.testing.assert_array_equal(twin.reset(seed=seed)[0], twin_one.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    for step in range(600):
        actions = (rng.random(num_envs) < 0.1).astype(np.int32)
        for a, b in zip(plain.step(actions)[:4], skip_one.step(actions.copy())[:4]):
            assert np.array_equal(a, b), step
        out, out_one = twin.step(int(actions[0])), twin_one.step(int(actions[0]))
        assert np.array_equal(out[0], out_one[0]) and out[1:] == out_one[1:], step
        if out[2] or out[3]:
            np.testing.assert_array_equal(twin.reset()[0], twin_one.reset()[0])
