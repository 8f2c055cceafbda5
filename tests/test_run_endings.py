"""Runs end right: Ctrl-C saves the policy and the curve and exits 130, SIGTERM the same with
143, through `uv run` too; a finished Multiprocessing run exits 0."""

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDLESS = ["train", "puffer_flappy", "--train.total-timesteps", "1e9", "--env.num-envs", "256",
           "--train.minibatch-size", "4096"]


def wait_for(path, text, process, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, path.read_text(errors="replace")[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def stop_an_endless_run(tmp_path, stop, *extra):
    """Start an endless `uv run puffer train` in a session of its own, call stop(its pid) a few
    updates in, and return its exit status, its stderr and the model it saved."""
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(["uv", "run", "--project", ROOT, "--frozen", "puffer", *ENDLESS, *extra],
                                   cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)
        try:
            wait_for(out_path, "Steps", process)
            time.sleep(2)  # a few updates in
            stop(process.pid)
            status = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    stderr = err_path.read_text()
    (model,) = (tmp_path / "experiments").glob("puffer_flappy_*.pt")
    assert model.with_suffix(".png").exists() and model.with_suffix(".csv").exists()
    return status, stderr, model


def send(signum, target, times=1):
    def stop(pid):
        for _ in range(times):
            if target == "group":
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
            time.sleep(0.05)
    return stop


@pytest.mark.parametrize("target,presses", [("group", 1), ("group", 2), ("process", 1), ("process", 2)])
def test_ctrl_c_through_uv_run_saves_and_exits_130(target, presses, tmp_path):
    """A terminal signals the whole group, and uv forwards SIGINT to its child: the child sees two."""
    status, stderr, model = stop_an_endless_run(tmp_path, send(signal.SIGINT, target, presses))
    assert status == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == f"interrupted: the policy so far is saved to experiments/{model.name}"


@pytest.mark.parametrize("target,backend", [("process", "PufferEnv"), ("group", "PufferEnv"),
                                            ("group", "Multiprocessing")])
def test_sigterm_through_uv_run_saves_and_exits_143(target, backend, tmp_path):
    """A scheduler that ends or preempts a job sends SIGTERM: to the command (uv forwards it), or
    to every process of the job, the Multiprocessing workers too, which is then no fault of theirs."""
    status, stderr, model = stop_an_endless_run(tmp_path, send(signal.SIGTERM, target), "--vec.backend", backend,
                                                *(["--vec.num-envs", "2", "--vec.num-workers", "1"]
                                                  if backend == "Multiprocessing" else []))
    assert status == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (f"stopped by SIGTERM: the policy so far is saved to "
                                               f"experiments/{model.name}")


def test_a_finished_multiprocessing_run_exits_0_every_time(tmp_path):
    """The worker watchdog took PuffeRL's own close() for a death in 4 of 6 runs."""
    for attempt in range(10):
        run = subprocess.run([sys.executable, "-m", "flappy_rl.cli", "train", "puffer_flappy", "--vec.backend",
                              "Multiprocessing", "--vec.num-envs", "2", "--vec.num-workers", "2", "--env.num-envs", "64",
                              "--train.total-timesteps", "20000", "--train.bptt-horizon", "16",
                              "--train.minibatch-size", "1024", "--train.data-dir", str(tmp_path / str(attempt))],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"run {attempt + 1}: {run.stderr[-2000:]}"
        assert run.stdout.strip().splitlines()[-1].startswith("model saved to ")
