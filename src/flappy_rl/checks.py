"""What PufferLib can run, checked before any work starts.

PuffeRL and `pufferlib.vector.make` check some of their settings with an exception deep inside
training (after forking workers and allocating buffers), check others not at all (a
`total_timesteps` below one batch divides by zero in `PuffeRL.train`, a `checkpoint_interval`
of 0 takes a modulo by zero, a batch that is not a whole number of vector batches overruns its
buffer), and name their own parameters, not the `puffer` options that set them. This module
derives every such requirement from the args dict and refuses a setting in one line that names
the option(s) and values that would work (a `ConfigError`: exit status 2).

The one thing adjusted instead of refused: a run shorter than one batch is rounded up to one
batch, with a note on stderr, since PuffeRL trains in whole batches and a short first try is
what such a setting means.
"""

import errno
import importlib.util
import inspect
import math
import os
import sys
import tempfile

import numpy as np

from flappy_rl import binding
from flappy_rl.config import c_params
from flappy_rl.errors import ConfigError

BACKENDS = ("PufferEnv", "Serial", "Multiprocessing")
DEVICES = ("auto", "cpu", "cuda")  # PuffeRL passes the device to torch.amp.autocast as its device_type
PRECISIONS = ("float32", "bfloat16")
OPTIMIZERS = ("adam", "muon")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SEED_LIMIT = 2**32
# [train] numbers meet float32 tensors (the learning rate in Adam's state, coefficients in the loss).
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The most seconds a timed option may ask for: an hour is more than any measurement needs.
MAX_SECONDS = 3600.0

# [train] numbers: (lowest, highest, whether each bound is allowed). PuffeRL checks none of them.
TRAIN_RANGES = {
    "learning_rate": (0.0, FLOAT32_MAX, False, False),
    "gamma": (0.0, 1.0, False, True),
    "gae_lambda": (0.0, 1.0, True, True),
    "clip_coef": (0.0, FLOAT32_MAX, False, False),
    "vf_coef": (0.0, FLOAT32_MAX, True, False),
    "vf_clip_coef": (0.0, FLOAT32_MAX, False, False),
    "max_grad_norm": (0.0, FLOAT32_MAX, False, False),
    "ent_coef": (0.0, FLOAT32_MAX, True, False),
    "ent_anneal_from": (0.0, 1.0, True, True),
    "adam_beta1": (0.0, 1.0, True, False),
    "adam_beta2": (0.0, 1.0, True, False),
    "adam_eps": (0.0, FLOAT32_MAX, False, False),
    "vtrace_rho_clip": (0.0, FLOAT32_MAX, False, False),
    "vtrace_c_clip": (0.0, FLOAT32_MAX, False, False),
    "prio_alpha": (0.0, FLOAT32_MAX, True, False),
    "prio_beta0": (0.0, 1.0, True, True),
}
# [train] counts that must be at least 1 (update_epochs 0 leaves PuffeRL.train without advantages).
TRAIN_COUNTS = ("total_timesteps", "update_epochs", "checkpoint_interval", "bptt_horizon", "minibatch_size",
                "max_minibatch_size")


def option(key):
    return "--" + key.replace("_", "-")


# Where the config keeps the birds of one copy of the env (one `Flappy`), the size that
# PufferLib's backends multiply.
ENVS_PER_COPY = "env.num_envs"
ENVS_PER_COPY_OPTION = option(ENVS_PER_COPY)


def envs_per_copy(args):
    section, key = ENVS_PER_COPY.split(".")
    return args[section][key]


def refuse(message):
    raise ConfigError(message)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def require_count(key, value, lowest=1):
    if not is_int(value) or value < lowest:
        refuse(f"{option(key)} must be a whole number of at least {lowest}, got {value!r}")


def require_in_range(key, value, low, high, low_ok, high_ok):
    inside = (low <= value if low_ok else low < value) and (value <= high if high_ok else value < high)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not inside:
        interval = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
        refuse(f"{option(key)} must be a finite number in {interval}, got {value!r}")


def require_seed(key, value):
    if not is_int(value) or not 0 <= value < SEED_LIMIT:
        refuse(f"{option(key)} must be a whole number in [0, {SEED_LIMIT - 1}], got {value!r}")


