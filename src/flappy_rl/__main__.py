"""`python -m flappy_rl`: a short demo. Random play in the C env; prints speed and episode stats."""

import argparse
import time

import numpy as np

from flappy_rl import Flappy


def demo(num_envs, seconds, seed):
    env = Flappy(num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    # Cached actions: flap one frame in ten, the pace of a bird that keeps its height.
    actions = (rng.random((64, num_envs)) < 0.1).astype(np.int32)
    logs = []
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for row in actions:
            logs += env.step(row)[4]
        steps += len(actions)
    elapsed = time.perf_counter() - start
    env.close()
    episodes = sum(log["n"] for log in logs)
    mean = {k: sum(log[k] * log["n"] for log in logs) / max(episodes, 1) for k in ("score", "episode_length", "episode_return")}
    print(f"{num_envs} envs, {steps * num_envs:,} steps in {elapsed:.2f} s: {steps * num_envs / elapsed:,.0f} steps/s")
    print(f"{int(episodes):,} episodes of random play: mean score {mean['score']:.3f} pipes, "
          f"mean length {mean['episode_length']:.1f} frames, mean return {mean['episode_return']:.3f}")


def main():
    parser = argparse.ArgumentParser(prog="python -m flappy_rl", description=__doc__)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    demo(args.num_envs, args.seconds, args.seed)


if __name__ == "__main__":
    main()
