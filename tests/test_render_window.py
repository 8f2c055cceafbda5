"""The raylib window, on a virtual display (Xvfb with Mesa's software GL), Gymnasium's env
checker opening every render mode there, and the error without a display. Every test that
starts a virtual display is in this file, so that parallel workers never start two at once
(xvfb-run -a could give both the same display number). raylib keeps one window per process,
so each test runs its window in a subprocess (scripts in tests/xvfb/). .ci/run installs xvfb,
Mesa and xdotool, so these run in CI."""

import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from flappy_rl import binding

HERE = pathlib.Path(__file__).resolve().parent
PALETTE = binding.palette()
NO_DISPLAY_HINT = 'use render_mode="rgb_array" for frames without a window, or run under `xvfb-run -a`'

needs_xvfb = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run is not installed (apt-get install xvfb libgl1-mesa-dri libglx-mesa0 "
                                       "xauth; .ci/run does)")
needs_xdotool = pytest.mark.skipif(shutil.which("xdotool") is None,
                                   reason="xdotool is not installed (apt-get install xdotool; .ci/run does)")


def run_on_virtual_display(args, cwd, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_RUNTIME_DIR"] = str(cwd)  # Mesa complains without one
    return subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@needs_xvfb
@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_window_shows_the_rgb_array_scene_with_a_tilted_bird(tmp_path, scale):
    out = run_on_virtual_display([sys.executable, str(HERE / "xvfb" / "window_capture.py"), str(tmp_path), str(scale)],
                                 tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "window closed" in out.stdout
    for t in (60, 130, 200):
        screen = np.load(tmp_path / f"screen{t}.npy")
        state = json.loads((tmp_path / f"state{t}.json").read_text())
        assert screen.shape == (round(512 * scale), round(288 * scale), 3)

        def colour(x, y):  # the palette name of the screen pixel at world point (x, y)
            rgb = tuple(int(v) for v in screen[int(y * scale), int(x * scale)])
            return next((name for name, c in PALETTE.items() if c == rgb), rgb)

        # the bird's centre stays put when it tilts
        bird_y = state["bird_y"]
        assert colour(binding.BIRD_X + binding.BIRD_WIDTH / 2, bird_y + binding.BIRD_HEIGHT / 2) == "bird"
        pipe = next(p for p in state["pipes"] if 0 <= p["x"] + binding.PIPE_WIDTH / 2 < 288)
        centre = pipe["x"] + binding.PIPE_WIDTH / 2
        assert colour(centre, binding.SCORE_TOP / 2) == "pipe"  # above the score; gaps start lower
        assert colour(centre, pipe["gap_top"] - binding.PIPE_CAP_HEIGHT / 2) == "pipe_cap"
        assert colour(centre, pipe["gap_bottom"] + binding.PIPE_CAP_HEIGHT + 5) == "pipe"
        gap_middle = (pipe["gap_top"] + pipe["gap_bottom"]) / 2
        bird_cx, bird_cy = binding.BIRD_X + binding.BIRD_WIDTH / 2, bird_y + binding.BIRD_HEIGHT / 2
        if abs(centre - bird_cx) > 30 or abs(gap_middle - bird_cy) > 30:  # the bird is not in the way
            assert colour(centre, gap_middle) == "sky"
        assert colour(10, binding.GROUND_Y + binding.GRASS_HEIGHT + 20) == "ground"
        assert colour(200, binding.GROUND_Y + binding.GRASS_HEIGHT / 2) in ("grass_light", "grass_dark")

        # Pixel for pixel the C frame of the same size, but for the tilted bird.
        reference = np.zeros_like(screen)
        binding.render_state(state, reference)
        differs = ~(screen == reference).all(-1)
        cx, cy = (binding.BIRD_X + binding.BIRD_WIDTH / 2) * scale, (bird_y + binding.BIRD_HEIGHT / 2) * scale
        radius = math.hypot(binding.BIRD_WIDTH, binding.BIRD_HEIGHT) / 2 * scale + 2
        ys, xs = np.nonzero(differs)
        assert (np.hypot(xs + 0.5 - cx, ys + 0.5 - cy) <= radius).all()
        assert differs.any()  # the bird does tilt (it is moving)


@needs_xvfb
@needs_xdotool
def test_window_input_screenshot_and_escape_end_the_loop_normally(tmp_path):
    out = run_on_virtual_display([sys.executable, str(HERE / "xvfb" / "window_input.py")], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    # space, up arrow and a left click flap; R restarts; O toggles the overlay; ESC closes
    assert report == {**report, "closed": True, "driver": 0, "flaps": 3, "restarts": 1, "overlay_changes": 1}
    assert report["frames"] < 900
    shot = tmp_path / "screenshot000.png"
    assert f"screenshot saved to {shot}" in out.stdout
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (512, 288, 3)
    assert tuple(pixels[500, 10]) == PALETTE["ground"] and tuple(pixels[5, 5]) == PALETTE["sky"]


@needs_xvfb
@needs_xdotool
def test_play_flaps_and_quits_on_escape(tmp_path):
    driver = """
    "$PYTHON" -m flappy_rl play --seed 1 &
    app=$!
    timeout 30 xdotool search --sync --name '^flappy-rl: play$' > /dev/null
    sleep 0.5
    press() { xdotool keydown "$1"; sleep 0.15; xdotool keyup "$1"; sleep 0.2; }
    for k in 1 2 3 4; do press space; done
    press F12; press Escape
    wait $app
    """
    out = run_on_virtual_display(["env", f"PYTHON={sys.executable}", "bash", "-c", driver], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("best score: 0")
    shot = tmp_path / "screenshot000.png"
    assert f"screenshot saved to {shot}" in out.stdout
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    # four flaps, one every 0.35 s, lift the bird above where it starts (and not yet off the top)
    bird_rows = np.nonzero((pixels == PALETTE["bird"]).all(-1).any(1))[0]
    assert len(bird_rows) > 0 and bird_rows.max() < binding.BIRD_START_Y
    # the ground carries the best score and how to quit
    text_rows = (pixels[int(binding.GROUND_Y + binding.GRASS_HEIGHT):] == PALETTE["text"]).all(-1)
    assert text_rows.sum() > 100


def run_play_without_window(display):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = display
    return subprocess.run([sys.executable, "-m", "flappy_rl", "play"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_play_without_a_display_fails_with_one_line():
    """Exit 2, as `puffer play` (a setting that cannot work here): it was 1."""
    out = run_play_without_window(None)
    assert out.returncode == 2
    assert out.stderr == ("python -m flappy_rl play: error: no display to open a window on (DISPLAY is not set): "
                          f"{NO_DISPLAY_HINT}\n")


def test_play_on_a_display_that_is_not_there_fails_with_one_line():
    out = run_play_without_window(":87")  # no X server answers there
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == ("python -m flappy_rl play: error: could not open a window on display "
                                           f"':87': {NO_DISPLAY_HINT}")
    assert not re.search(r"Segmentation|Traceback", out.stderr)


def falling_checkpoint(path):
    """A policy of the default config's shape that never flaps (its birds crash on frame 31),
    saved as a checkpoint."""
    import torch

    from flappy_rl import Flappy
    from flappy_rl.config import load_config
    from flappy_rl.policy import Policy

    policy = Policy(Flappy(), **load_config("puffer_flappy")["policy"])
    state = policy.state_dict()
    state["actor.weight"].zero_()
    state["actor.bias"] = torch.tensor([10.0, -10.0])
    torch.save(state, path)


@needs_xvfb
def test_puffer_eval_plays_in_a_window(tmp_path):
    falling_checkpoint(tmp_path / "fall.pt")
    out = run_on_virtual_display([sys.executable, "-m", "flappy_rl.cli", "eval", "puffer_flappy", "--load-model-path",
                                  "fall.pt", "--render-mode", "human", "--episodes", "2", "--fps", "0", "--overlay"],
                                 tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines() == ["eval puffer_flappy: fall.pt",
                                               "episode 1: score 0, length 31 frames",
                                               "episode 2: score 0, length 31 frames",
                                               "2 episodes: mean score 0.00, median 0, max 0; mean length 31.0 frames; "
                                               "0 capped at max_steps, 2 crashes in 0 pipes"]


@needs_xvfb
@needs_xdotool
def test_puffer_play_quits_on_escape(tmp_path):
    driver = """
    "$PYTHON" -m flappy_rl.cli play puffer_flappy --render-scale 0.5 --seed 3 --env.gap 150 &
    app=$!
    timeout 30 xdotool search --sync --name '^flappy-rl: play$' > /dev/null
    sleep 0.5
    xdotool keydown Escape; sleep 0.15; xdotool keyup Escape
    wait $app
    """
    out = run_on_virtual_display(["env", f"PYTHON={sys.executable}", "bash", "-c", driver], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "best score: 0"


@pytest.mark.parametrize("argv", [["play", "puffer_flappy"],
                                  ["eval", "puffer_flappy", "--load-model-path", "fall.pt", "--render-mode", "human"]])
def test_puffer_window_modes_without_a_display_fail_in_one_line(tmp_path, argv):
    falling_checkpoint(tmp_path / "fall.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "flappy_rl.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr == f"puffer: error: no display to open a window on (DISPLAY is not set): {NO_DISPLAY_HINT}\n"


def test_puffer_eval_writes_an_animated_gif(tmp_path):
    falling_checkpoint(tmp_path / "fall.pt")
    out = subprocess.run([sys.executable, "-m", "flappy_rl.cli", "eval", "puffer_flappy", "--load-model-path",
                          "fall.pt", "--episodes", "1", "--save-frames", "25", "--gif-path", "eval.gif"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "saved 25 frames to eval.gif" in out.stdout
    with Image.open(tmp_path / "eval.gif") as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames == 25  # a falling bird: every frame differs
        assert gif.size == (288, 512) and gif.info["loop"] == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert abs(sum(durations) - 25 * 1000 / 30) <= 10


@needs_xvfb
def test_gymnasium_env_checker_passes_with_every_render_mode(tmp_path):
    code = ("import warnings, gymnasium, flappy_rl; warnings.simplefilter('error'); "
            "from gymnasium.utils.env_checker import check_env; "
            "check_env(gymnasium.make('flappy_rl/FlappyBird-v0').unwrapped); print('passed')")
    out = run_on_virtual_display([sys.executable, "-c", code], tmp_path)
    assert out.returncode == 0 and out.stdout.endswith("passed\n"), out.stderr[-2000:]
