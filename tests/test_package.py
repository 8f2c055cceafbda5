"""The package as a new user meets it: `uv build` makes an sdist and a wheel (the wheel built from
the sdist, so the sdist is known to build the C extension), the wheel goes into a fresh virtual
environment with its dependencies from the uv cache, and every `puffer` mode runs from a folder
outside the repository, where nothing of the clone can be found. CI has uv, gcc, emscripten, Xvfb
and xdotool (.ci/run)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ("3.11", "3.12", "3.13")  # pyproject.toml's requires-python and classifiers
EMCC_MISSING = ("puffer: error: emcc not found: puffer web compiles the game with emscripten; "
                "install Debian's 'emscripten' package (apt-get install emscripten)\n")


def run(argv, cwd, env=None, timeout=600):
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{shlex.join(map(str, argv))}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


def build(out_dir, python=sys.executable, sdist=True):
    """uv build into out_dir; returns the wheel's path."""
    options = [] if sdist else ["--wheel"]
    run(["uv", "build", *options, "--python", str(python), "--out-dir", str(out_dir)], ROOT)
    (wheel,) = out_dir.glob("*.whl")
    return wheel


def install(wheel, folder, python=sys.executable):
    """A fresh virtual environment in folder with only the wheel and its dependencies; returns its bin/."""
    run(["uv", "venv", "--python", str(python), str(folder)], folder.parent)
    # pufferlib-core has wheels for 3.11 and 3.12 only: on 3.13 uv builds it from its sdist (once;
    # the uv cache keeps it), for the CPU, as a CUDA toolkit other than torch's would fail the build.
    env = dict(os.environ, PUFFERLIB_DISABLE_CUDA="1")
    run(["uv", "pip", "install", "--python", str(folder / "bin" / "python"), str(wheel)], folder.parent, env=env)
    return folder / "bin"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """(the dist folder, the venv's bin/, an empty work folder outside the repository)."""
    root = tmp_path_factory.mktemp("package")
    wheel = build(root / "dist")
    return root / "dist", install(wheel, root / "venv"), root / "work"


@pytest.fixture(scope="module")
def user_env(package):
    _, bin_dir, work = package
    work.mkdir(exist_ok=True)
    # Only the venv's commands first on PATH; one torch thread, as everywhere in the suite.
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")


def puffer(package, user_env, *argv, env=None, timeout=600):
    _, bin_dir, work = package
    return run([str(bin_dir / "puffer"), *argv], work, env=env or user_env, timeout=timeout)


def test_the_sdist_and_wheel_hold_the_sources_the_modes_need(package):
    dist, _, _ = package
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("flappy.h", "render.h", "flappy_agent.h", "demo.c", "web.c", "bench.c"):
        assert f"flappy_rl/csrc/{name}" in names
    assert {"flappy_rl/pretrained/puffer_flappy.pt", "flappy_rl/configs/puffer_flappy.ini",
            "flappy_rl/page/app.js"} <= set(names)
    assert any(re.fullmatch(r"flappy_rl/binding\.cpython-\d+-.*\.so", name) for name in names)
    assert "flappy_rl-0.1.0.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read("flappy_rl-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata and "Requires-Python: <3.14,>=3.11" in metadata
    assert "Project-URL: Repository, " in metadata and "Description-Content-Type: text/markdown" in metadata
    assert [line for line in metadata.splitlines() if line.startswith("Classifier: Programming Language :: Python :: 3.")] \
        == [f"Classifier: Programming Language :: Python :: {version}" for version in SUPPORTED]
    listing = subprocess.run(["tar", "tzf", str(sdist)], capture_output=True, text=True, check=True).stdout
    assert "flappy_rl-0.1.0/csrc/binding.c" in listing and "flappy_rl-0.1.0/LICENSE" in listing


def test_train_then_eval_latest_and_pretrained(package, user_env):
    puffer(package, user_env, "train", "puffer_flappy", "--train.total-timesteps", "200000",
           "--env.num-envs", "128", "--train.minibatch-size", "2048")
    latest = puffer(package, user_env, "eval", "puffer_flappy", "--load-model-path", "latest", "--episodes", "2",
                    "--env.num-envs", "128")
    assert latest.stdout.splitlines()[-1].startswith("2 episodes: mean score ")
    pretrained = puffer(package, user_env, "eval", "puffer_flappy", "--load-model-path", "pretrained",
                        "--episodes", "2", "--greedy")
    assert pretrained.stdout.splitlines()[-1].startswith("2 episodes: mean score ")


