"""The errors the `puffer` command reports as one line instead of a traceback."""


class ConfigError(Exception):
    """A mistake in the command line or the config: exit status 2."""


class TrainingError(Exception):
    """Training stopped by a fault, not by a mistake in the command: exit status 1."""


class NoDisplayError(RuntimeError):
    """There is no display to open a window on: exit status 1."""


class WebBuildError(RuntimeError):
    """emscripten failed to compile the page's module: exit status 1."""
