"""`puffer export`: a trained policy as the two files C programs load (csrc/flappy_agent.h).

    <out_dir>/<env_name>_weights.bin   every tensor of policy.named_parameters(), flattened and
                                       concatenated, float32: PufferLib's own export format
    <out_dir>/<env_name>_policy.txt    the description the C side rebuilds the network from:
                                       policy type, layers in the weights' order, the
                                       observation's offset and scale and the env parameters it was trained with

The description's format is documented in csrc/flappy_agent.h. Only what that header can run
is exported: a layer it does not know stops the export with a one-line error.
"""

import os
import sys
import time

import pufferlib
import pufferlib.models
import pufferlib.vector
import torch
from torch import nn

from flappy_rl import Flappy, binding
from flappy_rl.checkpoint import load_into, open_checkpoint
from flappy_rl.components import env_kwargs, make_policy
from flappy_rl.config import c_params
from flappy_rl.csrc import CSRC_DIR
from flappy_rl.errors import ConfigError
from flappy_rl.pretrained import use_pretrained

FORMAT = "flappy-policy 1"


def encoder_line(module):
    """The description line of one encoder layer; None for a layer that changes nothing in C's
    flat layout (Flatten)."""
    if isinstance(module, nn.Linear) and module.bias is not None:
        return f"encoder linear {module.in_features} {module.out_features}"
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return "encoder gelu"
    if isinstance(module, nn.ReLU):
        return "encoder relu"
    if isinstance(module, nn.Flatten):
        return None
    if (isinstance(module, nn.Conv2d) and module.bias is not None and module.groups == 1
            and module.padding == (0, 0) and module.dilation == (1, 1)
            and module.kernel_size[0] == module.kernel_size[1] and module.stride[0] == module.stride[1]):
        return f"encoder conv2d {module.in_channels} {module.out_channels} {module.kernel_size[0]} {module.stride[0]}"
    raise ConfigError(f"puffer export cannot describe the layer {module} for C inference")


def layer_lines(policy):
    """[(line, module)] for every layer, in the order their tensors come in named_parameters()."""
    recurrent = isinstance(policy, pufferlib.models.LSTMWrapper)
    inner = policy.policy if recurrent else policy
    lines = [(line, module) for module in inner.encoder if (line := encoder_line(module)) is not None]
    lines.append((f"actor {inner.actor.in_features} {inner.actor.out_features}", inner.actor))
    lines.append((f"value {inner.value.in_features} {inner.value.out_features}", inner.value))
    if recurrent:
        if policy.lstm.num_layers != 1 or not policy.lstm.bias:
            raise ConfigError("puffer export handles a one-layer LSTM with biases only")
        lines.append((f"lstm {policy.lstm.input_size} {policy.lstm.hidden_size}", policy.lstm))
    return lines


def describe(policy, args):
    """The description file's text and the flat float32 weights."""
    lines = layer_lines(policy)
    described = [tensor for _, module in lines for tensor in module.parameters(recurse=False)]
    parameters = [tensor for _, tensor in policy.named_parameters()]
    # The C side takes the tensors in the order of the description's lines: they must be the
    # order of named_parameters(), the order the weights file has.
    if len(described) != len(parameters) or any(a is not b for a, b in zip(described, parameters)):
        raise ConfigError("puffer export: this policy's parameters are not in the order its layers run")
    weights = torch.cat([tensor.detach().reshape(-1).float().cpu() for tensor in parameters]).numpy()
    inner = policy.policy if isinstance(policy, pufferlib.models.LSTMWrapper) else policy
    env = binding.check_params(**c_params(args))
    text = [
        FORMAT,
        f"policy {args['policy_name']}",
        f"rnn {args['rnn_name']}",
        f"trained_with {args['env_name']}",
        f"obs_scale {float(inner.obs_scale)!r}",
        f"obs_offset {float(inner.obs_offset)!r}",
        *[line for line, _ in lines],
        f"weights {weights.size}",
        *[f"env {name} {value!r}" if isinstance(value, float) else f"env {name} {value}" for name, value in env.items()],
    ]
    return "\n".join(text) + "\n", weights.astype("<f4")


def puffernet_dir():
    return os.path.join(os.path.dirname(pufferlib.__file__), "extensions")


def demo_build_line():
    """The gcc line that builds the C demo from the sources this package carries, runnable from any folder."""
    return (f"gcc -O2 -ffp-contract=off -I {CSRC_DIR} -I {puffernet_dir()} {CSRC_DIR / 'demo.c'} "
            "-o flappy_demo -lm")


def export(args):
    """Write the weights and the description; returns their paths."""
    start = time.perf_counter()
    use_pretrained(args)
    checkpoint = open_checkpoint(args)
    for note in checkpoint.notes:
        print(note, file=sys.stderr)
    vecenv = pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=env_kwargs(args, num_envs=1))
    try:
        policy = make_policy(args, vecenv.driver_env)
    finally:
        vecenv.close()
    load_into(policy, checkpoint, args)
    text, weights = describe(policy, args)
    out_dir, name = args["out_dir"], args["env_name"]
    weights_path = os.path.join(out_dir, f"{name}_weights.bin")
    description_path = os.path.join(out_dir, f"{name}_policy.txt")
    try:
        os.makedirs(out_dir, exist_ok=True)
        weights.tofile(weights_path)
        with open(description_path, "w") as out:
            out.write(text)
    except OSError as error:
        raise ConfigError(f"cannot write to {out_dir}: {error.strerror or error}") from None
    print(f"wrote {weights_path} ({weights.size} float32 weights) and {description_path} "
          f"in {time.perf_counter() - start:.2f} s")
    print(f"play it in C ({CSRC_DIR / 'demo.c'}):", file=sys.stderr)
    print(f"  {demo_build_line()}", file=sys.stderr)
    print(f"  ./flappy_demo {description_path} {weights_path} --episodes 100 --greedy", file=sys.stderr)
    return weights_path, description_path
