"""The gaps of pufferlib-core 3.0.23 that this project works around, all here.

Each shim says what it covers; tests/test_pufferlib_compat.py checks each gap is still there and
fails once a pufferlib-core release closes it, so that the shim can go.
"""

import logging
import signal
import types


def import_pufferl():
    """pufferlib.pufferl, imported without its side effects on this process.

    3.0.23's pufferl, on import, installs a SIGINT handler that calls os._exit(0): Ctrl-C would end
    a run with nothing saved and a status that says success. The handler in place before the
    import is put back. The import also makes torch warn that CUDA is absent on CPU machines,
    which is not news here."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    previous = signal.getsignal(signal.SIGINT)
    from pufferlib import pufferl

    signal.signal(signal.SIGINT, previous)
    return pufferl


def autotune(env_creator, **settings):
    """pufferlib.vector.autotune, run with the `pufferlib.Suppress` it reaches for.

    3.0.23's autotune calls pufferlib.Suppress, which pufferlib-core keeps in its submodule
    pufferlib.pufferlib. The function runs here with a view of the package that has it, leaving
    PufferLib's own modules as they are."""
    import pufferlib
    import pufferlib.pufferlib
    import pufferlib.vector

    original = pufferlib.vector.autotune
    package = types.SimpleNamespace(**vars(pufferlib), Suppress=pufferlib.pufferlib.Suppress)
    tuned = types.FunctionType(original.__code__, {**vars(pufferlib.vector), "pufferlib": package},
                               original.__name__, original.__defaults__, original.__closure__)
    tuned.__kwdefaults__ = original.__kwdefaults__
    return tuned(env_creator, **settings)
