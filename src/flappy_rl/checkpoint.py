"""Checkpoints: which file `--load-model-path` names, loading its weights into a policy, and
saving one so that a reader never sees half a file."""

import glob
import os

import torch

from flappy_rl.errors import CheckpointError, ConfigError
from flappy_rl.policy import MAX_OBS_SCALE


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


def save_atomically(policy, path):
    torch.save(policy.state_dict(), path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def load_weights(policy, path, device):
    """Load a state dict saved by PuffeRL into `policy`, refusing anything that doesn't fit.

    Loads with weights_only=True (tensors only, no code), strips the 'module.' prefix that
    DistributedDataParallel adds, and names the observation size when that is the mismatch."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as error:  # torch raises many kinds for truncated or foreign files
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch state dict ({detail})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors")
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
