"""The browser build (`puffer web`): the page in headless Chromium, served from 127.0.0.1.

The page runs csrc/web.c compiled by emscripten; these tests drive it as a user does (keys,
clicks, taps, typed parameters) and through window.flappy, the page's own entry points, and hold
its canvas to the Python env's rgb_array frames pixel for pixel. They need Debian's emscripten
and chromium (.ci/run installs both).
"""

import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from flappy_rl import Flappy, binding
from flappy_rl.web import CHROMIUM, serving

ROOT = Path(__file__).resolve().parent.parent


def require(emcc=True, chromium=True):
    """Skip, saying why, where Debian's emscripten or chromium is missing (CI installs both)."""
    if emcc and shutil.which("emcc") is None:
        pytest.skip("needs emcc: apt-get install emscripten (.ci/run installs it)")
    if chromium and not os.path.exists(CHROMIUM):
        pytest.skip(f"needs {CHROMIUM}: apt-get install chromium (.ci/run installs it)")


def puffer(*argv, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "flappy_rl.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(chromium=False)
    folder = tmp_path_factory.mktemp("web")
    result = puffer("web", "puffer_flappy", "--web-path", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def url(site):
    with serving(site) as base:
        yield base + "index.html"


@pytest.fixture(scope="module")
def browser():
    require(emcc=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Page:
    """One tab on the page, with the console's errors collected."""

    def __init__(self, browser, url, query="", **context):
        self.context = browser.new_context(**context)
        self.tab = self.context.new_page()
        self.errors, self.requests = [], []
        self.tab.on("request", lambda request: self.requests.append(request.url))
        self.tab.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.tab.on("pageerror", lambda error: self.errors.append(str(error)))
        self.tab.goto(url + query)
        self.tab.wait_for_function("window.flappyReady === true", timeout=30_000)

    def js(self, expression, arg=None):
        return self.tab.evaluate(expression, arg)

    def state(self):
        return self.js("flappy.state()")

    def canvas(self):
        """The canvas's own pixels (its backing store, 288 x 512), as an RGBA array."""
        encoded = self.js("""() => {
            const c = document.getElementById('screen');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let text = '';
            for (let i = 0; i < data.length; i += 8192) text += String.fromCharCode(...data.subarray(i, i + 8192));
            return [c.width, c.height, btoa(text)];
        }""")
        width, height, data = encoded
        return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)


@pytest.fixture
def open_page(browser, url):
    pages = []

    def open_(query="", **context):
        pages.append(Page(browser, url, query, **context))
        return pages[-1]

    yield open_
    for page in pages:
        page.context.close()


def python_frames(seed, actions, at, **params):
    """rgb_array frames of the Python env with this seed after the first n actions, n in at."""
    env = Flappy(num_envs=1, render_mode="rgb_array", seed=seed, **params)
    env.reset(seed=seed)
    frames = {0: env.render()} if 0 in at else {}
    for n, action in enumerate(actions, 1):
        env.step(np.array([action], np.int32))
        if n in at:
            frames[n] = env.render()
    env.close()
    return frames


def assert_canvas_is(page, frame):
    pixels = page.canvas()
    assert pixels.shape == (*frame.shape[:2], 4)
    assert (pixels[..., 3] == 255).all()
    mismatched = np.argwhere((pixels[..., :3] != frame).any(-1))
    assert len(mismatched) == 0, f"{len(mismatched)} pixels differ, first at (row, col) {tuple(mismatched[0])}"


# -- the command -------------------------------------------------------------------------------


def test_missing_emscripten_says_which_package_to_install(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no emcc on it
    result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert result.stderr == ("puffer: error: emcc not found: puffer web compiles the game with emscripten; "
                             "install Debian's 'emscripten' package (apt-get install emscripten)\n")


def test_bad_env_parameter_is_one_line_before_any_build(tmp_path):
    result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path), "--env.gap", "500")
    assert result.returncode == 2
    assert result.stderr == "puffer: error: [env] gap must be in [30, 240], got 500\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("port", ["65536", "-1"])
def test_a_port_out_of_range_is_one_line_before_any_build(tmp_path, port):
    result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path), "--serve", "--port", port)
    assert result.returncode == 2
    assert result.stderr == f"puffer: error: --port must be in [0, 65535] (0: any free port), got {port}\n"
    assert not any(tmp_path.iterdir())


