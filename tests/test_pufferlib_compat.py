"""The gaps of pufferlib-core that flappy_rl.pufferlib_compat works around: each test fails once a
release closes its gap, and then the shim and its test go."""

import signal
import subprocess
import sys

import pufferlib
import pufferlib.vector

from flappy_rl.pufferlib_compat import import_pufferl


def sigint_handler_after(statement):
    code = f"import signal\n{statement}\nprint(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1]


def test_importing_pufferl_still_replaces_the_ctrl_c_handler_and_the_shim_puts_it_back():
    assert sigint_handler_after("import pufferlib.pufferl") == "False"
    assert sigint_handler_after("from flappy_rl.pufferlib_compat import import_pufferl; import_pufferl()") == "True"


def test_the_shim_leaves_the_handler_the_caller_had():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import_pufferl()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_autotune_still_reaches_for_a_suppress_the_package_lacks():
    assert "Suppress" in pufferlib.vector.autotune.__code__.co_names
    assert not hasattr(pufferlib, "Suppress")
