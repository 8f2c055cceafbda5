"""PPO in plain PyTorch on flappy-rl's Gymnasium vector env: no PufferLib.

One file in the shape of CleanRL's ppo.py (rollout, GAE, clipped policy and value losses),
written for Gymnasium's next-step autoreset, which the env declares in
`envs.metadata["autoreset_mode"]`: on the step after an episode ends, each env that ended
starts anew and ignores its action, so that step is no experience and is left out of the loss.

    uv run python examples/ppo_gymnasium.py --total-timesteps 5_000_000

It prints one line per update and, at the end, a JSON line with the mean score (pipes passed)
of the last 100 episodes and the mean loss of the last update. Truncation (an episode reaching max_steps, 10000 frames) is treated
as an end, as CleanRL does. A setting that cannot run is refused in one line with exit status
2, as the `puffer` command refuses one (the error handling is flappy_rl.cli's).
"""

import json
import math
import sys
import time

import gymnasium
import numpy as np
import torch
from torch import nn

import flappy_rl  # noqa: F401  (registers flappy_rl/FlappyBird-v0)
from flappy_rl.cli import exit_status
from flappy_rl.config import OneLineParser
from flappy_rl.errors import ConfigError

PROG = "ppo_gymnasium.py"
COUNTS = ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs", "hidden", "threads")


