"""The C code under the sanitizers: the binding built with AddressSanitizer + UBSan and the env
tests run against it in a fresh interpreter, and the core's check program run under valgrind
for 250,000 env steps per parameter set (its ASan + UBSan build runs a million: tests/test_c_core.py)."""

import pathlib
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from test_c_core import build_core_check

ROOT = pathlib.Path(__file__).resolve().parent.parent
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
# The tests that drive the binding: every entry point, every error path, every mode, and fuzzing.
ENV_TESTS = ["test_binding.py", "test_rules.py", "test_parity.py", "test_modes.py", "test_fuzz.py", "test_render_c.py",
             "test_soak.py"]


def gcc_runtime(name):
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=True).stdout.strip()
    if not pathlib.Path(path).is_file():
        pytest.fail(f"gcc has no {name}: install gcc's sanitizer runtime (Debian: libasan8 libubsan1)")
    return path


def build_sanitized_package(out_dir):
    """A copy of the flappy_rl package whose binding is built with ASan + UBSan."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the sanitized binding")
    package = out_dir / "flappy_rl"
    shutil.copytree(ROOT / "src" / "flappy_rl", package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copytree(ROOT / "configs", package / "configs")
    target = package / f"binding{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra",
                    "-Wno-unused-parameter", "-Werror", *SANITIZE, f"-I{ROOT / 'csrc'}",
                    f"-I{sysconfig.get_paths()['include']}", f"-I{np.get_include()}", str(ROOT / "csrc" / "binding.c"),
                    "-o", str(target)], check=True)
    return out_dir


def test_env_tests_pass_against_the_sanitized_binding(tmp_path):
    site = build_sanitized_package(tmp_path / "site")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(site),
        # The sanitizer runtime must be loaded before the interpreter's own allocations.
        "LD_PRELOAD": gcc_runtime("libasan.so"),
        # CPython keeps its objects to the end by design, so leak reports would be noise here;
        # the plain C program below is leak-checked instead.
        # Reports go to files: pytest captures the tests' stderr, and an abort would lose it.
        "ASAN_OPTIONS": f"detect_leaks=0:abort_on_error=1:log_path={tmp_path / 'asan'}",
        "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:log_path={tmp_path / 'ubsan'}",
    }
    # Import the binding first and check it is the sanitized one, then run the tests with it.
    script = ("import sys, pytest, flappy_rl.binding as b; "
              f"assert b.__file__.startswith({str(site)!r}), b.__file__; "
              "assert any('libasan' in line for line in open('/proc/self/maps')), 'no ASan runtime'; "
              "sys.exit(pytest.main(sys.argv[1:]))")
    # -n 0: in this one process; the suite's workers already keep every core busy.
    run = subprocess.run([sys.executable, "-c", script, "-q", "-p", "no:cacheprovider", "-n", "0", "-x", "--soak-steps", "0",
                          *[str(ROOT / "tests" / name) for name in ENV_TESTS]],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1800)
    reports = "".join(path.read_text() for path in sorted(tmp_path.glob("*san.*")))
    assert reports == "", reports[:4000]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1] and "failed" not in run.stdout.splitlines()[-1]


def test_core_under_valgrind_memcheck(tmp_path):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (.ci/run installs it: apt-get install valgrind)")
    exe = build_core_check(tmp_path, [])
    out = subprocess.run(["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=all",
                          "--errors-for-leak-kinds=all", str(exe), "250000"], capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok: 250000 env steps per run"), out.stdout
    assert "ERROR SUMMARY: 0 errors from 0 contexts" in out.stderr
    assert "All heap blocks were freed -- no leaks are possible" in out.stderr
