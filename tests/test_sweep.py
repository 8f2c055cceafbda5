"""puffer sweep: the local record, --resume, the trial budget, and one-line errors for bad sweeps."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flappy_rl import cli
from flappy_rl import sweep as flappy_sweep
from flappy_rl.config import parse_args
from flappy_rl.errors import ConfigError
from flappy_rl.sweep import TrialRecorder, curve_points, read_record, sweep

CLI = [sys.executable, "-m", "flappy_rl.cli"]
# Trials of a few thousand steps: 64 birds, 16-step rollouts, one minibatch.
TINY = ["--env.num-envs", "64", "--train.bptt-horizon", "16", "--train.minibatch-size", "1024",
        "--train.total-timesteps", "20000"]


def records(tmp_path):
    (path,) = (tmp_path / "experiments").glob("sweep_puffer_flappy_*.jsonl")
    return path, [json.loads(line) for line in path.read_text().splitlines()]


def test_two_tiny_trials_are_recorded_then_resume_adds_a_third_cut_by_its_budget(tmp_path):
    run = subprocess.run([*CLI, "sweep", "puffer_flappy", *TINY, "--sweep.max-trials", "2"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    path, (header, *trials) = records(tmp_path)
    assert header["swept"] == ["train.learning_rate", "train.gamma", "train.ent_coef"]
    assert [trial["trial"] for trial in trials] == [1, 2]
    # Protein starts at the centre of the search space: the config's own values
    assert trials[0]["hyperparameters"] == pytest.approx({"train.learning_rate": 0.003, "train.gamma": 0.995,
                                                          "train.ent_coef": 0.01})
    assert trials[1]["hyperparameters"] != trials[0]["hyperparameters"]
    for trial in trials:
        assert trial["stopped_by"] == "total_timesteps" and trial["steps"] >= 20000 and trial["score"] is not None
        assert trial["points"][-1][1] == trial["score"] and (tmp_path / trial["model"]).is_file()
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first_lines = path.read_text()

    # A third trial with far more steps than its 10-second budget allows: the budget ends it.
    run = subprocess.run([*CLI, "sweep", "puffer_flappy", *TINY, "--train.total-timesteps", "1e10",
                          "--sweep.max-trials", "3", "--sweep.trial-seconds", "10", "--resume"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(2 trials so far)" in run.stdout
    _, (_, *trials) = records(tmp_path)
    assert path.read_text().startswith(first_lines) and [trial["trial"] for trial in trials] == [1, 2, 3]
    assert trials[2]["stopped_by"] == "trial_seconds" and 10 <= trials[2]["seconds"] < 60
    assert trials[2]["steps"] < 1e10 and (tmp_path / trials[2]["model"]).is_file()


def test_sigterm_stops_a_sweep_in_one_line_after_a_trial_its_clock_ended(tmp_path):
    """A scheduler's SIGTERM in the second trial, after the first was ended by its budget (which
    stops train as Ctrl-C does): the sweep stops as on Ctrl-C, with 143, its record kept."""
    log = tmp_path / "out.txt"
    with open(log, "w") as out:
        process = subprocess.Popen([*CLI, "sweep", "puffer_flappy", *TINY, "--train.total-timesteps", "1e10",
                                    "--sweep.max-trials", "3", "--sweep.trial-seconds", "5"], cwd=tmp_path,
                                   stdout=out, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 300
            while "sweep trial 2:" not in log.read_text():
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
            time.sleep(2)  # into its training
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
    path, (_, *trials) = records(tmp_path)
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (f"stopped by SIGTERM: 1 trial recorded in experiments/{path.name}; "
                                               "puffer sweep puffer_flappy --resume continues")
    assert [trial["stopped_by"] for trial in trials] == ["trial_seconds"]


@pytest.mark.parametrize("signum, status, reason", [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "stopped by SIGTERM")], ids=["ctrl_c", "sigterm"])
def test_a_signal_between_trials_stops_the_sweep_after_a_trial_its_clock_ended(
        tmp_path, monkeypatch, capfd, signum, status, reason):
    """train ignores Ctrl-C and SIGTERM once it is stopping, as on its way out; after a trial its
    clock ended, the sweep goes on and must heed them again, while it claims the next trial too
    (a worker of a shared sweep may wait there for minutes)."""
    claims = []

    def claim_then_signal(*args):
        claims.append(1)
        if len(claims) == 2:
            os.kill(os.getpid(), signum)
        return original(*args)

    original = flappy_sweep.claim
    monkeypatch.setattr(flappy_sweep, "claim", claim_then_signal)
    monkeypatch.chdir(tmp_path)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    args = parse_args("sweep", "puffer_flappy", [*TINY, "--train.total-timesteps", "1e10", "--sweep.max-trials", "2",
                                                 "--sweep.trial-seconds", "3"])
    try:
        assert flappy_sweep.sweep(args) == status
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    path, (_, *trials) = records(tmp_path)
    assert capfd.readouterr().err.strip().splitlines()[-1] == (
        f"{reason}: 1 trial recorded in experiments/{path.name}; puffer sweep puffer_flappy --resume continues")
    assert [trial["stopped_by"] for trial in trials] == ["trial_seconds"] and len(claims) == 2


def test_a_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    path = tmp_path / "sweep.jsonl"
    path.write_text('{"swept": ["train.gamma"]}\n{"trial": 1, "score": 2.0}\n{"trial": 2, "sco')
    header, trials = read_record(str(path))
    assert header == {"swept": ["train.gamma"]} and trials == [{"trial": 1, "score": 2.0}]
    assert path.read_text() == '{"swept": ["train.gamma"]}\n{"trial": 1, "score": 2.0}\n'


@pytest.mark.parametrize("argv,message", [
    (["--sweep.train.gamma.min", "0.999", "--sweep.train.gamma.max", "0.99", "--sweep.train.gamma.mean", "0.995"],
     "puffer: error: [sweep.train.gamma]: min 0.999 must be below max 0.99\n"),
    (["--sweep.train.learning-rate.mean", "0.5"],
     "puffer: error: [sweep.train.learning_rate]: mean 0.5 is outside [min, max] = [0.0001, 0.03]\n"),
    (["--sweep.trial-seconds", "0"],
     "puffer: error: sweep.trial_seconds (each trial's time budget) must be positive, got 0.0\n"),
    (["--sweep.max-trials", "0"], "puffer: error: sweep.max_trials must be at least 1, got 0\n"),
    (["--sweep.method", "Grid"], "puffer: error: unknown sweep.method 'Grid'; valid: Protein, Random, ParetoGenetic, TPESampler, "
     "RandomSampler\n"),
    (["--resume"], "puffer: error: --resume: no sweep of puffer_flappy in {data_dir}/ to continue\n"),
])
def test_bad_sweeps_fail_in_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    data_dir = tmp_path / "experiments"
    assert cli.main(["sweep", "puffer_flappy", "--train.data-dir", str(data_dir), *argv]) == 2
    assert capsys.readouterr().err == message.format(data_dir=data_dir)
    assert not data_dir.exists()


def test_an_unwritable_experiments_folder_fails_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["sweep", "puffer_flappy", "--train.data-dir", str(blocker / "experiments")]) == 2
    err = capsys.readouterr().err
    assert err == (f"puffer: error: --train.data-dir '{blocker}/experiments' is not a folder that files can be "
                   "written in (Not a directory): pass another path\n")
    assert not (blocker / "experiments").exists()


def test_sweeping_a_setting_that_does_not_exist_fails_before_writing(tmp_path):
    args = parse_args("sweep", "puffer_flappy", ["--train.data-dir", str(tmp_path / "experiments")])
    args["sweep"]["train"]["learning_rat"] = dict(distribution="log_normal", min=0.001, max=0.01, mean=0.003,
                                                  scale="auto")
    with pytest.raises(ConfigError) as error:
        sweep(args)
    assert str(error.value) == ("[sweep.train.learning_rat]: the sweep searches train.learning_rat, which is not a "
                                "setting of puffer_flappy (puffer train puffer_flappy --help lists them)")
    assert not (tmp_path / "experiments").exists()


def test_resume_refuses_a_record_of_other_ranges_and_leaves_it_as_it_was(tmp_path, capsys):
    data_dir = tmp_path / "experiments"
    args = ["sweep", "puffer_flappy", "--train.data-dir", str(data_dir)]
    data_dir.mkdir()
    record = data_dir / "sweep_puffer_flappy_20261125-120000.jsonl"
    header = {"env_name": "puffer_flappy", "method": "Protein", "metric": "score", "goal": "maximize",
              "swept": ["train.gamma"], "distributions": {"train.gamma": "logit_normal"},
              "spaces": {"train.gamma": {"distribution": "logit_normal", "min": 0.9, "max": 0.999, "mean": 0.995,
                                         "scale": "auto"}}}
    record.write_text(json.dumps(header) + "\n")
    assert cli.main([*args, "--resume"]) == 2
    assert capsys.readouterr().err == (f"puffer: error: --resume: {record} searched other settings or ranges than "
                                       "this sweep; start a new sweep without --resume\n")
    assert record.read_text() == json.dumps(header) + "\n"


def test_trial_recorder_keeps_the_curve_and_forwards_to_wandb_or_neptune(tmp_path):
    class Remote:
        def __init__(self):
            self.calls = []

        def log(self, logs, step):
            self.calls.append(("log", step))

        def close(self, model_path):
            self.calls.append(("close", model_path))

    remote = Remote()
    recorder = TrialRecorder(str(tmp_path), remote)
    recorder.log({"agent_steps": 65536, "uptime": 1.0, "environment/score": 3.0}, 65536)
    recorder.log({"agent_steps": 131072, "uptime": 2.0}, 131072)  # no episode ended: not a point of the curve
    recorder.close("model.pt")
    assert remote.calls == [("log", 65536), ("log", 131072), ("close", "model.pt")]
    assert curve_points(recorder, "score", 10) == [[65536, 3.0, 1.0]]
    assert (tmp_path / f"{recorder.run_id}.csv").is_file() and (tmp_path / f"{recorder.run_id}.png").is_file()
