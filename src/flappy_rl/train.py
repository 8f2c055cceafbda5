"""The training modes of the `puffer` command (train, autotune), on PufferLib's PuffeRL.

PufferLib's own loaders only look inside the PufferLib package, so this module supplies what
they would: the vector env, the policy and the run's logger. Training itself is
`pufferlib.pufferl.train`, so its multi-GPU path (torchrun) is PufferLib's.
"""

import _thread
import contextlib
import csv
import functools
import glob
import importlib.util
import logging
import os
import signal
import threading
import time
import warnings
from unittest import mock

import torch

import pufferlib
import pufferlib.vector

from flappy_rl import Flappy, binding, distributed
from flappy_rl.config import c_params
from flappy_rl.errors import CheckpointError, ConfigError, RunCrashed, TrainingError
from flappy_rl.plots import learning_curve_png
from flappy_rl.policy import POLICIES, RECURRENT, load_weights


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def env_kwargs(args, num_envs=None, **extra):
    """Keyword arguments of one `Flappy` copy: [env], that is the birds in its C vector
    (env.num_envs unless given, as in Ocean configs) and the C parameters, checked here so that
    mistakes surface before any fork."""
    params = c_params(args)
    try:
        binding.check_params(**params)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[env] {error}") from None
    return dict(num_envs=num_envs or args["env"]["num_envs"], **params, **extra)


