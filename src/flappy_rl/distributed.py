"""Data-parallel training with torch.distributed: one policy trained by the processes torchrun starts.

The config describes the whole run. Under torchrun with N ranks each rank plays [env] num_envs / N
birds with its own seeds, collects [train] batch_size / N steps per update and learns on
minibatches of minibatch_size / N; DistributedDataParallel averages the gradients of every
minibatch over the ranks, so each optimizer step is the one a single process would take on the
whole minibatch, and every rank holds the same weights, bit for bit. total_timesteps counts the
steps of all ranks together, and so do the trainer's global step, its logs and its dashboard.

Faults: everything that cannot run is refused on every rank before the process group forms (the
ranks read the same settings, so they all refuse). Once it has formed, a rank that fails leaves a
note in the rendezvous store saying where its traceback is; the others stop as soon as their next
collective call sees it gone (or at the process group's timeout, [train] dist_timeout), and read
the note to say which rank failed and why.
"""

import datetime
import json
import math
import os
import signal
import time

from flappy_rl.errors import ConfigError, Terminated

SEED_LIMIT = 2**32
# What torchrun tells each process it starts.
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
# How long a stopping rank waits for the others' notes before naming the silent ones.
NOTE_WAIT_SECONDS = 3.0
NOTE_PREFIX = "flappy_rl/"


class World:
    """This process's place among the ranks, as torchrun describes it in the environment."""

    def __init__(self, rank, size, local_rank, local_size):
        self.rank, self.size, self.local_rank, self.local_size = rank, size, local_rank, local_size

    @property
    def is_main(self):
        return self.rank == 0

    def __str__(self):
        return f"rank {self.rank} of {self.size}"

    @classmethod
    def from_environ(cls, environ=os.environ):
        """The World torchrun launched this process into, or None for a plain run (one process)."""
        if "WORLD_SIZE" not in environ:
            return None
        values = {}
        for name in LAUNCH_VARIABLES:
            text = environ.get(name, "1" if name == "LOCAL_WORLD_SIZE" else "0")
            try:
                values[name] = int(text)
            except ValueError:
                raise ConfigError(f"the environment variable {name}={text!r} is not a whole number "
                                  "(torchrun sets it): launch with torchrun") from None
        world = cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"])
        if world.size < 1 or not 0 <= world.rank < world.size or not 0 <= world.local_rank < world.local_size:
            raise ConfigError(f"RANK {world.rank}, WORLD_SIZE {world.size}, LOCAL_RANK {world.local_rank} and "
                              f"LOCAL_WORLD_SIZE {world.local_size} do not describe a set of ranks: "
                              "launch with torchrun")
        return world if world.size > 1 else None


def backend_for(device):
    """NCCL for CUDA tensors, gloo for CPU ones."""
    return "nccl" if device.startswith("cuda") else "gloo"


def refuse(world, message):
    raise ConfigError(f"{message} ({world}; every rank refuses alike)")


# The [train] sizes that each rank takes one N-th of.
SHARED_TRAIN_SIZES = ("batch_size", "minibatch_size", "max_minibatch_size")


