"""What every mode builds from its settings: the game's keyword arguments, the vector env, the
policy and the torch device."""

import contextlib
import signal

import torch

import pufferlib
import pufferlib.vector

from flappy_rl import Flappy, binding
from flappy_rl.checks import vec_counts
from flappy_rl.config import c_params
from flappy_rl.errors import ConfigError
from flappy_rl.policy import POLICIES, RECURRENT


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
def worker_signals():
    """Processes forked in this block ignore SIGINT and die of SIGTERM. Ctrl-C is the trainer's
    to handle, and it closes the workers itself: PufferLib's close() sends them SIGTERM, which
    must end them quietly, not run the handler the trainer may have (a rank under torchrun)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def make_vecenv(args):
    vec = dict(args["vec"])
    backend, copies = vec.pop("backend"), vec.pop("num_envs")
    kwargs = env_kwargs(args)  # the backend and counts are checked by flappy_rl.checks
    try:
        if backend == "PufferEnv":
            return pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=kwargs)
        vec["num_workers"], vec["batch_size"] = vec_counts(args["vec"])  # PufferLib's own auto can't always run
        with worker_signals():
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
