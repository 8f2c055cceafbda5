"""puffer bench runs and reports every figure; the pure C benchmark builds and runs. No timing
assertions: speed is the benchmark's business, these machines are shared and noisy."""

import json
import pathlib
import subprocess
import sys

import pytest

from flappy_rl import bench
from flappy_rl.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_bench_command_writes_every_figure(tmp_path):
    out = subprocess.run([sys.executable, "-m", "flappy_rl.cli", "bench", "puffer_flappy", "--seconds", "0.05",
                          "--json", str(tmp_path / "bench.json")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["machine"]) >= {"cpu", "cores", "python", "compiler", "versions", "date", "pinned_core",
                                       "load_average"}
    assert results["machine"]["versions"]["flappy-rl"] and results["machine"]["versions"]["pufferlib-core"]
    for section in ("raw", "wrapper", "pure_c"):
        assert list(results[section]) == ["1", "64", "1024", "4096"], section
        for figure in results[section].values():
            assert len(figure["windows"]) == bench.WINDOWS and figure["median"] > 0
    assert {mode: list(by_size) for mode, by_size in results["modes"].items()} == {"lidar": ["1", "4096"],
                                                                                  "pixels": ["1", "4096"]}
    assert list(results["gymnasium_vector"]) == ["64", "4096"]
    for figure in (*results["gymnasium_vector"].values(), results["twin"], *results["render"].values(),
                   *[f for by_size in results["modes"].values() for f in by_size.values()]):
        assert figure["median"] > 0
    assert set(results["render"]) == {"rgb_512x288", "gray_64x36"}
    cores = results["machine"]["cores"]
    assert [mp["workers"] for mp in results["multiprocessing"]] == sorted({cores, max(1, cores - 1)})
    assert all(mp["median"] > 0 for mp in results["multiprocessing"])
    assert set(results["ratios"]) == {"raw_over_gymnasium_vector", "wrapper_overhead", "binding_over_pure_c"}
    assert list(results["raw_beside_gymnasium_vector"]) == ["64", "4096"]
    assert len(results["raw_beside_gymnasium_vector"]["4096"]["windows"]) == bench.WINDOWS
    assert results["ratios"]["raw_over_gymnasium_vector"]["4096"] == pytest.approx(
        results["raw_beside_gymnasium_vector"]["4096"]["median"] / results["gymnasium_vector"]["4096"]["median"])
    assert "| binding `vec_step`, 1 core | 4096 |" in out.stdout
    assert "| `gymnasium.make_vec` (FlappyVectorEnv, C), 1 core | 4096 |" in out.stdout and "raw / this = " in out.stdout

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{bench.README_START}\nold\n{bench.README_END}\ntail\n")
    assert bench.main([str(tmp_path / "bench.json"), str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith("tail\n") and "| pure C program (csrc/bench.c), 1 core | 4096 |" in text


def test_bench_compare_without_the_package_says_what_to_run(monkeypatch):
    monkeypatch.setattr(bench, "version", lambda package: None)
    with pytest.raises(ConfigError, match=r"^--compare needs the flappy-bird-gymnasium package: uv run --group bench "
                                          r"puffer bench puffer_flappy --compare$"):
        bench.bench(dict(seconds=1.0, compare=True, json=None))


def test_bench_compare_measures_flappy_bird_gymnasium(tmp_path):
    """Through the optional dependency group, as the README says to run it."""
    out = subprocess.run(["uv", "run", "--group", "bench", "python", "-m", "flappy_rl.cli", "bench", "puffer_flappy",
                          "--seconds", "0.05", "--compare", "--json", str(tmp_path / "bench.json")], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["machine"]["versions"]["flappy-bird-gymnasium"]
    assert set(results["flappy_bird_gymnasium"]) == {"features", "lidar", "sync_vector"}
    assert all(r["median"] > 0 for r in results["flappy_bird_gymnasium"].values())
    ours = results["ratios"]["over_flappy_bird_gymnasium"]
    assert {kind: sorted(by_size) for kind, by_size in ours.items() if kind != "sync_vector"} == {
        "features": ["1_env", "4096_envs"], "lidar": ["1_env", "4096_envs"]}
    assert ours["sync_vector"] == pytest.approx(results["gymnasium_vector"]["64"]["median"]
                                                / results["flappy_bird_gymnasium"]["sync_vector"]["median"])
    lidar = results["modes"]["lidar"]["4096"]["median"] / results["flappy_bird_gymnasium"]["lidar"]["median"]
    assert ours["lidar"]["4096_envs"] == pytest.approx(lidar)
    assert "| flappy-bird-gymnasium, lidar, 1 core | 1 |" in out.stdout and "| ours (lidar) at 4096 envs: " in out.stdout
    assert "| flappy-bird-gymnasium in `SyncVectorEnv`, features, 1 core | 64 |" in out.stdout


def test_pure_c_benchmark_builds_with_the_documented_command_and_runs(tmp_path):
    exe = tmp_path / "flappy_bench"
    subprocess.run(["gcc", "-O3", "-ffp-contract=off", "-Icsrc", "csrc/bench.c", "-o", str(exe), "-lm"], cwd=ROOT,
                   check=True)
    out = subprocess.run([str(exe), "256", "0.05", "3"], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout)
    assert result["num_envs"] == 256 and len(result["windows"]) == 3 and result["median"] > 0
    bad = subprocess.run([str(exe), "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("usage: flappy_bench")
