"""The `puffer` command, in PufferLib's shape: puffer MODE ENV [--section.key VALUE ...].

    puffer train puffer_flappy
    puffer eval puffer_flappy --load-model-path latest --render-mode human
    puffer play puffer_flappy
    torchrun --nproc-per-node 2 -m flappy_rl.cli train puffer_flappy
"""

import sys

from flappy_rl.config import MODES, env_names, parse_args, usage
from flappy_rl.errors import ConfigError, NoDisplayError, TrainingError


def run(args):
    mode = args["mode"]
    if mode == "train":
        from flappy_rl.train import train

        try:
            model_path, _ = train(args)
        except KeyboardInterrupt as interrupt:
            print(f"\ninterrupted: the policy so far is saved to {interrupt.args[0]}", file=sys.stderr)
            return 130
        print(f"model saved to {model_path}")
    elif mode == "eval":
        from flappy_rl.evaluate import evaluate

        evaluate(args)
    elif mode == "sweep":
        from flappy_rl.sweep import sweep

        return sweep(args)
    elif mode == "autotune":
        from flappy_rl.train import autotune

        autotune(args)
    elif mode == "bench":
        from flappy_rl.bench import bench

        bench(args)
    elif mode == "play":
        from flappy_rl.play import play
        from flappy_rl.train import env_kwargs

        params = env_kwargs(args)
        params.pop("num_envs")
        try:
            best = play(args["render_scale"], args["fps"], args["seed"], args["overlay"], **params)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        print(f"best score: {best}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] in (["-h"], ["--help"]):
            print(usage())
            return 0
        if len(argv) < 2 or argv[1].startswith("-"):
            raise ConfigError(f"usage: puffer MODE ENV [--section.key VALUE ...]; modes: {', '.join(MODES)}; "
                              f"envs: {', '.join(env_names())}")
        return run(parse_args(argv[0], argv[1], argv[2:])) or 0
    except ConfigError as error:
        print(f"puffer: error: {error}", file=sys.stderr)
        return 2
    except (TrainingError, NoDisplayError) as error:
        print(f"puffer: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
