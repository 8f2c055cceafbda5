"""The puffer command's PufferLib-format ini files, installed as the package flappy_rl.configs."""
