"""Data-parallel training under torchrun (two CPU ranks, gloo): one policy, the same weights on
every rank, all ranks' steps counted, rank 0 alone writing files, and faults that end every rank
with one line."""

import contextlib
import csv
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from flappy_rl import distributed
from flappy_rl.config import load_config
from flappy_rl.errors import ConfigError

BIN = pathlib.Path(sys.executable).parent
TORCHRUN = [str(BIN / "torchrun")]
CLI = [sys.executable, "-m", "flappy_rl.cli"]
# 256 birds (128 a rank) x 64 steps: batches of 16384 steps in all, about 20 of them.
SMALL_RUN = ["--env.num-envs", "256", "--train.minibatch-size", "4096", "--train.total-timesteps", "300000"]
BOUND = 600  # seconds: a bound for a hang, not a speed


def run(command, cwd, **kwargs):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BOUND, **kwargs)


def puffer_lines(stderr):
    """The lines the ranks themselves print on stderr (torchrun adds its own report)."""
    return [line for line in stderr.splitlines() if line.startswith("puffer:")]


def checkpoint_digest(path):
    """The digest the ranks compare, of the weights in this checkpoint."""
    return distributed.state_digest(torch.load(path, weights_only=True)["weights"])


def check_one_run_written(folder, stdout):
    """Rank 0 alone wrote the run: one model, one learning curve, its PNG, and the ranks' weights
    agreed with what it saved. Returns the curve's rows."""
    (model,) = (folder / "experiments").glob("*.pt")
    (curve,) = (folder / "experiments").glob("*.csv")
    assert curve.with_suffix(".png").exists() and curve.stem == model.stem
    assert f"model saved to experiments/{model.name}" in stdout.splitlines()
    assert stdout.count("model saved to") == 1
    (agreed,) = re.findall(r"all 2 ranks hold the same weights \(sha256 ([0-9a-f]{64})\)", stdout)
    assert agreed == checkpoint_digest(model)
    with open(curve) as rows:
        return list(csv.DictReader(rows))


