"""Determinism across layouts and vector backends, and the Gymnasium/PufferLib integrations."""

import re
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import pufferlib
import pufferlib.vector
from gymnasium.utils.env_checker import check_env

from flappy_rl import REFERENCE_ID, Flappy, FlappyGymnasiumEnv, make_gymnasium_env


def rollout(vecenv, steps, seed, num_agents):
    """Observations, rewards, terminals, truncations of every step, with fixed random actions."""
    rng = np.random.default_rng(seed)
    obs, _ = vecenv.reset(seed=seed)
    out = [obs.copy()]
    for _ in range(steps):
        actions = (rng.random(num_agents) < 0.08).astype(np.int32)
        obs, rew, term, trunc, _ = vecenv.step(actions)
        out.append(np.concatenate([obs.ravel(), rew, term, trunc]).copy())
    return out


def test_an_envs_game_does_not_depend_on_how_many_run_beside_it():
    runs = []
    for num_envs in (1, 5, 64, 1000):
        env = Flappy(num_envs=num_envs, seed=11)
        rng = np.random.default_rng(0)
        history = []
        for _ in range(500):
            actions = np.zeros(num_envs, np.int32)
            actions[:1] = rng.random() < 0.08
            obs, rew, term, _, _ = env.step(actions)
            history.append((obs[0].copy(), rew[0], term[0]))
        runs.append(history)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]


@pytest.mark.parametrize("backend,workers", [("Multiprocessing", 1), ("Multiprocessing", 2)])
def test_backends_and_worker_counts_give_identical_rollouts(backend, workers):
    kwargs = dict(env_kwargs=dict(num_envs=16), num_envs=2)
    serial = pufferlib.vector.make(Flappy, backend="Serial", **kwargs)
    parallel = pufferlib.vector.make(Flappy, backend=backend, num_workers=workers, overwork=True, **kwargs)
    try:
        a = rollout(serial, 1500, 7, 32)
        b = rollout(parallel, 1500, 7, 32)
    finally:
        serial.close()
        parallel.close()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_same_seed_same_rollout_different_seed_different_rollout():
    a = rollout(Flappy(num_envs=8), 300, 1, 8)
    b = rollout(Flappy(num_envs=8), 300, 1, 8)
    c = rollout(Flappy(num_envs=8), 300, 2, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_multiprocessing_reports_logs():
    vecenv = pufferlib.vector.make(Flappy, backend="Multiprocessing", num_envs=2, num_workers=2, overwork=True,
                                   env_kwargs=dict(num_envs=64, log_interval=32))
    try:
        vecenv.reset(seed=0)
        infos = []
        for _ in range(64):
            _, _, _, _, info = vecenv.step(np.zeros(128, np.int32))
            infos += info
    finally:
        vecenv.close()
    # birds that never flap crash on frames 31 and 62: each worker reports its 64 at steps 32 and 64
    assert [i["n"] for i in infos] == [64.0] * 4
    assert all(i["episode_length"] == 31 and i["episode_return"] == -1 for i in infos)


def test_gymnasium_twin_passes_the_env_checker():
    check_env(gymnasium.make(REFERENCE_ID).unwrapped)
    check_env(gymnasium.make(REFERENCE_ID, gap=150).unwrapped)


def test_reference_id_makes_the_twin():
    env = gymnasium.make(REFERENCE_ID, pipe_speed=5)
    assert isinstance(env.unwrapped, FlappyGymnasiumEnv) and env.unwrapped.params["pipe_speed"] == 5
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, Flappy(seed=3, pipe_speed=5).observations[0])


def test_make_gymnasium_env_vectorizes_with_pufferlib():
    vecenv = pufferlib.vector.make(make_gymnasium_env, backend="Serial", num_envs=3, env_kwargs=dict(gap=120))
    obs, _ = vecenv.reset(seed=5)
    assert obs.shape == (3, 8) and obs.dtype == np.float32
    # Serial seeds env i with 5 + i: each is a twin reset with that seed
    for i in range(3):
        np.testing.assert_array_equal(obs[i], FlappyGymnasiumEnv(gap=120).reset(seed=5 + i)[0])
    for _ in range(200):
        obs, rew, term, trunc, _ = vecenv.step(np.zeros(3, np.int32))
    assert np.isin(rew, [0, -1]).all()
    vecenv.close()


def test_flappy_is_a_native_pufferenv():
    env = Flappy(num_envs=5)
    assert isinstance(env, pufferlib.PufferEnv)
    assert env.single_observation_space == gymnasium.spaces.Box(-1, 1, (8,), np.float32)
    assert env.single_action_space == gymnasium.spaces.Discrete(2)
    assert env.num_agents == 5 and env.observations.shape == (5, 8)


def test_demo_runs():
    out = subprocess.run([sys.executable, "-m", "flappy_rl", "--seconds", "0.5"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "steps/s" in out.stdout
    assert re.search(r"\n[1-9][\d,]* episodes of random play: mean score", out.stdout), out.stdout
