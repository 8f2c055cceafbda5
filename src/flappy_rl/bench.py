"""`puffer bench puffer_flappy`: steps per second, measured side by side in one run.

Every figure is the median of several timed windows after a warm-up, stepping with a cached
array of random actions (one flap in ten). Single-core figures run pinned to one core.

    puffer bench puffer_flappy [--seconds S] [--json PATH] [--compare]
    python -m flappy_rl.bench benchmarks/bench.json docs/performance.md   # rewrite its table
"""

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import pufferlib
import pufferlib.vector

from flappy_rl import GYMNASIUM_ID, Flappy, binding, make_gymnasium_env
from flappy_rl.csrc import CSRC_DIR
from flappy_rl.errors import ConfigError
from flappy_rl.speed import ACTION_ROWS, WINDOWS, measure, one_core, random_actions

SIZES = (1, 64, 1024, 4096)
SYNC_ENVS = 64  # SyncVectorEnv steps its envs one by one: its rate hardly depends on their number


def raw_binding(num_envs, seconds, windows=WINDOWS, **params):
    spec = binding.obs_spec(**params)
    buffers = [np.zeros((num_envs, *spec["shape"]), spec["dtype"]), np.zeros(num_envs, np.int32),
               np.zeros(num_envs, np.float32), np.zeros(num_envs, bool), np.zeros(num_envs, bool)]
    handle = binding.vec_init(*buffers, num_envs, 0, **params)
    rows = random_actions(num_envs)
    counter = iter(range(1 << 62))

    def step():
        binding.vec_step(handle, rows[next(counter) & (ACTION_ROWS - 1)])

    result = measure(step, num_envs, seconds, windows)
    binding.vec_close(handle)
    return result


def wrapper(num_envs, seconds):
    env, rows = Flappy(num_envs=num_envs), random_actions(num_envs)
    counter = iter(range(1 << 62))
    result = measure(lambda: env.step(rows[next(counter) & (ACTION_ROWS - 1)]), num_envs, seconds)
    env.close()
    return result


