"""Policies shipped inside the package, one per env that has one: `--load-model-path pretrained`.

Each is `pretrained/<env_name>.pt` (a state dict, as `puffer train` saves it) beside
`<env_name>.json`, which records how it was made: the [base], [policy], [rnn] and [env]
settings it was trained with, so that it stays loadable when the env's config changes, and
the command that regenerates it.
"""

import importlib.resources
import json

from flappy_rl.errors import ConfigError

PRETRAINED = "pretrained"


def pretrained_files(env_name):
    root = importlib.resources.files("flappy_rl") / "pretrained"
    return root / f"{env_name}.pt", root / f"{env_name}.json"


def available():
    root = importlib.resources.files("flappy_rl") / "pretrained"
    return sorted(path.name.removesuffix(".pt") for path in root.iterdir() if path.name.endswith(".pt"))


def use_pretrained(args):
    """With --load-model-path pretrained, point it at the env's shipped policy and build the policy
    as it was trained; other paths are left alone. Env parameters stay the user's: a change that
    alters the observations is refused when the weights load."""
    if args.get("load_model_path") != PRETRAINED:
        return args
    weights, record = pretrained_files(args["env_name"])
    if not weights.is_file():
        raise ConfigError(f"no pretrained policy for {args['env_name']}; pretrained policies ship for: "
                          f"{', '.join(available()) or 'none'}")
    trained = json.loads(record.read_text())
    args["load_model_path"] = str(weights)
    for key in ("policy_name", "rnn_name", "policy", "rnn"):
        args[key] = trained[key]
    return args


def ship(env_name, checkpoint, note):
    """Copy a checkpoint of env_name's config into the package as its pretrained policy, with the
    record of how it was made. Run as: python -m flappy_rl.pretrained ENV_NAME CHECKPOINT NOTE"""
    import pufferlib.vector
    import torch

    from flappy_rl import Flappy
    from flappy_rl.config import load_config
    from flappy_rl.checkpoint import load_checkpoint
    from flappy_rl.components import env_kwargs, make_policy

    args = load_config(env_name)
    vecenv = pufferlib.vector.make(Flappy, backend="PufferEnv", env_kwargs=env_kwargs(args, num_envs=1))
    vecenv.close()
    policy = make_policy(args, vecenv.driver_env)
    load_checkpoint(policy, checkpoint, args, "cpu")  # refuses one that doesn't fit the config
    weights, record = pretrained_files(env_name)
    torch.save(policy.state_dict(), str(weights))
    trained = {key: args[key] for key in ("policy_name", "rnn_name", "policy", "rnn", "env", "train")}
    record.write_text(json.dumps({"env_name": env_name, "note": note, **trained}, indent=1) + "\n")
    print(f"wrote {weights} and {record}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: python -m flappy_rl.pretrained ENV_NAME CHECKPOINT NOTE")
    try:
        ship(*sys.argv[1:])
    except ConfigError as error:
        sys.exit(f"error: {error}")
