"""An exception nobody foresaw, ended cleanly: one line on stderr, the traceback in a file.

The `puffer` command hands every exception it has no message for to `report`, which stops what
PufferLib left running (PuffeRL's resource monitor is a non-daemon thread, and Multiprocessing
workers are non-daemon processes: either keeps the interpreter from exiting), writes the full
traceback under the run's folder and says where, in one line.
"""

import multiprocessing
import os
import sys
import tempfile
import time
import traceback

from flappy_rl.errors import RunCrashed

LOG_NAME = "error.log"


def stop_leftovers():
    """Stop PuffeRL's monitor threads and this process's worker processes, if any are running."""
    pufferl = sys.modules.get("pufferlib.pufferl")
    if pufferl is not None:
        import threading

        for thread in threading.enumerate():
            if isinstance(thread, pufferl.Utilization):
                thread.stop()
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


def log_folder(args):
    """Where a failed command's traceback goes: the run's own folder for training, else
    <data_dir>/errors/."""
    if args is None:
        return os.path.join("experiments", "errors")
    return os.path.join(args.get("train", {}).get("data_dir", "experiments"), "errors")


def write_log(folder, name, text):
    """Write text to folder/name, or to the system's temporary folder when folder can't be written."""
    for directory in (folder, tempfile.gettempdir()):
        try:
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, name)
            with open(path, "w") as out:
                out.write(text)
            return path
        except OSError:
            continue
    return None


def summary(error):
    text = " ".join(str(error).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def report(error, args=None, prog="puffer"):
    """Print one line about error and where its traceback is; returns the exit status, 1. prog:
    the command, which begins the line (and names the log when args has no mode)."""
    stop_leftovers()
    mode = args["mode"] if args else prog
    # One rank of a data-parallel run: its own log file, its rank in the line, and a note that
    # tells the other ranks where to look.
    session = getattr(sys.modules.get("flappy_rl.distributed"), "SESSION", None)
    if isinstance(error, RunCrashed):
        name = LOG_NAME if session is None else f"error-rank{session.world.rank}.log"
        cause, folder = error.__cause__ or error, error.run_folder
    else:
        cause, folder, name = error, log_folder(args), f"{mode}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path = write_log(folder, name, "".join(traceback.format_exception(cause)))
    where = f"the full traceback is in {path}" if path else "the traceback could not be written anywhere"
    saved = f"; the policy so far is saved to {error.model_path}" if getattr(error, "model_path", None) else ""
    who = ""
    if session is not None:
        session.notes.leave("failed", summary=summary(cause), path=path)
        who = f"{session.world}: "
    print(f"{prog}: error: {who}{mode} failed with {summary(cause)}; {where}{saved}", file=sys.stderr)
    return 1
