"""Watching Flappy: a raylib window that draws env states, and animated GIFs of frames.

The window draws the very scene of the C rasterizer behind `render_mode="rgb_array"`
(`binding.scene`: the same rectangles in the same palette), with the bird tilted by its speed,
and optionally lines from the bird to the gap edges the agent observes.

pyray is imported when a window opens, not with this module: it prints a banner on import and
is of no use without a display.
"""

import numbers
import os
import sys

import numpy as np

from flappy_rl import binding
from flappy_rl.errors import NoDisplayError

# The bird noses up while rising and down while falling: degrees (clockwise) per px/frame of
# vertical speed, within these limits.
TILT_PER_SPEED = 4.0
TILT_MIN, TILT_MAX = -25.0, 70.0

OVERLAY_THICKNESS = 2.0  # world px
TEXT_SIZE = 20  # world px; the messages are written on the ground, under the grass
TEXT_LEFT = 10.0

NO_DISPLAY_HINT = 'use render_mode="rgb_array" for frames without a window, or run under `xvfb-run -a`'

# raylib itself saves "screenshot%03i.png" into the working directory when F12 is pressed (its
# SUPPORT_SCREEN_CAPTURE option, on in the pyray wheels), numbering from 0 for the process.
# The window only tells where; this mirrors raylib's counter.
_screenshots_taken = 0


def check_scale(value, name="scale"):
    """A window scale: a number in [0.25, 8]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.25 <= value <= 8:
        raise ValueError(f"{name} must be a number in [0.25, 8], got {value!r}")
    return float(value)


def check_fps(value, name="fps"):
    """Frames per second of a window: an int >= 0, 0 meaning as fast as possible."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 (0: as fast as possible), got {value!r}")
    return int(value)


def bird_tilt(bird_vy):
    """Clockwise rotation of the bird in degrees: nose up while rising, down while falling."""
    return min(max(bird_vy * TILT_PER_SPEED, TILT_MIN), TILT_MAX)


