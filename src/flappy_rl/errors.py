"""The errors the `puffer` command reports as one line instead of a traceback."""

import signal


class ConfigError(Exception):
    """A mistake in the command line or the config: exit status 2."""


class TrainingError(Exception):
    """Training stopped by a fault, not by a mistake in the command: exit status 1."""


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or made for another policy: one line for the user."""


class NoDisplayError(RuntimeError):
    """There is no display to open a window on: exit status 2 from `puffer` (a setting that cannot work here)."""


class RunCrashed(Exception):
    """Training stopped by an unexpected exception (its __cause__): exit status 1, the traceback
    written into run_folder; model_path is the policy saved after some training, else None."""

    def __init__(self, run_folder, model_path=None):
        super().__init__(run_folder, model_path)
        self.run_folder = run_folder
        self.model_path = model_path


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler ending or preempting the job, `kill`): `train` and `sweep` stop as they
    do on Ctrl-C, the policy and the curve saved, with exit status 143 (128 + SIGTERM)."""


class WebBuildError(RuntimeError):
    """emscripten failed to compile the page's module: exit status 1."""


def stop_reason(interrupt):
    """What stopped a run that a KeyboardInterrupt (or a Terminated) ended, in the words of its line."""
    return "stopped by SIGTERM" if isinstance(interrupt, Terminated) else "interrupted"


def stop_status(interrupt):
    """The exit status of such a run: 128 + the signal, as a shell reports it."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
