"""Play Flappy yourself in a raylib window."""

import numpy as np

from flappy_rl import binding
from flappy_rl.env import Flappy
from flappy_rl.render import RaylibWindow

FLAP_KEYS = "space, up, click"


def play(scale=1.0, fps=int(binding.FPS), seed=None, overlay=False, **params):
    """Play env 0 of a `Flappy(num_envs=1, seed=seed, **params)` in a window `scale` times the
    world's size at `fps` frames per second (0: as fast as possible).

    Space, the up arrow or a left click flaps; the first flap starts an episode. After a crash
    the last frame stays until the next flap. R restarts the episode, O toggles the overlay of
    what the agent observes, F12 saves a screenshot, ESC or the close button quits. The score
    is drawn at the top, the best score of the session on the ground. `seed=None` picks a
    random one. Returns the best score. Raises `flappy_rl.errors.NoDisplayError` without a
    display, ValueError or TypeError for bad arguments.

    With `frame_skip` k in params, each drawn frame is one step: a flap key holds the flap for
    k game frames and the window shows the last of them, so at `fps` the game runs k times
    faster than at frame_skip 1 (pass fps = 30 // k for about its own speed).
    """
    if seed is None:
        seed = int(np.random.default_rng().integers(2**63))
    # log_interval=1: the step that ends an episode reports its score
    env = Flappy(num_envs=1, seed=seed, log_interval=1, **params)
    window = None
    try:
        window = RaylibWindow(scale, fps, overlay, title="flappy-rl: play")
        best, phase, final_score = 0, "ready", 0
        shown = binding.env_get(env.c_envs, 0)
        while not window.closed:
            flap = window.flap_pressed()
            if window.restart_pressed():
                env.reset(seed=None)  # a new episode; the pipes keep coming from the same generator
                phase = "ready"
            elif flap and phase != "playing":
                phase = "playing"  # after a crash the env has already started the next episode
            if phase == "playing":
                before = shown
                _, _, terminals, truncations, info = env.step(np.array([flap], np.int32))
                if terminals[0] or truncations[0]:
                    phase, final_score = "over", int(info[0]["score"])
                    best = max(best, final_score)
                    shown = before  # the last frame before the crash, not the new episode's first
            if phase != "over":
                shown = binding.env_get(env.c_envs, 0)
                best = max(best, shown["score"])
            status = {"ready": f"flap: {FLAP_KEYS}", "playing": "R restart, ESC quit",
                      "over": f"score {final_score}: flap to go on"}[phase]
            window.draw(shown, env.params, [f"best {best}", status])
        return best
    finally:
        if window is not None:
            window.close()
        env.close()
