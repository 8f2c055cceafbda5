"""Policies for PuffeRL: an MLP actor-critic, and the same wrapped in PufferLib's LSTM.

Both follow PufferLib's policy protocol: `forward_eval(obs, state) -> (logits, value)` for
acting, `forward(obs, state)` for training, and the `encode_observations` / `decode_actions`
split that `pufferlib.models.LSTMWrapper` needs to put a recurrent cell between them.
"""

import numpy as np
import torch
from torch import nn

import pufferlib.models
from pufferlib.pytorch import layer_init


class Policy(nn.Module):
    """An MLP over the flattened observation: `num_layers` layers of `hidden_size` GELU units,
    then a linear action head (small init: near-uniform first actions) and a value head."""

    def __init__(self, env, hidden_size=64, num_layers=2):
        super().__init__()
        self.hidden_size = hidden_size
        self.is_continuous = False  # read by pufferlib.models.LSTMWrapper
        obs_size = int(np.prod(env.single_observation_space.shape))
        layers, width = [], obs_size
        for _ in range(num_layers):
            layers += [layer_init(nn.Linear(width, hidden_size)), nn.GELU()]
            width = hidden_size
        self.encoder = nn.Sequential(*layers)
        self.actor = layer_init(nn.Linear(hidden_size, env.single_action_space.n), std=0.01)
        self.value = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def encode_observations(self, observations, state=None):
        return self.encoder(observations.reshape(observations.shape[0], -1).float())

    def decode_actions(self, hidden):
        return self.actor(hidden), self.value(hidden)

    def forward_eval(self, observations, state=None):
        return self.decode_actions(self.encode_observations(observations, state))

    def forward(self, observations, state=None):
        return self.forward_eval(observations, state)


class Recurrent(pufferlib.models.LSTMWrapper):
    """`Policy` with an LSTM cell between its encoder and its heads."""

    def __init__(self, env, policy, input_size=64, hidden_size=64):
        super().__init__(env, policy, input_size, hidden_size)


POLICIES = {"Policy": Policy}
RECURRENT = {"Recurrent": Recurrent}


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or made for another policy: one line for the user."""


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
    for key, tensor in expected.items():
        if key in state and state[key].shape != tensor.shape:
            if key.endswith("encoder.0.weight") and state[key].shape[1:] != tensor.shape[1:]:
                raise CheckpointError(f"checkpoint {path} was trained on observations of size {state[key].shape[1]}, "
                                      f"but this env gives {tensor.shape[1]}")
            raise CheckpointError(f"checkpoint {path} does not fit this policy: {key} has shape "
                                  f"{list(state[key].shape)}, the policy's is {list(tensor.shape)}")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not fit this policy: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    policy.load_state_dict(state)