def gymnasium_vector(num_envs, seconds):
    """`gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`: FlappyVectorEnv, and
    the binding at the same size in the windows between its own, so that the machine's other
    load falls on both alike: {"vector": ..., "raw": ...}."""
    import gymnasium

    envs = gymnasium.make_vec(GYMNASIUM_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    rows = random_actions(num_envs)
    counter = iter(range(1 << 62))
    vector, raw = [], []
    for _ in range(WINDOWS):
        vector += measure(lambda: envs.step(rows[next(counter) & (ACTION_ROWS - 1)]), num_envs, seconds, 1)["windows"]
        raw += raw_binding(num_envs, seconds, windows=1)["windows"]
    envs.close()
    return {"vector": {"median": statistics.median(vector), "windows": vector},
            "raw": {"median": statistics.median(raw), "windows": raw}}


def render_frames(seconds):
    """Frames per second of the C rasterizer, drawing a game in progress: the rgb_array frame
    that Flappy.render() returns (a new array each time), and a 64 x 36 grayscale image into a
    reused array, the size of a pixel observation."""
    env = Flappy(render_mode="rgb_array")
    rows = random_actions(1)
    for k in range(150):  # the first pipes on screen
        env.step(rows[k & (ACTION_ROWS - 1)])
    small = np.empty((64, 36), np.uint8)
    results = {"rgb_512x288": measure(env.render, 1, seconds),
               "gray_64x36": measure(lambda: binding.render(env.c_envs, 0, small), 1, seconds)}
    env.close()
    return results


def pure_c(num_envs, seconds, build_dir):
    """The C benchmark program (csrc/bench.c), compiled as setup.py compiles the extension."""
    exe = Path(build_dir) / "flappy_bench"
    if not exe.exists():
        subprocess.run(["gcc", "-O3", "-ffp-contract=off", f"-I{CSRC_DIR}", str(CSRC_DIR / "bench.c"), "-o", str(exe), "-lm"],
                       check=True)
    out = subprocess.run([str(exe), str(num_envs), str(seconds), str(WINDOWS)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def multiprocessing(seconds, workers, envs_per_worker=2048):
    """PufferLib's Multiprocessing backend: `workers` processes of `envs_per_worker` birds each,
    stepped in lockstep. PufferLib's workers and its main process all busy-wait, so a layout
    with as many workers as cores also needs a core for the main process."""
    vecenv = pufferlib.vector.make(Flappy, backend="Multiprocessing", num_envs=workers, num_workers=workers,
                                   batch_size=workers, env_kwargs=dict(num_envs=envs_per_worker))
    vecenv.async_reset(0)
    rows = random_actions(vecenv.num_agents)
    counter = iter(range(1 << 62))

    def step():
        vecenv.recv()
        vecenv.send(rows[next(counter) & (ACTION_ROWS - 1)])

    result = measure(step, vecenv.num_agents, seconds)
    vecenv.close()
    return {**result, "workers": workers, "envs_per_worker": envs_per_worker}


def gymnasium_loop(env, seconds):
    """One Gymnasium-style env, reset whenever an episode ends."""
    env.reset(seed=0)
    actions = random_actions(1 << 16, seed=1)[0].tolist()
    counter = iter(range(1 << 62))

    def step():
        _, _, terminated, truncated, _ = env.step(actions[next(counter) & 0xFFFF])
        if terminated or truncated:
            env.reset()

    return measure(step, 1, seconds)


def puffer_twin(seconds):
    """The pure-Python twin behind PufferLib's emulation layer, as vector.make would run it."""
    env = make_gymnasium_env()
    result = gymnasium_loop(env, seconds)
    env.close()
    return result


def flappy_bird_gymnasium(seconds, use_lidar):
    import flappy_bird_gymnasium  # noqa: F401 (registers FlappyBird-v0)
    import gymnasium

    return gymnasium_loop(gymnasium.make("FlappyBird-v0", use_lidar=use_lidar, render_mode=None).unwrapped, seconds)


def flappy_bird_gymnasium_sync(num_envs, seconds):
    """flappy-bird-gymnasium (features) in Gymnasium's SyncVectorEnv, its vectorization."""
    import flappy_bird_gymnasium  # noqa: F401 (registers FlappyBird-v0)
    import gymnasium

    envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("FlappyBird-v0", use_lidar=False, render_mode=None)
                                           for _ in range(num_envs)])
    envs.reset(seed=0)
    rows = random_actions(num_envs)
    counter = iter(range(1 << 62))
    result = measure(lambda: envs.step(rows[next(counter) & (ACTION_ROWS - 1)]), num_envs, seconds)
    envs.close()
    return result


def cpu_model():
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine():
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "compiler": binding.COMPILER,
        "versions": {name: version(name) for name in ("flappy-rl", "pufferlib-core", "numpy", "gymnasium",
                                                      "flappy-bird-gymnasium")},
        "date": datetime.date.today().isoformat(),
        "load_average": round(os.getloadavg()[0], 2),  # other work on the machine while it ran
    }


def run(seconds=1.0, compare=False, log=print):
    """Every measurement of the benchmark, as a JSON-ready dict."""
    results = {"machine": machine(), "seconds_per_window": seconds, "windows": WINDOWS}
    with one_core() as core, tempfile.TemporaryDirectory() as build_dir:
        results["machine"]["pinned_core"] = core
        log(f"pinned to core {core}")
        for name, function in (("raw", raw_binding), ("wrapper", wrapper)):
            results[name] = {n: function(n, seconds) for n in SIZES}
            log(f"{name}: " + ", ".join(f"{n}: {r['median'] / 1e6:.2f}M" for n, r in results[name].items()))
        if shutil.which("gcc") and (CSRC_DIR / "bench.c").exists():
            results["pure_c"] = {n: pure_c(n, seconds, build_dir) for n in SIZES}
        # The other observation modes at their defaults (180 LIDAR rays; two 36 x 64 frames)
        results["modes"] = {mode: {n: raw_binding(n, seconds, obs_mode=mode) for n in (1, 4096)}
                            for mode in ("lidar", "pixels")}
        log("modes: " + ", ".join(f"{mode} {n}: {r['median'] / 1e6:.2f}M" for mode, by_size in results["modes"].items()
                                  for n, r in by_size.items()))
        paired = {n: gymnasium_vector(n, seconds) for n in (64, 4096)}
        results["gymnasium_vector"] = {n: pair["vector"] for n, pair in paired.items()}
        results["raw_beside_gymnasium_vector"] = {n: pair["raw"] for n, pair in paired.items()}
        log("gymnasium vector: " + ", ".join(f"{n}: {r['median'] / 1e6:.2f}M"
                                             for n, r in results["gymnasium_vector"].items()))
        results["twin"] = puffer_twin(seconds)
        results["render"] = render_frames(seconds)
        if compare:
            results["flappy_bird_gymnasium"] = {"features": flappy_bird_gymnasium(seconds, use_lidar=False),
                                                "lidar": flappy_bird_gymnasium(seconds, use_lidar=True),
                                                "sync_vector": flappy_bird_gymnasium_sync(SYNC_ENVS, seconds)}
    cores = len(os.sched_getaffinity(0))
    # All cores, as PufferLib's one-worker-per-core rule says; and one core left for the main process.
    results["multiprocessing"] = [multiprocessing(seconds, workers) for workers in sorted({cores, max(1, cores - 1)})]
    results["ratios"] = ratios(results)
    return results


