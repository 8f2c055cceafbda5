"""Configuration for the `puffer` command: PufferLib-format ini files plus command-line overrides.

`configs/default.ini` holds the defaults; an env's file (`configs/puffer_flappy.ini`, whose
[base] env_name names the env) overrides them; `--section.key value` on the command line
overrides both, typed from the default it replaces. The result is PufferLib's nested args dict:
{"env_name": ..., "policy_name": ..., "rnn_name": ..., "vec": {...}, "env": {...}, ...}.
"""

import argparse
import ast
import configparser
import decimal
import difflib
import importlib.resources

from flappy_rl import binding
from flappy_rl.errors import ConfigError

MODES = {
    "train": "train a policy with PuffeRL; checkpoints and the final model go to experiments/",
    "eval": "play a trained policy: print episode scores, watch it, or save a GIF",
    "sweep": "hyperparameter search over the [sweep] section with PufferLib's Protein, recorded in experiments/",
    "autotune": "find the fastest vectorization settings for this machine",
    "bench": "measure steps per second, side by side with other Flappy envs",
    "play": "play the game yourself",
    "export": "write a trained policy's weights and description for C inference (csrc/demo.c)",
    "web": "build the game and the agent for the browser (WebAssembly); --serve serves the page",
}


def config_files():
    root = importlib.resources.files("flappy_rl.configs")
    return {path.name: path for path in root.iterdir() if path.name.endswith(".ini")}


def read_ini(*paths):
    parser = configparser.ConfigParser()
    for path in paths:
        parser.read_string(path.read_text(), source=path.name)
    return parser


def env_names():
    """Every env name a non-default config file declares, in file order."""
    names = []
    for name, path in sorted(config_files().items()):
        if name != "default.ini":
            names += read_ini(path)["base"]["env_name"].split()
    return names


def parse_value(text):
    """An ini value: a Python literal where it is one (10_000_000, 0.99, True, None), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# Settings written the old way: the key, and what to write instead.
RENAMED = {
    "vec.envs_per_copy": "[vec] envs_per_copy is now [env] num_envs, the birds in one C vector, as in every Ocean "
                         "config ([vec] num_envs counts the copies): write --env.num-envs N, or num_envs = N under [env]",
}


def c_params(args):
    """The C core's parameters from [env]: everything there but num_envs, the size of the C vector."""
    return {key: value for key, value in args["env"].items() if key != "num_envs"}


def load_config(env_name):
    """The nested args dict of an env, from default.ini overridden by the env's own file."""
    files = config_files()
    for name, path in sorted(files.items()):
        if name == "default.ini":
            continue
        parser = read_ini(files["default.ini"], path)
        if env_name in parser["base"]["env_name"].split():
            break
    else:
        raise ConfigError(f"unknown env {env_name!r}; valid envs: {', '.join(env_names())}")
    for key, instead in RENAMED.items():
        section, _, name = key.rpartition(".")
        if parser.has_option(section, name):
            raise ConfigError(f"{path.name}: {instead}")
    args = {}
    for section in parser.sections():
        values = {key: parse_value(text) for key, text in parser[section].items()}
        if section == "base":
            args.update(values)
            continue
        node = args
        for part in section.split("."):
            node = node.setdefault(part, {})
        node.update(values)
    args["env_name"] = env_name
    return args


# -- typed overrides -------------------------------------------------------------------------


def typed(kind, convert):
    """convert(text), named so that argparse's error says "invalid <kind> value"."""

    def parse(text):
        return convert(text)

    parse.__name__ = kind
    return parse


def to_bool(text):
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


# The most digits a whole number written in scientific notation may have: Python's own limit for
# converting an int to text, so that every message can quote it.
MAX_DIGITS = 4300


def to_int(text):
    """An int; scientific notation is fine when it is integral (1e8), read exactly: through a
    float, 1e30 would become 10**30 + 19884624838656 and messages would quote that."""
    try:
        return int(text)
    except ValueError:
        try:
            value = decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise ValueError(text) from None
        if not value.is_finite() or value.adjusted() >= MAX_DIGITS or value != value.to_integral_value():
            raise ValueError(text) from None
        return int(value)


def to_auto_or_number(text):
    return text if text == "auto" else parse_number(text)


def parse_number(text):
    try:
        return to_int(text)
    except ValueError:
        return float(text)


