"""`puffer train`: PufferLib's PuffeRL, driven by a loop of our own.

Training is a short loop of our own over PuffeRL's public methods (`evaluate`, `train`,
`mean_and_log`, `print_dashboard`, `close`): collect a batch, update, until the run's steps are
done. Unlike `pufferlib.pufferl.train` it runs no closing evaluation, so every step in the
learning curve, the dashboard and a sweep's records is a training step.
"""

import _thread
import contextlib
import csv
import importlib.util
import os
import signal
import threading
import warnings

import torch

from flappy_rl import distributed
from flappy_rl.checkpoint import load_into, new_run_id, open_checkpoint, resume, save_checkpoint
from flappy_rl.components import make_policy, make_vecenv, resolve_device
from flappy_rl.errors import ConfigError, RunCrashed, Terminated, TrainingError
from flappy_rl.plots import learning_curve_png
from flappy_rl.pretrained import use_pretrained
from flappy_rl.pufferlib_compat import import_pufferl

pufferl = import_pufferl()


class RunRecorder:
    """PuffeRL's logger when no W&B or Neptune is asked for: keeps the learning curve, writes it
    next to the model as <run_id>.csv and draws it as <run_id>.png, and remembers where the
    model went."""

    COLUMNS = ["agent_steps", "uptime", "SPS", "environment/score", "environment/episode_length",
               "environment/episode_return", "environment/perf"]

    def __init__(self, data_dir, run_id=None):
        self.data_dir = data_dir
        self.run_id = run_id  # train() names the run for its env when None
        self.rows = []
        self.model_path = None

    def log(self, logs, step):
        # Every update that logs is a row, those in which no episode ended too: the last row is
        # where the run's steps ended.
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
    otherwise wait for it for ever. Stopped before the trainer closes the workers itself."""

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

    def stop(self):
        self.finished.set()
        if self.is_alive():
            self.join()

    def describe(self):
        code = self.dead.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return f"a Multiprocessing worker (pid {self.dead.pid}) {how}"


def stop_puffer_threads():
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


def run_logger(args, recorder):
    """Where PuffeRL logs: W&B or Neptune when asked for, else the run's recorder."""
    if args.get("neptune"):
        return pufferl.NeptuneLogger(args)
    if args.get("wandb"):
        return pufferl.WandbLogger(args)
    return recorder


def entropy_coefficient(ent_coef, anneal_from, fraction_done):
    """The entropy bonus of an update: [train] ent_coef until the fraction anneal_from of the
    run, then falling linearly to 0 at its end; anneal_from 1 keeps it constant."""
    if anneal_from >= 1 or fraction_done <= anneal_from:
        return ent_coef
    return ent_coef * max(0.0, (1 - fraction_done) / (1 - anneal_from))


