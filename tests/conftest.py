"""Shared helpers for the flappy_rl tests."""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from flappy_rl import binding

# pytest-xdist runs one worker per core (pyproject.toml), so torch computes on one thread in
# each worker and in the commands its tests start. With torch's default of a thread per core,
# threads wait on cores that the other worker holds: two learning tests side by side were still
# running after 12 minutes, where one after the other they take about 5.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Fuzzing budgets (tests/test_fuzz.py): "ci" by default, "long" with --hypothesis-profile=long.
# No example database: every run explores afresh, and nothing is written into the checkout.
settings.register_profile("ci", max_examples=200, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=20_000)
settings.load_profile("ci")


def flap_needed(bottom_clearance, fall):
    """The scripted player's rule (about 50 pipes per episode with the defaults): flap when the
    bird's bottom would be below the next gap's bottom after this frame's fall."""
    return bottom_clearance - fall < 0


def scripted_actions(obs):
    """The scripted player over feature observations with the default parameters (fast, for
    long runs)."""
    bottom_clearance = obs[..., 4] * binding.GROUND_Y
    fall = obs[..., 1] * 10.0 + 1.0  # default speed scale 1/10, gravity 1
    return flap_needed(bottom_clearance, fall).astype(np.int32)


def scripted_action(state):
    """The scripted player from a state dict, as `binding.env_get` and the twin's `state()` give
    it: any observation mode, any parameters."""
    pipe = state["pipes"][state["next_pipe"]]
    bottom_clearance = pipe["gap_bottom"] - (state["bird_y"] + binding.BIRD_HEIGHT)
    return int(flap_needed(bottom_clearance, state["bird_vy"] + state["gravity"]))


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


# The files that take minutes: the trainings, the wheel's round trip, the two-rank runs and the
# interrupted runs.
LONG_FILES = ("test_learning", "test_package", "test_distributed", "test_sweep_shared", "test_run_endings")


def pytest_collection_modifyitems(items):
    """The learning tests first: their files are the suite's longest (a worker runs a file's
    tests in order), and started first they overlap everything else rather than run on at the end."""
    items.sort(key=lambda item: not item.path.name.startswith(LONG_FILES))


def pytest_addoption(parser):
    parser.addoption("--soak-steps", type=float, default=1e7,
                     help="env steps per soak test (tests/test_soak.py): 1e7 by default, 1e8 for the long soak")
    parser.addoption("--cli-fuzz-examples", type=int, default=6,
                     help="command lines per puffer mode in tests/test_cli_fuzz.py: 6 by default, 300 for the long run")


@pytest.fixture
def soak_steps(request):
    return request.config.getoption("--soak-steps")

