"""puffer export and C inference: csrc/flappy_agent.h (PufferLib's puffernet.h) and csrc/demo.c
against PyTorch, on observations recorded from real play in every observation mode."""

import pathlib
import re
import subprocess

import numpy as np
import pytest
import pufferlib
import pufferlib.models
import pufferlib.vector
import torch

from flappy_rl import Flappy, binding
from flappy_rl.checkpoint import load_into, load_weights, open_checkpoint, read_checkpoint
from flappy_rl.cli import main
from flappy_rl.components import env_kwargs, make_policy
from flappy_rl.config import c_params, parse_args
from flappy_rl.errors import ConfigError
from flappy_rl.evaluate import initial_state
from flappy_rl.pretrained import pretrained_path, use_pretrained
from test_c_core import SANITIZE

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUFFERNET = pathlib.Path(pufferlib.__file__).parent / "extensions"
LOGITS_TOLERANCE = 1e-5
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
# Each observation mode with the policy its config trains, and the LSTM.
POLICIES = {
    "features MLP": ("puffer_flappy", []),
    "lidar MLP": ("puffer_flappy_lidar", []),
    "pixels CNN": ("puffer_flappy_pixels", []),
    "features LSTM": ("puffer_flappy", ["--rnn-name", "Recurrent"]),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Batches of 8 observations: torch's thread pool only waits for busy cores (40x slower on a
    loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(source, out_dir):
    exe = out_dir / pathlib.Path(source).stem
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    f"-I{ROOT / 'csrc'}", f"-I{PUFFERNET}", str(ROOT / source), "-o", str(exe), "-lm"], check=True)
    return exe


