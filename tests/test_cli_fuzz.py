"""Fuzzing the command line: `puffer train`, `eval` and `bench` as a user would type them, with
in-range, edge and absurd values, each case a real subprocess with a tiny budget and a timeout.

Every case must either work (exit 0), refuse in one line (exit 2), or report a fault in one line
that names its traceback file (exit 1): never a hang, never a traceback on the terminal.
`--cli-fuzz-examples N` sets the examples per command (the long profile: 300).
"""

import os
import re
import subprocess
import sys
import tempfile

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flappy_rl import binding
from flappy_rl.policy import Policy

TIMEOUT = 300  # seconds for one case: a tiny run takes a few, most of them importing torch, but minutes on a busy machine
HUGE = "1000000000000"
# A run of a few hundred steps: 8 birds, rows of 8 steps, minibatches of 64.
TINY_TRAIN = ["--train.total-timesteps", "512", "--env.num-envs", "8", "--train.bptt-horizon", "8",
              "--train.minibatch-size", "64"]
# Values a user might type, as text: in range, on an edge, absurd. Budget options get no value that
# is valid and large (a valid long run is not a fault); `compile` is left out (minutes of C++).
TRAIN_VALUES = {
    "train.learning-rate": ["0.001", "0.03", "0", "-1", "nan", "inf", "1e300", "abc"],
    "train.gamma": ["0.99", "1", "0", "1.5", "-0.1", "nan"],
    "train.gae-lambda": ["0.95", "0", "1", "2", "-1"],
    "train.clip-coef": ["0.2", "0", "-1", "1e9"],
    "train.vf-coef": ["2.0", "0", "-2", "inf"],
    "train.vf-clip-coef": ["0.2", "0", "-1"],
    "train.max-grad-norm": ["1.5", "0", "-1", "nan"],
    "train.ent-coef": ["0.01", "0", "-0.01", "1e9"],
    "train.adam-beta1": ["0.9", "0", "1", "-1"],
    "train.adam-beta2": ["0.999", "1", "2"],
    "train.adam-eps": ["1e-8", "0", "-1e-8"],
    "train.update-epochs": ["1", "2", "0", "-1", "1.5"],
    "train.bptt-horizon": ["1", "4", "7", "16", "0", "-8", HUGE],
    "train.minibatch-size": ["8", "64", "100", "1", "0", "-64", HUGE],
    "train.max-minibatch-size": ["32", "64", "32768", "0", "-1", "48"],
    "train.batch-size": ["auto", "64", "128", "100", "0", "-64", "1.5", "many"],
    "train.total-timesteps": ["1", "64", "1000", "0", "-1", "2.5"],
    "train.checkpoint-interval": ["1", "200", "0", "-1"],
    "train.seed": ["0", "42", "-1", "4294967296", "1e30"],
    "train.device": ["auto", "cpu", "cuda", "tpu", ""],
    "train.precision": ["float32", "bfloat16", "float16", "x"],
    "train.optimizer": ["adam", "muon", "sgd"],
    "train.anneal-lr": ["True", "False", "maybe"],
    "train.torch-deterministic": ["True", "False"],
    "train.cpu-offload": ["True", "False"],
    "train.compile-mode": ["default", "max-autotune-no-cudagraphs", "fastest"],
    "train.vtrace-rho-clip": ["1", "0", "-1"],
    "train.vtrace-c-clip": ["1", "0", "nan"],
    "train.prio-alpha": ["0.8", "0", "-1"],
    "train.prio-beta0": ["0.2", "0", "1", "2"],
    "train.data-dir": ["runs", "/proc/not-here", "/dev/null"],
    "vec.backend": ["PufferEnv", "Serial", "Multiprocessing", "Ray"],
    "vec.num-envs": ["1", "2", "3", "4", "0", "-1", HUGE],
    "vec.num-workers": ["auto", "1", "2", "3", "0", "-1", "64"],
    "vec.batch-size": ["auto", "1", "2", "3", "0", "-1"],
    "vec.zero-copy": ["True", "False"],
    "vec.seed": ["0", "7", "-1", "1099511627776"],
    "env.num-envs": ["1", "8", "64", "0", "-1", HUGE],
}


