"""The C sources (game, rasterizer, C inference, demo, browser entry points), installed as the
package flappy_rl.csrc so that `puffer export` and `puffer web` find them outside a clone too."""

from pathlib import Path

# The folder of flappy.h and the rest: csrc/ in a clone, flappy_rl/csrc/ in an installed package.
CSRC_DIR = Path(__file__).resolve().parent
