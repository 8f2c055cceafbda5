"""The errors the `puffer` command reports as one line instead of a traceback."""


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


class WebBuildError(RuntimeError):
    """emscripten failed to compile the page's module: exit status 1."""