def check(args, world, device):
    """Refuse, before any process group forms, what these ranks cannot run on this machine.
    `device` is [train] device with 'auto' resolved."""
    import torch
    import torch.distributed

    timeout = args["train"]["dist_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (math.isfinite(timeout)
                                                                                  and timeout > 0):
        refuse(world, f"--train.dist-timeout must be a positive number of seconds, got {timeout!r}")
    backend = backend_for(device)
    if not torch.distributed.is_available():
        refuse(world, "this torch was built without torch.distributed, which torchrun runs need")
    if backend == "nccl":
        gpus = torch.cuda.device_count()
        if not torch.distributed.is_nccl_available() or gpus == 0:
            refuse(world, "--train.device cuda under torchrun needs NCCL and a GPU, and this machine has "
                          f"{'no NCCL' if gpus else 'no GPU'}: use --train.device cpu (gloo)")
        if world.local_size > gpus:
            refuse(world, f"NCCL needs a GPU per rank: torchrun started {world.local_size} ranks on this machine, "
                          f"which has {gpus} GPU{'s' * (gpus != 1)}: use --nproc-per-node {gpus}, or "
                          "--train.device cpu (gloo)")
    elif not torch.distributed.is_gloo_available():
        refuse(world, "this torch was built without gloo, which CPU training under torchrun needs")
    birds = args["env"]["num_envs"]
    if birds < world.size:
        refuse(world, f"{world.size} ranks, but --env.num-envs is {birds}: each rank needs birds of its own; "
                      f"use at least {world.size} birds or fewer ranks")
    if birds % world.size:
        refuse(world, f"--env.num-envs {birds} does not divide by the {world.size} ranks: each rank plays an "
                      f"equal share; use a multiple of {world.size}")
    config = args["train"]
    for key in SHARED_TRAIN_SIZES:
        value = config[key]
        if value != "auto" and value % world.size:
            refuse(world, f"--train.{key.replace('_', '-')} {value} does not divide by the {world.size} ranks "
                          f"(each rank takes an equal share): use a multiple of {world.size}")
    per_rank = min(config["minibatch_size"], config["max_minibatch_size"]) // world.size
    if per_rank % config["bptt_horizon"]:
        refuse(world, f"a minibatch of {per_rank * world.size} steps over {world.size} ranks is {per_rank} a rank, "
                      f"which must be a multiple of --train.bptt-horizon {config['bptt_horizon']}: use a minibatch "
                      f"of a multiple of {world.size * config['bptt_horizon']} steps")


def shard(args, world):
    """This rank's copy of args: its share of the birds and batch sizes, and its own seeds."""
    args = {key: dict(value) if isinstance(value, dict) else value for key, value in args.items()}
    args["env"]["num_envs"] //= world.size
    for key in SHARED_TRAIN_SIZES:
        if args["train"][key] != "auto":
            args["train"][key] //= world.size
    # Every rank plays other games and samples other actions, or each computes the same batch.
    args["train"]["seed"] = (args["train"]["seed"] + world.rank) % SEED_LIMIT
    args["vec"]["seed"] = (args["vec"]["seed"] + world.rank) % SEED_LIMIT
    return args


class Notes:
    """Notes the ranks leave for each other in the rendezvous store: which rank failed, and why.
    The store outlives a failed rank under torchrun, whose agent keeps it."""

    def __init__(self, world, timeout):
        import torch.distributed

        self.world = world
        self.store = torch.distributed.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                                                is_master=False, timeout=datetime.timedelta(seconds=timeout))

    def key(self, rank):
        return f"{NOTE_PREFIX}note/{rank}"

    def leave(self, event, **details):
        """Say why this rank stops: 'failed' (with summary and path), 'interrupted' or 'stopped'."""
        try:
            self.store.set(self.key(self.world.rank), json.dumps(dict(event=event, **details)))
        except Exception:  # the store went away with its host: nothing to tell anyone
            pass

    def read(self, rank):
        try:
            if self.store.check([self.key(rank)]):
                return json.loads(self.store.get(self.key(rank)))
        except Exception:
            return None
        return None

    def why_stopped(self):
        """Why this rank's run stopped from outside: the line to print, or None when no other rank
        failed or went silent (the fault is this rank's own)."""
        self.leave("stopped")
        others = [rank for rank in range(self.world.size) if rank != self.world.rank]
        deadline = time.monotonic() + NOTE_WAIT_SECONDS
        while True:
            notes = {rank: self.read(rank) for rank in others}
            failed = [rank for rank, note in notes.items() if note and note["event"] == "failed"]
            if failed:
                note = notes[failed[0]]
                where = f"its traceback is in {note['path']}" if note.get("path") else "it left no traceback"
                return f"{self.world} stopped: rank {failed[0]} failed with {note['summary']}; {where}"
            interrupted = [rank for rank, note in notes.items() if note and note["event"] == "interrupted"]
            if interrupted:
                return f"{self.world} stopped: rank {interrupted[0]} was interrupted (Ctrl-C)"
            silent = [rank for rank, note in notes.items() if note is None]
            if not silent:
                return None
            if time.monotonic() > deadline:
                names = ", ".join(map(str, silent))
                return (f"{self.world} stopped: rank{'s' * (len(silent) > 1)} {names} left the run without a word "
                        "(killed, or no longer answering)")
            time.sleep(0.1)


