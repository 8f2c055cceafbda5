"""`puffer eval`: play a trained policy, print every episode's score, watch it or save a GIF."""

import statistics

import numpy as np
import torch

import pufferlib.models
import pufferlib.pytorch
import pufferlib.vector

from flappy_rl import Flappy, binding, gym_env
from flappy_rl.pretrained import use_pretrained
from flappy_rl.checkpoint import load_into, open_checkpoint
from flappy_rl.components import env_kwargs, make_policy, resolve_device

RENDER_MODES = {"None": None, **{mode: mode for mode in gym_env.RENDER_MODES}}  # --render-mode's text: the mode
# Headless episodes run side by side, at most this many at once; each env plays exactly one
# episode, so that short episodes are not over-counted.
MAX_PARALLEL = 100


def initial_state(policy, num_envs, device):
    if isinstance(policy, pufferlib.models.LSTMWrapper):
        zeros = torch.zeros(num_envs, policy.hidden_size, device=device)
        return dict(lstm_h=zeros, lstm_c=zeros.clone())
    return {}


def choose_actions(policy, observations, state, greedy, device):
    with torch.no_grad():
        logits, _ = policy.forward_eval(torch.as_tensor(observations).to(device), state)
        actions = logits.argmax(-1) if greedy else pufferlib.pytorch.sample_logits(logits)[0]
    return actions.cpu().numpy().astype(np.int32)


def evaluate(args):
    """Play episodes with the policy in --load-model-path; returns [(score, length, crashed), ...]."""
    render_mode = RENDER_MODES[args["render_mode"]]  # the settings are checked by flappy_rl.checks
    human = render_mode == "human"
    episodes = args["episodes"] if args["episodes"] is not None else (None if human else 100)
    use_pretrained(args)
    device = resolve_device(args["train"]["device"])
    checkpoint = open_checkpoint(args, device)
    trained_on = " (the env it was trained on)" if args.get("env_from_checkpoint") else ""
    print(f"eval {args['env_name']}{trained_on}: {checkpoint.path}", *checkpoint.notes, sep="\n", flush=True)
    # Sampled actions come from torch's generator: seeded, an eval replays, as its games do.
    torch.manual_seed(args["vec"]["seed"])
    results, frames, policy, wave = [], [], None, 0
    while episodes is None or len(results) < episodes:
        num_envs = 1 if human else min(MAX_PARALLEL, episodes - len(results))
        kwargs = env_kwargs(args, num_envs=1, log_interval=1, render_mode=render_mode, render_fps=args["fps"],
                            render_scale=args["render_scale"])
        vecenv = pufferlib.vector.make(Flappy, backend="Serial", num_envs=num_envs, env_kwargs=kwargs)
        if policy is None:
            policy = make_policy(args, vecenv.driver_env).to(device)
            load_into(policy, checkpoint, args)
            policy.eval()
        try:
            quit_ = play_wave(vecenv, policy, args, device, wave, human, episodes, results, frames)
        finally:
            vecenv.close()
        wave += 1
        if quit_:
            break
    if frames:
        from flappy_rl.render import save_gif

        save_gif(frames, args["gif_path"], args["fps"] or binding.FPS)
        print(f"saved {len(frames)} frames to {args['gif_path']}")
    report(results)
    return results


def play_wave(vecenv, policy, args, device, wave, human, episodes, results, frames):
    """Step one batch of envs until each has finished its episode (headless) or, with a window,
    until the episodes are done or the window is closed. Returns True when the user quit."""
    num_envs = vecenv.num_agents
    observations, _ = vecenv.reset(seed=args["vec"]["seed"] + wave * MAX_PARALLEL)
    state = initial_state(policy, num_envs, device)
    finished = np.zeros(num_envs, bool)
    shown = vecenv.envs[0]
    if human:
        shown.render()  # opens the window
        shown.window.overlay = args["overlay"]
    while not finished.all():
        if len(frames) < args["save_frames"]:
            frames.append(shown.frame())
        if human:
            shown.render()
            if shown.window_closed:
                return True
        actions = choose_actions(policy, observations, state, args["greedy"], device)
        observations, _, terminals, truncations, infos = vecenv.step(actions)
        # Each finished env reported one episode; the infos come in env order.
        for i, info in zip(np.flatnonzero(terminals | truncations), infos):
            if finished[i]:
                continue
            results.append((int(info["score"]), int(info["episode_length"]), bool(terminals[i])))
            print(f"episode {len(results)}: score {results[-1][0]}, length {results[-1][1]} frames", flush=True)
            finished[i] = not human or len(results) == episodes
    return False


def report(results):
    if not results:
        print("no episode finished")
        return
    scores = [score for score, _, _ in results]
    lengths = [length for _, length, _ in results]
    crashes = sum(crashed for _, _, crashed in results)
    # Episodes that end without a crash reached max_steps ("capped"). Crashes per pipe passed is
    # the policy's hazard, which 100 episodes measure far better than their mean score does.
    print(f"{len(results)} episodes: mean score {statistics.fmean(scores):.2f}, median {statistics.median(scores):g}, "
          f"max {max(scores)}; mean length {statistics.fmean(lengths):.1f} frames; {len(results) - crashes} capped at "
          f"max_steps, {crashes} crashes in {sum(scores)} pipes")