BOOL = typed("bool", to_bool)
INT = typed("int", to_int)
FLOAT = typed("float", float)
STR = typed("str", str)
AUTO = typed("'auto' or number", to_auto_or_number)
LITERAL = typed("value", parse_value)


def type_of(default):
    """The converter for an override, chosen from the value it replaces."""
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return INT
    if isinstance(default, float):
        return FLOAT
    if default == "auto":
        return AUTO
    if default is None:
        return LITERAL
    return STR


def flatten(args, prefix=""):
    """('section.key', value) for every leaf of the nested args dict."""
    for key, value in args.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def option_name(key):
    return "--" + key.replace("_", "-")


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


# Options of the modes themselves, not from the config files: (name, default, type, help, modes).
MODE_OPTIONS = [
    ("load_model_path", None, STR, "checkpoint whose run to continue: a path, 'latest' for the newest "
     "experiments/*.pt, or 'pretrained' for the policy shipped with the package", ("train",)),
    ("load_model_path", None, STR, "checkpoint to play or export: a path, 'latest' for the newest experiments/*.pt, "
     "or 'pretrained' for the policy shipped with the package", ("eval", "export")),
    ("out_dir", "exported", STR, "folder for the exported weights and description", ("export",)),
    ("load_model_path", "pretrained", STR, "policy the page's agent plays: a path, 'latest' for the newest "
     "experiments/*.pt, or 'pretrained' for the policy shipped with the package", ("web",)),
    ("render_mode", "None", STR, "human: a raylib window; rgb_array or None: headless", ("eval",)),
    ("episodes", None, INT, "episodes to play (default: endless with a window, 100 headless)", ("eval",)),
    ("greedy", False, BOOL, "take the most likely action instead of sampling", ("eval",)),
    ("save_frames", 0, INT, "save the first N frames of env 0 as an animated GIF", ("eval",)),
    ("gif_path", "eval.gif", STR, "where --save-frames writes the GIF", ("eval",)),
    ("fps", 30, INT, "frames per second of the window and the GIF (0: as fast as possible in the window)",
     ("eval", "play")),
    ("render_scale", 1.0, FLOAT, "window size as a multiple of the game's 288 x 512", ("eval", "play")),
    ("overlay", False, BOOL, "start the window with lines to the gap edges the agent observes (O toggles)",
     ("eval", "play")),
    ("seed", None, INT, "seed of the pipes (default: a random one)", ("play",)),
    ("wandb", False, BOOL, "log to Weights & Biases (needs the wandb package)", ("train", "sweep")),
    ("wandb_project", "flappy-rl", STR, "W&B project", ("train", "sweep")),
    ("wandb_group", "debug", STR, "W&B group", ("train", "sweep")),
    ("neptune", False, BOOL, "log to Neptune (needs the neptune package)", ("train", "sweep")),
    ("neptune_name", "flappy-rl", STR, "Neptune workspace", ("train", "sweep")),
    ("neptune_project", "flappy-rl", STR, "Neptune project", ("train", "sweep")),
    ("tag", None, STR, "tag for the logged run", ("train", "sweep")),
    ("resume", False, BOOL, "continue the newest sweep record of this env in experiments/", ("sweep",)),
    ("batch_size", 2, INT, "env copies per batch for autotune", ("autotune",)),
    ("max_envs", 16, INT, "most env copies autotune tries", ("autotune",)),
    ("time_per_test", 5.0, FLOAT, "seconds autotune spends on each setting", ("autotune",)),
    ("seconds", 2.0, FLOAT, "seconds per timed window", ("bench", "web")),
    ("json", None, STR, "also write the figures as JSON to this path", ("bench",)),
    ("compare", False, BOOL, "also measure the flappy-bird-gymnasium package's env", ("bench",)),
    ("web_path", "experiments/web", STR, "folder the page, its WebAssembly module and the policy go to", ("web",)),
    ("serve", False, BOOL, "serve the folder on 127.0.0.1 with Python's http.server and print the URL", ("web",)),
    ("port", 8000, INT, "port --serve listens on (0: any free port)", ("web",)),
    ("bench", False, BOOL, "measure the page's core in headless Chromium beside the native binding "
     "(needs the dev dependency group: playwright)", ("web",)),
]


# Options whose default does not tell their type ("auto" is otherwise "auto or a number").
OPTION_TYPES = {"train.device": STR}
# What some config options mean, where the name does not say it all.
OPTION_HELP = {
    "train.total_timesteps": "env steps to train for; under torchrun, the steps of all ranks together ",
    "train.dist_timeout": "under torchrun, seconds a rank waits for the others in one collective call before "
                          "it stops ",
}