def request_stop(signum, frame):
    """SIGTERM to a rank: torchrun's, when it is stopped itself (a scheduler ending the job) or
    when a rank on its machine has died; or anyone's. An exception raised here at once would cut
    through what the rank is doing, and leave the other ranks waiting in a collective call it
    never makes. So the request is noted, and at their next update the ranks agree to stop there
    together, as on Ctrl-C; unless that update's collective call fails, a rank having died."""
    global STOP_REQUESTED
    STOP_REQUESTED = True


STOP_REQUESTED = False


# The process group of this process's run, once it has formed: what a crash report names.
SESSION = None


class Session:
    """The process group of this rank's run, and what it takes to stop it cleanly."""

    def __init__(self, world, device, timeout):
        import torch
        import torch.distributed

        self.world = world
        self.backend = backend_for(device)
        if self.backend == "nccl":
            torch.cuda.set_device(world.local_rank)  # "cuda" now means this rank's GPU
        torch.distributed.init_process_group(self.backend, timeout=datetime.timedelta(seconds=timeout))
        self.notes = Notes(world, timeout)
        signal.signal(signal.SIGTERM, request_stop)
        global SESSION
        SESSION = self

    def broadcast(self, value):
        """Rank 0's value, on every rank."""
        import torch.distributed

        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def close(self):
        import torch.distributed

        global SESSION
        SESSION = None
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def is_communication_error(error):
    import torch.distributed

    return isinstance(error, torch.distributed.DistError) or "gloo" in str(error).lower()


