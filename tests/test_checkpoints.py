"""Checkpoints that remember their run: eval, export and train rebuild the game and the policy
from the record, 'latest' is the newest run of the env asked for, older checkpoints still load."""

import os
import time

import pufferlib.vector
import pytest
import torch

from flappy_rl import Flappy, cli
from flappy_rl.checkpoint import read_checkpoint, save_checkpoint
from flappy_rl.components import env_kwargs, make_policy
from flappy_rl.config import parse_args


def write_run(folder, env_name, *argv, stamp=None):
    """A checkpoint as `puffer train ENV ARGV` writes one (untrained weights), named as its runs are."""
    args = parse_args("train", env_name, list(argv))
    vecenv = pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=env_kwargs(args, num_envs=1))
    policy = make_policy(args, vecenv.driver_env)
    vecenv.close()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{env_name}_{stamp or int(100 * time.time())}.pt")
    return save_checkpoint(path, policy, args)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_eval_without_an_env_plays_the_newest_runs_env_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run("experiments", "puffer_flappy", stamp=100)
    lidar = write_run("experiments", "puffer_flappy_lidar", "--env.gap", "120", "--rnn-name", "Recurrent", stamp=200)
    os.utime(lidar, (time.time() + 10, time.time() + 10))
    status, out, err = run_cli(capsys, "eval", "--load-model-path", "latest", "--episodes", "2")
    assert status == 0, err
    assert out[0] == f"eval puffer_flappy_lidar (the env it was trained on): {lidar}"
    assert out[-1].startswith("2 episodes: mean score")


def test_latest_is_the_newest_run_of_the_env_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    features = write_run("experiments", "puffer_flappy", stamp=100)
    lidar = write_run("experiments", "puffer_flappy_lidar", stamp=200)
    os.utime(lidar, (time.time() + 10, time.time() + 10))
    status, out, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "1")
    assert status == 0, err
    assert out[0] == f"eval puffer_flappy: {features}"


def test_eval_without_a_checkpoint_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, "eval", "--load-model-path", "latest")
    assert status == 2 and out == []
    assert err == "puffer: error: no checkpoint in experiments/ to evaluate: train one with 'puffer train puffer_flappy'\n"
    status, _, err = run_cli(capsys, "eval")
    assert status == 2 and err.count("\n") == 1 and "puffer eval --load-model-path PATH|latest" in err


def test_eval_rebuilds_the_game_and_the_policy_from_the_record(tmp_path, monkeypatch, capsys):
    """Trained on a hard game with gap 120 and an LSTM: no flag needs repeating."""
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy", "--env.difficulty", "hard", "--env.gap", "120",
                     "--rnn-name", "Recurrent", "--policy.obs-scale", "4")
    seen = {}
    real_make = pufferlib.vector.make

    def spy(creator, **kwargs):
        seen.update(kwargs["env_kwargs"])
        return real_make(creator, **kwargs)

    monkeypatch.setattr(pufferlib.vector, "make", spy)
    status, out, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", path, "--episodes", "1")
    assert status == 0, err
    assert seen["difficulty"] == "hard" and seen["gap"] == 120
    assert out[0] == f"eval puffer_flappy: {path}"


def test_a_game_parameter_given_on_the_command_line_is_applied_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy", "--env.gap", "120", "--policy.obs-scale", "4")
    status, out, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", path, "--episodes", "1",
                               "--env.gap", "100", "--policy.obs-scale", "2")
    assert status == 0, err
    assert out[:3] == [f"eval puffer_flappy: {path}",
                       f"note: {path} was trained with --env.gap 120; playing with --env.gap 100 as asked",
                       f"note: {path} was trained with --policy.obs-scale 4; playing with --policy.obs-scale 2 as asked"]


@pytest.mark.parametrize("argv,message", [
    (["--policy.hidden-size", "32"], "--policy.hidden-size 32 cannot load {path}, trained with --policy.hidden-size 128"),
    (["--rnn-name", "None"], "--rnn-name None cannot load {path}, trained with --rnn-name Recurrent"),
])
def test_a_policy_setting_that_cannot_load_is_refused_in_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy", "--rnn-name", "Recurrent")
    status, out, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", path, *argv)
    assert status == 2 and out == []
    assert err == f"puffer: error: {message.format(path=path)}\n"


def test_a_checkpoint_of_another_env_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy_lidar")
    status, _, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", path)
    assert status == 2
    assert err == (f"puffer: error: {path} was trained on puffer_flappy_lidar, not puffer_flappy: "
                   f"puffer eval puffer_flappy_lidar --load-model-path {path}\n")


def test_export_describes_the_game_the_policy_was_trained_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy", "--env.gap", "120")
    status, _, err = run_cli(capsys, "export", "puffer_flappy", "--load-model-path", path, "--out-dir", "out")
    assert status == 0, err
    assert "env gap 120.0\n" in (tmp_path / "out" / "puffer_flappy_policy.txt").read_text()


def test_a_run_without_a_record_loads_as_before_and_counts_as_latest(tmp_path, monkeypatch, capsys):
    """Runs were flappy_<time> whatever their env, their files bare state dicts."""
    monkeypatch.chdir(tmp_path)
    path = write_run("experiments", "puffer_flappy")
    legacy = tmp_path / "experiments" / "flappy_1234.pt"
    torch.save(read_checkpoint(path).weights, legacy)
    os.remove(path)
    status, out, err = run_cli(capsys, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "1")
    assert status == 0, err
    assert out[0] == "eval puffer_flappy: experiments/flappy_1234.pt"
    status, _, err = run_cli(capsys, "eval", "--load-model-path", "latest")
    assert status == 2
    assert err == ("puffer: error: experiments/flappy_1234.pt does not record the env it was trained on: "
                   "puffer eval ENV --load-model-path experiments/flappy_1234.pt\n")
