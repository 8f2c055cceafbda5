"""The `puffer` command, in PufferLib's shape: puffer MODE ENV [--section.key VALUE ...].

    puffer train puffer_flappy
    puffer eval puffer_flappy --load-model-path latest --render-mode human
    puffer eval --load-model-path latest      (the env the newest run was trained on)
    puffer play puffer_flappy
    puffer train puffer_breakout    (handed to PufferLib's own CLI when the full package is installed)
    torchrun --nproc-per-node 2 -m flappy_rl.cli train puffer_flappy
"""

import os
import re
import sys

from flappy_rl import crash
from flappy_rl.checks import check
from flappy_rl.config import MODES, env_names, load_config, normalize_option, parse_args, usage
from flappy_rl.errors import (CheckpointError, ConfigError, NoDisplayError, TrainingError, WebBuildError, stop_reason,
                               stop_status)
from flappy_rl.handoff import hand_off, pufferlib_cli


def run(args):
    mode = args["mode"]
    if mode == "train":
        from flappy_rl.train import train

        try:
            model_path, _ = train(args)
        except KeyboardInterrupt as interrupt:
            # Under torchrun only rank 0 saves: the other ranks have nothing to add.
            saved = interrupt.args[0] if interrupt.args else None
            if saved is not None or not interrupt.args:
                print(f"\n{stop_reason(interrupt)}" + (f": the policy so far is saved to {saved}" if saved else ""),
                      file=sys.stderr)
            return stop_status(interrupt)
        if model_path is not None:
            print(f"model saved to {model_path}")
    elif mode == "eval":
        from flappy_rl.evaluate import evaluate

        evaluate(args)
    elif mode == "sweep":
        from flappy_rl.sweep import sweep

        return sweep(args)
    elif mode == "autotune":
        from flappy_rl.autotune import autotune

        autotune(args)
    elif mode == "export":
        from flappy_rl.export import export

        export(args)
    elif mode == "bench":
        from flappy_rl.bench import bench

        bench(args)
    elif mode == "play":
        from flappy_rl.components import env_kwargs

        params = env_kwargs(args)
        params.pop("num_envs")
        play_game(args["render_scale"], args["fps"], args["seed"], args["overlay"], params)
    elif mode == "web":
        from flappy_rl.web import web

        web(args)


def play_game(render_scale, fps, seed, overlay, params):
    """`puffer play` and `python -m flappy_rl play`: a bad game parameter or window setting is a
    setting that cannot work (ConfigError), as everywhere else."""
    from flappy_rl.play import play
    from flappy_rl.render import check_fps, check_scale

    try:
        check_scale(render_scale, "--render-scale")  # named as typed, before play() names them its way
        check_fps(fps, "--fps")
        best = play(render_scale, fps, seed, overlay, **params)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None
    print(f"best score: {best}")


def option_value(argv, name):
    """The value of --name in argv (as --name VALUE or --name=VALUE), or None."""
    for i, arg in enumerate(argv):
        key, sep, value = normalize_option(arg).partition("=")
        if key == name:
            return value if sep else (argv[i + 1] if i + 1 < len(argv) else None)
    return None


def env_of_checkpoint(argv):
    """The env `puffer eval --load-model-path PATH|latest` plays when none is named: the one the
    checkpoint was trained on (for latest, the newest run's in --train.data-dir)."""
    from flappy_rl.checkpoint import newest_run, read_checkpoint

    path = option_value(argv, "--load-model-path")
    if path is None or path == "pretrained":
        raise ConfigError(f"usage: puffer eval ENV [--section.key VALUE ...], or puffer eval --load-model-path "
                          f"PATH|latest for the env the checkpoint was trained on; envs: {', '.join(env_names())}")
    if path == "latest":
        data_dir = option_value(argv, "--train.data-dir") or load_config(env_names()[0])["train"]["data_dir"]
        path = newest_run(data_dir)
        if path is None:
            raise ConfigError(f"no checkpoint in {data_dir}/ to evaluate: train one with "
                              f"'puffer train {env_names()[0]}'")
    try:
        record = read_checkpoint(path).record
    except CheckpointError as error:
        raise ConfigError(str(error)) from None
    if record is not None:
        return record["env_name"]
    named = re.fullmatch(r"(\w+)_\d+\.pt", os.path.basename(path))
    if named and named.group(1) in env_names():
        return named.group(1)
    raise ConfigError(f"{path} does not record the env it was trained on: puffer eval ENV --load-model-path {path}")


def exit_status(prog, command, args=None):
    """Run command() with the error handling of every front end (puffer, python -m flappy_rl, the
    examples): returns the exit status, command's own (None: 0), or after one line on stderr,
    `PROG: error: ...`: 2 for a setting that cannot work (ConfigError, no display), 1 for a fault
    in the run (TrainingError, WebBuildError), 130 for Ctrl-C, 143 for SIGTERM (train and sweep
    stop on it as on Ctrl-C), and 1 for an exception nobody foresaw, its traceback in a file
    (flappy_rl.crash). args: the command's settings once parsed (command may fill the dict in),
    which tell crash.report the mode and where to write."""
    try:
        return command() or 0
    except (ConfigError, NoDisplayError) as error:  # a window without a display is a setting that can't work here
        crash.stop_leftovers()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except (TrainingError, WebBuildError) as error:
        crash.stop_leftovers()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        crash.stop_leftovers()
        print(f"\n{stop_reason(interrupt)}", file=sys.stderr)
        return stop_status(interrupt)
    except Exception as error:  # a fault nobody foresaw: one line here, the traceback in a file
        return crash.report(error, args, prog)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = {}  # filled in once parsed: where crash.report writes a fault's traceback

    def command():
        nonlocal argv
        if argv[:1] in (["-h"], ["--help"]):
            print(usage())
            return 0
        env_from_checkpoint = argv[:1] == ["eval"] and (len(argv) < 2 or argv[1].startswith("-"))
        if env_from_checkpoint and "-h" not in argv and "--help" not in argv:
            argv = ["eval", env_of_checkpoint(argv[1:]), *argv[1:]]
        elif len(argv) < 2 or argv[1].startswith("-"):
            raise ConfigError(f"usage: puffer MODE ENV [--section.key VALUE ...]; modes: {', '.join(MODES)}; "
                              f"envs: {', '.join(env_names())}")
        if argv[1] not in env_names():
            pufferlib_main = pufferlib_cli()
            if pufferlib_main is not None:
                return hand_off(pufferlib_main, argv)
            raise ConfigError(f"unknown env {argv[1]!r}: this puffer runs {', '.join(env_names())}; PufferLib's "
                              "other envs need the full pufferlib package installed")
        args.update(parse_args(argv[0], argv[1], argv[2:]))
        args["env_from_checkpoint"] = env_from_checkpoint
        check(args)
        return run(args)

    return exit_status("puffer", command, args)


if __name__ == "__main__":
    sys.exit(main())
