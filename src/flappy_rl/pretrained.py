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