def test_a_web_path_that_is_a_file_is_one_line(tmp_path):
    require(chromium=False)
    (tmp_path / "taken").write_text("")
    result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path / "taken"))
    assert result.returncode == 2
    assert result.stderr == f"puffer: error: cannot write to {tmp_path / 'taken'}: File exists\n"


def test_a_missing_checkpoint_is_one_line(tmp_path):
    require(chromium=False)
    result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path), "--load-model-path", str(tmp_path / "no.pt"))
    assert result.returncode == 2
    assert result.stderr == f"puffer: error: checkpoint not found: {tmp_path / 'no.pt'}\n"


def test_serve_prints_the_url_serves_the_folder_and_stops_on_ctrl_c(tmp_path):
    require(chromium=False)
    process = subprocess.Popen([sys.executable, "-m", "flappy_rl.cli", "web", "puffer_flappy", "--web-path",
                                str(tmp_path), "--serve", "--port", "0", "--env.gap", "120"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # Ctrl-C as a terminal sends it, even where this suite runs as a background
                               # job: a shell starts those with SIGINT ignored, and Python keeps it so.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout.readline().startswith(f"built {tmp_path}/: policy exported in ")
        line = process.stdout.readline()
        assert line.startswith(f"serving {tmp_path}/ at http://127.0.0.1:") and line.endswith("(Ctrl-C stops)\n")
        url = line.split(" at ")[1].split()[0]
        assert url.endswith("/?gap=120.0")  # the command line's [env] changes start the page
        base = url.split("?")[0]
        with urllib.request.urlopen(base + "index.html", timeout=60) as response:
            assert b'<canvas id="screen"' in response.read()
        with urllib.request.urlopen(base + "flappy.wasm", timeout=60) as response:
            assert response.headers["Content-Type"] == "application/wasm"
            assert response.read(4) == b"\0asm"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and err == "stopped\n"


def test_a_port_in_use_is_one_line_before_any_build(site, tmp_path):
    with serving(site) as base:
        port = base.rstrip("/").rsplit(":", 1)[1]
        result = puffer("web", "puffer_flappy", "--web-path", str(tmp_path / "out"), "--serve", "--port", port)
    assert result.returncode == 2
    assert result.stderr == f"puffer: error: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    assert not (tmp_path / "out").exists()


def test_a_browser_that_hangs_up_mid_file_leaves_the_terminal_quiet(tmp_path, capfd):
    (tmp_path / "large.bin").write_bytes(bytes(64 << 20))  # far more than the sockets buffer
    with serving(tmp_path) as base:
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            client.sendall(b"GET /large.bin HTTP/1.0\r\n\r\n")
            assert client.recv(12) == b"HTTP/1.0 200"
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close resets
        deadline = time.monotonic() + 60
        while any(thread.name.endswith("(process_request_thread)") for thread in threading.enumerate()):
            assert time.monotonic() < deadline, "the request's thread did not end"
            time.sleep(0.01)
        with urllib.request.urlopen(base, timeout=60) as response:  # and it goes on serving
            assert b"large.bin" in response.read()
    assert capfd.readouterr() == ("", "")


# -- the page ----------------------------------------------------------------------------------


def test_page_loads_without_console_errors_and_draws_the_game(open_page, url):
    page = open_page()
    page.tab.wait_for_timeout(500)
    assert page.errors == []
    base = url.rsplit("/", 1)[0] + "/"
    assert sorted(request.removeprefix(base) for request in page.requests) == [  # all from the folder: works offline
        "app.js", "flappy.js", "flappy.wasm", "index.html", "policy.bin", "policy.txt", "style.css"]
    pixels = page.canvas()
    colours = {tuple(c) for c in pixels[..., :3].reshape(-1, 3)[::7]}
    palette = {tuple(rgb) for rgb in binding.palette().values()}
    assert len(colours) >= 5 and colours <= palette  # sky, pipes or ground, bird, score: nothing else
    assert page.js("getComputedStyle(document.getElementById('screen')).imageRendering") == "pixelated"


@pytest.mark.parametrize("viewport", [dict(width=1280, height=720), dict(width=390, height=844)])
def test_canvas_is_scaled_up_to_fit_desktop_and_phone_viewports(open_page, viewport):
    page = open_page(viewport=viewport)
    box = page.tab.locator("#screen").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
    assert box["y"] + box["height"] <= viewport["height"] + 0.5
    assert box["width"] > 288 and abs(box["height"] / box["width"] - 512 / 288) < 0.01


@pytest.mark.parametrize("query,params", [
    ("", {}),
    ("&gap=150&pipe_speed=6.5", dict(gap=150.0, pipe_speed=6.5)),
    ("&difficulty=hard", dict(difficulty="hard")),  # randomized episodes: the same draws in C
])
def test_canvas_pixels_equal_python_rgb_array_for_the_same_seed_and_actions(open_page, query, params):
    assert_play_draws_what_python_draws(open_page(f"?seed=11&mode=play&paused=1{query}"), params)


def test_without_an_agent_the_pages_frame_skip_repeats_each_key_press(browser, site, tmp_path):
    shutil.copytree(site, tmp_path / "site")
    (tmp_path / "site" / "policy.txt").unlink()
    (tmp_path / "site" / "policy.bin").unlink()
    with serving(tmp_path / "site") as base:
        page = Page(browser, base + "index.html", "?seed=11&mode=play&paused=1&frame_skip=3")
        assert not page.state()["hasAgent"]
        assert_play_draws_what_python_draws(page, dict(frame_skip=3))
        page.context.close()


def test_with_an_agent_the_game_keeps_the_frame_skip_it_was_trained_with(open_page):
    """The shipped policy decides every frame (frame_skip 1 in its description): the page's
    frame_skip gives way to it, as the observation settings do."""
    assert_play_draws_what_python_draws(open_page("?seed=11&mode=play&paused=1&frame_skip=3"), {})


def assert_play_draws_what_python_draws(page, params):
    """Steps with a key press now and then, the canvas checked against Python's rgb_array."""
    assert page.state()["seed"] == 11
    checkpoints = [0, 1, 2, 40, 120, 400]
    actions = []
    for n in range(1, checkpoints[-1] + 1):
        if n % 9 == 0 or n % 23 == 0:  # crashes now and then: the env's own reset is drawn too
            page.tab.keyboard.press("Space")
        page.js("flappy.advance(1)")
        if n in checkpoints:
            actions = page.js("flappy.actions()")
            frames = python_frames(11, actions, {n}, **params)
            assert_canvas_is(page, frames[n])
    assert sum(actions) > 20 and page.js("flappy.state()")["episodes"] >= 1


def test_key_press_click_and_tap_flap_in_play_mode(open_page):
    page = open_page("?seed=5&mode=play&paused=1", has_touch=True)
    frame_after = python_frames(5, [1, 0, 1, 1], {1, 2, 3, 4})
    assert page.state()["controller"] == "you"
    page.tab.keyboard.press("Space")
    page.js("flappy.advance(1)")
    assert page.js("flappy.actions()") == [1]
    assert_canvas_is(page, frame_after[1])
    page.js("flappy.advance(1)")  # no press: no flap
    page.tab.keyboard.press("ArrowUp")
    page.js("flappy.advance(1)")
    page.tab.locator("#screen").tap()
    page.js("flappy.advance(1)")
    assert page.js("flappy.actions()") == [1, 0, 1, 1]
    assert_canvas_is(page, frame_after[4])


def test_play_mode_waits_for_the_first_flap(open_page):
    page = open_page("?seed=5&mode=play")
    page.tab.wait_for_timeout(300)
    assert page.state()["waiting"] and page.state()["frames"] == 0
    page.tab.keyboard.press("Space")
    page.tab.wait_for_function("flappy.state().frames > 5")
    assert page.js("flappy.actions()")[0] == 1


def test_pause_and_restart(open_page):
    page = open_page("?seed=8&speed=4")
    page.tab.wait_for_function("flappy.state().frames > 10")
    page.tab.locator("#pause").click()
    frames = page.state()["frames"]
    page.tab.wait_for_timeout(300)
    assert page.state()["paused"] and page.state()["frames"] == frames
    assert page.tab.locator("#overlay").text_content() == "paused"
    page.tab.keyboard.press("p")
    page.tab.wait_for_function(f"flappy.state().frames > {frames}")
    # Restart while paused, so that no frame runs between the restart and the check: a running
    # page catches up on late animation frames (up to 250 ms of game at once), and under load
    # that made a check of "fewer frames than before" fail now and then.
    page.tab.keyboard.press("p")
    assert page.state()["paused"]
    page.tab.locator("#restart").click()
    assert page.state()["frames"] == 0 and page.state()["seed"] == 8
    page.js("flappy.advance(5)")
    assert page.state()["frames"] == 5
    page.tab.keyboard.press("r")
    assert page.state()["frames"] == 0 and page.state()["seed"] == 8


@pytest.mark.parametrize("name,text,value", [
    ("gap", "500", 500.0),
    ("gap", "29.5", 29.5),
    ("pipe_speed", "0", 0.0),
    ("gravity", "wide", "wide"),
    ("max_steps", "0", 0),
    ("max_steps", "2.5", 2.5),
    ("gap_spread", "-1", -1.0),
])
def test_a_bad_parameter_shows_the_message_python_gives(open_page, name, text, value):
    with pytest.raises((ValueError, TypeError)) as python:
        Flappy(**{name: value})
    page = open_page("?seed=3&paused=1")
    page.js("document.querySelector('#params details').open = true")
    control = page.tab.locator(f"input[name={name}]")
    control.fill(text)
    control.press("Enter")
    assert page.tab.locator("#message").text_content() == str(python.value)
    assert control.get_attribute("aria-invalid") == "true"
    page.js("flappy.advance(3)")  # the game goes on with the parameters it had
    assert_canvas_is(page, python_frames(3, page.js("flappy.actions()"), {3})[3])
    assert page.errors == []


def test_parameters_in_the_url_go_through_the_same_checks(open_page):
    with pytest.raises(ValueError) as python:
        Flappy(pipe_spacing=50.0)
    page = open_page("?pipe_spacing=50")
    assert page.state()["message"] == str(python.value)


def test_controls_show_the_c_tables_choices_and_values(open_page):
    page = open_page()
    options = page.tab.locator("select[name=difficulty] option").all_text_contents()
    assert tuple(options) == binding.param_choices()["difficulty"]
    assert page.tab.locator("input[name=gap]").input_value() == "100"
    assert page.tab.locator("input[name=gap]").get_attribute("placeholder") == "30 to 240"
    page.tab.locator("select[name=difficulty]").select_option("easy")
    assert page.tab.locator("#message").text_content() == ""


# -- the agent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [4, 2])
def test_a_policy_of_the_wrong_size_leaves_play_mode_only(browser, site, tmp_path, cut):
    shutil.copytree(site, tmp_path / "site")
    weights = tmp_path / "site" / "policy.bin"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:-cut])
    if cut == 4:  # the C loader checks the count against the description
        message = (f"cannot load the agent: the weights hold {size // 4 - 1} floats ({size - 4} bytes), but the "
                   f"description's policy needs {size // 4} ({size} bytes); play yourself")
    else:
        message = (f"cannot load the agent: policy.bin holds {size - 2} bytes, not whole float32 values; "
                   "play yourself")
    with serving(tmp_path / "site") as base:
        page = Page(browser, base + "index.html")
        state = page.state()
        assert (state["hasAgent"], state["mode"], state["message"]) == (False, "play", message)
        assert page.tab.locator("#watch").is_disabled() and page.errors == []
        page.context.close()