def ratios(results):
    raw, wrap = results["raw"], results["wrapper"]
    out = {
        "wrapper_overhead": {n: raw[n]["median"] / wrap[n]["median"] for n in raw},
        # FlappyVectorEnv against the binding, timed in alternate windows
        "raw_over_gymnasium_vector": {n: results["raw_beside_gymnasium_vector"][n]["median"] / figure["median"]
                                      for n, figure in results["gymnasium_vector"].items()},
    }
    if "pure_c" in results:
        out["binding_over_pure_c"] = {n: raw[n]["median"] / results["pure_c"][n]["median"] for n in raw}
    if "flappy_bird_gymnasium" in results:
        # Like for like: our features against its features, our LIDAR against its LIDAR; at 4096
        # envs through the binding, and one env per call (through the wrapper for features).
        fbg, lidar = results["flappy_bird_gymnasium"], results["modes"]["lidar"]
        out["over_flappy_bird_gymnasium"] = {
            "features": {"4096_envs": raw[4096]["median"] / fbg["features"]["median"],
                         "1_env": wrap[1]["median"] / fbg["features"]["median"]},
            "lidar": {"4096_envs": lidar[4096]["median"] / fbg["lidar"]["median"],
                      "1_env": lidar[1]["median"] / fbg["lidar"]["median"]},
            # Gymnasium vector env against Gymnasium vector env, at the same number of envs
            "sync_vector": results["gymnasium_vector"][SYNC_ENVS]["median"] / fbg["sync_vector"]["median"],
        }
    return out


def millions(rate):
    return f"{rate / 1e6:,.2f} M" if rate >= 1e5 else f"{rate / 1e3:,.1f} k"


def table(results):
    """The figures as a markdown table, and the ratios under it."""
    raw, wrap, pure = results["raw"], results["wrapper"], results.get("pure_c", {})
    r = results["ratios"]
    lines = ["| measurement | envs | steps/s (median) | ratio |", "|---|---:|---:|---|"]
    for n in raw:
        if pure:
            lines.append(f"| pure C program (csrc/bench.c), 1 core | {n} | {millions(pure[n]['median'])} | |")
        lines.append(f"| binding `vec_step`, 1 core | {n} | {millions(raw[n]['median'])} | "
                     + (f"{r['binding_over_pure_c'][n]:.2f} of pure C |" if pure else "|"))
        lines.append(f"| `Flappy.step` (Python wrapper), 1 core | {n} | {millions(wrap[n]['median'])} | "
                     f"raw / wrapper = {r['wrapper_overhead'][n]:.3f} |")
    for mode, by_size in results["modes"].items():
        for n, figure in by_size.items():
            lines.append(f"| binding `vec_step`, obs_mode {mode}, 1 core | {n} | {millions(figure['median'])} | |")
    for mp in results["multiprocessing"]:
        lines.append(f"| `vector.make` Multiprocessing, {mp['workers']} workers x {mp['envs_per_worker']} | "
                     f"{mp['workers'] * mp['envs_per_worker']} | {millions(mp['median'])} | |")
    for n, figure in results["gymnasium_vector"].items():
        beside = results["raw_beside_gymnasium_vector"][n]["median"]
        lines.append(f"| `gymnasium.make_vec` (FlappyVectorEnv, C), 1 core | {n} | {millions(figure['median'])} | "
                     f"raw / this = {r['raw_over_gymnasium_vector'][n]:.3f} (raw {millions(beside)}, alternate "
                     f"windows) |")
    lines.append(f"| pure-Python twin via `GymnasiumPufferEnv`, 1 core | 1 | {millions(results['twin']['median'])} | |")
    fbg_all = results.get("flappy_bird_gymnasium", {})
    if "sync_vector" in fbg_all:
        lines.append(f"| flappy-bird-gymnasium in `SyncVectorEnv`, features, 1 core | {SYNC_ENVS} | "
                     f"{millions(fbg_all['sync_vector']['median'])} | ours (`make_vec`, {SYNC_ENVS} envs): "
                     f"{r['over_flappy_bird_gymnasium']['sync_vector']:,.0f}x |")
    for kind, fbg in fbg_all.items():
        if kind == "sync_vector":
            continue
        ours = r["over_flappy_bird_gymnasium"][kind]
        lines.append(f"| flappy-bird-gymnasium, {kind}, 1 core | 1 | {millions(fbg['median'])} | ours ({kind}) at "
                     f"4096 envs: {ours['4096_envs']:,.0f}x; at 1 env: {ours['1_env']:,.0f}x |")
    for kind, label in (("rgb_512x288", "`Flappy.render()`, rgb_array 512 x 288, new array each frame"),
                        ("gray_64x36", "`binding.render`, 64 x 36 grayscale into a reused array")):
        lines.append(f"| {label}, 1 core | 1 | {millions(results['render'][kind]['median'])} frames/s | |")
    return "\n".join(lines)


