"""`puffer autotune`: PufferLib's search for the fastest vectorization of this env on this machine.

It runs without importing pufferlib.pufferl, whose import turns every RuntimeWarning into an
error (autotune's statistics warn on empty samples)."""

import functools

from flappy_rl import Flappy
from flappy_rl.components import env_kwargs
from flappy_rl.pufferlib_compat import autotune as pufferlib_autotune


def autotune(args):
    creator = functools.partial(Flappy, **env_kwargs(args))
    pufferlib_autotune(creator, batch_size=args["batch_size"], max_envs=args["max_envs"],
                       time_per_test=args["time_per_test"])
