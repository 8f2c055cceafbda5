"""PPO in plain PyTorch on flappy-rl's Gymnasium vector env: no PufferLib.

One file in the shape of CleanRL's ppo.py (rollout, GAE, clipped policy and value losses),
written for Gymnasium's next-step autoreset, which the env declares in
`envs.metadata["autoreset_mode"]`: on the step after an episode ends, each env that ended
starts anew and ignores its action, so that step is no experience and is left out of the loss.

    uv run python examples/ppo_gymnasium.py --total-timesteps 5_000_000

It prints one line per update and, at the end, a JSON line with the mean score (pipes passed)
of the last 100 episodes. Truncation (an episode reaching max_steps, 10000 frames) is treated
as an end, as CleanRL does.
"""

import argparse
import json
import time

import gymnasium
import numpy as np
import torch
from torch import nn

import flappy_rl  # noqa: F401  (registers flappy_rl/FlappyBird-v0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    return parser.parse_args()


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
    envs = gymnasium.make_vec("flappy_rl/FlappyBird-v0", num_envs=args.num_envs,
                              vectorization_mode="vector_entry_point")
    assert envs.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    n, t_max = args.num_envs, args.num_steps
    batch_size = n * t_max
    minibatch_size = batch_size // args.num_minibatches
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
    updates = args.total_timesteps // batch_size
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
        for _ in range(args.update_epochs):
            order = torch.randperm(len(keep))
            for first in range(0, len(keep), minibatch_size):
                mb = order[first:first + minibatch_size]
                _, new_log_prob, entropy, new_value = agent.act(b_obs[mb], b_actions[mb])
                ratio = (new_log_prob - b_log_probs[mb]).exp()
                adv = b_advantages[mb]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                value_loss = 0.5 * ((new_value - b_returns[mb]) ** 2).mean()
                loss = policy_loss - args.ent_coef * entropy.mean() + args.vf_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        recent = scores[-100:]
        print(f"update {update}/{updates}  steps {steps:,}  {steps / (time.perf_counter() - start):,.0f} steps/s  "
              f"episodes {len(scores):,}  mean score (last 100) {np.mean(recent) if recent else 0.0:.2f}", flush=True)
    envs.close()
    recent = scores[-100:]
    return {"steps": steps, "seconds": round(time.perf_counter() - start, 1), "episodes": len(scores),
            "mean_score_last_100": float(np.mean(recent)) if recent else 0.0}


if __name__ == "__main__":
    print(json.dumps(train(parse_args())))
