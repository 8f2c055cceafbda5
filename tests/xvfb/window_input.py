"""Run under a display by tests/test_render_window.py: an eval-style loop over a Flappy env in
human mode, while xdotool presses keys and clicks in its window. Prints what the loop saw, as
JSON, after the loop ends (ESC closes the window).

usage: window_input.py   (in the directory where screenshots should go)
"""

import json
import subprocess

import numpy as np

from flappy_rl import Flappy

# Each key is held for a few frames: raylib sees a press that starts and ends between two of
# its input polls as no press at all.
DRIVER = """
set -e
window=$(xdotool search --name '^flappy-rl$' | head -n 1)
xdotool mousemove --window "$window" 100 100
press() { xdotool keydown "$1"; sleep 0.15; xdotool keyup "$1"; sleep 0.25; }
press space; press Up
xdotool mousedown 1; sleep 0.15; xdotool mouseup 1; sleep 0.25
press r; press o; press F12; press Escape
"""

env = Flappy(seed=1, render_mode="human", render_fps=30)
env.render()  # opens the window
driver = subprocess.Popen(["bash", "-c", DRIVER])
seen = {"flaps": [], "restarts": [], "overlay": []}
frames = 0
while not env.window_closed and frames < 900:
    window = env.window
    flap = window.flap_pressed()
    if flap:
        seen["flaps"].append(frames)
    if window.restart_pressed():
        seen["restarts"].append(frames)
    seen["overlay"].append(window.overlay)
    env.step(np.array([flap], np.int32))
    env.render()
    frames += 1
driver_status = driver.wait(timeout=30)
env.close()
print(json.dumps({"frames": frames, "closed": env.window_closed, "driver": driver_status,
                  "flaps": len(seen["flaps"]), "restarts": len(seen["restarts"]),
                  "overlay_changes": sum(a != b for a, b in zip(seen["overlay"], seen["overlay"][1:]))}))