def test_two_ranks_train_one_policy_through_the_puffer_script(tmp_path):
    """torchrun --nproc-per-node 2 --no-python puffer train ...: the steps logged are both ranks'
    (each rank collects 128 birds x 64 steps an update, and the curve counts 16384 an update),
    the run stops at total_timesteps counted over both, and eval plays the saved model."""
    train = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "--no-python", str(BIN / "puffer"),
                 "train", "puffer_flappy", *SMALL_RUN], tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    rows = check_one_run_written(tmp_path, train.stdout)
    steps = [int(row["agent_steps"]) for row in rows]
    assert all(step % 16384 == 0 for step in steps), steps
    # Training ends at the first update past 300000 steps (19 x 16384), which is always logged.
    assert steps[-1] == 19 * 16384, steps
    evaluate = run([*CLI, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "2"], tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    assert evaluate.stdout.strip().splitlines()[-1].startswith("2 episodes: mean score ")


def test_ranks_with_multiprocessing_workers_close_them_without_a_word(tmp_path):
    """Each rank's workers are closed with SIGTERM (PufferLib's close()): they must die of it,
    not run the rank's own SIGTERM handler and print its traceback."""
    train = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "flappy_rl.cli", "train", "puffer_flappy",
                 "--vec.backend", "Multiprocessing", "--vec.num-envs", "2", "--vec.num-workers", "1",
                 *SMALL_RUN[:4], "--train.total-timesteps", "50000"], tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Traceback" not in train.stderr, train.stderr[-3000:]
    (warning,) = puffer_lines(train.stderr)  # the oversubscription warning alone
    assert warning.startswith("puffer: warning: 2 Multiprocessing workers (1 on each of 2 ranks) busy-wait "), warning
    check_one_run_written(tmp_path, train.stdout)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_launches_as_two_nodes_train_to_the_same_weights(tmp_path):
    """Two torchrun launches with --nnodes 2, one process each, meeting over TCP on localhost
    through the c10d rendezvous, as two machines would."""
    port = free_port()
    launches = []
    for node in (0, 1):
        folder = tmp_path / f"node{node}"
        folder.mkdir()
        launches.append(subprocess.Popen(
            [*TORCHRUN, "--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1", "--rdzv-backend", "c10d",
             "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "flappy-test", "-m", "flappy_rl.cli", "train",
             "puffer_flappy", *SMALL_RUN], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [launch.communicate(timeout=BOUND) for launch in launches]
    for launch, (_, stderr) in zip(launches, outputs):
        assert launch.returncode == 0, stderr[-3000:]
    # The rendezvous numbers the ranks: whichever node got rank 0 wrote the run, the other nothing.
    written = [node for node in (0, 1) if (tmp_path / f"node{node}" / "experiments").exists()
               and any((tmp_path / f"node{node}" / "experiments").glob("*.pt"))]
    assert len(written) == 1, written
    check_one_run_written(tmp_path / f"node{written[0]}", outputs[written[0]][0])
    assert "model saved to" not in outputs[1 - written[0]][0]


def rank_environ(rank=0, size=2):
    return dict(os.environ, RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(size),
                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))


@pytest.mark.parametrize("overrides, message", [
    (["--env.num-envs", "1", "--train.minibatch-size", "64"],
     "2 ranks, but --env.num-envs is 1: each rank needs birds of its own; use at least 2 birds or fewer ranks "
     "(rank 0 of 2; every rank refuses alike)"),
    (["--env.num-envs", "255"], "--env.num-envs 255 does not divide by the 2 ranks: each rank plays an equal share; "
                                "use a multiple of 2 (rank 0 of 2; every rank refuses alike)"),
    (["--env.num-envs", "256", "--train.minibatch-size", "4096", "--train.max-minibatch-size", "4097"],
     "--train.max-minibatch-size 4097 does not divide by the 2 ranks (each rank takes an equal share): use a "
     "multiple of 2 (rank 0 of 2; every rank refuses alike)"),
    (["--env.num-envs", "256", "--train.minibatch-size", "64"],
     "a minibatch of 64 steps over 2 ranks is 32 a rank, which must be a multiple of --train.bptt-horizon 64: use "
     "a minibatch of a multiple of 128 steps (rank 0 of 2; every rank refuses alike)"),
    (["--train.dist-timeout", "0"], "--train.dist-timeout must be a positive number of seconds, got 0.0"),
    (["--train.device", "cuda"], "--train.device cuda, but torch sees no GPU here"),
])
def test_a_rank_refuses_what_cannot_run_before_any_process_group(tmp_path, overrides, message):
    """Refused on the rank's own settings, before it waits for any other rank: a lone rank 0 of a
    world of 2 (nobody else ever comes) gets its one line and exit 2 at once."""
    if overrides == ["--train.device", "cuda"] and torch.cuda.is_available():
        pytest.fail("this test expects a machine without a GPU")
    refused = run([*CLI, "train", "puffer_flappy", *overrides], tmp_path, env=rank_environ())
    assert refused.returncode == 2, refused.stderr[-2000:]
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"puffer: error: {message}"), line
    assert not (tmp_path / "experiments").exists()


def test_every_rank_refuses_alike_under_torchrun(tmp_path):
    refused = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "flappy_rl.cli", "train", "puffer_flappy",
                   "--env.num-envs", "3", "--train.minibatch-size", "64"], tmp_path)
    assert refused.returncode != 0
    lines = puffer_lines(refused.stderr)
    assert sorted(lines) == [f"puffer: error: --env.num-envs 3 does not divide by the 2 ranks: each rank plays an "
                             f"equal share; use a multiple of 2 (rank {rank} of 2; every rank refuses alike)"
                             for rank in (0, 1)]