@pytest.fixture(scope="module")
def agent_logits(tmp_path_factory):
    return build("tests/c/agent_logits.c", tmp_path_factory.mktemp("agent_logits"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build("csrc/demo.c", tmp_path_factory.mktemp("demo"))


def policy_for(args):
    vecenv = pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=env_kwargs(args, num_envs=1))
    vecenv.close()
    return make_policy(args, vecenv.driver_env)


def untrained_checkpoint(path, env_name, extra):
    """A fresh policy whose action head is spread out (a new one's logits are all within 0.01),
    so that the greedy actions depend on the observation."""
    torch.manual_seed(0)
    policy = policy_for(parse_args("export", env_name, extra))
    actor = policy.policy.actor if hasattr(policy, "lstm") else policy.actor
    with torch.no_grad():
        actor.weight.normal_(0.0, 0.5)
    torch.save(policy.state_dict(), path)
    return policy


def export(out_dir, env_name, model_path, *extra):
    assert main(["export", env_name, "--load-model-path", str(model_path), "--out-dir", str(out_dir), *extra]) == 0
    return out_dir / f"{env_name}_policy.txt", out_dir / f"{env_name}_weights.bin"


def record_play(policy, args, num_envs=8, steps=500, seed=7):
    """Play with the policy (sampled actions), recording each step's observations, which envs
    start an episode there, PyTorch's logits, and the size of the terms each logit sums (see
    assert_parity). Arrays are step-major: [steps, num_envs, ...]."""
    env = Flappy(num_envs=num_envs, **c_params(args))
    observations, _ = env.reset(seed=seed)
    state = initial_state(policy, num_envs, "cpu")
    starts = np.ones(num_envs, bool)
    generator = torch.Generator().manual_seed(seed)
    recorded, start_flags, logits_seen, term_sizes = [], [], [], []
    actor = (policy.policy if isinstance(policy, pufferlib.models.LSTMWrapper) else policy).actor
    # sum_j |w_ij h_j| + |b_i| for the action head's input h: the scale of its float32 rounding
    hook = actor.register_forward_hook(lambda layer, inputs, output: term_sizes.append(
        (inputs[0].abs() @ layer.weight.abs().T + layer.bias.abs()).numpy().copy()))
    with torch.no_grad():
        for _ in range(steps):
            for key in state:  # an episode's start zeroes the LSTM state of its env
                state[key][torch.from_numpy(starts)] = 0
            recorded.append(observations.copy())
            start_flags.append(starts.copy())
            logits, _ = policy.forward_eval(torch.as_tensor(observations), state)
            logits_seen.append(logits.numpy().copy())
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
            observations, _, terminals, truncations, _ = env.step(actions.numpy().astype(np.int32))
            starts = terminals | truncations
    env.close()
    hook.remove()
    return np.stack(recorded), np.stack(start_flags), np.stack(logits_seen), np.stack(term_sizes)


def c_logits(exe, description, weights, observations, starts, tmp_path):
    """The C agent's logits for the recorded play, one env's sequence after another."""
    steps, num_envs = starts.shape
    records = bytearray()
    for i in range(num_envs):
        for t in range(steps):
            records += bytes([int(starts[t, i])]) + observations[t, i].tobytes()
    (tmp_path / "steps.bin").write_bytes(bytes(records))
    out = subprocess.run([str(exe), str(description), str(weights), str(tmp_path / "steps.bin"),
                          str(tmp_path / "logits.bin")], capture_output=True, text=True, env=ASAN_ENV, timeout=300)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    logits = np.fromfile(tmp_path / "logits.bin", np.float32).reshape(num_envs, steps, 2)
    return logits.transpose(1, 0, 2)


def assert_parity(c, torch_logits, term_sizes):
    """Logits within 1e-5 of PyTorch's, relative to the size of the terms each sums beyond 1; greedy
    actions equal on at least 99.9% of the observations. A trained policy's head sums terms of 100
    and more into logits near 0, where float32 rounds each term by 1e-5: no two float32 codes that
    sum in another order agree more closely than that (README)."""
    difference = np.abs(c - torch_logits)
    relative = (difference / np.maximum(1.0, term_sizes)).max()
    agreement = np.mean(c.argmax(-1) == torch_logits.argmax(-1))
    assert relative <= LOGITS_TOLERANCE, relative
    assert agreement >= 0.999, agreement
    return difference.max(), relative, agreement


@pytest.mark.parametrize("name", POLICIES)
def test_c_logits_match_pytorch_on_real_play(name, agent_logits, tmp_path):
    env_name, extra = POLICIES[name]
    policy = untrained_checkpoint(tmp_path / "policy.pt", env_name, extra)
    description, weights = export(tmp_path, env_name, tmp_path / "policy.pt", *extra)
    observations, starts, torch_logits, term_sizes = record_play(policy.eval(), parse_args("export", env_name, extra))
    assert starts[1:].any(), "the recorded play should cross episode boundaries"
    assert observations.shape[0] * observations.shape[1] >= 4000
    assert_parity(c_logits(agent_logits, description, weights, observations, starts, tmp_path), torch_logits, term_sizes)


def test_pretrained_policy_parity_and_demo_scores_equal_eval_greedy(agent_logits, demo, tmp_path, capsys):
    args = use_pretrained(parse_args("export", "puffer_flappy", ["--load-model-path", "pretrained"]))
    policy = policy_for(args)
    load_weights(policy, args["load_model_path"], "cpu")
    description, weights = export(tmp_path, "puffer_flappy", "pretrained")
    observations, starts, torch_logits, term_sizes = record_play(policy.eval(), args, steps=1000)
    assert_parity(c_logits(agent_logits, description, weights, observations, starts, tmp_path), torch_logits, term_sizes)

    capsys.readouterr()
    assert main(["eval", "puffer_flappy", "--load-model-path", "pretrained", "--greedy", "--episodes", "8",
                 "--vec.seed", "5"]) == 0
    eval_lines = capsys.readouterr().out.splitlines()
    out = subprocess.run([str(demo), str(description), str(weights), "--greedy", "--episodes", "8", "--seed", "5"],
                         capture_output=True, text=True, env=ASAN_ENV, timeout=600)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    episode = re.compile(r"episode \d+: (score \d+, length \d+ frames)")
    # eval lists episodes as they finish, the demo by seed: the same games, another order
    eval_episodes = sorted(m.group(1) for line in eval_lines if (m := episode.fullmatch(line)))
    demo_episodes = sorted(m.group(1) for line in out.stdout.splitlines() if (m := episode.fullmatch(line)))
    assert len(eval_episodes) == 8 and demo_episodes == eval_episodes
    assert out.stdout.splitlines()[-1] == eval_lines[-1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    untrained_checkpoint(out / "policy.pt", "puffer_flappy", [])
    return export(out, "puffer_flappy", out / "policy.pt")


def test_export_writes_named_parameters_in_order(exported):
    description, weights = exported
    policy = policy_for(parse_args("export", "puffer_flappy", []))
    policy.load_state_dict(torch.load(description.parent / "policy.pt", weights_only=True))
    flat = torch.cat([tensor.detach().reshape(-1) for _, tensor in policy.named_parameters()]).numpy()
    assert np.array_equal(np.fromfile(weights, "<f4"), flat)
    lines = description.read_text().splitlines()
    assert lines[:13] == ["flappy-policy 1", "policy Policy", "rnn None", "trained_with puffer_flappy", "obs_scale 8.0",
                          "obs_offset 0.0", "encoder linear 8 128", "encoder gelu", "encoder linear 128 128", "encoder gelu", "actor 128 2",
                          "value 128 1", f"weights {flat.size}"]
    assert "env obs_mode features" in lines and "env gap 100.0" in lines and "env difficulty normal" in lines
    assert "env frame_skip 1" in lines  # the C programs play at the frame_skip the policy was trained with


def run_c(exe, *args):
    out = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=ASAN_ENV, timeout=120)
    return out.returncode, out.stdout, out.stderr


def test_demo_refuses_a_truncated_or_oversized_weights_file(exported, demo, tmp_path):
    description, weights = exported
    data = weights.read_bytes()
    for size, floats in [(len(data) - 4, len(data) // 4 - 1), (40, 10), (len(data) + 8, len(data) // 4 + 2)]:
        (tmp_path / "w.bin").write_bytes((data + bytes(8))[:size])
        assert run_c(demo, description, tmp_path / "w.bin") == (
            2, "", f"flappy_demo: {description} with {tmp_path / 'w.bin'}: the weights hold {floats} floats "
                   f"({4 * floats} bytes), but the description's policy needs 18051 (72204 bytes)\n")
    (tmp_path / "w.bin").write_bytes(data[:-1])
    assert run_c(demo, description, tmp_path / "w.bin") == (
        2, "", f"flappy_demo: {tmp_path / 'w.bin'} has {len(data) - 1} bytes, not a whole number of float32 weights\n")
    assert run_c(demo, description, tmp_path / "missing.bin") == (
        2, "", f"flappy_demo: cannot open {tmp_path / 'missing.bin'}: No such file or directory\n")


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("flappy-policy 1", "flappy-policy 2"),
     "not a policy description of this format: its first line must be 'flappy-policy 1'"),
    (lambda text: text.replace("policy Policy", "policy Transformer"), "unknown policy type 'Transformer'; known: Policy, CNN"),
    (lambda text: text.replace("encoder gelu", "encoder tanh", 1),
     "line 8: unknown layer 'tanh'; known: linear, conv2d, relu, gelu"),
    (lambda text: text.replace("env obs_mode features", "env obs_mode lidar"),
     "line 7: encoder linear takes 8 values, but gets 181"),
    (lambda text: text.replace("actor 128 2", "actor 128 3"), "line 11: the actor head must give 2 values, not 3"),
    (lambda text: text.replace("actor 128 2", "actor 32 2"), "the actor takes 32 values, but gets 128"),
    (lambda text: text.replace("weights 18051", "weights 18050"),
     "the description's layers take 18051 weights, but it says weights 18050"),
    (lambda text: text.replace("env gap 100.0", "env gap wide"), "gap must be a number, got str"),
    (lambda text: text.replace("env gap 100.0", "env gap 1000"), "gap must be in [30, 240], got 1000"),
    (lambda text: text.replace("env gap 100.0", "env gapp 100"),
     "unknown parameter 'gapp'; valid parameters: " + ", ".join(binding.params())),
    (lambda text: text.replace("rnn None", "rnn Recurrent"), "rnn Recurrent needs one lstm line"),
    (lambda text: text.replace("obs_offset 0.0", "obs_offset 300"), "line 6: obs_offset must be a number in [-255, 255]"),
    (lambda text: text.replace("obs_scale 8.0", "obs_scale 300"), "line 5: obs_scale must be a number in (0, 256]"),
    # the line after the last: 13 lines, then one "env" line per parameter
    (lambda text: text + "color blue\n", f"line {14 + len(binding.params())}: unknown key 'color'"),
    (lambda text: text.replace("encoder linear 128 128", "encoder linear 128 99999999999"),
     "line 9: bad or too large sizes in 'encoder linear 128 99999999999'"),
])
def test_demo_refuses_a_description_that_does_not_fit(exported, demo, tmp_path, edit, message):
    description, weights = exported
    (tmp_path / "policy.txt").write_text(edit(description.read_text()))
    assert run_c(demo, tmp_path / "policy.txt", weights) == (
        2, "", f"flappy_demo: {tmp_path / 'policy.txt'} with {weights}: {message}\n")