def test_the_agent_passes_50_pipes_in_the_page_at_full_speed(open_page):
    page = open_page("?seed=1&speed=max")
    assert page.state()["hasAgent"] and page.state()["controller"] == "agent"
    page.tab.wait_for_function("flappy.state().score >= 50 || flappy.state().episodes > 0", timeout=60_000)
    state = page.state()
    first_episode = state["scores"][0] if state["scores"] else state["score"]
    assert first_episode >= 50
    assert 0.0 <= state["flapProbability"] <= 1.0
    page.js("flappy.pause(true)")
    actions = page.js("flappy.actions()")
    assert page.js("flappy.agentActions()") == actions  # the agent flew every frame
    assert_canvas_is(page, python_frames(1, actions, {len(actions)})[len(actions)])


def test_holding_shift_takes_over_and_releasing_hands_back(open_page):
    page = open_page("?seed=2&paused=1")
    page.js("flappy.advance(20)")
    page.tab.keyboard.down("Shift")
    assert page.state()["controller"] == "you"
    page.js("flappy.advance(40)")  # you hold on and never flap: the bird falls
    page.tab.keyboard.press("Space")
    page.js("flappy.advance(1)")
    page.tab.keyboard.up("Shift")
    assert page.state()["controller"] == "agent"
    page.js("flappy.advance(30)")
    actions, agent = page.js("flappy.actions()"), page.js("flappy.agentActions()")
    assert actions[:20] == agent[:20]
    assert actions[20:60] == [0] * 40 and 1 in agent[20:60]  # it wanted to flap; you did not let it
    assert actions[60] == 1
    assert actions[61:] == agent[61:]
    assert_canvas_is(page, python_frames(2, actions, {len(actions)})[len(actions)])


