"""Frames per second of the C rasterizer, through the binding, on whatever cores it is given.

usage: taskset -c 0 uv run python benchmarks/render_fps.py [seconds_per_case]

Draws env 0 of a Flappy in mid-game (a few pipes passed, score on screen): the rgb_array
frame that `Flappy.render()` returns (a new array each time), then into reused arrays at full
size and at observation sizes, RGB and grayscale.
"""

import sys
import time

import numpy as np

from flappy_rl import Flappy, binding

sys.path.insert(0, "tests")
from conftest import scripted_actions  # noqa: E402


def frames_per_second(draw, seconds):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            draw()
        count += 1000
    return count / (time.perf_counter() - start)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    env = Flappy(seed=0, render_mode="rgb_array")
    for _ in range(400):
        env.step(scripted_actions(env.observations))
    handle = env.c_envs
    print(f"state: score {binding.env_get(handle, 0)['score']}, tick {binding.env_get(handle, 0)['tick']}")
    print(f"Flappy.render() rgb_array 512x288x3 (new array each frame): {frames_per_second(env.render, seconds):,.0f} fps")
    for shape in [(512, 288, 3), (512, 288), (64, 36), (36, 64), (64, 36, 3)]:
        frame = np.empty(shape, np.uint8)
        fps = frames_per_second(lambda: binding.render(handle, 0, frame), seconds)
        kind = "RGB" if len(shape) == 3 else "gray"
        print(f"binding.render into a reused {'x'.join(map(str, shape[:2]))} {kind} frame: {fps:,.0f} fps")


if __name__ == "__main__":
    main()
