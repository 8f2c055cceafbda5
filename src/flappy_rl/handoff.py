"""Living beside the full `pufferlib` package, which declares a `puffer` script too.

Our `puffer` runs the flappy envs and hands any other env to PufferLib's own command line
(`pufferlib.pufferl.main`, with the same arguments) when the full package, with its config
directory, is installed. pufferlib-core, which flappy-rl depends on, has `pufferl` but no
configs and no script, so nothing is handed to it.
"""

import importlib
import importlib.util
import pathlib
import sys


def pufferlib_cli():
    """PufferLib's `main`, if the full package and its configs are installed; else None. Found
    without importing pufferlib (which imports torch) until it is needed."""
    spec = importlib.util.find_spec("pufferlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = pathlib.Path(list(spec.submodule_search_locations)[0])
    if not (root / "pufferl.py").is_file() or not (root / "config" / "default.ini").is_file():
        return None
    main = getattr(importlib.import_module("pufferlib.pufferl"), "main", None)
    return main if callable(main) else None


def hand_off(main, argv):
    """Run PufferLib's `main` on `puffer ARGV...`, as if its own script had been called."""
    sys.argv = ["puffer", *argv]
    status = main()
    return status if isinstance(status, int) else 0
