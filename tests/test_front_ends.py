"""Every front end besides `puffer` (python -m flappy_rl and its play, the examples, the bench
helper) refuses bad input as `puffer` does: one line on stderr, exit status 2 for a setting that
cannot work, never a traceback (flappy_rl.cli.exit_status is the one error handling)."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
PPO_EXAMPLE = str(ROOT / "examples" / "ppo_gymnasium.py")


def run(argv, tmp_path, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, *argv], cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("argv,line", [
    # was a traceback from PufferLib: "APIUsageError: num_agents must be >= 1"
    (["-m", "flappy_rl", "--num-envs", "0"],
     "python -m flappy_rl: error: --num-envs must be a whole number of at least 1, got 0"),
    (["-m", "flappy_rl", "--num-envs", "many"], "python -m flappy_rl: error: argument --num-envs: invalid int value: 'many'"),
    (["-m", "flappy_rl", "--seconds", "0"],
     "python -m flappy_rl: error: --seconds must be a number of seconds in (0, 3600], got 0.0"),
    (["-m", "flappy_rl", "--seed", "-1"],
     "python -m flappy_rl: error: --seed must be a whole number in [0, 4294967295], got -1"),
    (["-m", "flappy_rl", "--bogus"], "python -m flappy_rl: error: unrecognized arguments: --bogus"),
    (["-m", "flappy_rl", "play", "--gap", "1000"], "python -m flappy_rl play: error: --gap must be in [30, 240], got 1000"),
    (["-m", "flappy_rl", "play", "--max-steps", "1000000000000"],
     "python -m flappy_rl play: error: --max-steps must be in [1, 1000000000], got 1000000000000"),
    (["-m", "flappy_rl", "play", "--fps", "-1"],
     "python -m flappy_rl play: error: --fps must be an int >= 0 (0: as fast as possible), got -1"),
    (["-m", "flappy_rl", "play", "--render-scale", "9"],
     "python -m flappy_rl play: error: --render-scale must be a number in [0.25, 8], got 9.0"),
    (["-m", "flappy_rl.cli", "play", "puffer_flappy", "--render-scale", "9"],
     "puffer: error: --render-scale must be a number in [0.25, 8], got 9.0"),
    ([PPO_EXAMPLE, "--num-envs", "0"], "ppo_gymnasium.py: error: --num-envs must be at least 1, got 0"),
    ([PPO_EXAMPLE, "--num-minibatches", "0"], "ppo_gymnasium.py: error: --num-minibatches must be at least 1, got 0"),
    ([PPO_EXAMPLE, "--num-envs", "2", "--num-steps", "3", "--num-minibatches", "7"],
     "ppo_gymnasium.py: error: --num-minibatches 7 is more than the 6 samples of a rollout (--num-envs 2 x "
     "--num-steps 3): use at most 6"),
    ([PPO_EXAMPLE, "--threads", "0"], "ppo_gymnasium.py: error: --threads must be at least 1, got 0"),
    ([PPO_EXAMPLE, "--gamma", "2"], "ppo_gymnasium.py: error: --gamma must be at most 1, got 2.0"),
    ([PPO_EXAMPLE, "--learning-rate", "nan"],
     "ppo_gymnasium.py: error: --learning-rate must be a finite number >= 0, got nan"),
    ([PPO_EXAMPLE, "--hidden", "x"], "ppo_gymnasium.py: error: argument --hidden: invalid int value: 'x'"),
    (["-m", "flappy_rl.bench"], "python -m flappy_rl.bench: error: usage: python -m flappy_rl.bench BENCH_JSON README"),
    (["-m", "flappy_rl.bench", "missing.json", "README.md"],
     "python -m flappy_rl.bench: error: missing.json cannot be read (No such file or directory)"),
    (["-m", "flappy_rl.pretrained", "puffer_flappy"],
     "python -m flappy_rl.pretrained: error: usage: python -m flappy_rl.pretrained ENV_NAME CHECKPOINT|latest NOTE"),
    (["-m", "flappy_rl.pretrained", "puffer_flappy", "missing.pt", "a note"],
     "python -m flappy_rl.pretrained: error: checkpoint not found: missing.pt"),
    (["-m", "flappy_rl.pretrained", "puffer_flappy", "latest", "a note"],
     "python -m flappy_rl.pretrained: error: no checkpoint of puffer_flappy in experiments/ to load as 'latest': "
     "train one with 'puffer train puffer_flappy', or pass --load-model-path PATH"),
])
def test_bad_input_is_one_line_and_exit_2(argv, line, tmp_path):
    out = run(argv, tmp_path)
    assert (out.returncode, out.stderr) == (2, line + "\n"), out.stderr[-2000:]


def test_more_birds_than_fit_are_refused_in_one_line(tmp_path):
    """Refused by the memory (this machine) or, where 64 GiB of buffers fit, by the C core's count."""
    out = run(["-m", "flappy_rl", "--num-envs", str(2**31)], tmp_path)
    assert out.returncode == 2 and out.stderr in (
        "python -m flappy_rl: error: --num-envs 2147483648 birds do not fit in this machine's memory: use fewer\n",
        "python -m flappy_rl: error: --num-envs: num_envs must be in [1, 2147483647], got 2147483648\n"), out.stderr


def test_bench_helper_refuses_a_file_that_is_not_its_json(tmp_path):
    (tmp_path / "bench.json").write_text("{}")
    (tmp_path / "page.md").write_text("no markers\n")
    out = run(["-m", "flappy_rl.bench", "bench.json", "page.md"], tmp_path)
    assert out.returncode == 2
    assert out.stderr == ("python -m flappy_rl.bench: error: bench.json is not the JSON that puffer bench --json "
                          "writes (KeyError: 'modes')\n")


@pytest.mark.parametrize("argv", [
    ["--num-minibatches", "7", "--total-timesteps", "40000"],  # a last minibatch of one sample: NaN logits
    ["--num-envs", "2", "--num-steps", "2", "--num-minibatches", "4", "--total-timesteps", "8"],  # one each
])
def test_the_ppo_example_trains_with_any_minibatch_count(argv, tmp_path):
    out = run([PPO_EXAMPLE, *argv], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    total = int(argv[argv.index("--total-timesteps") + 1])
    batch = 512 * 64 if "--num-envs" not in argv else 4
    assert result["steps"] == max(total // batch, 1) * batch
    assert all(math.isfinite(value) for value in result.values()), result  # the loss included