def test_export_prints_the_demo_build_line_that_works_from_any_folder(package, user_env):
    _, bin_dir, work = package
    out = puffer(package, user_env, "export", "puffer_flappy", "--load-model-path", "pretrained")
    build_line, play_line = [line.strip() for line in out.stderr.splitlines()[-2:]]
    site_packages = next((bin_dir.parent / "lib").glob("python3.*/site-packages"))
    assert build_line.startswith("gcc ") and f"-I {site_packages / 'flappy_rl' / 'csrc'} " in build_line
    assert f" -I {site_packages / 'pufferlib' / 'extensions'} " in build_line
    run(shlex.split(build_line), work)
    demo = run([*shlex.split(play_line.replace("--episodes 100", "--episodes 2"))], work)
    assert demo.stdout.splitlines()[-1].startswith("2 episodes: mean score ")


@pytest.mark.skipif(shutil.which("emcc") is None, reason="needs emcc: apt-get install emscripten (.ci/run installs it)")
def test_web_compiles_the_packaged_sources(package, user_env):
    _, _, work = package
    out = puffer(package, user_env, "web", "puffer_flappy", "--web-path", "site")
    assert out.stdout.startswith("built site/: policy exported in ")
    assert sorted(path.name for path in (work / "site").iterdir()) == [
        "app.js", "flappy.js", "flappy.wasm", "index.html", "policy.bin", "policy.txt", "style.css"]


def test_web_without_emscripten_names_the_debian_package(package, user_env, tmp_path):
    _, bin_dir, work = package
    env = dict(user_env, PATH=str(bin_dir))  # the venv's commands only: no emcc
    result = subprocess.run([str(bin_dir / "puffer"), "web", "puffer_flappy", "--web-path", str(tmp_path / "site")],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (2, EMCC_MISSING)


def test_bench_measures_every_layer_with_the_packaged_c_benchmark(package, user_env):
    _, _, work = package
    puffer(package, user_env, "bench", "puffer_flappy", "--seconds", "0.05", "--json", "bench.json")
    text = (work / "bench.json").read_text()
    for section in ('"raw"', '"wrapper"', '"pure_c"', '"modes"'):
        assert section in text


@pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("xdotool") is None,
                    reason="needs xvfb-run and xdotool (.ci/run installs them)")
def test_play_opens_a_window_and_quits_on_escape(package, user_env):
    _, bin_dir, work = package
    driver = """
    puffer play puffer_flappy --render-scale 0.5 --seed 3 &
    app=$!
    timeout 60 xdotool search --sync --name '^flappy-rl: play$' > /dev/null
    sleep 0.5
    xdotool keydown Escape; sleep 0.15; xdotool keyup Escape
    wait $app
    """
    out = run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "bash", "-c", driver], work, env=user_env)
    assert out.stdout.strip().splitlines()[-1] == "best score: 0"


def find_python(version):
    """An interpreter of this version on this machine: uv's own search (it downloads none), then
    pythonX.Y on PATH, then pyenv's versions. None where there is none."""
    found = subprocess.run(["uv", "python", "find", "--no-python-downloads", version], capture_output=True, text=True)
    if found.returncode == 0:
        return found.stdout.strip()
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "--version"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def other_supported_pythons():
    """The supported Pythons other than this one that this machine has."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return [pytest.param(python, id=version) for version in SUPPORTED
            if version != here and (python := find_python(version)) is not None]


@pytest.mark.parametrize("python", other_supported_pythons())
def test_the_wheel_for_each_other_supported_python_plays_the_pretrained_policy(python, tmp_path):
    """A smoke test per Python: its wheel, installed alone, evaluates the shipped policy."""
    wheel = build(tmp_path / "dist", python, sdist=False)
    bin_dir = install(wheel, tmp_path / "venv", python)
    (tmp_path / "work").mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = run([str(bin_dir / "puffer"), "eval", "puffer_flappy", "--load-model-path", "pretrained", "--episodes", "2",
               "--greedy"], tmp_path / "work", env=env)
    assert out.stdout.splitlines()[-1].startswith("2 episodes: mean score ")


def test_building_without_a_c_compiler_names_it(package, tmp_path):
    dist, _, _ = package
    (sdist,) = dist.glob("*.tar.gz")
    env = dict(os.environ, CC="no-such-cc")  # setuptools compiles with $CC
    result = subprocess.run(["uv", "build", "--wheel", str(sdist), "--out-dir", str(tmp_path)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert ("error: flappy-rl compiles its C extension and needs a C compiler: 'no-such-cc' not found "
            "(install gcc, e.g. apt-get install gcc)") in result.stderr.splitlines()


@pytest.mark.skipif(find_python("3.10") is None, reason="needs a Python 3.10 interpreter to try")
def test_installing_on_an_unsupported_python_names_the_pythons_it_needs(package, tmp_path):
    dist, _, _ = package
    (sdist,) = dist.glob("*.tar.gz")
    run(["uv", "venv", "--python", find_python("3.10"), str(tmp_path / "venv")], tmp_path)
    result = subprocess.run(["uv", "pip", "install", "--python", str(tmp_path / "venv" / "bin" / "python"), str(sdist)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # uv wraps its lines
    assert re.search(r"the current Python version \(3\.10\.\d+\) does not satisfy Python>=3\.11,<3\.14", message)
