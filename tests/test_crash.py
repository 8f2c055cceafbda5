"""An exception nobody foresaw ends the command: one line on stderr, the traceback
in a file, threads and workers stopped, and the policy saved when training had begun."""

import json
import os
import subprocess
import sys

import pytest
import torch

# Runs `puffer` with PuffeRL.train replaced by one that trains `after` times, then raises (and
# first writes down its worker processes' ids).
CRASHING_PUFFER = """
import json, sys
from flappy_rl import cli, train

pufferl = train.import_pufferl()

after, real_train, calls = int(sys.argv[1]), pufferl.PuffeRL.train, []

def train_then_fail(self):
    calls.append(1)
    if len(calls) > after:
        workers = [process.pid for process in getattr(self.vecenv, "processes", [])]
        with open("fault.json", "w") as out:
            json.dump({"workers": workers}, out)
        raise RuntimeError("simulated fault\\nin PuffeRL.train")
    return real_train(self)

pufferl.PuffeRL.train = train_then_fail
sys.exit(cli.main(sys.argv[2:]))
"""
SMALL_RUN = ["--train.total-timesteps", "1e9", "--env.num-envs", "64", "--train.bptt-horizon", "16",
             "--train.minibatch-size", "1024"]


def crash(tmp_path, after, *extra):
    out = subprocess.run([sys.executable, "-c", CRASHING_PUFFER, str(after), "train", "puffer_flappy", *SMALL_RUN,
                          *extra], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180)  # a bound for a hang: PuffeRL's non-daemon monitor thread kept it alive for ever
    return out, json.loads((tmp_path / "fault.json").read_text())["workers"]


def alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("backend,processes", [([], 0), (["--vec.backend", "Multiprocessing", "--vec.num-envs", "2",
                                                             "--vec.num-workers", "2", "--vec.batch-size", "2"], 2)])
def test_a_fault_in_training_ends_the_run_with_one_line_and_a_log(tmp_path, backend, processes):
    out, workers = crash(tmp_path, 2, *backend)
    assert out.returncode == 1, out.stderr[-2000:]
    # Two busy workers on a 2-core machine are warned about first (flappy_rl.checks).
    (line,) = [line for line in out.stderr.splitlines() if not line.startswith("puffer: warning: ")]
    prefix = "puffer: error: train failed with RuntimeError: simulated fault in PuffeRL.train; the full traceback is in "
    assert line.startswith(prefix), line
    log, _, saved = line[len(prefix):].partition("; the policy so far is saved to ")
    assert log.startswith("experiments/puffer_flappy_") and log.endswith("/error.log")
    trace = (tmp_path / log).read_text()
    assert trace.startswith("Traceback (most recent call last):") and "in train_then_fail" in trace
    assert trace.rstrip().endswith("RuntimeError: simulated fault\nin PuffeRL.train")
    # Two updates happened before the fault: the policy is saved next to the run's folder.
    assert saved == log.removesuffix("/error.log") + ".pt"
    assert "actor.weight" in torch.load(tmp_path / saved, weights_only=True)["weights"]
    assert len(workers) == processes and not any(alive(pid) for pid in workers)
    assert "Traceback" not in out.stdout


def test_a_fault_before_any_update_saves_nothing(tmp_path):
    out, _ = crash(tmp_path, 0)
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert line.endswith("/error.log") and "saved" not in line, line
    assert not [name for name in os.listdir(tmp_path / "experiments") if name.endswith(".pt")]


def test_a_fault_in_another_mode_is_logged_under_experiments_errors(tmp_path, monkeypatch, capsys):
    from flappy_rl import bench, cli

    def fail(*args, **kwargs):
        raise OSError("simulated disk fault")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "run", fail)
    assert cli.main(["bench", "puffer_flappy", "--seconds", "0.01"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    prefix = "puffer: error: bench failed with OSError: simulated disk fault; the full traceback is in experiments/errors/bench-"
    assert line.startswith(prefix) and line.endswith(".log"), line
    trace = (tmp_path / line.rsplit(" ", 1)[1]).read_text()
    assert "in fail" in trace and trace.rstrip().endswith("OSError: simulated disk fault")