class EntropyScheduled(pufferl.PuffeRL):
    """PuffeRL, setting the entropy bonus before each update by [train] ent_anneal_from. A
    bonus that stays on to the end keeps the policy unsure where it need not be, and sampled
    eval pays for that in crashes; annealed, the policy can grow surer over the last updates.
    PuffeRL reads ent_coef from its config at each update and offers no schedule of its own."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.initial_ent_coef = config["ent_coef"]

    def train(self):
        fraction_done = self.global_step / self.config["total_timesteps"]
        self.config["ent_coef"] = entropy_coefficient(self.initial_ent_coef, self.config["ent_anneal_from"],
                                                      fraction_done)
        return super().train()

    def print_dashboard(self, clear=False, **kwargs):
        # PuffeRL trains whole batches, so the last one may end past total_timesteps; its
        # dashboard would print the negative time left as "-1h 59m 40s".
        total = self.config["total_timesteps"]
        self.config["total_timesteps"] = max(total, self.global_step)
        try:
            super().print_dashboard(clear, **kwargs)
        finally:
            self.config["total_timesteps"] = total


class TrainingLoop:
    """One run of updates: collect a batch with `evaluate`, learn from it with `train`, until
    total_timesteps. A data-parallel run subclasses the hooks: `trainer_class`, `wrap_policy`
    (where a process group wraps the policy), `steps_done` (the steps that count against the
    budget) and `gather` (the logs of an update, as the run reports them)."""

    trainer_class = EntropyScheduled

    def __init__(self, config, vecenv, policy, logger):
        self.config = config
        self.trainer = self.trainer_class(config, vecenv, self.wrap_policy(policy), logger)

    def wrap_policy(self, policy):
        return policy

    def steps_done(self):
        return self.trainer.global_step

    def gather(self, logs):
        return logs

    def run(self):
        """Returns the logs of every update that logged."""
        history = []
        while self.steps_done() < self.config["total_timesteps"]:
            self.trainer.evaluate()
            logs = self.trainer.train()
            if logs is not None:
                history.append(self.gather(logs))
        return history

    def close(self):
        """Closes the vector env and saves the model as <data_dir>/<run_id>.pt; returns its path."""
        return self.trainer.close()


class DataParallelLoop(TrainingLoop):
    """The loop of one rank of a data-parallel run (flappy_rl.distributed): the policy in
    DistributedDataParallel, a trainer that counts and logs all ranks' steps."""

    def __init__(self, config, vecenv, policy, logger, world):
        self.world = world
        self.trainer_class = distributed.data_parallel_trainer(EntropyScheduled, world)
        super().__init__(config, vecenv, policy, logger)

    def wrap_policy(self, policy):
        return distributed.data_parallel(policy, self.world, self.config["device"])


class QuietRecorder(RunRecorder):
    """The recorder of a rank other than 0: it writes nothing (rank 0 writes the run's files)."""

    def close(self, model_path):
        self.model_path = model_path


def stop_on_sigterm(signum, frame):
    """SIGTERM (a scheduler's, `kill`'s) stops a run as Ctrl-C does; once: the policy is then saved
    uncut, whoever else the signal reaches (uv run forwards it, a scheduler signals every process).
    Under torchrun, distributed.request_stop handles it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextlib.contextmanager
def ctrl_c_ignored():
    """Ctrl-C is ignored inside: a second one (a terminal signals the whole process group, and
    `uv run` forwards the same signal to its child) must not cut the saving of the first short."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# [train] settings that belong to this machine or this process, not to the run a checkpoint continues.
LOCAL_SETTINGS = ("data_dir", "device", "seed", "env", "use_rnn")


def continue_run(args, checkpoint):
    """Take the settings of the run a checkpoint continues, except those given on the command line."""
    given = set(args.get("given", ()))
    for key, value in checkpoint.record["train"].items():
        if key not in LOCAL_SETTINGS and f"train.{key}" not in given and key in args["train"]:
            args["train"][key] = value
    done = checkpoint.trainer["global_step"]
    if done >= args["train"]["total_timesteps"]:
        raise ConfigError(f"{checkpoint.path} has trained {done:,} steps of its run already: give a "
                          f"--train.total-timesteps above {done} to go on")


def train(args, recorder=None):
    """Train with PuffeRL; returns (model path, the logs of each update that logged). `recorder`
    (a RunRecorder for the data_dir) lets a caller read the learning curve, even of a run cut short.
    Under torchrun, this process trains as one rank of a data-parallel run (flappy_rl.distributed);
    ranks other than 0 return None for the model path.
    With --load-model-path, a checkpoint that records its run is continued: its game, policy,
    settings, optimizer state and step count."""
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
    recorder.run_id = session.broadcast(recorder.run_id or new_run_id(args["env_name"]))  # one run folder for all ranks' files
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
    except KeyboardInterrupt as interrupt:
        session.notes.leave("stopped" if isinstance(interrupt, Terminated) else "interrupted")
        raise
    session.close()
    return result