def parse_args(argv):
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--total-timesteps", type=lambda text: int(float(text)), default=5_000_000)
    parser.add_argument("--num-envs", type=int, default=512, help="envs in the one C vector")
    parser.add_argument("--num-steps", type=int, default=64, help="steps per env per rollout")
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--update-epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--gae-lambda", type=float, default=0.95)
    parser.add_argument("--clip-coef", type=float, default=0.2)
    parser.add_argument("--ent-coef", type=float, default=0.01)
    parser.add_argument("--vf-coef", type=float, default=0.5)
    parser.add_argument("--max-grad-norm", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    check(args)
    return args


def check(args):
    """Refuse, in one line, what cannot train (ConfigError: exit status 2)."""
    for name in COUNTS:
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    samples = args.num_envs * args.num_steps
    if args.num_minibatches > samples:
        raise ConfigError(f"--num-minibatches {args.num_minibatches} is more than the {samples} samples of a rollout "
                          f"(--num-envs {args.num_envs} x --num-steps {args.num_steps}): use at most {samples}")
    for name in ("learning_rate", "gamma", "gae_lambda", "clip_coef", "ent_coef", "vf_coef", "max_grad_norm"):
        if not math.isfinite(getattr(args, name)) or getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {getattr(args, name)!r}")
    for name in ("gamma", "gae_lambda"):
        if getattr(args, name) > 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at most 1, got {getattr(args, name)!r}")


def layer(in_size, out_size, gain=np.sqrt(2)):
    linear = nn.Linear(in_size, out_size)
    nn.init.orthogonal_(linear.weight, gain)
    nn.init.zeros_(linear.bias)
    return linear


class Agent(nn.Module):
    """Separate actor and critic MLPs over the 8 feature observations."""

    def __init__(self, obs_size, num_actions, hidden):
        super().__init__()
        self.critic = nn.Sequential(layer(obs_size, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                    layer(hidden, 1, gain=1.0))
        self.actor = nn.Sequential(layer(obs_size, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                   layer(hidden, num_actions, gain=0.01))

    def value(self, obs):
        return self.critic(obs).squeeze(-1)

    def act(self, obs, action=None):
        dist = torch.distributions.Categorical(logits=self.actor(obs))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(obs)


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    try:
        envs = gymnasium.make_vec("flappy_rl/FlappyBird-v0", num_envs=args.num_envs,
                                  vectorization_mode="vector_entry_point")
    except MemoryError:
        raise ConfigError(f"--num-envs {args.num_envs} envs do not fit in this machine's memory: use fewer") from None
    assert envs.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    n, t_max = args.num_envs, args.num_steps
    batch_size = n * t_max
    obs_size = envs.single_observation_space.shape[0]
    agent = Agent(obs_size, int(envs.single_action_space.n), args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    observations = torch.zeros((t_max, n, obs_size))
    actions = torch.zeros((t_max, n), dtype=torch.long)
    log_probs = torch.zeros((t_max, n))
    rewards = torch.zeros((t_max, n))
    ends = torch.zeros((t_max, n))  # the episode ended on this step
    restarts = torch.zeros((t_max, n))  # this step only started a new episode: no experience
    values = torch.zeros((t_max, n))

    obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.tensor(obs)
    restarting = torch.zeros(n)
    scores, running = [], np.zeros(n)  # pipes passed: steps with a positive reward
    updates = max(args.total_timesteps // batch_size, 1)  # whole rollouts, at least one
    start, steps = time.perf_counter(), 0
    for update in range(1, updates + 1):
        optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (update - 1.0) / updates)
        for t in range(t_max):
            observations[t], restarts[t] = next_obs, restarting
            with torch.no_grad():
                action, log_prob, _, value = agent.act(next_obs)
            actions[t], log_probs[t], values[t] = action, log_prob, value
            obs, reward, terminated, truncated, _ = envs.step(action.numpy())
            ended = terminated | truncated
            running += reward > 0
            scores += running[ended].tolist()
            running[ended] = 0
            rewards[t], ends[t] = torch.from_numpy(reward), torch.from_numpy(ended.astype(np.float32))
            next_obs, restarting = torch.tensor(obs), ends[t]
        steps += batch_size

        with torch.no_grad():  # generalized advantage estimates, cut where episodes end
            next_value = agent.value(next_obs)
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(n)
            for t in reversed(range(t_max)):
                following = next_value if t == t_max - 1 else values[t + 1]
                alive = 1.0 - ends[t]
                delta = rewards[t] + args.gamma * following * alive - values[t]
                last = delta + args.gamma * args.gae_lambda * alive * last
                advantages[t] = last
            returns = advantages + values

        keep = (restarts.reshape(-1) == 0).nonzero().squeeze(-1)  # steps that are experience
        b_obs = observations.reshape(-1, obs_size)[keep]
        b_actions, b_log_probs = actions.reshape(-1)[keep], log_probs.reshape(-1)[keep]
        b_advantages, b_returns = advantages.reshape(-1)[keep], returns.reshape(-1)[keep]
        # Normalised over the whole rollout, not each minibatch as CleanRL does: the std of a
        # one-sample minibatch is NaN (and of a few samples, noise), and every minibatch count
        # must work.
        b_advantages = (b_advantages - b_advantages.mean()) / (b_advantages.std(correction=0) + 1e-8)
        losses = []
        for _ in range(args.update_epochs):
            # num_minibatches parts as equal as can be; the restarts left out can leave fewer samples
            # than minibatches, and then some parts empty
            for mb in torch.tensor_split(torch.randperm(len(keep)), args.num_minibatches):
                if len(mb) == 0:
                    continue
                _, new_log_prob, entropy, new_value = agent.act(b_obs[mb], b_actions[mb])
                ratio = (new_log_prob - b_log_probs[mb]).exp()
                adv = b_advantages[mb]
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                value_loss = 0.5 * ((new_value - b_returns[mb]) ** 2).mean()
                loss = policy_loss - args.ent_coef * entropy.mean() + args.vf_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
                losses.append(loss.item())

        recent = scores[-100:]
        print(f"update {update}/{updates}  steps {steps:,}  {steps / (time.perf_counter() - start):,.0f} steps/s  "
              f"episodes {len(scores):,}  mean score (last 100) {np.mean(recent) if recent else 0.0:.2f}", flush=True)
    envs.close()
    recent = scores[-100:]
    return {"steps": steps, "seconds": round(time.perf_counter() - start, 1), "episodes": len(scores),
            "mean_loss_last_update": float(np.mean(losses)) if losses else None,  # None: no experience in it
            "mean_score_last_100": float(np.mean(recent)) if recent else 0.0}


if __name__ == "__main__":
    sys.exit(exit_status(PROG, lambda: print(json.dumps(train(parse_args(sys.argv[1:])))), {"mode": "ppo"}))