class RaylibWindow:
    """A window that shows one env's state at `fps` frames per second, `scale` times the
    288 x 512 world.

    Call `draw(state, params)` once per frame with a state dict as `binding.env_get` returns it
    and the env's parameters; it returns when the frame is due. ESC or the window's close button
    closes the window: `closed` becomes true, later draws do nothing, and the caller's loop
    should end. F12 saves a screenshot (the path is printed); O toggles the overlay of what the
    agent observes. Raises NoDisplayError (one line) when no display can be opened.
    raylib allows one window per process.
    """

    _one_open = False

    def __init__(self, scale=1.0, fps=int(binding.FPS), overlay=False, title="flappy-rl"):
        self.scale = check_scale(scale)
        self.fps = check_fps(fps)
        self.overlay = bool(overlay)
        if RaylibWindow._one_open:
            raise RuntimeError("a raylib window is already open in this process; close it first")
        display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        if not display:
            raise NoDisplayError(f"no display to open a window on (DISPLAY is not set): {NO_DISPLAY_HINT}")
        import pyray

        self.rl = rl = pyray
        rl.set_trace_log_level(rl.LOG_ERROR)  # raylib's INFO lines would drown the caller's output
        self.width, self.height = round(binding.WORLD_WIDTH * self.scale), round(binding.WORLD_HEIGHT * self.scale)
        rl.init_window(self.width, self.height, title)
        if not rl.is_window_ready():
            raise NoDisplayError(f"could not open a window on display {display!r}: {NO_DISPLAY_HINT}")
        RaylibWindow._one_open = True
        self._closed = False
        rl.set_target_fps(self.fps)
        self.colours = {name: rl.Color(*rgb, 255) for name, rgb in binding.palette().items()}

    @property
    def closed(self):
        """True once the user pressed ESC or the close button (or `close()` was called)."""
        return self._closed

    # -- input, as of the last frame drawn ----------------------------------------------------

    def flap_pressed(self):
        rl = self.rl
        return not self._closed and (rl.is_key_pressed(rl.KEY_SPACE) or rl.is_key_pressed(rl.KEY_UP)
                                     or rl.is_mouse_button_pressed(rl.MOUSE_BUTTON_LEFT))

    def restart_pressed(self):
        return not self._closed and self.rl.is_key_pressed(self.rl.KEY_R)

    # -- drawing ------------------------------------------------------------------------------

    def draw(self, state, params, messages=()):
        """Draw a frame of `state` (a dict as `binding.env_get` returns it) with the env's
        parameters `params` (a dict), and `messages`, lines of text written on the ground."""
        if self._closed:
            return
        rl = self.rl
        screenshot = rl.is_key_pressed(rl.KEY_F12)  # raylib saves it in end_drawing
        if rl.is_key_pressed(rl.KEY_O):
            self.overlay = not self.overlay
        rects = binding.scene(state, **params)
        rl.begin_drawing()
        rl.rl_push_matrix()
        rl.rl_scalef(self.scale, self.scale, 1.0)
        bird_drawn = False
        for part, colour, x0, y0, x1, y1 in rects:
            if part != "bird":
                rl.draw_rectangle_rec(rl.Rectangle(x0, y0, x1 - x0, y1 - y0), self.colours[colour])
            elif not bird_drawn:  # the bird's rectangles come together in the scene
                self._draw_tilted_bird(state, [r for r in rects if r[0] == "bird"])
                bird_drawn = True
        if self.overlay:
            self._draw_overlay(state)
        rl.rl_pop_matrix()
        size = round(TEXT_SIZE * self.scale)
        top = (binding.GROUND_Y + binding.GRASS_HEIGHT) * self.scale + size // 2
        for k, line in enumerate(messages):
            rl.draw_text(line, round(TEXT_LEFT * self.scale), round(top + k * size * 1.2), size, self.colours["text"])
        rl.end_drawing()
        if screenshot:
            self._report_screenshot()
        if rl.window_should_close():
            self.close()

    def _draw_tilted_bird(self, state, bird_rects):
        """The bird's rectangles rotated about the centre of its box."""
        rl = self.rl
        cx = binding.BIRD_X + binding.BIRD_WIDTH / 2
        cy = state["bird_y"] + binding.BIRD_HEIGHT / 2
        rl.rl_push_matrix()
        rl.rl_translatef(cx, cy, 0.0)
        rl.rl_rotatef(bird_tilt(state["bird_vy"]), 0.0, 0.0, 1.0)
        for _, colour, x0, y0, x1, y1 in bird_rects:
            rl.draw_rectangle_rec(rl.Rectangle(x0 - cx, y0 - cy, x1 - x0, y1 - y0), self.colours[colour])
        rl.rl_pop_matrix()

    def _draw_overlay(self, state):
        """Lines from the bird's top-left and bottom-left corners to the gap top and bottom of the
        two pipes it observes (observations 2-7): the next pipe and the one after it."""
        rl = self.rl
        top = rl.Vector2(binding.BIRD_X, state["bird_y"])
        bottom = rl.Vector2(binding.BIRD_X, state["bird_y"] + binding.BIRD_HEIGHT)
        for pipe in state["pipes"][state["next_pipe"]:state["next_pipe"] + 2]:
            rl.draw_line_ex(top, rl.Vector2(pipe["x"], pipe["gap_top"]), OVERLAY_THICKNESS, self.colours["overlay"])
            rl.draw_line_ex(bottom, rl.Vector2(pipe["x"], pipe["gap_bottom"]), OVERLAY_THICKNESS,
                            self.colours["overlay"])

    def _report_screenshot(self):
        global _screenshots_taken
        path = os.path.abspath(f"screenshot{_screenshots_taken:03d}.png")
        _screenshots_taken += 1
        if os.path.exists(path):
            print(f"screenshot saved to {path}", flush=True)
        else:
            print(f"F12: raylib saved no screenshot at {path}", file=sys.stderr, flush=True)

    def close(self):
        """Close the window; closing again does nothing."""
        if not self._closed:
            self._closed = True
            self.rl.close_window()
            RaylibWindow._one_open = False


def gif_durations(num_frames, fps):
    """Per-frame delays in ms for a GIF at `fps`. GIF delays are whole hundredths of a second,
    so they are rounded cumulatively (30, 40, 30, ... ms at 30 fps): no drift over a long GIF."""
    ends = [round(k * 100 / fps) * 10 for k in range(num_frames + 1)]
    return [b - a for a, b in zip(ends, ends[1:])]


def save_gif(frames, path, fps=int(binding.FPS)):
    """Write `frames` (a sequence of (height, width, 3) uint8 arrays of one shape, as
    `render()` returns in rgb_array mode) to `path` as an animated GIF that loops, at `fps`
    frames per second (in (0, 50]: viewers slow down shorter delays). The encoder merges
    identical consecutive frames into one longer frame, so the playing time is kept."""
    import imageio.v3 as iio

    frames = list(frames)
    if not frames:
        raise ValueError("frames must hold at least one frame")
    shape = np.shape(frames[0])
    for k, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames[{k}] must be a (height, width, 3) uint8 array, got "
                             f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {np.shape(frame)}")
        if frame.shape != shape:
            raise ValueError(f"frames[{k}] has shape {frame.shape}, frames[0] has {shape}")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps <= 50:
        raise ValueError(f"fps must be a number in (0, 50], got {fps!r}")
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=gif_durations(len(frames), fps), loop=0)