def require_seconds(key, value):
    if not 0 < value <= MAX_SECONDS or not math.isfinite(value):
        refuse(f"{option(key)} must be a number of seconds in (0, {MAX_SECONDS:g}], got {value!r}")


def divisors(n, limit=6):
    found = [d for d in range(1, min(n, 10**6) + 1) if n % d == 0]
    return ", ".join(map(str, found[:limit])) + (", ..." if len(found) > limit else "")


def check_env(args):
    """The C core's parameters and the copy size: the binding's own validation, as one line."""
    try:
        binding.check_params(**c_params(args))
    except (TypeError, ValueError) as error:
        refuse(f"[env] {error}")
    require_count(ENVS_PER_COPY, envs_per_copy(args))


def check_device(args):
    device = args["train"]["device"]
    if device not in DEVICES:
        refuse(f"unknown --train.device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            refuse("--train.device cuda, but torch sees no GPU here: use --train.device cpu (or auto)")


class Layout:
    """How PufferLib's vectorization will lay the agents out, as `pufferlib.vector.make` and the
    backends compute it: agents in all (PuffeRL's total_agents) and per `recv` (a batch)."""

    def __init__(self, total_agents, agents_per_batch):
        self.total_agents = total_agents
        self.agents_per_batch = agents_per_batch


def smallest_factor(n):
    """The smallest divisor of n above 1 (n itself when n is prime), for n >= 2."""
    return next((d for d in range(2, math.isqrt(n) + 1) if n % d == 0), n)


def auto_batch_size(backend, copies, workers, zero_copy):
    """What `[vec] batch_size = auto` stands for: PufferLib's own choice, half the copies (so that
    Multiprocessing steps one half of its workers while the policy reads the other), wherever the
    backend accepts that; else the largest batch below half that it accepts; else all the copies.
    PufferLib resolves auto to half the copies without looking at the workers, which its own
    backends then refuse (2 copies on 1 worker: a batch of 1 is not a multiple of 2 per worker).
    workers must divide copies."""
    per_worker = copies // workers
    if backend == "Multiprocessing":
        # Batches are whole workers and equal (a number of workers dividing workers); without
        # zero_copy only all the copies at once.
        if workers == 1 or not zero_copy:
            return copies
        return per_worker * (workers // smallest_factor(workers))
    return per_worker * ((copies // 2) // per_worker) or copies  # Serial: any whole number of workers


def physical_cores():
    import psutil

    return psutil.cpu_count(logical=False) or 1


def auto_num_workers(backend, copies):
    """What `[vec] num_workers = auto` stands for: PufferLib's own choice, a worker per copy, except
    that Multiprocessing gets no more workers than cores (which it refuses): the most that divide
    the copies."""
    if backend != "Multiprocessing":
        return copies
    return max(d for d in range(1, min(copies, physical_cores()) + 1) if copies % d == 0)


def vec_counts(vec):
    """([vec] num_workers, batch_size) with `auto` resolved as check_vec checks them and
    make_vecenv hands them to PufferLib; for the Serial and Multiprocessing backends."""
    copies = vec["num_envs"]
    workers = auto_num_workers(vec["backend"], copies) if vec["num_workers"] == "auto" else vec["num_workers"]
    if vec["batch_size"] != "auto" or not is_int(workers) or workers < 1 or copies % workers:
        return workers, vec["batch_size"]  # check_vec refuses a wrong worker count before using a batch
    return workers, auto_batch_size(vec["backend"], copies, workers, vec["zero_copy"])


def check_vec(args):
    """[vec] against pufferlib.vector.make and the backends; returns the agents' Layout."""
    vec, per_copy = args["vec"], envs_per_copy(args)
    backend, copies = vec["backend"], vec["num_envs"]
    if backend not in BACKENDS:
        refuse(f"unknown --vec.backend {backend!r}; valid: {', '.join(BACKENDS)}")
    require_count("vec.num_envs", copies)
    require_seed("vec.seed", vec["seed"])
    if backend == "PufferEnv":
        if copies != 1:
            refuse(f"--vec.backend PufferEnv runs one copy of the env in this process, got --vec.num-envs {copies}: "
                   f"set --vec.num-envs 1 (and {ENVS_PER_COPY_OPTION} for more birds), or use --vec.backend Serial "
                   "or Multiprocessing")
        return Layout(per_copy, per_copy)
    workers, batch = vec_counts(vec)
    require_count("vec.num_workers", workers)
    if copies % workers:
        refuse(f"--vec.num-workers {workers} must divide --vec.num-envs {copies}: use one of {divisors(copies)}")
    per_worker = copies // workers
    require_count("vec.batch_size", batch)
    if batch % per_worker:
        refuse(f"--vec.batch-size {batch} must be a multiple of the copies per worker (--vec.num-envs {copies} / "
               f"--vec.num-workers {workers} = {per_worker}): use {per_worker}, {2 * per_worker}, ...")
    if backend == "Serial":
        # PufferLib's Serial backend steps vec.batch_size copies, all in each call.
        return Layout(batch * per_copy, batch * per_copy)
    cores = physical_cores()
    if workers > cores:
        refuse(f"--vec.num-workers {workers} is more than this machine's {cores} CPU cores, which PufferLib's "
               f"Multiprocessing refuses: use at most {cores}")
    if batch > copies or copies % batch:
        refuse(f"--vec.batch-size {batch} must divide --vec.num-envs {copies} (Multiprocessing hands out equal "
               f"batches of copies): use one of {', '.join(str(d) for d in range(per_worker, copies + 1, per_worker) if copies % d == 0)}")
    if batch < copies and not vec["zero_copy"]:
        refuse(f"--vec.zero-copy False with --vec.batch-size {batch} < --vec.num-envs {copies} gives PuffeRL batches of "
               "scattered copies, which it cannot index: set --vec.zero-copy True, or --vec.batch-size "
               f"{copies}")
    return Layout(copies * per_copy, batch * per_copy)


class Spaces:
    """What a policy reads of an env: its spaces, for these [env] parameters."""

    def __init__(self, args):
        import gymnasium

        from flappy_rl.env import observation_space

        self.single_observation_space = observation_space(**c_params(args))
        self.single_action_space = gymnasium.spaces.Discrete(2)


def policy_name_option(name):
    return f"--policy-name {name}"


def default_of(cls, name):
    return inspect.signature(cls).parameters[name].default


def check_policy(args):
    """[base] policy_name / rnn_name and the sizes the LSTM needs to sit between encoder and heads."""
    from flappy_rl.policy import POLICIES, RECURRENT  # imports torch: only the modes that need it pay

    name, rnn_name = args["policy_name"], args["rnn_name"]
    if name not in POLICIES:
        refuse(f"unknown policy_name {name!r}; valid: {', '.join(POLICIES)}")
    for key, value in args["policy"].items():
        if key in ("hidden_size", "num_layers", "channels"):
            require_count(f"policy.{key}", value)
    try:  # built once on the env's spaces: a CNN over frames smaller than its kernels fails here
        POLICIES[name](Spaces(args), **args["policy"])
    except (TypeError, ValueError, RuntimeError) as error:
        refuse(f"[policy] {policy_name_option(name)}: {' '.join(str(error).split())}")
    if rnn_name is None:
        return
    if rnn_name not in RECURRENT:
        refuse(f"unknown rnn_name {rnn_name!r}; valid: {', '.join(RECURRENT)} or None")
    hidden = args["policy"].get("hidden_size", default_of(POLICIES[name], "hidden_size"))
    for key in ("input_size", "hidden_size"):
        value = args["rnn"].get(key, default_of(RECURRENT[rnn_name], key))
        if value != hidden:
            refuse(f"--rnn.{key.replace('_', '-')} {value!r} must equal the policy's hidden size "
                   f"(--policy.hidden-size {hidden}): the LSTM sits between the policy's encoder and its heads")


def observation_bytes(args):
    spec = binding.obs_spec(**c_params(args))
    return math.prod(spec["shape"]) * (1 if spec["dtype"] == "uint8" else 4)


def check_memory(args, total_agents, batch_size):
    """PuffeRL's experience buffers (a batch of observations plus ten float32 rows per step) and the
    env's own buffers must fit in the memory this machine has free."""
    import psutil

    per_observation = observation_bytes(args)
    needed = batch_size * (per_observation + 40) + 3 * total_agents * (per_observation + 16)
    available = psutil.virtual_memory().available
    if needed > available:
        refuse(f"this run needs about {needed / 2**30:.1f} GiB for its buffers and {available / 2**30:.1f} GiB is free: "
               f"use fewer agents ({ENVS_PER_COPY_OPTION}, --vec.num-envs) or a shorter --train.bptt-horizon")


def check_data_dir(directory):
    """data_dir must be a folder that this user can write files in, or one that can be made: a
    check creates nothing, so that a refused command leaves no trace."""
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        if existing != os.path.abspath(directory) and not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        refuse(f"--train.data-dir {directory!r} is not a folder that files can be written in ({error.strerror}): "
               "pass another path")


def batch_description(total_agents, bptt):
    return f"{total_agents} agents x {bptt} bptt steps"


def working_minibatch(wanted, batch, bptt, largest):
    """The minibatch_size closest below `wanted` that PuffeRL accepts for this batch, or None:
    whole rows of bptt steps, at most the batch, and a multiple of max_minibatch_size when above it."""
    limit = min(wanted, batch)
    if limit > largest and largest % bptt == 0:
        return largest * (limit // largest)
    below = min(limit, largest)
    return max(below - below % bptt, bptt if bptt <= min(batch, largest) else 0) or None


def check_train(args, layout):
    """[train] against PuffeRL's __init__ and train(); fills in nothing but total_timesteps."""
    config = args["train"]
    check_device(args)
    for key in TRAIN_COUNTS:
        require_count(f"train.{key}", config[key])
    for key, (low, high, low_ok, high_ok) in TRAIN_RANGES.items():
        require_in_range(f"train.{key}", config[key], low, high, low_ok, high_ok)
    require_seed("train.seed", config["seed"])
    if config["precision"] not in PRECISIONS:
        refuse(f"unknown --train.precision {config['precision']!r}; valid: {', '.join(PRECISIONS)}")
    if config["optimizer"] not in OPTIMIZERS:
        refuse(f"unknown --train.optimizer {config['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    if config["optimizer"] == "muon" and importlib.util.find_spec("heavyball") is None:
        refuse("--train.optimizer muon needs the heavyball package: uv pip install heavyball, or use adam")
    if config["compile_mode"] not in COMPILE_MODES:
        refuse(f"unknown --train.compile-mode {config['compile_mode']!r}; valid: {', '.join(COMPILE_MODES)}")
    check_data_dir(config["data_dir"])

    bptt, total, per_batch = config["bptt_horizon"], layout.total_agents, layout.agents_per_batch
    batch = total * bptt if config["batch_size"] == "auto" else config["batch_size"]
    require_count("train.batch_size", batch)
    # PuffeRL fills one row of bptt steps per agent; a batch is rows of whole vector batches, and
    # every agent needs a row.
    step = per_batch * bptt
    if batch < total * bptt or batch % step:
        refuse(f"--train.batch-size {batch} must be a multiple of {step} (agents per vector batch x "
               f"--train.bptt-horizon {bptt}) and at least {total * bptt} ({batch_description(total, bptt)}): "
               f"use auto ({total * bptt})")
    check_memory(args, total, batch)
    minibatch, largest = config["minibatch_size"], config["max_minibatch_size"]
    suggestion = working_minibatch(minibatch, batch, bptt, largest)
    use = f"use --train.minibatch-size {suggestion}" if suggestion else "raise --train.max-minibatch-size"
    if minibatch > batch:
        size = (f"{batch} = {batch_description(total, bptt)}" if config["batch_size"] == "auto"
                else f"--train.batch-size {batch}")
        refuse(f"--train.minibatch-size {minibatch} is more than one batch ({size}): {use}, or a bigger batch "
               f"(--train.bptt-horizon, {ENVS_PER_COPY_OPTION})")
    if minibatch > largest and minibatch % largest:
        refuse(f"--train.minibatch-size {minibatch} is above --train.max-minibatch-size {largest}, so it must be a "
               f"multiple of it (gradients accumulate over whole minibatches): {use}")
    if min(minibatch, largest) % bptt:
        name = "minibatch-size" if minibatch <= largest else "max-minibatch-size"
        refuse(f"--train.{name} {min(minibatch, largest)} must be a multiple of --train.bptt-horizon {bptt} "
               f"(minibatches are whole rows of {bptt} steps): {use}")
    if config["total_timesteps"] < batch:
        if not args.get("load_model_path"):  # a continued run's total is held against its checkpoint's steps
            print(f"puffer: note: --train.total-timesteps {config['total_timesteps']} is less than one batch "
                  f"({batch}); training one batch", file=sys.stderr)
        config["total_timesteps"] = batch


def check_training_run(args):
    """Everything `puffer train` (and each run of a sweep) needs; rounds a sub-batch run up."""
    check_env(args)
    layout = check_vec(args)
    warn_if_oversubscribed(args)
    check_policy(args)
    check_train(args, layout)


OVERSUBSCRIPTION_RECORD = "docs/experiments/2026-12-03-oversubscription.md"


def warn_if_oversubscribed(args):
    """PufferLib's Multiprocessing workers spin while they wait for actions, so with as many
    workers as the cores this process may use (every rank's on this node, under torchrun) the
    learner competes with them for a core and the run slows, the more so the busier the machine:
    warn, naming the settings that were measured faster."""
    vec = args["vec"]
    if vec["backend"] != "Multiprocessing" or os.environ.get("RANK", "0") != "0":  # one line per run, not per rank
        return
    workers, _ = vec_counts(vec)
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0))
    if workers * ranks >= cores:
        total = workers * ranks
        busy = f"{total} Multiprocessing worker{'s' * (total > 1)}" + (f" ({workers} on each of {ranks} ranks)"
                                                                        if ranks > 1 else "")
        spin = "busy-wait" if total > 1 else "busy-waits"
        where = f"all {cores} CPU cores" if cores > 1 else "the one CPU core"
        print(f"puffer: warning: {busy} {spin} on {where}, leaving none for the learner; "
              f"--vec.backend PufferEnv (the default) or fewer workers trained faster on such a machine "
              f"({OVERSUBSCRIPTION_RECORD})", file=sys.stderr)


def check_eval(args):
    from flappy_rl.evaluate import RENDER_MODES
    from flappy_rl.render import check_scale

    if args["render_mode"] not in RENDER_MODES:
        refuse(f"unknown --render-mode {args['render_mode']!r}; valid: {', '.join(RENDER_MODES)}")
    if args["episodes"] is not None and args["episodes"] < 1:
        refuse(f"--episodes must be at least 1, got {args['episodes']}")
    if args["save_frames"] < 0:
        refuse(f"--save-frames must be at least 0, got {args['save_frames']}")
    if not 0 <= args["fps"] <= 50:
        refuse(f"--fps must be in [0, 50] (GIF frames are whole hundredths of a second), got {args['fps']}")
    check_env(args)
    check_device(args)
    check_policy(args)
    require_seed("vec.seed", args["vec"]["seed"])
    try:
        check_scale(args["render_scale"], "--render-scale")
    except ValueError as error:
        refuse(str(error))
    if args["save_frames"] > 0:
        check_writable_file("gif_path", args["gif_path"])


def check_bench(args):
    require_seconds("seconds", args["seconds"])
    if args["json"]:
        check_writable_file("json", args["json"])


def check_writable_file(key, path):
    """Open path for appending (removing it again if it did not exist): the only test of
    writability that also holds for root."""
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        refuse(f"{option(key)} {path!r} cannot be written ({error.strerror}): pass another path")
    if not existed:
        os.remove(path)


def check_autotune(args):
    check_env(args)
    require_count("batch_size", args["batch_size"])
    require_count("max_envs", args["max_envs"])
    if args["max_envs"] < args["batch_size"]:
        refuse(f"--max-envs {args['max_envs']} must be at least --batch-size {args['batch_size']}")
    require_seconds("time_per_test", args["time_per_test"])


def check_sweep(args):
    from flappy_rl.sweep import check_sweep as check_sweep_section

    check_sweep_section(args)
    check_training_run(args)


def check_web(args):
    check_env(args)
    require_seconds("seconds", args["seconds"])
    if not 0 <= args["port"] <= 65535:
        refuse(f"--port must be in [0, 65535] (0: any free port), got {args['port']}")


CHECKS = {"web": check_web, "train": check_training_run, "eval": check_eval, "bench": check_bench, "autotune": check_autotune,
          "sweep": check_sweep}


def check(args):
    """Refuse, in one line, any setting of args["mode"] that PufferLib or the env cannot run."""
    if args["mode"] in CHECKS:
        CHECKS[args["mode"]](args)
