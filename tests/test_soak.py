"""Soak: long runs in every observation mode, with random and with scripted good play.

No NaN or inf in any buffer, observations inside their space, terminal and truncation never
together, resident memory flat, and the logs' episode counts, pipes and lengths equal to what
the buffers showed step by step. Every mode's game also runs in lockstep with a features env of
the same seed: the observation mode must not change the game.

CI runs a short soak (--soak-steps, default 1e7 env steps per test); the long one is
`uv run pytest -m soak --soak-steps 1e8 -s`, which prints each run's figures."""

import os
import time

import numpy as np
import pytest

from flappy_rl import Flappy, binding
from conftest import scripted_actions

NUM_ENVS = 4096
MIN_ITERATIONS = 600  # steps of all envs: 2.5 M env steps
RSS_GROWTH_LIMIT = 16 << 20  # bytes; numpy temporaries come and go, a leak of one byte per step would not


def under_address_sanitizer():
    """ASan holds freed blocks in quarantine (up to 256 MiB), so resident memory is not a leak
    measure under it; tests/test_sanitizers.py runs these tests there for the memory errors."""
    with open("/proc/self/maps") as maps:
        return any("libasan" in line for line in maps)


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def add_log(logged, log):
    """Turn a log's means back into sums and add them up."""
    assert all(np.isfinite(value) for value in log.values())
    logged["n"] += log["n"]
    logged["pipes"] += log["score"] * log["n"]
    logged["lengths"] += log["episode_length"] * log["n"]


@pytest.mark.soak
@pytest.mark.parametrize("player", ["random", "scripted"])
@pytest.mark.parametrize("mode", ["features", "lidar", "pixels"])
def test_soak(mode, player, soak_steps):
    iterations = max(MIN_ITERATIONS, int(soak_steps) // NUM_ENVS)
    # Episodes of at most a quarter of the run, so that good play also ends in truncations; and
    # of at least 150 frames, where random play has crashed.
    game = dict(seed=11, max_steps=max(150, min(10_000, iterations // 4)))
    env = Flappy(num_envs=NUM_ENVS, obs_mode=mode, log_interval=64, **game)
    guide = env if mode == "features" else Flappy(num_envs=NUM_ENVS, log_interval=1 << 30, **game)
    space = env.single_observation_space
    rng = np.random.default_rng(0)
    random_actions = rng.integers(0, 2, (97, NUM_ENVS), dtype=np.int32)  # a prime count: no lockstep with logs

    warm_at = max(1, iterations // 10)
    episode_length = np.zeros(NUM_ENVS, np.int64)  # of each env's current episode, as the buffers show it
    episode_pipes = np.zeros(NUM_ENVS, np.int64)
    seen = dict(episodes=0, pipes=0, all_pipes=0, lengths=0, terminals=0, truncations=0)
    logged = dict(n=0.0, pipes=0.0, lengths=0.0)
    start = time.perf_counter()
    for t in range(iterations):
        if t == warm_at:
            rss_warm = resident_bytes()
        actions = random_actions[t % len(random_actions)] if player == "random" else scripted_actions(guide.observations)
        _, rewards, terminals, truncations, info = env.step(actions)
        if guide is not env:
            guide.step(actions)
            np.testing.assert_array_equal(rewards, guide.rewards)
            np.testing.assert_array_equal(terminals, guide.terminals)
            np.testing.assert_array_equal(truncations, guide.truncations)
        if space.dtype == np.float32:
            obs = env.observations
            assert np.isfinite(obs).all() and (obs >= space.low).all() and (obs <= space.high).all(), t
        assert np.isfinite(rewards).all() and not (terminals & truncations).any()

        episode_length += 1
        pipes = (rewards + terminals).astype(np.int64)  # default rewards: +1 a pipe, -1 a crash, 0 else
        episode_pipes += pipes
        seen["all_pipes"] += int(pipes.sum())
        done = terminals | truncations
        seen["pipes"] += int(episode_pipes[done].sum())
        seen["terminals"] += int(terminals.sum())
        seen["truncations"] += int(truncations.sum())
        seen["episodes"] += int(done.sum())
        seen["lengths"] += int(episode_length[done].sum())
        episode_length[done] = 0
        episode_pipes[done] = 0
        for log in info:
            add_log(logged, log)
    elapsed = time.perf_counter() - start
    rss_end = resident_bytes()
    add_log(logged, binding.vec_log(env.c_envs))  # the episodes since the last report

    steps = iterations * NUM_ENVS
    print(f"\nsoak {mode}/{player}: {steps:.3g} steps in {elapsed:.1f} s ({steps / elapsed / 1e6:.2f} M/s with checks), "
          f"{seen['episodes']} episodes ({seen['terminals']} crashed, {seen['truncations']} truncated), "
          f"{seen['pipes']} pipes in them, resident memory {rss_warm / 2**20:.1f} -> {rss_end / 2**20:.1f} MiB")
    assert seen["episodes"] == seen["terminals"] + seen["truncations"] and seen["terminals"] > 0
    if player == "scripted":
        assert seen["truncations"] > 0
    assert logged["n"] == seen["episodes"]
    assert logged["pipes"] == pytest.approx(seen["pipes"], rel=1e-9, abs=1e-6)
    assert logged["lengths"] == pytest.approx(seen["lengths"], rel=1e-9)
    if player == "scripted":
        assert seen["all_pipes"] > 10 * seen["terminals"]  # good play; random play passes 0.03 pipes a crash
    if not under_address_sanitizer():
        assert rss_end - rss_warm < RSS_GROWTH_LIMIT, (rss_warm, rss_end)
    env.close()
    guide.close()
