"""Run under a display by tests/test_render_window.py: play an env in a raylib window and save,
at a few moments, its state and the window's pixels read back from the screen.

usage: window_capture.py OUT_DIR SCALE
"""

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import scripted_actions  # noqa: E402
from flappy_rl import Flappy, binding  # noqa: E402

out, scale = pathlib.Path(sys.argv[1]), float(sys.argv[2])
env = Flappy(seed=1, render_mode="human", render_fps=0, render_scale=scale)
for t in range(1, 201):
    env.step(scripted_actions(env.observations))
    env.render()
    if t in (60, 130, 200):
        rl = env.window.rl
        image = rl.load_image_from_screen()
        pixels = np.frombuffer(rl.ffi.buffer(image.data, image.width * image.height * 4), np.uint8)
        np.save(out / f"screen{t}.npy", pixels.reshape(image.height, image.width, 4)[..., :3])
        rl.unload_image(image)
        (out / f"state{t}.json").write_text(json.dumps(binding.env_get(env.c_envs, 0)))
env.close()
print("window closed" if env.window_closed else "window still open")
