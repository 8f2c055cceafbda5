"""`puffer web`: Flappy in the browser. The game (csrc/flappy.h), its rasterizer (csrc/render.h)
and the agent's network (PufferLib's puffernet.h, through csrc/flappy_agent.h) are compiled to
WebAssembly with emscripten, next to the page (src/flappy_rl/page/) and the exported policy:
a static folder that works offline, from any web server.

    puffer web puffer_flappy [--load-model-path latest|PATH] [--web-path DIR] [--serve] [--port N]
    puffer web puffer_flappy --bench        # steps per second in Chromium beside the native binding
"""

import contextlib
import functools
import http.server
import importlib.resources
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from flappy_rl import binding
from flappy_rl.config import c_params
from flappy_rl.csrc import CSRC_DIR
from flappy_rl.errors import ConfigError, WebBuildError
from flappy_rl.export import export, puffernet_dir

PAGE_FILES = ("index.html", "app.js", "style.css")
MODULE = "flappy.js"  # emcc writes flappy.wasm beside it
POLICY_DESCRIPTION, POLICY_WEIGHTS = "policy.txt", "policy.bin"  # the names app.js fetches
# Debian's emscripten keeps the JS modules its compiler needs (acorn, ...) here; a node that is
# not Debian's own does not look there by itself.
DEBIAN_NODE_MODULES = "/usr/share/nodejs"
CHROMIUM = "/usr/bin/chromium"


def export_policy(args, folder):
    """`puffer export` of --load-model-path into folder, under the names the page fetches. Returns
    the seconds it took."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        # export's messages are about the C demo; puffer web reports its own
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            weights, description = export({**args, "out_dir": out_dir})
        shutil.copyfile(weights, folder / POLICY_WEIGHTS)
        shutil.copyfile(description, folder / POLICY_DESCRIPTION)
    return time.perf_counter() - start


def find_emcc():
    emcc = shutil.which("emcc")
    if emcc is None:
        raise ConfigError("emcc not found: puffer web compiles the game with emscripten; install Debian's "
                          "'emscripten' package (apt-get install emscripten)")
    return emcc


def emcc_command(emcc, output):
    return [
        emcc, "-O2", "-ffp-contract=off",  # the twin's rounding, as the native build
        f"-I{CSRC_DIR}", f"-I{puffernet_dir()}", str(CSRC_DIR / "web.c"),
        "-sENVIRONMENT=web", "-sMODULARIZE=1", "-sEXPORT_NAME=createFlappyModule", "-sALLOW_MEMORY_GROWTH=1",
        "-sEXPORTED_FUNCTIONS=_main,_malloc,_free",
        "-sEXPORTED_RUNTIME_METHODS=ccall,UTF8ToString",
        "-o", str(output),
    ]


def build(folder):
    """Write the page, its WebAssembly module and JS into folder. Returns the build's seconds."""
    emcc = find_emcc()
    page = importlib.resources.files("flappy_rl.page")
    for name in PAGE_FILES:
        (folder / name).write_bytes(page.joinpath(name).read_bytes())
    env = dict(os.environ)
    if os.path.isdir(DEBIAN_NODE_MODULES):
        env["NODE_PATH"] = os.pathsep.join(filter(None, [env.get("NODE_PATH"), DEBIAN_NODE_MODULES]))
    start = time.perf_counter()
    result = subprocess.run(emcc_command(emcc, folder / MODULE), capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
        raise WebBuildError(f"emcc failed: {lines[0] if lines else f'exit status {result.returncode}'}")
    return time.perf_counter() - start


def page_query(args):
    """The URL query that starts the page with the [env] parameters the command line changed."""
    defaults = binding.check_params()
    try:
        chosen = binding.check_params(**c_params(args))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[env] {error}") from None
    changed = {name: value for name, value in c_params(args).items() if chosen[name] != defaults[name]}
    return "?" + urllib.parse.urlencode(changed) if changed else ""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}

    def log_message(self, format, *args):
        pass


class SiteServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A browser hangs up mid-file whenever a tab closes or reloads while loading: routine, not
        # a traceback on the terminal of the person watching the page.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serving(folder, port=0, host="127.0.0.1"):
    """Serve folder over http on host in a background thread; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        server = SiteServer((host, port), handler)
    except OSError as error:
        raise ConfigError(f"cannot serve on {host}:{port}: {error.strerror}") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def web(args):
    folder = Path(args["web_path"])
    query = page_query(args)
    find_emcc()  # before the export: a missing compiler is the first thing to hear about
    with contextlib.ExitStack() as stack:
        # --serve takes its port before the build: a port in use is one line, not a minute's build later
        url = stack.enter_context(serving(folder, args["port"])) if args["serve"] and not args["bench"] else None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot write to {folder}: {error.strerror or error}") from None
        export_seconds = export_policy(args, folder)
        build_seconds = build(folder)
        wasm = folder / MODULE.replace(".js", ".wasm")
        print(f"built {folder}/: policy exported in {export_seconds:.1f} s, page compiled in {build_seconds:.1f} s "
              f"({wasm.stat().st_size / 1024:.0f} KiB of WebAssembly)")
        if args["bench"]:
            from flappy_rl.web_bench import bench_page

            bench_page(folder, args["seconds"])
        elif url is not None:
            print(f"serving {folder}/ at {url}{query} (Ctrl-C stops)", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("stopped", file=sys.stderr)
        else:
            print(f"open it through a web server, e.g. puffer web {args['env_name']} --serve")