def env_values():
    """For each C parameter: its default, bounds and middle, just outside them, and absurd text."""
    values, choices = {}, binding.param_choices()
    for name, (default, low, high) in binding.params().items():
        key = f"env.{name.replace('_', '-')}"
        if name in choices:
            values[key] = [*choices[name], "bogus", "0"]
        else:
            number = int if isinstance(default, int) else float
            values[key] = [str(number(v)) for v in (default, low, high, (low + high) / 2, low - 1, high * 10 + 1)]
            values[key] += ["nan", "-inf", "1e300"] if number is float else ["2.5", HUGE]
    return values


TRAIN_FUZZ = {**TRAIN_VALUES, **env_values()}
EVAL_VALUES = {
    "episodes": ["1", "3", "0", "-1", "x"],
    "render-mode": ["None", "rgb_array", "human", "window"],
    "fps": ["0", "1", "30", "50", "51", "-1"],
    "save-frames": ["0", "3", "-1"],
    "gif-path": ["out.gif", "/proc/not-here/out.gif", "/tmp"],
    "render-scale": ["1", "0.25", "0", "-1", "nan", "9"],
    "greedy": ["True", "False"],
    "load-model-path": ["features.pt", "lidar.pt", "missing.pt", "latest"],
    "env.obs-mode": ["features", "lidar", "pixels"],
    "train.device": ["cpu", "cuda", "tpu"],
}
BENCH_VALUES = {
    "seconds": ["0.01", "0", "-1", "nan", "inf", "1e9", "x"],
    "json": ["out.json", "/proc/not-here/out.json", "/tmp", ""],
}


def fuzz_settings(request):
    return settings(max_examples=request.config.getoption("--cli-fuzz-examples"), deadline=None, database=None)


def draw_options(data, values, most=3):
    keys = data.draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=most, unique=True), label="keys")
    argv = []
    for key in keys:
        argv += [f"--{key}", data.draw(st.sampled_from(values[key]), label=key)]
    return argv


def puffer(argv, cwd):
    """Run `puffer ARGV` as a user would, without a display; fails the test on a hang."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    try:
        return subprocess.run([sys.executable, "-m", "flappy_rl.cli", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"puffer {' '.join(argv)} hung (no exit in {TIMEOUT} s)") from None


def assert_clean_exit(out, argv, cwd):
    where = f"puffer {' '.join(argv)}: exit {out.returncode}\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stdout + out.stderr, where
    lines = out.stderr.splitlines()
    if out.returncode == 0:
        return
    assert out.returncode in (1, 2), where
    assert len(lines) == 1 and lines[0].startswith("puffer: error: "), where
    if out.returncode == 1:
        log = re.search(r"the full traceback is in (\S+?)(;|$)", lines[0])
        assert log and os.path.isfile(os.path.join(cwd, log.group(1))), where


def save_policy(path, obs_size):
    class Spaces:
        single_observation_space = type("Box", (), {"shape": (obs_size,)})()
        single_action_space = type("Discrete", (), {"n": 2})()

    torch.save(Policy(Spaces()).state_dict(), path)


def test_puffer_train_exits_cleanly_on_any_setting(request, tmp_path):
    @fuzz_settings(request)
    @given(st.data())
    def case(data):
        argv = ["train", "puffer_flappy", *TINY_TRAIN, *draw_options(data, TRAIN_FUZZ)]
        cwd = tempfile.mkdtemp(dir=tmp_path)
        assert_clean_exit(puffer(argv, cwd), argv, cwd)

    case()


def test_puffer_eval_exits_cleanly_on_any_setting(request, tmp_path):
    save_policy(tmp_path / "features.pt", binding.NUM_FEATURES)
    save_policy(tmp_path / "lidar.pt", binding.obs_spec(obs_mode="lidar")["shape"][0])

    @fuzz_settings(request)
    @given(st.data())
    def case(data):
        argv = ["eval", "puffer_flappy", "--load-model-path", "features.pt", "--episodes", "2",
                *draw_options(data, EVAL_VALUES)]
        assert_clean_exit(puffer(argv, tmp_path), argv, tmp_path)

    case()


def test_puffer_bench_exits_cleanly_on_any_setting(request, tmp_path):
    @fuzz_settings(request)
    @given(st.data())
    def case(data):
        argv = ["bench", "puffer_flappy", "--seconds", "0.01", *draw_options(data, BENCH_VALUES, most=2)]
        assert_clean_exit(puffer(argv, tmp_path), argv, tmp_path)

    case()
