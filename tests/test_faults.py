"""Training faults end cleanly: a dead worker is a one-line error, Ctrl-C leaves a usable model."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

CLI = [sys.executable, "-m", "flappy_rl.cli"]
LONG_RUN = ["--train.total-timesteps", "1e10", "--env.num-envs", "256", "--train.minibatch-size", "4096"]


def children(pid):
    """Processes whose parent is pid, read from /proc."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def start_training(tmp_path, *extra):
    """Start a long training run and return once PuffeRL has drawn its dashboard twice."""
    log = open(tmp_path / "train.log", "w")
    process = subprocess.Popen([*CLI, "train", "puffer_flappy", *LONG_RUN, *extra], cwd=tmp_path, text=True,
                               stdout=log, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while (tmp_path / "train.log").read_text().count("Epoch") < 2 and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    time.sleep(1)
    assert process.poll() is None, process.communicate()
    return process


def test_a_killed_worker_stops_training_with_a_clear_error(tmp_path):
    process = start_training(tmp_path, "--vec.backend", "Multiprocessing", "--vec.num-envs", "1",
                             "--vec.num-workers", "1")
    (worker,) = [pid for pid in children(process.pid) if b"resource_tracker" not in
                 pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(worker, signal.SIGKILL)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("training hung after its worker died")
    assert process.returncode == 1, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"puffer: error: a Multiprocessing worker (pid {worker}) was killed by SIGKILL; "
                           "training stopped, the policy so far is saved to experiments/"), last
    saved = last.rsplit(" ", 1)[1]
    evaluate = subprocess.run([*CLI, "eval", "puffer_flappy", "--load-model-path", saved, "--episodes", "2"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert evaluate.returncode == 0, evaluate.stderr


def test_a_worker_ended_by_sigterm_stops_training_as_sigterm_does(tmp_path):
    """A scheduler sends SIGTERM to every process of a job, and the watchdog may hear of the
    worker's end before this process hears of its own signal: a stop, not a fault."""
    process = start_training(tmp_path, "--vec.backend", "Multiprocessing", "--vec.num-envs", "1",
                             "--vec.num-workers", "1")
    (worker,) = [pid for pid in children(process.pid) if b"resource_tracker" not in
                 pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(worker, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    (model,) = (tmp_path / "experiments").glob("*.pt")
    last = stderr.strip().splitlines()[-1]
    assert last == f"stopped by SIGTERM: the policy so far is saved to experiments/{model.name}"


@pytest.mark.parametrize("backend", [["--vec.backend", "PufferEnv"],
                                     ["--vec.backend", "Multiprocessing", "--vec.num-workers", "1"]])
def test_ctrl_c_leaves_a_usable_checkpoint(tmp_path, backend):
    process = start_training(tmp_path, *backend)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: the policy so far is saved to experiments/")
    evaluate = subprocess.run([*CLI, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "2"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert evaluate.returncode == 0, evaluate.stderr
