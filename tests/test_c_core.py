"""csrc/flappy.h compiled into a plain C program, under AddressSanitizer + UBSan."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def build_core_check(out_dir, extra_flags):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build the C core checks")
    exe = out_dir / "core_check"
    cmd = ["gcc", "-std=c11", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *extra_flags,
           f"-I{ROOT / 'csrc'}", str(ROOT / "tests" / "c" / "core_check.c"), "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True)
    return exe


def test_core_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    exe = build_core_check(tmp_path, SANITIZE)
    out = subprocess.run([str(exe), "1000000"], capture_output=True, text=True, timeout=600,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok: 1000000 env steps per run"), out.stdout
    assert out.stderr == ""
