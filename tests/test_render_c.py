"""csrc/render.h compiled into a plain C program, under AddressSanitizer + UBSan."""

import subprocess

from test_c_core import ROOT, SANITIZE


def test_rasterizer_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    exe = tmp_path / "render_check"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    f"-I{ROOT / 'csrc'}", str(ROOT / "tests" / "c" / "render_check.c"), "-o", str(exe), "-lm"],
                   check=True)
    out = subprocess.run([str(exe), "40"], capture_output=True, text=True, timeout=600,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "ok: 40 frames per size, 11 sizes\n", out.stdout
    assert out.stderr == ""
