"""Policies shipped inside the package, one per env that has one: `--load-model-path pretrained`.

Each is `pretrained/<env_name>.pt`, a checkpoint exactly as `puffer train` writes it (weights,
the run's record, step count and optimizer state; flappy_rl.checkpoint), with one field added to
the record: `note`, how and where it was trained and what it scored. Like any checkpoint, it is
played with the game and policy of its record, whatever the env's config says today.
"""

import importlib.resources

from flappy_rl.errors import ConfigError

PRETRAINED = "pretrained"


def pretrained_path(env_name):
    return importlib.resources.files("flappy_rl") / "pretrained" / f"{env_name}.pt"


def available():
    root = importlib.resources.files("flappy_rl") / "pretrained"
    return sorted(path.name.removesuffix(".pt") for path in root.iterdir() if path.name.endswith(".pt"))


def use_pretrained(args):
    """With --load-model-path pretrained, point it at the env's shipped checkpoint; other paths
    are left alone."""
    if args.get("load_model_path") != PRETRAINED:
        return args
    path = pretrained_path(args["env_name"])
    if not path.is_file():
        raise ConfigError(f"no pretrained policy for {args['env_name']}; pretrained policies ship for: "
                          f"{', '.join(available()) or 'none'}")
    args["load_model_path"] = str(path)
    return args


def ship(env_name, checkpoint_path, note):
    """Copy a checkpoint of an env_name run into the package as its pretrained policy, with `note`
    in its record. Run as: python -m flappy_rl.pretrained ENV_NAME CHECKPOINT|latest NOTE"""
    import torch

    from flappy_rl.checkpoint import FORMAT, read_checkpoint, resolve_checkpoint
    from flappy_rl.config import load_config
    from flappy_rl.errors import CheckpointError

    path = resolve_checkpoint(checkpoint_path, load_config(env_name)["train"]["data_dir"], env_name)
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as error:
        raise ConfigError(str(error)) from None
    if checkpoint.record is None or checkpoint.trainer is None:
        raise ConfigError(f"{path} does not record its run: ship a checkpoint that puffer train wrote at the end of a run")
    if checkpoint.record["env_name"] != env_name:
        raise ConfigError(f"{path} was trained on {checkpoint.record['env_name']}, not {env_name}")
    target = pretrained_path(env_name)
    torch.save({"format": FORMAT, "weights": checkpoint.weights, "record": {**checkpoint.record, "note": note},
                "trainer": checkpoint.trainer}, str(target))
    print(f"wrote {target}")


if __name__ == "__main__":
    import sys

    try:
        if len(sys.argv) != 4:
            raise ConfigError("usage: python -m flappy_rl.pretrained ENV_NAME CHECKPOINT|latest NOTE")
        ship(*sys.argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