def test_the_take_over_button_is_held_like_the_key(open_page):
    page = open_page("?seed=2&paused=1", has_touch=True)
    button = page.tab.locator("#takeover")
    box = button.bounding_box()
    page.tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.tab.mouse.down()
    assert page.state()["controller"] == "you"
    assert button.get_attribute("aria-pressed") == "true"
    page.tab.mouse.up()
    assert page.state()["controller"] == "agent"
    assert button.get_attribute("aria-pressed") == "false"


def test_benchmark_mode_measures_every_size(open_page):
    page = open_page("?bench=1&seconds=0.05")
    rows = page.js("window.flappyBench")
    assert [(row["name"], row["envs"]) for row in rows] == [
        ("core step (web_bench_step)", 1), ("core step (web_bench_step)", 64), ("core step (web_bench_step)", 1024),
        ("core step (web_bench_step)", 4096), ("frame: draw and putImageData", 1),
        ("agent and step (the page at full speed)", 1)]
    for row in rows:
        assert len(row["windows"]) == 3 and row["median"] == sorted(row["windows"])[1] > 0
    assert page.errors == []


def test_the_pages_agent_chooses_as_the_pytorch_policy_does(open_page):
    """The page's greedy actions, frame by frame, against the shipped policy run by PyTorch on the
    same observations (the page's actions replayed in Python). Near-ties, where float rounding
    may pick either action, are left out."""
    import torch

    from flappy_rl.config import parse_args
    from flappy_rl.pretrained import use_pretrained
    from flappy_rl.checkpoint import load_checkpoint
    from flappy_rl.components import make_policy

    page = open_page("?seed=4&paused=1")
    page.js("flappy.advance(1500)")
    actions = page.js("flappy.agentActions()")
    args = use_pretrained(parse_args("eval", "puffer_flappy", ["--load-model-path", "pretrained"]))
    env = Flappy(num_envs=1, seed=4)
    policy = make_policy(args, env)
    load_checkpoint(policy, args["load_model_path"], args, "cpu")
    observations, _ = env.reset(seed=4)
    agreed = 0
    for action in actions:
        with torch.no_grad():
            logits, _ = policy.forward_eval(torch.as_tensor(observations))
        margin = float(logits[0, 1] - logits[0, 0])
        if abs(margin) > 1e-4:
            assert action == int(margin > 0)
            agreed += 1
        observations = env.step(np.array([action], np.int32))[0]
    assert agreed > 0.99 * len(actions) and sum(actions) > 50
