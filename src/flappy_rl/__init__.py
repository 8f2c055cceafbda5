"""flappy-rl: a C-accelerated Flappy Bird environment, native to PufferLib and to Gymnasium.

Importing this package registers the Gymnasium ids and imports neither PufferLib nor torch:
`Flappy` (the PufferEnv) and `make_gymnasium_env` load PufferLib when first used.
"""

import importlib

import gymnasium

GYMNASIUM_ID = "flappy_rl/FlappyBird-v0"  # the C core: FlappyEnv, and FlappyVectorEnv for make_vec
REFERENCE_ID = "flappy_rl/FlappyBird-reference-v0"  # the pure-Python twin, the specification

if GYMNASIUM_ID not in gymnasium.registry:
    gymnasium.register(id=GYMNASIUM_ID, entry_point="flappy_rl.gym_env:FlappyEnv",
                       vector_entry_point="flappy_rl.gym_env:FlappyVectorEnv")
if REFERENCE_ID not in gymnasium.registry:
    gymnasium.register(id=REFERENCE_ID, entry_point="flappy_rl.reference:FlappyGymnasiumEnv")

# name: the module that defines it, imported on first use
LAZY = {
    "Flappy": "flappy_rl.env",
    "FlappyEnv": "flappy_rl.gym_env",
    "FlappyVectorEnv": "flappy_rl.gym_env",
    "FlappyGymnasiumEnv": "flappy_rl.reference",
    "make_gymnasium_env": "flappy_rl.reference",
}


def __getattr__(name):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'flappy_rl' has no attribute {name!r}")


__all__ = [*LAZY, "GYMNASIUM_ID", "REFERENCE_ID"]
