"""The puffer command: parsing, overrides, configs, and every error path, one line each."""

import os
import subprocess
import sys
import zipfile

import pytest
import torch

from flappy_rl import binding, cli
from flappy_rl.config import env_names, flatten, load_config, parse_args
from flappy_rl.errors import ConfigError
from flappy_rl.policy import Policy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def puffer(*argv, cwd=None, timeout=300):
    """Run the command as a user would, in a fresh process (training installs signal handlers)."""
    return subprocess.run([sys.executable, "-m", "flappy_rl.cli", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def error_of(*argv):
    with pytest.raises(ConfigError) as info:
        parse_args(*argv[:2], list(argv[2:]))
    return str(info.value)


def test_overrides_are_typed_from_their_defaults():
    args = parse_args("train", "puffer_flappy", [
        "--train.learning-rate", "0.001", "--train.total_timesteps", "2e6", "--env.gap", "120",
        "--env.max-steps=500", "--vec.backend", "Serial", "--train.anneal-lr", "false", "--wandb",
        "--policy.hidden-size", "32", "--train.device", "cpu", "--vec.batch-size", "4",
    ])
    assert args["train"]["learning_rate"] == 0.001
    assert args["train"]["total_timesteps"] == 2_000_000 and isinstance(args["train"]["total_timesteps"], int)
    assert args["env"]["gap"] == 120.0 and isinstance(args["env"]["gap"], float)
    assert args["env"]["max_steps"] == 500
    assert args["vec"]["backend"] == "Serial" and args["vec"]["batch_size"] == 4
    assert args["train"]["anneal_lr"] is False and args["wandb"] is True
    assert args["policy"]["hidden_size"] == 32 and args["train"]["device"] == "cpu"
    assert (args["mode"], args["env_name"]) == ("train", "puffer_flappy")


def test_defaults_come_from_default_ini_then_the_envs_file():
    args = parse_args("train", "puffer_flappy", [])
    assert args["train"]["gamma"] == 0.995  # puffer_flappy.ini over default.ini's 0.99
    assert args["train"]["optimizer"] == "adam" and args["train"]["device"] == "auto"
    assert args["vec"]["backend"] == "PufferEnv" and args["policy_name"] == "Policy" and args["rnn_name"] is None


@pytest.mark.parametrize("argv,message", [
    (["--train.learning-rat", "1"],
     "unknown option --train.learning-rat; did you mean --train.learning-rate? (puffer train puffer_flappy --help lists them)"),
    (["--bogus", "1"], "unknown option --bogus (puffer train puffer_flappy --help lists them)"),
    (["--train.learning-rate", "abc"], "argument --train.learning-rate: invalid float value: 'abc'"),
    (["--env.max-steps", "1.5"], "argument --env.max-steps: invalid int value: '1.5'"),
    (["--env.max-steps", "1e999999999"], "argument --env.max-steps: invalid int value: '1e999999999'"),
    (["--env.max-steps", "-nope"], "argument --env.max-steps: expected one argument"),
    (["--env.gap", "wide"], "argument --env.gap: invalid float value: 'wide'"),
    (["--train.anneal-lr", "maybe"], "argument --train.anneal-lr: invalid bool value: 'maybe'"),
    (["--render-mode", "human"], "unknown option --render-mode (puffer train puffer_flappy --help lists them)"),
])
def test_bad_overrides(argv, message):
    assert error_of("train", "puffer_flappy", *argv) == message


def test_unknown_mode_and_env():
    assert error_of("trian", "puffer_flappy").startswith("unknown mode 'trian'; valid modes: train, eval, sweep")
    assert error_of("train", "flapy") == ("unknown env 'flapy'; valid envs: puffer_flappy, puffer_flappy_lidar, "
                                         "puffer_flappy_pixels")


@pytest.mark.parametrize("argv,message", [
    ([], "puffer: error: usage: puffer MODE ENV"),
    (["train"], "puffer: error: usage: puffer MODE ENV"),
    (["trian", "puffer_flappy"], "puffer: error: unknown mode 'trian'; valid modes: train, eval, sweep, autotune, "
                                 "bench, play, export"),
    (["train", "puffer_flappy", "--env.gap", "10"], "puffer: error: [env] gap must be in [30, 240], got 10"),
    (["train", "puffer_flappy", "--vec.backend", "Threads"],
     "puffer: error: unknown --vec.backend 'Threads'; valid: PufferEnv, Serial, Multiprocessing"),
    (["train", "puffer_flappy", "--vec.num-envs", "2"], "puffer: error: --vec.backend PufferEnv runs one copy"),
    (["train", "puffer_flappy", "--policy-name", "Transformer"],
     "puffer: error: unknown policy_name 'Transformer'; valid: Policy, CNN"),
    (["train", "puffer_flappy", "--neptune"], "puffer: error: --neptune needs the neptune package: uv pip install neptune"),
    (["train", "puffer_flappy", "--policy.obs-scale", "0"],
     "puffer: error: [policy] --policy-name Policy: obs_scale must be in (0, 256], got 0.0"),
])
def test_errors_are_one_line_with_status_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_help_lists_every_option_with_its_default():
    out = puffer("train", "puffer_flappy", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for key, default in flatten(load_config("puffer_flappy")):
        if key != "env_name":
            assert f"--{key.replace('_', '-')} " in text and f"(default: {default})" in text, key
    assert "--load-model-path" in text and "height of the opening between upper and lower pipe, px, in [30, 240]" in text
    top = puffer("--help")
    assert top.returncode == 0 and "modes:" in top.stdout and "envs: puffer_flappy" in top.stdout
    assert "--train.learning-rate" in top.stdout


def test_env_section_is_the_birds_per_vector_and_exactly_the_c_parameters():
    choices = binding.param_choices()
    for env_name in env_names():
        env = load_config(env_name)["env"]
        assert list(env) == ["num_envs", *binding.params()], env_name
        assert isinstance(env["num_envs"], int) and load_config(env_name)["vec"]["num_envs"] == 1
        for name, (default, low, high) in binding.params().items():
            assert type(env[name]) is type(default), (env_name, name)
            assert env[name] in choices[name] if name in choices else low <= env[name] <= high, (env_name, name)
    assert load_config("puffer_flappy_lidar")["env"]["obs_mode"] == "lidar"
    assert load_config("puffer_flappy_pixels")["env"]["obs_mode"] == "pixels"


def test_ocean_habits_size_the_vector_and_the_old_setting_says_what_to_write():
    args = parse_args("train", "puffer_flappy", ["--env.num-envs", "4096"])
    assert args["env"]["num_envs"] == 4096 and "envs_per_copy" not in args["vec"]
    from flappy_rl.components import env_kwargs

    assert env_kwargs(args)["num_envs"] == 4096 and env_kwargs(args, num_envs=2)["num_envs"] == 2
    out = puffer("train", "puffer_flappy", "--vec.envs-per-copy", "4096")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("puffer: error: [vec] envs_per_copy is now [env] num_envs, the birds in one C vector, as in "
                          "every Ocean config ([vec] num_envs counts the copies): write --env.num-envs N, or "
                          "num_envs = N under [env]\n")


def test_an_old_style_ini_says_what_to_write(tmp_path, monkeypatch):
    import flappy_rl.config as config

    files = config.config_files()
    old = tmp_path / "puffer_flappy.ini"
    old.write_text(files["puffer_flappy.ini"].read_text().replace("[vec]\n", "[vec]\nenvs_per_copy = 512\n"))
    monkeypatch.setattr(config, "config_files", lambda: {**files, "puffer_flappy.ini": old})
    with pytest.raises(ConfigError, match=r"^puffer_flappy.ini: \[vec\] envs_per_copy is now \[env\] num_envs"):
        config.load_config("puffer_flappy")


def test_configs_ship_in_the_wheel(tmp_path):
    """Built as a wheel and installed, the package still finds its configs."""
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist"), ROOT], check=True,
                   capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flappy_rl/configs/default.ini" in names and "flappy_rl/configs/puffer_flappy.ini" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import flappy_rl, flappy_rl.config as c; assert flappy_rl.__file__.startswith(%r), flappy_rl.__file__; "
             "print(c.env_names(), c.load_config('puffer_flappy')['train']['gamma'])" % str(site))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['puffer_flappy', 'puffer_flappy_lidar', 'puffer_flappy_pixels'] 0.995"


def test_train_writes_a_checkpoint_that_eval_plays(tmp_path):
    train = puffer("train", "puffer_flappy", "--train.total-timesteps", "600000", "--env.num-envs", "256",
                   "--train.minibatch-size", "4096", cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-2000:]
    (model,) = (tmp_path / "experiments").glob("*.pt")
    assert f"model saved to experiments/{model.name}" in train.stdout
    (curve,) = (tmp_path / "experiments").glob("*.csv")
    assert curve.read_text().startswith("agent_steps,uptime,SPS,environment/score")
    saved = torch.load(model, weights_only=True)
    assert saved["weights"]["encoder.0.weight"].shape == (128, 8)
    assert saved["record"]["env_name"] == "puffer_flappy" and saved["trainer"]["global_step"] >= 600000
    out = puffer("eval", "puffer_flappy", "--load-model-path", "latest", "--render-mode", "None", "--episodes", "3",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == f"eval puffer_flappy: experiments/{model.name}"
    assert [line.split(":")[0] for line in lines[1:4]] == ["episode 1", "episode 2", "episode 3"]
    assert lines[4].startswith("3 episodes: mean score ")


def save_policy(path, obs_size=8, hidden_size=128):
    class FakeEnv:
        single_observation_space = type("Box", (), {"shape": (obs_size,)})()
        single_action_space = type("Discrete", (), {"n": 2})()

    torch.save(Policy(FakeEnv(), hidden_size=hidden_size).state_dict(), path)


@pytest.mark.parametrize("setup,argv,message", [
    (None, ["--load-model-path", "missing.pt"], "checkpoint not found: missing.pt"),
    (None, ["--load-model-path", "latest"], "no checkpoint of puffer_flappy in experiments/ to load as 'latest'"),
    (lambda d: (d / "empty.pt").write_bytes(b""), ["--load-model-path", "empty.pt"],
     "checkpoint empty.pt is not a readable PyTorch state dict"),
    (lambda d: (d / "junk.pt").write_bytes(os.urandom(4096)), ["--load-model-path", "junk.pt"],
     "checkpoint junk.pt is not a readable PyTorch state dict"),
    (lambda d: torch.save({"epoch": 3}, d / "other.pt"), ["--load-model-path", "other.pt"],
     "checkpoint other.pt is not a state dict of tensors"),
    (lambda d: save_policy(d / "lidar.pt", obs_size=180), ["--load-model-path", "lidar.pt"],
     "checkpoint lidar.pt was trained on observations of size 180, but this env gives 8"),
    (lambda d: save_policy(d / "small.pt", hidden_size=64), ["--load-model-path", "small.pt"],
     "checkpoint small.pt does not fit this policy: encoder.0.weight has shape [64, 8], the policy's is [128, 8]"),
    (lambda d: save_policy(d / "ok.pt"), ["--load-model-path", "ok.pt", "--render-mode", "window"],
     "unknown --render-mode 'window'; valid: None, human, rgb_array"),
    (lambda d: save_policy(d / "ok.pt"), ["--load-model-path", "ok.pt", "--episodes", "0"],
     "--episodes must be at least 1, got 0"),
])
def test_eval_refuses_bad_checkpoints_in_one_line(setup, argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if setup:
        setup(tmp_path)
    assert cli.main(["eval", "puffer_flappy", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"puffer: error: {message}") and err.count("\n") == 1, err


def test_eval_strips_the_ddp_prefix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save_policy(tmp_path / "plain.pt")
    state = torch.load(tmp_path / "plain.pt", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pt")
    assert cli.main(["eval", "puffer_flappy", "--load-model-path", "ddp.pt", "--episodes", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 episodes: mean score")


def save_falling_policy(path):
    """A policy that never flaps: every bird falls to the ground on frame 31."""
    save_policy(path)
    state = torch.load(path, weights_only=True)
    state["actor.bias"] = torch.tensor([10.0, -10.0])
    state["actor.weight"].zero_()
    torch.save(state, path)


def test_eval_plays_one_episode_per_env_and_summarizes(tmp_path, monkeypatch, capsys):
    """130 episodes (two waves of envs), each a crash on frame 31."""
    monkeypatch.chdir(tmp_path)
    save_falling_policy(tmp_path / "fall.pt")
    assert cli.main(["eval", "puffer_flappy", "--load-model-path", "fall.pt", "--episodes", "130", "--greedy"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 132 and lines[:2] == ["eval puffer_flappy: fall.pt", "episode 1: score 0, length 31 frames"]
    assert lines[-1] == ("130 episodes: mean score 0.00, median 0, max 0; mean length 31.0 frames; "
                         "0 capped at max_steps, 130 crashes in 0 pipes")


def test_sampled_eval_replays_the_same_actions(tmp_path, monkeypatch, capsys):
    """A policy that flaps with probability 1/10 whatever it sees, so that each game's length
    is down to its draws: two evals of it play the same games, draw for draw (the sampling
    generator is seeded with [vec] seed, as the games are)."""
    monkeypatch.chdir(tmp_path)
    save_policy(tmp_path / "coin.pt")
    state = torch.load(tmp_path / "coin.pt", weights_only=True)
    state["actor.weight"].zero_()
    state["actor.bias"] = torch.log(torch.tensor([0.9, 0.1]))
    torch.save(state, tmp_path / "coin.pt")
    outputs = []
    for _ in range(2):
        torch.manual_seed(len(outputs))  # whatever state the generator was in before
        assert cli.main(["eval", "puffer_flappy", "--load-model-path", "coin.pt", "--episodes", "20"]) == 0
        outputs.append(capsys.readouterr().out)
    lengths = {line.split("length ")[1] for line in outputs[0].splitlines()[1:21]}
    assert len(lengths) > 1 and outputs[0] == outputs[1]  # games that differ, replayed alike


def test_eval_counts_episodes_that_reach_max_steps_as_capped(tmp_path, monkeypatch, capsys):
    """The never-flapping policy with max_steps below its 31 frames of fall: every episode is cut
    by the cap, none crashes."""
    monkeypatch.chdir(tmp_path)
    save_falling_policy(tmp_path / "fall.pt")
    assert cli.main(["eval", "puffer_flappy", "--load-model-path", "fall.pt", "--episodes", "3", "--greedy",
                     "--env.max-steps", "20"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "3 episodes: mean score 0.00, median 0, max 0; mean length 20.0 frames; 3 capped at max_steps, 0 crashes in 0 pipes")


def test_recurrent_policy_trains_and_evaluates(tmp_path):
    common = ["--rnn-name", "Recurrent", "--env.num-envs", "128", "--train.bptt-horizon", "16"]
    train = puffer("train", "puffer_flappy", "--train.total-timesteps", "200000", "--train.minibatch-size", "2048",
                   *common, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-2000:]
    # the checkpoint records its LSTM: no flag needs repeating
    out = puffer("eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("2 episodes: mean score")


def test_autotune_measures_each_setting(tmp_path):
    out = puffer("autotune", "puffer_flappy", "--time-per-test", "0.2", "--max-envs", "2", "--env.num-envs", "64",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Profile complete" in out.stdout and out.stdout.count("SPS: ") >= 3
    assert "backend: Serial" in out.stdout and "backend: Multiprocessing" in out.stdout


def test_both_play_front_ends_name_the_window_size_render_scale():
    python_m = subprocess.run([sys.executable, "-m", "flappy_rl", "play", "--help"], capture_output=True, text=True)
    assert "--render-scale" in python_m.stdout and "--scale " not in python_m.stdout
    assert "--render-scale" in puffer("play", "puffer_flappy", "--help").stdout