def train_process(args, recorder=None, session=None):
    """Train in this process: alone, or as one rank of `session`."""
    require_logger_package(args)
    config = args["train"]
    config["device"] = resolve_device(config["device"])
    checkpoint = open_checkpoint(use_pretrained(args), config["device"]) if args.get("load_model_path") else None
    if checkpoint is not None:
        print(f"train {args['env_name']} from {checkpoint.path}", *checkpoint.notes, sep="\n", flush=True)
    if checkpoint is not None and checkpoint.trainer is not None:
        continue_run(args, checkpoint)
    config["use_rnn"] = args["rnn_name"] is not None
    torch.manual_seed(config["seed"])
    vecenv = make_vecenv(args)
    policy = make_policy(args, vecenv.driver_env).to(config["device"])
    if checkpoint is not None:
        load_into(policy, checkpoint, args)
    os.makedirs(config["data_dir"], exist_ok=True)
    recorder = recorder or RunRecorder(config["data_dir"])
    recorder.run_id = recorder.run_id or new_run_id(args["env_name"])
    model_path = os.path.join(config["data_dir"], f"{recorder.run_id}.pt")
    logger = run_logger(args, recorder)
    is_main = session is None or session.world.is_main
    watchdog = WorkerWatchdog(vecenv)
    watchdog.start()
    initial_weights = [parameter.detach().clone() for parameter in policy.parameters()]
    loop = None
    # Ctrl-C raises KeyboardInterrupt in the loop, whatever handler the caller had; SIGTERM too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if session is None:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        with warnings.catch_warnings():
            # PuffeRL builds a float32 autocast context even on CPU, where torch warns it is unused.
            warnings.filterwarnings("ignore", message="In CPU autocast")
            loop_config = dict(**config, env=args["env_name"])
            if session is None:
                loop = TrainingLoop(loop_config, vecenv, policy, logger)
            else:
                loop = DataParallelLoop(loop_config, vecenv, policy, logger, session.world)
            if checkpoint is not None and checkpoint.trainer is not None:
                resume(loop.trainer, checkpoint)
            logs = loop.run()
            watchdog.stop()  # closing the workers is not their death
            with ctrl_c_ignored():
                loop.close()  # PuffeRL writes its own copy of the weights to model_path...
                if is_main:  # ...which the full record replaces
                    save_checkpoint(model_path, policy, args, loop.trainer)
                logger.close(model_path)
    except KeyboardInterrupt as interrupt:
        # Ctrl-C stays ignored from here to the exit: a terminal signals the whole group, and
        # torchrun and uv run pass the signal on again; the policy is saved once, uncut. SIGTERM
        # waits too.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_puffer_threads()
        if is_main:
            save_checkpoint(model_path, policy, args, loop and loop.trainer)
            recorder.close(model_path)
        with contextlib.suppress(Exception):
            vecenv.close()
        if watchdog.dead is not None:
            # A scheduler sends SIGTERM to every process of a job: a worker ended by it was asked to
            # stop, as this process was (whichever of the two this process heard of first).
            if watchdog.dead.exitcode != -signal.SIGTERM:
                raise TrainingError(f"{watchdog.describe()}; training stopped, the policy so far is saved to "
                                    f"{model_path}") from None
            interrupt = Terminated()
        raise type(interrupt)(model_path if is_main else None) from None
    except Exception as error:
        stop_puffer_threads()
        with contextlib.suppress(Exception):
            vecenv.close()
        if isinstance(error, TrainingError):  # already one clear line
            raise
        trained = any(not torch.equal(before, after) for before, after in zip(initial_weights, policy.parameters()))
        path = None
        if trained and is_main:
            path = save_checkpoint(model_path, policy, args, loop and loop.trainer)
        raise RunCrashed(os.path.join(config["data_dir"], recorder.run_id), path) from error
    finally:
        watchdog.stop()
    if not is_main:
        return None, logs
    return model_path, logs
