"""Steps per second, measured one way for every front end that reports them (`puffer bench`,
`puffer web --bench`, `python -m flappy_rl`, `python -m flappy_rl.env`, autotune's lines come
from PufferLib): the median of timed windows after a warm-up, stepping with cached actions."""

import contextlib
import os
import statistics
import time

import numpy as np

WINDOWS = 3
ACTION_ROWS = 64


def random_actions(num_envs, seed=0):
    """ACTION_ROWS rows of actions, one flap in ten, as separate arrays so indexing is free."""
    table = (np.random.default_rng(seed).random((ACTION_ROWS, num_envs)) < 0.1).astype(np.int32)
    return list(table)


def measure(step, agents_per_call, seconds, windows=WINDOWS):
    """Median steps per second of `step()` over `windows` windows of `seconds`, after a warm-up
    that also sizes the batches of calls between clock reads (about a millisecond each)."""
    batch, rates = 1, []
    for window in range(-1, windows):
        duration = seconds / 2 if window < 0 else seconds
        calls, start = 0, time.perf_counter()
        while True:
            batch_start = time.perf_counter()
            for _ in range(batch):
                step()
            calls += batch
            end = time.perf_counter()
            if window < 0 and end - batch_start < 0.001:
                batch *= 2
            if end - start >= duration:
                break
        if window >= 0:
            rates.append(calls * agents_per_call / (end - start))
    return {"median": statistics.median(rates), "windows": rates}


def stepping(env, num_envs, seed=0):
    """A step() for `measure`: env.step with the next row of cached random actions; returns
    what env.step returned."""
    rows = random_actions(num_envs, seed)
    counter = iter(range(1 << 62))
    return lambda: env.step(rows[next(counter) & (ACTION_ROWS - 1)])


@contextlib.contextmanager
def one_core():
    """Run pinned to one core (the last this process may use), then restore the affinity."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(allowed)})
    try:
        yield max(allowed)
    finally:
        os.sched_setaffinity(0, allowed)
