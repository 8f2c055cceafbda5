"""Checkpoints: which file `--load-model-path` names, what a checkpoint records, loading it, and
saving one so that a reader never sees half a file.

A checkpoint that `puffer train` writes is a dict (FORMAT) holding the policy's weights beside
the record of its run: the env name and its C parameters, the policy and recurrent
configuration, the training settings, the step count and the optimizer's state. eval, export,
web and `train --load-model-path` rebuild the game and the policy from it. A checkpoint written
before (PuffeRL's own, or an older `puffer train`'s) is a bare state dict of tensors and loads
as it always did, with the command's settings.
"""

import dataclasses
import math
import os
import re
import time

import torch

from flappy_rl.config import c_params
from flappy_rl.errors import CheckpointError, ConfigError
from flappy_rl.policy import MAX_OBS_SCALE

FORMAT = "flappy-checkpoint 1"
SHAPE_SECTIONS = ("policy", "rnn")  # settings that decide the tensors' shapes


def new_run_id(env_name):
    return f"{env_name}_{int(100 * time.time())}"


def runs_of(data_dir, env_name):
    """The finished models of env_name's runs directly in data_dir. Before run ids were named for
    their env every run was flappy_<time>: those count for any env."""
    pattern = re.compile(rf"(?:{re.escape(env_name)}|flappy)_\d+\.pt")
    try:
        names = os.listdir(data_dir)
    except OSError:
        return []
    return [os.path.join(data_dir, name) for name in names if pattern.fullmatch(name)]


def resolve_checkpoint(path, data_dir, env_name):
    """'latest' is the newest finished model of env_name's runs in data_dir."""
    if path != "latest":
        return path
    candidates = runs_of(data_dir, env_name)
    if not candidates:
        raise ConfigError(f"no checkpoint of {env_name} in {data_dir}/ to load as 'latest': train one with "
                          f"'puffer train {env_name}', or pass --load-model-path PATH")
    return max(candidates, key=os.path.getmtime)


def newest_run(data_dir):
    """The newest finished model of any env's runs in data_dir, or None."""
    pattern = re.compile(r"\w+_\d+\.pt")
    try:
        names = [name for name in os.listdir(data_dir) if pattern.fullmatch(name)]
    except OSError:
        return None
    paths = [os.path.join(data_dir, name) for name in names]
    return max(paths, key=os.path.getmtime, default=None)


@dataclasses.dataclass
class Checkpoint:
    path: str
    weights: dict
    record: dict = None  # None: written before checkpoints recorded their run
    trainer: dict = None  # global_step, epoch and optimizer state
    notes: list = dataclasses.field(default_factory=list)  # one line each, for the user


