"""The pixel config's learning test: a file of its own, so that a second pytest-xdist worker runs
it beside the other learning tests (each file's tests run on one worker)."""

import pytest

from test_learning import train_then_eval


@pytest.mark.learning
def test_a_short_pixels_run_learns_to_pass_pipes(tmp_path):
    """2.5M steps of puffer_flappy_pixels (about 9 minutes with one torch thread, as the suite's
    workers run it): the untrained policy reaches the first pipe and almost never through it
    (score about 0.02); the trained one must average 4 pipes per episode (measured 2026-11-26:
    8.85 with one thread; 8.31 sampled and 10.53 greedy with two). The CNN's old input scaling
    (1/255, no offset) left 6M steps at 0.26 pipes, and its old learning rate (0.001) left 2.5M
    steps at 0.7."""
    first, mean, summary = train_then_eval(tmp_path, "puffer_flappy_pixels", "--train.total-timesteps", "2_500_000")
    assert first < 0.1 and mean >= 4, (first, summary)
