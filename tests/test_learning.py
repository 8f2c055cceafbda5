"""A short training run must learn to play: deselect with -m "not learning"; CI runs it."""

import re
import subprocess
import sys

import pytest


@pytest.mark.learning
def test_a_short_training_run_passes_ten_pipes(tmp_path):
    """15M steps (about 40 s on a 2-core CPU) with the default config, then 100 evaluation
    episodes of the saved policy: the mean score must reach 10 pipes (measured: about 50)."""
    cli = [sys.executable, "-m", "flappy_rl.cli"]
    train = subprocess.run([*cli, "train", "puffer_flappy", "--train.total-timesteps", "15_000_000"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    evaluation = subprocess.run([*cli, "eval", "puffer_flappy", "--load-model-path", "latest"], capture_output=True,
                                text=True, cwd=tmp_path, timeout=600)
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    summary = evaluation.stdout.strip().splitlines()[-1]
    mean = float(re.match(r"100 episodes: mean score ([\d.]+),", summary).group(1))
    assert mean >= 10, summary
