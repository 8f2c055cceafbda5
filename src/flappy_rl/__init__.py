"""flappy-rl: a C-accelerated Flappy Bird environment, native to PufferLib."""

import gymnasium

from flappy_rl.env import Flappy
from flappy_rl.reference import FlappyGymnasiumEnv, make_gymnasium_env

GYMNASIUM_ID = "flappy_rl/FlappyBird-v0"

if GYMNASIUM_ID not in gymnasium.registry:
    gymnasium.register(id=GYMNASIUM_ID, entry_point="flappy_rl.reference:FlappyGymnasiumEnv")

__all__ = ["Flappy", "FlappyGymnasiumEnv", "make_gymnasium_env", "GYMNASIUM_ID"]