@pytest.mark.parametrize("args, message", [
    (["--gap", "1000"], "gap must be in [30, 240], got 1000"),
    (["--obs_mode", "lidar"], "these env parameters give lidar observations of shape (181,) float32; the policy takes "
                              "features observations of shape (8,) float32"),
    (["--episodes", "0"], "--episodes must be a whole number in [1, 1000000]"),
    (["--seed", "-1"], "--seed must be a whole number, got '-1'"),
    (["extra"], "expected --episodes N, --seed S, --greedy or --PARAM VALUE, got 'extra'"),
])
def test_demo_options_errors(exported, demo, args, message):
    assert run_c(demo, *exported, *args) == (2, "", f"flappy_demo: {message}\n")


def test_demo_plays_and_summarizes(exported, demo):
    status, out, err = run_c(demo, *exported, "--episodes", "3", "--gap", "150")
    lines = out.splitlines()
    assert status == 0 and err == "" and len(lines) == 4
    assert all(re.fullmatch(r"episode \d: score \d+, length \d+ frames", line) for line in lines[:3])
    assert re.fullmatch(r"3 episodes: mean score \d+\.\d\d, median \d+, max \d+; mean length \d+\.\d frames; "
                        r"\d capped at max_steps, \d crashes in \d+ pipes", lines[3])


