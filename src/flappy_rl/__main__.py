"""`python -m flappy_rl`: a short demo (random play in the C env; prints speed and episode stats).
`python -m flappy_rl play`: play it yourself in a window."""

import sys

from flappy_rl import Flappy, binding
from flappy_rl.checks import require_count, require_seconds, require_seed
from flappy_rl.cli import exit_status, play_game
from flappy_rl.config import OneLineParser
from flappy_rl.errors import ConfigError
from flappy_rl.speed import measure, stepping

PROG = "python -m flappy_rl"


def demo(num_envs, seconds, seed):
    """Random play, one flap in ten (the pace of a bird that keeps its height): steps per second
    over one window of `seconds` after a warm-up (flappy_rl.speed), and the episodes' means."""
    require_count("num_envs", num_envs)
    require_seconds("seconds", seconds)
    require_seed("seed", seed)
    try:
        env = Flappy(num_envs=num_envs, seed=seed)
        step, logs = stepping(env, num_envs, seed), []
    except MemoryError:
        raise ConfigError(f"--num-envs {num_envs} birds do not fit in this machine's memory: use fewer") from None
    except ValueError as error:  # more birds than the C core counts, where the memory would hold them
        raise ConfigError(f"--num-envs: {error}") from None
    rate = measure(lambda: logs.extend(step()[4]), num_envs, seconds, windows=1)["median"]
    env.close()
    episodes = sum(log["n"] for log in logs)
    mean = {k: sum(log[k] * log["n"] for log in logs) / max(episodes, 1) for k in ("score", "episode_length", "episode_return")}
    print(f"{num_envs} envs, random actions: {rate:,.0f} steps/s")
    print(f"{int(episodes):,} episodes of random play: mean score {mean['score']:.3f} pipes, "
          f"mean length {mean['episode_length']:.1f} frames, mean return {mean['episode_return']:.3f}")


def add_play_parser(subparsers):
    play = subparsers.add_parser("play", help="play it yourself in a window",
                                 description="Space, up arrow or left click flaps; R restarts, O shows what the "
                                             "agent observes, F12 saves a screenshot, ESC quits.")
    play.add_argument("--render-scale", type=float, default=1.0, help="window size, times 288 x 512 (default 1)")
    play.add_argument("--fps", type=int, default=int(binding.FPS), help="frames per second (default 30)")
    play.add_argument("--seed", type=int, default=None, help="seed of the pipes (default: random)")
    play.add_argument("--overlay", action="store_true", help="start with the observation overlay on")
    docs, choices = binding.param_docs(), binding.param_choices()
    for name, (default, lo, hi) in binding.params().items():
        allowed = f"one of {', '.join(choices[name])}" if name in choices else f"range [{lo:g}, {hi:g}]"
        play.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(default), default=None,
                          choices=choices.get(name), help=f"{docs[name]} (default {default}, {allowed})")


def command(argv):
    # OneLineParser: a mistake in the options is a ConfigError, one line and exit 2, as in puffer
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    add_play_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.command != "play":
        demo(args.num_envs, args.seconds, args.seed)
        return
    params = {name: getattr(args, name) for name in binding.params() if getattr(args, name) is not None}
    for name, value in params.items():  # each named by its option, as typed
        try:
            binding.check_params(**{name: value})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"--{name.replace('_', '-')}{str(error).removeprefix(name)}") from None
    play_game(args.render_scale, args.fps, args.seed, args.overlay, params)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    mode = "play" if "play" in argv else "demo"
    return exit_status(f"{PROG} play" if mode == "play" else PROG, lambda: command(argv), {"mode": mode})


if __name__ == "__main__":
    sys.exit(main())
