"""Policies for PuffeRL: an MLP (features, LIDAR) and a CNN (pixels) actor-critic, either of
them wrapped in PufferLib's LSTM if asked.

Both follow PufferLib's policy protocol: `forward_eval(obs, state) -> (logits, value)` for
acting, `forward(obs, state)` for training, and the `encode_observations` / `decode_actions`
split that `pufferlib.models.LSTMWrapper` needs to put a recurrent cell between them.
"""

import math

import numpy as np
import torch
from torch import nn

import pufferlib.models
from pufferlib.pytorch import layer_init

from flappy_rl import binding

# The largest input scale: the limit that csrc/flappy_agent.h checks an exported policy against.
MAX_OBS_SCALE = 256.0


class ActorCritic(nn.Module):
    """The part shared by the policies: an `encoder` (the subclass's) turns observations into a
    hidden vector of `hidden_size`, then a linear action head and a linear value head.

    The action head starts with small weights, so every observation gets about the same first
    actions: flap with `initial_flap_probability`. A half-and-half start lifts the bird off the
    top of the screen; one flap in nineteen keeps it about level (a flap's -9 px/frame is undone
    by 18 frames of gravity), which lets a pixel agent reach the first pipe and learn from it."""

    # A subclass's encode_observations feeds (observation - obs_offset) * obs_scale to its
    # encoder; puffer export writes both, so that C inference scales observations the same way.

    def __init__(self, env, encoder, hidden_size, initial_flap_probability):
        super().__init__()
        if not 0 < initial_flap_probability < 1:
            raise ValueError(f"initial_flap_probability must be in (0, 1), got {initial_flap_probability}")
        self.hidden_size = hidden_size
        self.is_continuous = False  # read by pufferlib.models.LSTMWrapper
        self.encoder = encoder
        self.actor = layer_init(nn.Linear(hidden_size, env.single_action_space.n), std=0.01)
        with torch.no_grad():  # log-odds of a flap (action 1) against doing nothing (action 0)
            self.actor.bias[1] = math.log(initial_flap_probability / (1 - initial_flap_probability))
        self.value = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def decode_actions(self, hidden):
        return self.actor(hidden), self.value(hidden)

    def forward_eval(self, observations, state=None):
        return self.decode_actions(self.encode_observations(observations, state))

    def forward(self, observations, state=None):
        return self.forward_eval(observations, state)


class Policy(ActorCritic):
    """An MLP over the flattened observation (features or LIDAR) times `obs_scale`: `num_layers`
    layers of `hidden_size` GELU units.

    The features that decide a crash vary little: the gap's edges relative to the bird spread
    over about +-0.3, and a bird that clips a pipe is off by a few hundredths. Adam moves each
    weight by about the learning rate per step, whatever the input's scale, so scaling the
    input by 8 lets the first layer draw those edges sooner. It cut crashes several times over
    at the same training steps (docs/experiments/2026-11-26-input-scale-and-run-spread.md).

    obs_scale is a buffer, so a checkpoint carries the scale its weights were trained with:
    loading it sets the scale, whatever [policy] says. Checkpoints from before the setting
    existed have none and were trained unscaled; load_weights gives them 1."""

    obs_offset = 0.0

    def __init__(self, env, hidden_size=64, num_layers=2, obs_scale=1.0, initial_flap_probability=0.5):
        if not 0 < obs_scale <= MAX_OBS_SCALE:  # C inference (csrc/flappy_agent.h) takes the same range
            raise ValueError(f"obs_scale must be in (0, {MAX_OBS_SCALE:g}], got {obs_scale}")
        layers, width = [], int(np.prod(env.single_observation_space.shape))
        for _ in range(num_layers):
            layers += [layer_init(nn.Linear(width, hidden_size)), nn.GELU()]
            width = hidden_size
        super().__init__(env, nn.Sequential(*layers), hidden_size, initial_flap_probability)
        self.register_buffer("obs_scale", torch.tensor(float(obs_scale)))

    def encode_observations(self, observations, state=None):
        return self.encoder(observations.reshape(observations.shape[0], -1).float() * self.obs_scale)


class CNN(ActorCritic):
    """A small convolutional network over the stacked grayscale frames of obs_mode "pixels"
    (pixels_stack x height x width, uint8): an 8 x 8 stride-4 layer of `channels` filters, a
    4 x 4 stride-2 layer of twice as many, then one layer of `hidden_size` units. Large strides
    keep it quick on a CPU (small stride-2 stacks train about ten times slower there).

    The frames are mostly sky, and the pipes and the bird differ from it by only 26 and 38 gray
    levels. Scaled by 1/255 they are faint marks on a large constant input; with the sky's gray
    at 0 and a scale of 1/32, every object stands out by about one or more. On a 2-core CPU
    that took the training score at 3M steps from 0.07 to 0.70 pipes."""

    obs_offset = float(binding.palette_gray()["sky"])
    obs_scale = 1.0 / 32.0

    def __init__(self, env, hidden_size=64, channels=8, initial_flap_probability=0.05):
        frame_shape = tuple(env.single_observation_space.shape)
        if len(frame_shape) != 3:
            raise ValueError(f"CNN needs stacked frames (obs_mode pixels), got observations of shape {frame_shape}")
        convolutions = nn.Sequential(
            layer_init(nn.Conv2d(frame_shape[0], channels, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(channels, 2 * channels, 4, stride=2)), nn.ReLU(),
            nn.Flatten(),
        )
        if min(frame_shape[1:]) < 20:  # the smallest frame both kernels fit in: (20 - 8) / 4 + 1 = 4
            raise ValueError(f"CNN needs frames of at least 20 x 20 pixels, got {frame_shape[2]} x {frame_shape[1]} "
                             "(pixels_width x pixels_height)")
        with torch.no_grad():
            flat = convolutions(torch.zeros(1, *frame_shape)).shape[1]
        encoder = nn.Sequential(*convolutions, layer_init(nn.Linear(flat, hidden_size)), nn.ReLU())
        super().__init__(env, encoder, hidden_size, initial_flap_probability)
        self.frame_shape = frame_shape

    def encode_observations(self, observations, state=None):
        frames = (observations.reshape(observations.shape[0], *self.frame_shape).float() - self.obs_offset) * self.obs_scale
        return self.encoder(frames)


class Recurrent(pufferlib.models.LSTMWrapper):
    """`Policy` with an LSTM cell between its encoder and its heads."""

    def __init__(self, env, policy, input_size=64, hidden_size=64):
        super().__init__(env, policy, input_size, hidden_size)


POLICIES = {"Policy": Policy, "CNN": CNN}
RECURRENT = {"Recurrent": Recurrent}