@pytest.mark.parametrize("args, message", [
    (["--load-model-path", "/nonexistent/policy.pt"], "checkpoint not found: /nonexistent/policy.pt"),
    (["--out-dir", "/proc/flappy"], "cannot write to /proc/flappy: No such file or directory"),
])
def test_export_errors_are_one_line(exported, args, message, capsys):
    description, _ = exported
    argv = ["export", "puffer_flappy", "--load-model-path", str(description.parent / "policy.pt"), *args]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"puffer: error: {message}\n"


def test_export_refuses_a_checkpoint_of_another_architecture(exported, capsys):
    checkpoint = exported[0].parent / "policy.pt"
    assert main(["export", "puffer_flappy_lidar", "--load-model-path", str(checkpoint)]) == 2
    assert capsys.readouterr().err == (f"puffer: error: checkpoint {checkpoint} was trained on observations of size 8, "
                                       "but this env gives 181\n")
    assert main(["export", "puffer_flappy_pixels", "--load-model-path", str(checkpoint)]) == 2
    assert capsys.readouterr().err.startswith(f"puffer: error: checkpoint {checkpoint} does not fit this policy")
    assert main(["export", "nope", "--load-model-path", str(checkpoint)]) == 2
    assert capsys.readouterr().err.startswith("puffer: error: unknown env 'nope': this puffer runs puffer_flappy, ")
    assert main(["export", "puffer_flappy_lidar", "--load-model-path", "pretrained"]) == 2
    assert capsys.readouterr().err == "puffer: error: no pretrained policy for puffer_flappy_lidar; pretrained policies ship for: puffer_flappy\n"


def test_pretrained_is_a_checkpoint_of_a_whole_run_built_as_recorded():
    """The shipped policy is a checkpoint as `puffer train` writes it, so it is played with the
    game and policy of its record, not the config's of today, and can be trained on."""
    path = pretrained_path("puffer_flappy")
    checkpoint = read_checkpoint(str(path))
    assert checkpoint.record["env_name"] == "puffer_flappy" and checkpoint.record["note"]
    assert checkpoint.trainer["global_step"] >= checkpoint.record["train"]["total_timesteps"]
    assert checkpoint.trainer["optimizer"]["state"]  # Adam's moments, to continue training from
    args = use_pretrained(parse_args("eval", "puffer_flappy", ["--load-model-path", "pretrained"]))
    assert args["load_model_path"] == str(path)
    args["policy"]["hidden_size"], args["env"]["gap"] = 32, 150.0  # as a config retuned since would say
    opened = open_checkpoint(args)
    assert opened.notes == []
    assert args["policy"] == checkpoint.record["policy"] and args["env"]["gap"] == checkpoint.record["env"]["gap"]
    load_into(policy_for(args), opened, args)  # refuses weights that do not fit
    args = use_pretrained(parse_args("eval", "puffer_flappy", ["--load-model-path", "pretrained",
                                                               "--policy.hidden-size", "32"]))
    with pytest.raises(ConfigError, match=f"^--policy.hidden-size 32 cannot load {re.escape(str(path))}, "
                                          "trained with --policy.hidden-size 128$"):
        open_checkpoint(args)
