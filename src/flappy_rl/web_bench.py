"""`puffer web puffer_flappy --bench`: the page's WebAssembly core in headless Chromium, beside
the native binding measured in the same run, and the page's own frame rates.

The page's benchmark mode (index.html?bench=1) times the core as `puffer bench` times the
binding: cached random actions, one flap in ten; the median of 3 windows after a warm-up.
Needs playwright (the dev dependency group) and Debian's chromium.
"""

import os

from flappy_rl.bench import SIZES, millions, raw_binding
from flappy_rl.errors import ConfigError
from flappy_rl.speed import WINDOWS, one_core
from flappy_rl.web import CHROMIUM, serving

PAGE_RATE_SECONDS = 5.0


def launch(playwright):
    if not os.path.exists(CHROMIUM):
        raise ConfigError(f"--bench runs the page in {CHROMIUM}: install Debian's 'chromium' package")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def page_rate(browser, url, query, count):
    """How many of `count` (a JS expression over flappy.state()) the page makes per second."""
    page = browser.new_page()
    page.goto(url + query)
    page.wait_for_function("window.flappyReady === true")
    page.wait_for_timeout(1000)  # past the start
    before, start = page.evaluate(f"[{count}, performance.now()]")
    page.wait_for_timeout(PAGE_RATE_SECONDS * 1000)
    after, end = page.evaluate(f"[{count}, performance.now()]")
    page.close()
    return (after - before) * 1000 / (end - start)


def bench_page(folder, seconds):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("--bench drives Chromium with playwright: uv sync --group dev") from None
    with serving(folder) as base, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.goto(f"{base}index.html?bench=1&seconds={seconds}")
        page.wait_for_function("window.flappyBench !== undefined", timeout=(len(SIZES) + 3) * 5 * seconds * 1000)
        wasm = page.evaluate("window.flappyBench")
        page.close()
        # the page as a user sees it: canvas frames at 1x, game frames at full speed
        drawn_1x = page_rate(browser, f"{base}index.html", "?seed=1&mode=watch", "flappy.state().framesDrawn")
        game_max = page_rate(browser, f"{base}index.html", "?seed=1&mode=watch&speed=max", "flappy.state().frames")
        browser.close()
    with one_core():
        native = {n: raw_binding(n, seconds) for n in SIZES}
    print(f"{WINDOWS} windows of {seconds:g} s each; native binding pinned to one core, "
          f"the page on Chromium's main thread")
    print("| measurement | envs | WebAssembly in Chromium | native binding `vec_step` | WebAssembly / native |")
    print("|---|---:|---:|---:|---:|")
    for row in wasm:
        if row["name"].startswith("core step"):
            n = row["envs"]
            ratio = row["median"] / native[n]["median"]
            print(f"| steps/s | {n} | {millions(row['median'])} | {millions(native[n]['median'])} | {ratio:.2f} |")
    for row in wasm:
        if not row["name"].startswith("core step"):
            print(f"| {row['name']}, frames/s | 1 | {millions(row['median'])} | | |")
    print(f"| the page at 1x: canvas frames drawn per second | | {drawn_1x:.1f} | | |")
    print(f"| the page at full speed: game frames per second (agent, step, one draw per animation frame) "
          f"| | {millions(game_max)} | | |")
