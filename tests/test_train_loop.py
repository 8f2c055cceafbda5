"""Our training loop over PuffeRL: every step it counts is a training step."""

import csv

import torch

from flappy_rl.checks import check
from flappy_rl.cli import main
from flappy_rl.config import parse_args
from flappy_rl.pretrained import pretrained_path
from flappy_rl.train import RunRecorder, import_pufferl, train

BATCH = 256 * 64


def small_run(tmp_path, *extra):
    args = parse_args("train", "puffer_flappy", [
        "--train.total-timesteps", str(6 * BATCH), "--env.num-envs", "256", "--train.minibatch-size", "4096",
        "--train.data-dir", str(tmp_path), *extra])
    check(args)
    return args


def test_a_run_collects_one_batch_per_update_and_its_curve_ends_at_its_budget(tmp_path, monkeypatch):
    """pufferlib.pufferl.train ends with 32 batches of evaluation that counted as training steps."""
    pufferl = import_pufferl()
    calls = []
    for method in ("evaluate", "train"):
        original = getattr(pufferl.PuffeRL, method)

        def spy(self, original=original, method=method):
            calls.append(method)
            return original(self)

        monkeypatch.setattr(pufferl.PuffeRL, method, spy)
    recorder = RunRecorder(str(tmp_path))
    model_path, logs = train(small_run(tmp_path), recorder)
    assert calls.count("evaluate") == calls.count("train") == 6
    assert logs[-1]["agent_steps"] == 6 * BATCH
    with open(tmp_path / f"{recorder.run_id}.csv", newline="") as rows:
        steps = [int(row["agent_steps"]) for row in csv.DictReader(rows)]
    assert steps[-1] == 6 * BATCH and max(steps) == 6 * BATCH
    assert model_path == str(tmp_path / f"{recorder.run_id}.pt")


def test_the_dashboard_counts_no_time_left_below_zero_when_the_last_batch_ends_past_the_budget(tmp_path, monkeypatch):
    """PuffeRL trains whole batches: a budget of 5.5 batches ends after 6, and PuffeRL's dashboard
    computed the time left from the budget, a negative number it printed as "-1h 59m 40s"."""
    pufferl = import_pufferl()
    durations = []

    def spy(seconds, *colors, original=pufferl.duration):
        durations.append(seconds)
        return original(seconds, *colors)

    monkeypatch.setattr(pufferl, "duration", spy)
    args = small_run(tmp_path)
    args["train"]["total_timesteps"] = 11 * BATCH // 2
    _, logs = train(args, RunRecorder(str(tmp_path)))
    assert logs[-1]["agent_steps"] == 6 * BATCH
    assert durations and min(durations) >= 0, min(durations)


def test_a_resumed_run_continues_its_steps_its_optimizer_and_its_curve(tmp_path):
    """train --load-model-path goes on from the checkpoint's step, with its Adam state: 6 updates of
    2 epochs x 4 minibatches are 48 optimizer steps, and 4 more updates make 80 (a fresh
    optimizer would end at 32)."""
    model_path, _ = train(small_run(tmp_path), RunRecorder(str(tmp_path)))
    first = torch.load(model_path, weights_only=True)
    assert (first["trainer"]["global_step"], first["trainer"]["epoch"]) == (6 * BATCH, 6)
    assert {int(state["step"]) for state in first["trainer"]["optimizer"]["state"].values()} == {48}
    recorder = RunRecorder(str(tmp_path))
    resumed_path, logs = train(small_run(tmp_path, "--load-model-path", model_path, "--train.total-timesteps",
                                         str(10 * BATCH)), recorder)
    resumed = torch.load(resumed_path, weights_only=True)
    assert (resumed["trainer"]["global_step"], resumed["trainer"]["epoch"]) == (10 * BATCH, 10)
    assert {int(state["step"]) for state in resumed["trainer"]["optimizer"]["state"].values()} == {80}
    assert resumed["record"]["train"]["total_timesteps"] == 10 * BATCH
    with open(tmp_path / f"{recorder.run_id}.csv", newline="") as rows:
        steps = [int(row["agent_steps"]) for row in csv.DictReader(rows)]
    assert 6 * BATCH < steps[0] and steps[-1] == 10 * BATCH  # the curve goes on from the checkpoint's step


def test_continuing_a_run_to_a_total_it_has_passed_is_one_line(tmp_path, monkeypatch, capsys):
    """The shipped policy's run has 36,044,800 steps: a total of 1000 (below one batch, which a
    new run would round up with a note) is refused in one line that names what would go on."""
    monkeypatch.chdir(tmp_path)
    path = pretrained_path("puffer_flappy")
    assert main(["train", "puffer_flappy", "--load-model-path", "pretrained", "--train.total-timesteps", "1000"]) == 2
    assert capsys.readouterr().err == (f"puffer: error: {path} has trained 36,044,800 steps of its run already: give a "
                                       "--train.total-timesteps above 36044800 to go on\n")