def test_nccl_needs_a_gpu_per_rank(monkeypatch):
    """NCCL is chosen for cuda; more ranks on a machine than its GPUs is refused (checked here
    with torch's GPU count replaced, as this machine has none)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    args = load_config("puffer_flappy")
    with pytest.raises(ConfigError, match=r"^NCCL needs a GPU per rank: torchrun started 2 ranks on this machine, "
                                          r"which has 1 GPU: use --nproc-per-node 1, or --train.device cpu \(gloo\)"):
        distributed.check(args, distributed.World(0, 2, 0, 2), "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigError, match="needs NCCL and a GPU, and this machine has no GPU"):
        distributed.check(args, distributed.World(0, 2, 0, 2), "cuda")
    assert distributed.backend_for("cuda") == "nccl" and distributed.backend_for("cpu") == "gloo"


def test_each_rank_gets_its_share_and_its_own_seeds():
    args = load_config("puffer_flappy")
    args["train"]["batch_size"] = 262144
    shards = [distributed.shard(args, distributed.World(rank, 2, rank, 2)) for rank in (0, 1)]
    assert [shard["env"]["num_envs"] for shard in shards] == [1024, 1024]
    assert [shard["train"]["batch_size"] for shard in shards] == [131072, 131072]
    assert [shard["train"]["minibatch_size"] for shard in shards] == [4096, 4096]
    assert [shard["train"]["seed"] for shard in shards] == [42, 43]
    assert [shard["vec"]["seed"] for shard in shards] == [42, 43]
    assert [shard["train"]["total_timesteps"] for shard in shards] == [36_000_000, 36_000_000]  # all ranks' steps
    assert args["env"]["num_envs"] == 2048  # the whole run's settings stay as they were


# Rank 1 of this launcher fails in its 300th env step (its fifth update), after the process
# group has formed and training has begun.
FAILING_RANK = """
import os, sys
import flappy_rl.env
if os.environ["RANK"] == "1":
    step, calls = flappy_rl.env.Flappy.step, [0]
    def failing_step(self, actions):
        calls[0] += 1
        if calls[0] == 300:
            raise ZeroDivisionError("injected into rank 1")
        return step(self, actions)
    flappy_rl.env.Flappy.step = failing_step