def data_parallel(policy, world, device):
    """The policy wrapped in DistributedDataParallel, which averages gradients over the ranks in
    every backward pass; PuffeRL's rollouts call forward_eval, which the wrapper lacks."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.local_rank] if backend_for(device) == "nccl" else None
    model = DistributedDataParallel(policy, device_ids=device_ids)
    model.forward_eval = policy.forward_eval
    if hasattr(policy, "hidden_size"):  # PuffeRL sizes its LSTM state from it
        model.hidden_size = policy.hidden_size
    return model


def state_digest(state):
    """SHA-256 of a state dict, tensor by tensor in order: equal digests, equal bits."""
    import hashlib

    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def require_same_weights(policy, world):
    """Every rank must end with the same weights, or the all-reduce is broken: compare digests,
    and say on rank 0 that they agree."""
    import torch.distributed

    from flappy_rl.errors import TrainingError

    digests = [None] * world.size
    torch.distributed.all_gather_object(digests, state_digest(policy.state_dict()))
    differing = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
    if differing:
        raise TrainingError(f"{world}: the ranks ended with different weights (rank{'s' * (len(differing) > 1)} "
                            f"{', '.join(map(str, differing))} differ from rank 0): gradients were not averaged")
    if world.is_main:
        print(f"all {world.size} ranks hold the same weights (sha256 {digests[0]})")


def unwrap(policy):
    """The policy inside a DistributedDataParallel wrapper (what checkpoints hold), or policy itself."""
    return getattr(policy, "module", policy)


# PuffeRL logs at most this often (its train() hard-codes it).
LOG_INTERVAL_SECONDS = 0.25


def data_parallel_trainer(trainer_class, world):
    """A subclass of trainer_class (PuffeRL or one of its subclasses) for one rank of a
    data-parallel run.

    PuffeRL knows torch.distributed only in part: it counts its own rank's steps, decides on its
    own clock when to log (and its logging makes collective calls, so ranks that decide apart
    wait on each other for ever), logs on every rank but 0, and sums the update count over the
    ranks. Here the global step is every rank's steps, the ranks agree each update whether it
    logs, the logged episode statistics are those of all ranks, and only rank 0 logs, draws the
    dashboard and saves."""
    import collections

    import numpy as np
    import torch
    import torch.distributed

    def all_ranks_sum(value, device):
        total = torch.tensor(value, dtype=torch.int64, device=device)
        torch.distributed.all_reduce(total)
        return int(total.item())

    class DataParallel(trainer_class):
        def __init__(self, config, vecenv, policy, logger=None):
            self.log_clock = time.time()
            self.dashboard_sps = None  # this rank's share of the speed, while print_dashboard runs
            super().__init__(config, vecenv, policy, logger)
            self.uncompiled_policy = unwrap(policy)  # what checkpoints hold: the bare policy
            # PuffeRL counted the updates of a run from this rank's share of a batch.
            self.total_epochs = config["total_timesteps"] // (config["batch_size"] * world.size)
            self.scheduler.T_max = self.total_epochs

        @property
        def sps(self):
            if self.dashboard_sps is not None:
                return self.dashboard_sps
            if self.global_step == self.last_log_step:
                return 0
            return (self.global_step - self.last_log_step) / (time.time() - self.log_clock)

        def evaluate(self):
            before = self.global_step
            stats = super().evaluate()
            counts = torch.tensor([self.global_step - before, int(bool(stats)), int(STOP_REQUESTED)],
                                  dtype=torch.int64, device=self.config["device"])
            torch.distributed.all_reduce(counts)
            self.global_step = before + int(counts[0])
            if counts[2]:  # a rank was sent SIGTERM: all stop here, after the same update
                raise Terminated()
            # A loop that evaluates until it has statistics must go on on every rank alike.
            return stats if int(counts[1]) == world.size else {}

        def train(self):
            # PuffeRL.train logs when its clock says so; make that condition the ranks' joint one.
            wanted = int(time.time() > self.log_clock + LOG_INTERVAL_SECONDS)
            self.last_log_time = -math.inf if all_ranks_sum(wanted, self.config["device"]) else math.inf
            logs = super().train()
            if math.isfinite(self.last_log_time):  # it logged, and set its clock
                self.log_clock = self.last_log_time
            self.last_log_time = self.log_clock
            return logs

        def mean_and_log(self):
            sums = {}
            for key, values in self.stats.items():
                try:
                    sums[key] = (float(np.sum(values)), np.size(values))
                except (TypeError, ValueError):
                    continue  # not numbers: PuffeRL drops these too
            everyone = [None] * world.size
            torch.distributed.all_gather_object(everyone, sums)
            merged = collections.defaultdict(lambda: [0.0, 0])
            for rank_sums in everyone:
                for key, (total, count) in rank_sums.items():
                    merged[key][0] += total
                    merged[key][1] += count
            self.stats = collections.defaultdict(list, {key: total / count for key, (total, count) in merged.items()
                                                        if count})
            logs = {
                "SPS": self.sps,
                "agent_steps": self.global_step,
                "uptime": time.time() - self.start_time,
                "epoch": self.epoch,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                **{f"environment/{key}": value for key, value in self.stats.items()},
                **{f"losses/{key}": value for key, value in self.losses.items()},
                **{f"performance/{key}": value["elapsed"] for key, value in self.profile},
            }
            if world.is_main:
                self.logger.log(logs, self.global_step)
            return logs

        def print_dashboard(self, clear=False, **kwargs):
            # PuffeRL's dashboard sums the step count and the speed over the ranks, a collective
            # that every rank joins and rank 0 alone draws. Both are all ranks' here already, so
            # each rank offers its equal share; the steps left are counted from all ranks' steps.
            steps, total = self.global_step, self.config["total_timesteps"]
            self.config["total_timesteps"] = max(total, steps)
            self.global_step, self.dashboard_sps = steps / world.size, self.sps / world.size
            try:
                super().print_dashboard(clear, **kwargs)
            finally:
                self.global_step, self.dashboard_sps = steps, None
                self.config["total_timesteps"] = total

        def close(self):
            require_same_weights(self.uncompiled_policy, world)
            if world.is_main:
                return super().close()
            self.vecenv.close()
            self.utilization.stop()
            return None

    return DataParallel