def describe_machine(results):
    m = results["machine"]
    load = f", load average {m['load_average']:g} at the start" if "load_average" in m else ""
    return (f"{m['cpu']}, {m['cores']} cores{load}, Python {m['python']}, {m['compiler']}, {m['date']}; "
            f"{results['windows']} windows of {results['seconds_per_window']} s each")


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(results, readme):
    """Replace the text between the bench markers in `readme` with this run's table."""
    text = Path(readme).read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    section = f"{README_START}\nMeasured on {describe_machine(results)}.\n\n{table(results)}\n{README_END}"
    Path(readme).write_text(head + section + tail)


def bench(args):
    """puffer bench: run, print the table, write the JSON if asked."""
    if args["compare"] and version("flappy-bird-gymnasium") is None:
        raise ConfigError("--compare needs the flappy-bird-gymnasium package: uv run --group bench puffer bench "
                          "puffer_flappy --compare")
    results = run(args["seconds"], args["compare"])
    print(f"\n{describe_machine(results)}\n")
    print(table(results))
    if args["json"]:
        Path(args["json"]).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args['json']}")
    return results


def read_results(path):
    """The figures `puffer bench --json` wrote to path; ConfigError for a file that is not one."""
    try:
        results = json.loads(Path(path).read_text())
        # JSON turns the int keys of the per-size tables into strings
        for key in ("raw", "wrapper", "pure_c", "gymnasium_vector", "raw_beside_gymnasium_vector"):
            if key in results:
                results[key] = {int(n): r for n, r in results[key].items()}
        results["modes"] = {mode: {int(n): r for n, r in by_size.items()} for mode, by_size in results["modes"].items()}
        for key in ("wrapper_overhead", "binding_over_pure_c", "raw_over_gymnasium_vector"):
            if key in results["ratios"]:
                results["ratios"][key] = {int(n): r for n, r in results["ratios"][key].items()}
    except OSError as error:
        raise ConfigError(f"{path} cannot be read ({error.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{path} is not the JSON that puffer bench --json writes ({type(error).__name__}: "
                          f"{error})") from None
    return results


def update_readme_command(argv):
    if len(argv) != 2:
        raise ConfigError("usage: python -m flappy_rl.bench BENCH_JSON README")
    results = read_results(argv[0])
    try:
        update_readme(results, argv[1])
    except OSError as error:
        raise ConfigError(f"{argv[1]} cannot be updated ({error.strerror})") from None
    except ValueError as error:
        raise ConfigError(str(error)) from None


def main(argv=None):
    from flappy_rl.cli import exit_status

    argv = sys.argv[1:] if argv is None else argv
    return exit_status("python -m flappy_rl.bench", lambda: update_readme_command(argv), {"mode": "bench"})


if __name__ == "__main__":
    sys.exit(main())