from flappy_rl.cli import main
sys.exit(main())
"""


def test_a_failing_rank_stops_the_others_with_one_line_naming_it(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING_RANK)
    train = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "failing.py", "train", "puffer_flappy",
                 *SMALL_RUN[:-1], "1e9"], tmp_path)
    assert train.returncode != 0
    (run_folder,) = [path for path in (tmp_path / "experiments").iterdir() if path.is_dir()]
    log = f"experiments/{run_folder.name}/error-rank1.log"
    (first, second) = sorted(puffer_lines(train.stderr))
    assert first.startswith(f"puffer: error: rank 0 of 2 stopped: rank 1 failed with ZeroDivisionError: injected into "
                            f"rank 1; its traceback is in {log}; the policy so far is saved to experiments/"), first
    assert second == (f"puffer: error: rank 1 of 2: train failed with ZeroDivisionError: injected into rank 1; the "
                      f"full traceback is in {log}")
    assert "ZeroDivisionError: injected into rank 1" in (tmp_path / log).read_text()
    assert 'in failing_step' in (tmp_path / log).read_text()


def rank_pids(launcher_pid):
    """{rank: pid} of the processes torchrun started, read from /proc."""
    found = {}
    for environ in pathlib.Path("/proc").glob("[0-9]*/environ"):
        try:
            stat = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()
            variables = dict(item.split("=", 1) for item in environ.read_bytes().decode().split("\0") if "=" in item)
        except (OSError, UnicodeDecodeError):
            continue
        if int(stat[1]) == launcher_pid and "RANK" in variables:
            found[int(variables["RANK"])] = int(environ.parent.name)
    return found


def start_long_run(tmp_path):
    """A two-rank run that would train for hours, once rank 0 has drawn its dashboard twice."""
    out = open(tmp_path / "train.out", "w")
    launch = subprocess.Popen([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "flappy_rl.cli", "train",
                               "puffer_flappy", *SMALL_RUN[:-1], "1e10"], cwd=tmp_path, stdout=out,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + BOUND
    while (tmp_path / "train.out").read_text().count("Epoch") < 3 and time.time() < deadline:
        assert launch.poll() is None, launch.communicate()
        time.sleep(0.2)
    return launch


def finish(launch):
    try:
        return launch.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)
        pytest.fail("the other rank hung")


def test_a_killed_rank_stops_the_others_with_one_line_naming_it(tmp_path):
    """torchrun sends SIGTERM to rank 0 when rank 1 dies, at any moment of rank 0's own stopping;
    here it comes every few milliseconds until rank 0 exits, and must cut nothing short."""
    launch = start_long_run(tmp_path)
    ranks = rank_pids(launch.pid)
    os.kill(ranks[1], signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        while launch.poll() is None:
            os.kill(ranks[0], signal.SIGTERM)
            time.sleep(0.005)
    stderr = finish(launch)
    assert launch.returncode != 0
    (line,) = puffer_lines(stderr)
    assert line.startswith("puffer: error: rank 0 of 2 stopped: rank 1 left the run without a word (killed, or no "
                           "longer answering); the policy so far is saved to experiments/"), stderr[-3000:]
    saved = line.rsplit(" ", 1)[1]
    assert (tmp_path / saved).exists() and not (tmp_path / "experiments" / "errors").exists()


def test_ctrl_c_saves_one_checkpoint_from_rank_0(tmp_path):
    launch = start_long_run(tmp_path)
    os.killpg(launch.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: every process of the group
    stderr = finish(launch)
    saved = [line for line in stderr.splitlines() if line.startswith("interrupted: the policy so far is saved to ")]
    (model,) = (tmp_path / "experiments").glob("*.pt")
    assert saved == [f"interrupted: the policy so far is saved to experiments/{model.name}"], stderr[-3000:]
    assert puffer_lines(stderr) == []
    evaluate = run([*CLI, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "1"], tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]


@pytest.mark.parametrize("target", ["torchrun", "group"])
def test_sigterm_to_torchrun_or_every_process_stops_the_run_as_ctrl_c_does(tmp_path, target):
    """A scheduler ends a job with SIGTERM, to its command (torchrun, which passes it to the ranks)
    or to every process: no rank failed, so rank 0 saves, says so in one line, and exits 143."""
    launch = start_long_run(tmp_path)
    if target == "group":
        os.killpg(launch.pid, signal.SIGTERM)
    else:
        launch.send_signal(signal.SIGTERM)
    stderr = finish(launch)
    (model,) = (tmp_path / "experiments").glob("*.pt")
    saved = [line for line in stderr.splitlines() if line.startswith("stopped by SIGTERM")]
    assert saved == [f"stopped by SIGTERM: the policy so far is saved to experiments/{model.name}"], stderr[-3000:]
    # torchrun reports its own SIGTERM with a traceback of its own; no rank prints one
    assert puffer_lines(stderr) == [] and "flappy_rl/" not in stderr, stderr[-3000:]
    assert not (tmp_path / "experiments" / model.stem / "error-rank0.log").exists()


@pytest.mark.learning
def test_two_ranks_with_half_the_birds_each_learn_like_one_process(tmp_path):
    """3M steps in all, 512 birds a rank (one process: 1024), then 100 evaluation episodes; about
    a minute and a half on a 2-core CPU. Measured 2026-12-03 (docs/experiments/2026-12-03-data-
    parallel.md): two ranks 19.3 and 50.2 pipes for seeds 0 and 1, one process 64.1 and 52.2.
    An all-reduce that returns zeros leaves the policy at 0.0; one that leaves each rank its own
    gradient reaches 57.1, above any threshold, and is caught by the ranks' weight digests,
    which then differ (the run ends with an error)."""
    train = run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "flappy_rl.cli", "train", "puffer_flappy",
                 "--env.num-envs", "1024", "--train.total-timesteps", "3000000"], tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    check_one_run_written(tmp_path, train.stdout)
    evaluation = run([*CLI, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "100"], tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    summary = evaluation.stdout.strip().splitlines()[-1]
    print(summary)
    assert float(re.match(r"100 episodes: mean score ([\d.]+),", summary).group(1)) >= 10, summary
