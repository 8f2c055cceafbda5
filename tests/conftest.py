"""Shared helpers for the flappy_rl tests."""

import numpy as np
import pytest

from flappy_rl import binding


def scripted_actions(obs):
    """A decent hand-written player (about 50 pipes per episode with the defaults): flap when
    the bird's bottom would be below the next gap's bottom after this frame's fall."""
    bottom_clearance = obs[..., 4] * binding.GROUND_Y
    fall = obs[..., 1] * 10.0 + 1.0  # default speed scale 1/10, gravity 1
    return (bottom_clearance - fall < 0).astype(np.int32)


def make_buffers(num_envs):
    """Observation, action, reward, terminal and truncation buffers as PufferLib allocates them."""
    return [
        np.zeros((num_envs, binding.NUM_FEATURES), np.float32),
        np.zeros(num_envs, np.int32),
        np.zeros(num_envs, np.float32),
        np.zeros(num_envs, bool),
        np.zeros(num_envs, bool),
    ]


@pytest.fixture
def buffers():
    return make_buffers(4)
