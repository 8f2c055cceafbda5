"""Settings that PuffeRL or PufferLib's vectorization cannot run are refused before any work
starts, each in one line naming the option and a value that works (flappy_rl.checks)."""

import os
import re
import subprocess
import sys

import psutil
import pytest
import torch

from flappy_rl.checks import check, vec_counts
from flappy_rl.config import parse_args
from flappy_rl.errors import ConfigError


def refusal(mode, argv):
    with pytest.raises(ConfigError) as info:
        check(parse_args(mode, "puffer_flappy", argv))
    return str(info.value)


@pytest.mark.parametrize("argv,message", [
        ("--train.bptt-horizon 3",
         "--train.minibatch-size 8192 is more than one batch (6144 = 2048 agents x 3 bptt steps): use --train.minibatch-size 6144, or a bigger batch (--train.bptt-horizon, --env.num-envs)"),
        ("--train.minibatch-size 1000000",
         "--train.minibatch-size 1000000 is more than one batch (131072 = 2048 agents x 64 bptt steps): use --train.minibatch-size 131072, or a bigger batch (--train.bptt-horizon, --env.num-envs)"),
        ("--train.max-minibatch-size 1000",
         "--train.minibatch-size 8192 is above --train.max-minibatch-size 1000, so it must be a multiple of it (gradients accumulate over whole minibatches): use --train.minibatch-size 960"),
        ("--train.minibatch-size 65536 --train.max-minibatch-size 1000",
         "--train.minibatch-size 65536 is above --train.max-minibatch-size 1000, so it must be a multiple of it (gradients accumulate over whole minibatches): use --train.minibatch-size 960"),
        ("--train.minibatch-size 100",
         "--train.minibatch-size 100 must be a multiple of --train.bptt-horizon 64 (minibatches are whole rows of 64 steps): use --train.minibatch-size 64"),
        ("--train.batch-size 1000",
         "--train.batch-size 1000 must be a multiple of 131072 (agents per vector batch x --train.bptt-horizon 64) and at least 131072 (2048 agents x 64 bptt steps): use auto (131072)"),
        ("--train.batch-size 0",
         "--train.batch-size must be a whole number of at least 1, got 0"),
        ("--train.learning-rate 0",
         "--train.learning-rate must be a finite number in (0, 3.40282e+38), got 0.0"),
        ("--train.learning-rate nan",
         "--train.learning-rate must be a finite number in (0, 3.40282e+38), got nan"),
        ("--train.learning-rate 1e300",
         "--train.learning-rate must be a finite number in (0, 3.40282e+38), got 1e+300"),
        ("--train.gamma 1.5",
         "--train.gamma must be a finite number in (0, 1], got 1.5"),
        ("--train.adam-beta2 1",
         "--train.adam-beta2 must be a finite number in [0, 1), got 1.0"),
        ("--train.ent-anneal-from 1.5",
         "--train.ent-anneal-from must be a finite number in [0, 1], got 1.5"),
        ("--train.update-epochs 0",
         "--train.update-epochs must be a whole number of at least 1, got 0"),
        ("--train.checkpoint-interval 0",
         "--train.checkpoint-interval must be a whole number of at least 1, got 0"),
        ("--train.total-timesteps 0",
         "--train.total-timesteps must be a whole number of at least 1, got 0"),
        ("--train.seed -1",
         "--train.seed must be a whole number in [0, 4294967295], got -1"),
        ("--train.device tpu",
         "unknown --train.device 'tpu'; valid: auto, cpu, cuda"),
        ("--train.precision float16",
         "unknown --train.precision 'float16'; valid: float32, bfloat16"),
        ("--train.optimizer sgd",
         "unknown --train.optimizer 'sgd'; valid: adam, muon"),
        ("--train.optimizer muon",
         "--train.optimizer muon needs the heavyball package: uv pip install heavyball, or use adam"),
        ("--train.compile-mode fastest",
         "unknown --train.compile-mode 'fastest'; valid: default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs"),
        ("--train.data-dir /proc/not-here",
         "--train.data-dir '/proc/not-here' is not a folder that files can be written in (No such file or directory): pass another path"),
        ("--vec.backend Ray",
         "unknown --vec.backend 'Ray'; valid: PufferEnv, Serial, Multiprocessing"),
        ("--vec.num-envs 2",
         "--vec.backend PufferEnv runs one copy of the env in this process, got --vec.num-envs 2: set --vec.num-envs 1 (and --env.num-envs for more birds), or use --vec.backend Serial or Multiprocessing"),
        ("--vec.backend Serial --vec.num-envs 3 --vec.num-workers 2",
         "--vec.num-workers 2 must divide --vec.num-envs 3: use one of 1, 3"),
        ("--vec.backend Serial --vec.num-envs 4 --vec.num-workers 2 --vec.batch-size 3",
         "--vec.batch-size 3 must be a multiple of the copies per worker (--vec.num-envs 4 / --vec.num-workers 2 = 2): use 2, 4, ..."),
        ("--vec.backend Multiprocessing --vec.num-envs 64 --vec.num-workers 64",
         "--vec.num-workers 64 is more than this machine's 2 CPU cores, which PufferLib's Multiprocessing refuses: use at most 2"),
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 1 --vec.batch-size 4",
         "--vec.batch-size 4 must divide --vec.num-envs 2 (Multiprocessing hands out equal batches of copies): use one of 2"),
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 2 --vec.batch-size 1 --vec.zero-copy False",
         "--vec.zero-copy False with --vec.batch-size 1 < --vec.num-envs 2 gives PuffeRL batches of scattered copies, which it cannot index: set --vec.zero-copy True, or --vec.batch-size 2"),
        ("--vec.backend Serial --vec.num-envs 0",
         "--vec.num-envs must be a whole number of at least 1, got 0"),
        ("--vec.seed -1",
         "--vec.seed must be a whole number in [0, 4294967295], got -1"),
        ("--env.num-envs 0",
         "--env.num-envs must be a whole number of at least 1, got 0"),
        ("--env.gap 1000",
         "[env] gap must be in [30, 240], got 1000"),
        ("--env.max-steps 1000000000000",
         "[env] max_steps must be in [1, 1000000000], got 1000000000000"),
        ("--env.max-steps 1e12",
         "[env] max_steps must be in [1, 1000000000], got 1000000000000"),
        ("--train.seed 1e30",  # read through a float, it was 10**30 + 19884624838656
         "--train.seed must be a whole number in [0, 4294967295], got 1000000000000000000000000000000"),
        ("--env.gap -inf",  # argparse took -inf for an option: "expected one argument"
         "[env] gap must be in [30, 240], got -inf"),
        ("--train.adam-eps -1e-8",
         "--train.adam-eps must be a finite number in (0, 3.40282e+38), got -1e-08"),
        ("--rnn-name Recurrent --rnn.input-size 32",
         "--rnn.input-size 32 must equal the policy's hidden size (--policy.hidden-size 128): the LSTM sits between the policy's encoder and its heads"),
        ("--rnn-name LSTM",
         "unknown rnn_name 'LSTM'; valid: Recurrent or None"),
        ("--policy.hidden-size 0",
         "--policy.hidden-size must be a whole number of at least 1, got 0"),
])
def test_train_refuses_what_puffer_cannot_run(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert refusal("train", argv.split()) == message


CORES = psutil.cpu_count(logical=False) or 1


def pufferlib_runs(backend, copies, workers, batch, zero_copy):
    """PufferLib's rules for a vector layout (pufferlib.vector.make and its backends), and
    PuffeRL's: it indexes a batch smaller than all the copies as one block, so zero_copy."""
    per_worker = copies // workers
    if copies % workers or batch < 1 or batch % per_worker:
        return False
    if backend == "Serial":
        return True
    return workers <= CORES and copies % batch == 0 and (zero_copy or batch == copies)


def worker_settings(backend, copies):
    return ["auto", *(w for w in range(1, copies + 1) if copies % w == 0 and (backend == "Serial" or w <= CORES))]


@pytest.mark.parametrize("backend,copies,workers,zero_copy", [
    (backend, copies, workers, zero_copy)
    for backend in ("Serial", "Multiprocessing") for copies in range(1, 13)
    for workers in worker_settings(backend, copies) for zero_copy in (True, False)])
def test_auto_vec_settings_resolve_to_a_layout_pufferlib_runs(backend, copies, workers, zero_copy, tmp_path,
                                                              monkeypatch):
    """`--vec.batch-size auto` (and num_workers auto) were resolved as PufferLib resolves them,
    half the copies, whatever the workers: 2 copies on 1 Multiprocessing worker were refused."""
    monkeypatch.chdir(tmp_path)
    args = parse_args("train", "puffer_flappy", ["--vec.backend", backend, "--vec.num-envs", str(copies),
                                                 "--vec.num-workers", str(workers), "--vec.zero-copy", str(zero_copy),
                                                 "--env.num-envs", "8", "--train.minibatch-size", "64"])
    check(args)
    resolved_workers, batch = vec_counts(args["vec"])
    assert workers == "auto" or resolved_workers == workers
    assert pufferlib_runs(backend, copies, resolved_workers, batch, zero_copy)
    pufferlib_auto = 1 if copies == 1 else copies // 2  # kept wherever it runs, as before
    if pufferlib_runs(backend, copies, resolved_workers, pufferlib_auto, zero_copy):
        assert batch == pufferlib_auto


def test_auto_batch_size_runs_on_one_multiprocessing_worker(tmp_path):
    run = subprocess.run([sys.executable, "-m", "flappy_rl.cli", "train", "puffer_flappy", "--vec.backend",
                          "Multiprocessing", "--vec.num-envs", "2", "--vec.num-workers", "1", "--env.num-envs", "64",
                          "--train.total-timesteps", "4096", "--train.bptt-horizon", "16",
                          "--train.minibatch-size", "1024", "--train.data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("model saved to ")


@pytest.mark.parametrize("argv", ["--train.bptt-horizon 3", "--train.minibatch-size 1000000",
                                  "--train.max-minibatch-size 1000", "--train.minibatch-size 100",
                                  "--train.minibatch-size 65536 --train.max-minibatch-size 1000",
                                  "--env.num-envs 100 --train.bptt-horizon 3 --train.minibatch-size 100"])
def test_the_suggested_minibatch_size_is_accepted(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suggestion = re.search(r"use --train.minibatch-size (\d+)", refusal("train", argv.split())).group(1)
    check(parse_args("train", "puffer_flappy", [*argv.split(), "--train.minibatch-size", suggestion]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refusal("train", ["--train.device", "cuda"])
    assert message == "--train.device cuda, but torch sees no GPU here: use --train.device cpu (or auto)"


def test_buffers_that_cannot_fit_in_memory_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refusal("train", ["--env.num-envs", "1000000000"])
    assert re.fullmatch(r"this run needs about 4425.6 GiB for its buffers and [0-9.]+ GiB is free: use fewer agents "
                        r"\(--env.num-envs, --vec.num-envs\) or a shorter --train.bptt-horizon", message), message


def test_a_run_shorter_than_one_batch_is_rounded_up_to_one_batch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = parse_args("train", "puffer_flappy", ["--train.total-timesteps", "60000"])
    check(args)
    assert args["train"]["total_timesteps"] == 131072
    assert capsys.readouterr().err == ("puffer: note: --train.total-timesteps 60000 is less than one batch (131072); "
                                       "training one batch\n")


@pytest.mark.parametrize("mode,argv,message", [
    ("eval", "--episodes 0", "--episodes must be at least 1, got 0"),
    ("eval", "--episodes -3", "--episodes must be at least 1, got -3"),
    ("eval", "--fps 51", "--fps must be in [0, 50] (GIF frames are whole hundredths of a second), got 51"),
    ("eval", "--render-scale 0", "--render-scale must be a number in [0.25, 8], got 0.0"),
    ("eval", "--save-frames 2 --gif-path /proc/not-here/x.gif",
     "--gif-path '/proc/not-here/x.gif' cannot be written (No such file or directory): pass another path"),
    ("bench", "--seconds 0", "--seconds must be a number of seconds in (0, 3600], got 0.0"),
    ("bench", "--seconds nan", "--seconds must be a number of seconds in (0, 3600], got nan"),
    ("bench", "--json /proc/not-here.json",
     "--json '/proc/not-here.json' cannot be written (No such file or directory): pass another path"),
    ("autotune", "--max-envs 1 --batch-size 2", "--max-envs 1 must be at least --batch-size 2"),
    ("autotune", "--time-per-test inf", "--time-per-test must be a number of seconds in (0, 3600], got inf"),
])
def test_other_modes_refuse_what_cannot_run(mode, argv, message):
    assert refusal(mode, argv.split()) == message


@pytest.mark.parametrize("argv,local_ranks,warned,rank", [
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 1 --vec.batch-size 2", "2", False, "1"),
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 2", "1", True, "0"),
        ("--vec.backend Multiprocessing --vec.num-envs 2", "1", True, "0"),  # auto: a worker a copy
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 1 --vec.batch-size 2", "1", False, "0"),
        ("--vec.backend Multiprocessing --vec.num-envs 2 --vec.num-workers 1 --vec.batch-size 2", "2", True, "0"),  # two ranks' workers
        ("--vec.backend Serial --vec.num-envs 2", "1", False, "0"),
        ("", "2", False, "0"),
])
def test_as_many_spinning_workers_as_cores_get_one_warning_line(monkeypatch, capsys, argv, local_ranks, warned, rank):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})  # the 2 cores these messages assume
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local_ranks)
    monkeypatch.setenv("RANK", rank)  # under torchrun only rank 0 warns
    check(parse_args("train", "puffer_flappy", argv.split()))
    lines = capsys.readouterr().err.splitlines()
    if not warned:
        assert lines == []
        return
    (line,) = lines
    busy = "2 Multiprocessing workers" if local_ranks == "1" else "2 Multiprocessing workers (1 on each of 2 ranks)"
    assert line == (f"puffer: warning: {busy} busy-wait on all 2 CPU cores, leaving none for the learner; "
                    "--vec.backend PufferEnv (the default) or fewer workers trained faster on such a machine "
                    "(docs/experiments/2026-12-03-oversubscription.md)")


def test_one_spinning_worker_on_one_core_is_warned_of_in_the_singular(monkeypatch, capsys):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    check(parse_args("train", "puffer_flappy", "--vec.backend Multiprocessing --vec.num-envs 1".split()))
    assert capsys.readouterr().err.startswith(
        "puffer: warning: 1 Multiprocessing worker busy-waits on the one CPU core, leaving none for the learner; ")