def read_checkpoint(path, device="cpu"):
    """Read a checkpoint with weights_only=True (tensors and plain values, no code)."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path} is a folder, not a file") from None
    except Exception as error:  # torch raises many kinds for truncated or foreign files
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch state dict ({detail})") from None
    if isinstance(saved, dict) and saved.get("format") == FORMAT:
        return Checkpoint(path, saved["weights"], saved["record"], saved.get("trainer"))
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors")
    return Checkpoint(path, saved)


def open_checkpoint(args, device="cpu"):
    """The checkpoint --load-model-path names ('latest': the newest of this env's runs), with its
    record applied to args. Raises ConfigError with one line."""
    path = resolve_checkpoint(args["load_model_path"] or "latest", args["train"]["data_dir"], args["env_name"])
    try:
        checkpoint = read_checkpoint(path, device)
    except CheckpointError as error:
        raise ConfigError(str(error)) from None
    if checkpoint.record is not None:
        checkpoint.notes = adopt_record(args, checkpoint)
    return checkpoint


def option(key, value):
    return f"--{key.replace('_', '-')} {value:g}" if isinstance(value, float) else f"--{key.replace('_', '-')} {value}"


def adopt_record(args, checkpoint):
    """Set args to the run that made the checkpoint. A game parameter given on the command line
    that differs is kept, with a one-line note (a policy may be tried on another game); a policy
    setting that differs is refused, since the weights would not fit; obs_scale, a number the
    weights do not depend on, is kept with a note (load_into). Returns the notes."""
    record, path, given, notes = checkpoint.record, checkpoint.path, set(args.get("given", ())), []
    if record["env_name"] != args["env_name"]:
        raise ConfigError(f"{path} was trained on {record['env_name']}, not {args['env_name']}: "
                          f"puffer {args['mode']} {record['env_name']} --load-model-path {path}")
    for key in ("policy_name", "rnn_name"):
        if key in given and args[key] != record[key]:
            raise ConfigError(f"{option(key, args[key])} cannot load {path}, trained with {option(key, record[key])}")
        args[key] = record[key]
    for section in SHAPE_SECTIONS:
        for name, value in record[section].items():
            key = f"{section}.{name}"
            if key in given and args[section].get(name) != value:
                if key == "policy.obs_scale":
                    continue  # load_into sets it, with a note
                raise ConfigError(f"{option(key, args[section].get(name))} cannot load {path}, trained with "
                                  f"{option(key, value)}")
        args[section] = {**args[section], **{name: value for name, value in record[section].items()
                                              if f"{section}.{name}" not in given}}
    for name, value in record["env"].items():
        key = f"env.{name}"
        if key in given and args["env"].get(name) != value:
            notes.append(f"note: {path} was trained with {option(key, value)}; playing with "
                         f"{option(key, args['env'][name])} as asked")
        else:
            args["env"][name] = value
    return notes


def run_record(args):
    """What a checkpoint records of the run that made it."""
    return {"env_name": args["env_name"], "env": c_params(args), "policy_name": args["policy_name"],
            "rnn_name": args["rnn_name"], "policy": dict(args["policy"]), "rnn": dict(args["rnn"]),
            "train": {key: value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
                      for key, value in args["train"].items()}}


def save_checkpoint(path, policy, args, trainer=None):
    """Write policy's weights, the run's record and, given PuffeRL's trainer, its step count and
    optimizer state to path, atomically. Returns path."""
    saved = {"format": FORMAT, "weights": policy.state_dict(), "record": run_record(args)}
    if trainer is not None:
        saved["trainer"] = {"global_step": int(trainer.global_step), "epoch": int(trainer.epoch),
                            "optimizer": trainer.optimizer.state_dict()}
    torch.save(saved, path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def load_into(policy, checkpoint, args=None):
    """Load the checkpoint's weights into policy; ConfigError in one line when they don't fit. An
    obs_scale given on the command line replaces the checkpoint's, with a note."""
    try:
        fit_weights(policy, checkpoint.weights, checkpoint.path)
    except CheckpointError as error:
        raise ConfigError(str(error)) from None
    if args is None or "policy.obs_scale" not in args.get("given", ()):
        return
    wanted = float(args["policy"]["obs_scale"])
    for name, buffer in policy.named_buffers():
        if name.endswith("obs_scale") and float(buffer) != wanted:
            print(f"note: {checkpoint.path} was trained with --policy.obs-scale {float(buffer):g}; playing with "
                  f"--policy.obs-scale {wanted:g} as asked", flush=True)
            buffer.fill_(wanted)


def load_checkpoint(policy, path, args, device):
    """Load the weights at path ('latest' for the newest of this env's runs) into policy."""
    try:
        load_weights(policy, resolve_checkpoint(path, args["train"]["data_dir"], args["env_name"]), device)
    except CheckpointError as error:
        raise ConfigError(str(error)) from None


def resume(trainer, checkpoint):
    """Continue the checkpoint's run in PuffeRL's trainer: its optimizer state, step and update
    counts, and the learning rate its schedule gives at that update."""
    state = checkpoint.trainer
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.global_step, trainer.epoch = state["global_step"], state["epoch"]
    config = trainer.config
    rate = config["learning_rate"]
    if config["anneal_lr"]:  # PuffeRL's CosineAnnealingLR over total_timesteps // batch_size updates
        rate *= (1 + math.cos(math.pi * min(trainer.epoch, trainer.total_epochs) / trainer.total_epochs)) / 2
        trainer.scheduler.base_lrs = [config["learning_rate"]] * len(trainer.scheduler.base_lrs)
        trainer.scheduler.last_epoch = trainer.epoch
    for group in trainer.optimizer.param_groups:
        group["lr"] = rate
        group["initial_lr"] = config["learning_rate"]


def load_weights(policy, path, device):
    """Load the weights of the checkpoint at path into `policy`, refusing anything that doesn't fit."""
    fit_weights(policy, read_checkpoint(path, device).weights, path)


def fit_weights(policy, state, path):
    """Load a state dict into `policy`, refusing anything that doesn't fit: strips the 'module.'
    prefix that DistributedDataParallel adds, and names the observation size when that is the
    mismatch."""
    state = {key.removeprefix("module."): value for key, value in state.items()}
    expected = policy.state_dict()
    for key in (key for key in expected if key.endswith("obs_scale")):
        if key not in state:  # saved before Policy had obs_scale: trained on unscaled observations
            state[key] = torch.tensor(1.0)
        elif state[key].numel() == 1 and not 0 < float(state[key]) <= MAX_OBS_SCALE:
            raise CheckpointError(f"checkpoint {path} has obs_scale {float(state[key])}, "
                                  f"outside (0, {MAX_OBS_SCALE:g}]")
    first_layer = next((key for key in expected if key.endswith("encoder.0.weight")), None)
    if first_layer in state and expected[first_layer].dim() == 2 and state[first_layer].dim() == 2 \
            and state[first_layer].shape[1] != expected[first_layer].shape[1]:  # the likeliest mix-up, named as such
        raise CheckpointError(f"checkpoint {path} was trained on observations of size {state[first_layer].shape[1]}, "
                              f"but this env gives {expected[first_layer].shape[1]}")
    for key, tensor in expected.items():
        if key in state and state[key].shape != tensor.shape:
            raise CheckpointError(f"checkpoint {path} does not fit this policy: {key} has shape "
                                  f"{list(state[key].shape)}, the policy's is {list(tensor.shape)}")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not fit this policy: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    policy.load_state_dict(state)