@contextlib.contextmanager
def workers_ignore_ctrl_c():
    """Processes forked in this block ignore SIGINT: Ctrl-C is the trainer's to handle, and it
    closes the workers itself."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_vecenv(args):
    vec = dict(args["vec"])
    backend, copies = vec.pop("backend"), vec.pop("num_envs")
    kwargs = env_kwargs(args)  # the backend and counts are checked by flappy_rl.checks
    try:
        if backend == "PufferEnv":
            return pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=kwargs)
        with workers_ignore_ctrl_c():
            return pufferlib.vector.make(Flappy, backend=backend, num_envs=copies, env_kwargs=kwargs, **vec)
    except pufferlib.APIUsageError as error:
        raise ConfigError(f"[vec] {' '.join(str(error).split())}") from None


def make_policy(args, env):
    """The policy named by [base] policy_name (and rnn_name), built with [policy] (and [rnn])."""
    name, rnn_name = args["policy_name"], args["rnn_name"]
    if name not in POLICIES:
        raise ConfigError(f"unknown policy_name {name!r}; valid: {', '.join(POLICIES)}")
    if rnn_name is not None and rnn_name not in RECURRENT:
        raise ConfigError(f"unknown rnn_name {rnn_name!r}; valid: {', '.join(RECURRENT)} or None")
    try:
        policy = POLICIES[name](env, **args["policy"])
        if rnn_name is not None:
            policy = RECURRENT[rnn_name](env, policy, **args["rnn"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[policy]/[rnn]: {error}") from None
    return policy


def resolve_checkpoint(path, data_dir):
    """'latest' is the newest .pt file directly in data_dir (a finished run's model)."""
    if path != "latest":
        return path
    candidates = glob.glob(os.path.join(data_dir, "*.pt"))
    if not candidates:
        raise ConfigError(f"no checkpoint in {data_dir}/ to load as 'latest': train one with "
                          "'puffer train puffer_flappy', or pass --load-model-path PATH")
    return max(candidates, key=os.path.getmtime)


def load_checkpoint(policy, path, args, device):
    try:
        load_weights(policy, resolve_checkpoint(path, args["train"]["data_dir"]), device)
    except CheckpointError as error:
        raise ConfigError(str(error)) from None


class RunRecorder:
    """PuffeRL's logger when no W&B or Neptune is asked for: keeps the learning curve, writes it
    next to the model as <run_id>.csv and draws it as <run_id>.png, and remembers where the
    model went."""

    COLUMNS = ["agent_steps", "uptime", "SPS", "environment/score", "environment/episode_length",
               "environment/episode_return", "environment/perf"]

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.run_id = f"flappy_{int(100 * time.time())}"
        self.rows = []
        self.model_path = None

    def log(self, logs, step):
        if "environment/score" in logs:
            self.rows.append([logs.get(column, "") for column in self.COLUMNS])

    def close(self, model_path):
        self.model_path = model_path
        csv_path = os.path.join(self.data_dir, f"{self.run_id}.csv")
        with open(csv_path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(self.COLUMNS)
            writer.writerows(self.rows)
        learning_curve_png(csv_path, os.path.join(self.data_dir, f"{self.run_id}.png"))


# Packages that PufferLib's loggers work with.
WORKING_LOGGERS = {"wandb": "'wandb<0.28'", "neptune": "neptune"}


class WorkerWatchdog(threading.Thread):
    """Interrupts training when a Multiprocessing worker dies: PufferLib's main loop would
    otherwise wait for it for ever."""

    def __init__(self, vecenv, interval=0.25):
        super().__init__(daemon=True, name="flappy-worker-watchdog")
        self.processes = list(getattr(vecenv, "processes", []))
        self.interval = interval
        self.dead = None
        self.finished = threading.Event()

    def run(self):
        while not self.finished.wait(self.interval):
            for process in self.processes:
                if process.exitcode is not None:
                    self.dead = process
                    _thread.interrupt_main()  # raises KeyboardInterrupt in the training loop
                    return

    def describe(self):
        code = self.dead.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return f"a Multiprocessing worker (pid {self.dead.pid}) {how}"


def save_atomically(policy, path):
    torch.save(policy.state_dict(), path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def stop_puffer_threads(pufferl):
    """PuffeRL's resource monitor is a non-daemon thread that close() stops; after an
    interruption nobody calls close(), and the process would never exit."""
    for thread in threading.enumerate():
        if isinstance(thread, pufferl.Utilization):
            thread.stop()


def require_logger_package(args):
    for flag in ("wandb", "neptune"):
        if args.get(flag) and importlib.util.find_spec(flag) is None:
            raise ConfigError(f"--{flag} needs the {flag} package: uv pip install {WORKING_LOGGERS[flag]}")
    if args.get("wandb"):
        import wandb.util

        if not hasattr(wandb.util, "generate_id"):
            raise ConfigError(f"PufferLib's W&B logger calls wandb.util.generate_id, gone since wandb 0.28: "
                              f"uv pip install {WORKING_LOGGERS['wandb']}")


def import_pufferl():
    # pufferl's import makes torch warn that CUDA is absent on CPU machines: not news here.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from pufferlib import pufferl

    return pufferl


def entropy_coefficient(ent_coef, anneal_from, fraction_done):
    """The entropy bonus of an update: [train] ent_coef until the fraction anneal_from of the
    run, then falling linearly to 0 at its end; anneal_from 1 keeps it constant."""
    if anneal_from >= 1 or fraction_done <= anneal_from:
        return ent_coef
    return ent_coef * max(0.0, (1 - fraction_done) / (1 - anneal_from))


def with_entropy_schedule(pufferl):
    """PuffeRL, setting the entropy bonus before each update by [train] ent_anneal_from. A
    bonus that stays on to the end keeps the policy unsure where it need not be, and sampled
    eval pays for that in crashes; annealed, the policy can grow surer over the last updates.
    PuffeRL reads ent_coef from its config at each update and offers no schedule of its own."""

    class EntropyScheduled(pufferl.PuffeRL):
        def __init__(self, config, *args, **kwargs):
            super().__init__(config, *args, **kwargs)
            self.initial_ent_coef = config["ent_coef"]

        def train(self):
            fraction_done = self.global_step / self.config["total_timesteps"]
            self.config["ent_coef"] = entropy_coefficient(self.initial_ent_coef, self.config["ent_anneal_from"],
                                                          fraction_done)
            return super().train()

    return EntropyScheduled


class QuietRecorder(RunRecorder):
    """The recorder of a rank other than 0: it writes nothing (rank 0 writes the run's files)."""

    def close(self, model_path):
        self.model_path = model_path


def train(args, recorder=None):
    """Train with PuffeRL; returns (model path, PuffeRL's logs). `recorder` (a RunRecorder for
    the data_dir) lets a caller read the learning curve, even of a run cut short. Under torchrun,
    this process trains as one rank of a data-parallel run (flappy_rl.distributed); ranks other
    than 0 return None for the model path."""
    world = distributed.World.from_environ()
    if world is None:
        return train_process(args, recorder)
    device = resolve_device(args["train"]["device"])
    distributed.check(args, world, device)
    args = distributed.shard(args, world)
    args["train"]["device"] = device
    session = distributed.Session(world, device, args["train"]["dist_timeout"])
    if not world.is_main:  # rank 0 alone logs to W&B or Neptune, and writes the run's files
        args["wandb"] = args["neptune"] = False
        recorder = QuietRecorder(args["train"]["data_dir"])
    recorder = recorder or RunRecorder(args["train"]["data_dir"])
    recorder.run_id = session.broadcast(recorder.run_id)  # one run folder for all ranks' files
    try:
        result = train_process(args, recorder, session)
    except RunCrashed as error:
        # A failed collective call: most likely another rank failed first, and left a note.
        if distributed.is_communication_error(error.__cause__):
            why = session.notes.why_stopped()
            if why is not None:
                saved = f"; the policy so far is saved to {error.model_path}" if error.model_path else ""
                raise TrainingError(why + saved) from None
        raise  # this rank's own fault: reported with the session open, so that the note gets out
    except KeyboardInterrupt:
        session.notes.leave("interrupted")
        raise
    session.close()
    return result


def train_process(args, recorder=None, session=None):
    """Train in this process: alone, or as one rank of `session`."""
    require_logger_package(args)
    pufferl = import_pufferl()
    config = args["train"]
    config["device"] = resolve_device(config["device"])
    config["use_rnn"] = args["rnn_name"] is not None
    torch.manual_seed(config["seed"])
    vecenv = make_vecenv(args)
    policy = make_policy(args, vecenv.driver_env).to(config["device"])
    if args.get("load_model_path"):
        load_checkpoint(policy, args["load_model_path"], args, config["device"])
    os.makedirs(config["data_dir"], exist_ok=True)
    recorder = recorder or RunRecorder(config["data_dir"])
    trainer_class = with_entropy_schedule(pufferl)
    model = policy
    if session is not None:
        model = distributed.data_parallel(policy, session.world, config["device"])
        trainer_class = distributed.data_parallel_trainer(trainer_class, session.world)
    is_main = session is None or session.world.is_main
    watchdog = WorkerWatchdog(vecenv)
    watchdog.start()
    initial_weights = [parameter.detach().clone() for parameter in policy.parameters()]
    # pufferl's import made Ctrl-C call os._exit(0): nothing saved, and a status that says success.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings():
            # PuffeRL builds a float32 autocast context even on CPU, where torch warns it is unused.
            warnings.filterwarnings("ignore", message="In CPU autocast")
            # pufferl.train builds its trainer from the module's PuffeRL: this is where a
            # subclass gets in.
            # The data-parallel run is set up above: pufferl.train's own (CUDA-only) DDP block,
            # which LOCAL_RANK turns on, must stay off.
            hidden = ("LOCAL_RANK",) if session is not None else ()
            with mock.patch.object(pufferl, "PuffeRL", trainer_class), without_environ(*hidden):
                logs = pufferl.train(args["env_name"], args, vecenv, model, logger=recorder)
    except KeyboardInterrupt:
        stop_puffer_threads(pufferl)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # torchrun passes Ctrl-C on again: save once
        path = None
        if is_main:
            path = save_atomically(policy, os.path.join(config["data_dir"], f"{recorder.run_id}.pt"))
            recorder.close(path)
        with contextlib.suppress(Exception):
            vecenv.close()
        if watchdog.dead is not None:
            raise TrainingError(f"{watchdog.describe()}; training stopped, the policy so far is saved to {path}") from None
        raise KeyboardInterrupt(path) from None
    except Exception as error:
        stop_puffer_threads(pufferl)
        with contextlib.suppress(Exception):
            vecenv.close()
        if isinstance(error, TrainingError):  # already one clear line
            raise
        trained = any(not torch.equal(before, after) for before, after in zip(initial_weights, policy.parameters()))
        path = None
        if trained and is_main:
            path = save_atomically(policy, os.path.join(config["data_dir"], f"{recorder.run_id}.pt"))
        raise RunCrashed(os.path.join(config["data_dir"], recorder.run_id), path) from error
    finally:
        watchdog.finished.set()
    if not is_main:
        return None, logs
    model_path = recorder.model_path or resolve_checkpoint("latest", config["data_dir"])
    return model_path, logs


@contextlib.contextmanager
def without_environ(*names):
    """The block runs with these environment variables unset."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def autotune(args):
    # pufferlib-core's autotune reaches for pufferlib.Suppress, which core keeps in a submodule.
    if not hasattr(pufferlib, "Suppress"):
        pufferlib.Suppress = pufferlib.pufferlib.Suppress
    creator = functools.partial(Flappy, **env_kwargs(args))
    pufferlib.vector.autotune(creator, batch_size=args["batch_size"], max_envs=args["max_envs"],
                              time_per_test=args["time_per_test"])