def add_option(group, key, default, convert, text):
    # A bool option alone means True: --wandb is --wandb True.
    extra = dict(nargs="?", const=True) if convert is BOOL else {}
    group.add_argument(option_name(key), dest=key, default=default, type=convert, metavar=convert.__name__.upper(),
                       help=f"{text}(default: {default})", **extra)


def build_parser(mode, env_name, config):
    parser = OneLineParser(
        prog=f"puffer {mode} {env_name}",
        usage=f"puffer {mode} {env_name} [--section.key VALUE ...]",
        allow_abbrev=False,
        add_help=False,
        description=f"{MODES[mode]}. Options override configs/default.ini and the env's own ini file.",
    )
    parser.add_argument("-h", "--help", action="help", help="show this message and exit")
    group = parser.add_argument_group(f"options of {mode}")
    for name, default, convert, text, modes in MODE_OPTIONS:
        if mode in modes:
            add_option(group, name, default, convert, text + " ")
    c_params, c_docs, c_choices = binding.params(), binding.param_docs(), binding.param_choices()
    groups = {}
    for key, default in flatten(config):
        if key == "env_name":
            continue  # named by the second argument
        section, _, name = key.rpartition(".") if "." in key else ("base", "", key)
        section = section.split(".")[0]
        if section not in groups:
            title = "[env] birds per C vector (num_envs) and the C core's parameters" if section == "env" else f"[{section}]"
            groups[section] = parser.add_argument_group(title)
        convert, text = OPTION_TYPES.get(key) or type_of(default), OPTION_HELP.get(key, "")
        if section == "env" and name in c_params:
            # typed by the C table (max_steps is an int, gap a float), not by how the ini spells it
            c_default, low, high = c_params[name]
            allowed = "{" + ", ".join(c_choices[name]) + "}" if name in c_choices else f"[{low:g}, {high:g}]"
            convert, text = type_of(c_default), f"{c_docs[name]}, in {allowed} "
        add_option(groups[section], key, default, convert, text)
    return parser


def normalize_option(arg):
    """--train.learning_rate and --train.learning-rate are the same option."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg.partition("=")
    return name.replace("_", "-") + sep + value


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def join_negative_values(argv):
    """`--env.gap -inf` as `--env.gap=-inf`: argparse takes a word after an option that starts with
    '-' and is not a plain negative number (-inf, -1e-8) for another option, and says "expected one
    argument" without the value."""
    joined = []
    for arg in argv:
        if (joined and joined[-1].startswith("--") and "=" not in joined[-1] and arg.startswith("-")
                and is_number(arg)):
            joined[-1] += "=" + arg
        else:
            joined.append(arg)
    return joined


def known_option_names(parser):
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def parse_args(mode, env_name, argv):
    """The args dict for `puffer MODE ENV_NAME ARGV...`. Raises ConfigError on any mistake."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    config = load_config(env_name)
    parser = build_parser(mode, env_name, config)
    argv = join_negative_values([normalize_option(arg) for arg in argv])
    known = known_option_names(parser)
    for arg in argv:
        name = arg.partition("=")[0]
        if name.startswith("--") and name[2:].replace("-", "_") in RENAMED:
            raise ConfigError(RENAMED[name[2:].replace("-", "_")])
        if arg.startswith("--") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"unknown option {name}{hint} (puffer {mode} {env_name} --help lists them)")
    # The settings the user gave, as section.key: a checkpoint's record yields to them.
    given = sorted({arg.partition("=")[0][2:].replace("-", "_") for arg in argv if arg.startswith("--")})
    args = {"mode": mode, "env_name": env_name, "given": given}
    for key, value in vars(parser.parse_args(argv)).items():
        *path, leaf = key.split(".")
        node = args
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return args


def usage():
    lines = [
        "usage: puffer MODE ENV [--section.key VALUE ...]",
        "",
        "modes:",
        *[f"  {mode:<9} {text}" for mode, text in MODES.items()],
        "",
        f"envs: {', '.join(env_names())}",
        "",
        "Every option and its default: puffer MODE ENV --help. For example, puffer train puffer_flappy --help:",
        "",
    ]
    return "\n".join(lines) + build_parser("train", env_names()[0], load_config(env_names()[0])).format_help()
