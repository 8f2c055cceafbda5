"""`puffer sweep`: hyperparameter search with PufferLib's sweep methods (Protein by default) or
Optuna's samplers over our train, recorded in a local file so that it needs no account and
survives being stopped.

Every swept setting is a [sweep.SECTION.KEY] section of the config (distribution, min, max,
mean, scale, as PufferLib's own configs spell them). The method suggests values, a trial trains
with them for at most `sweep.trial_seconds` (and `train.total_timesteps`), and the method
observes the scores along the trial's learning curve. The trials live in an Optuna study
(flappy_rl.sweep_study): in memory, or with --sweep.storage in a database that any number of
workers share. The record is experiments/sweep_<env>_<time>.jsonl: its first line describes the
sweep, then one line per finished trial (hyperparameters, score, steps, seconds, model,
learning-curve points), each appended and flushed as the trial finishes. `--resume` replays the
newest record of the env into the study and goes on. With --wandb or --neptune, trials are also
logged there.
"""

import _thread
import copy
import glob
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import optuna
from optuna.trial import TrialState

from flappy_rl import sweep_study
from flappy_rl.errors import ConfigError, Terminated, stop_reason, stop_status
from flappy_rl.plots import sweep_png
from flappy_rl.train import RunRecorder, import_pufferl, require_logger_package, stop_on_sigterm, train

# The sweep methods of pufferlib.sweep that need nothing beyond the declared dependencies, then
# Optuna's samplers.
METHODS = ("Protein", "Random", "ParetoGenetic") + sweep_study.OPTUNA_METHODS
DISTRIBUTIONS = ("uniform", "int_uniform", "uniform_pow2", "log_normal", "logit_normal")
SPACE_KEYS = ("distribution", "min", "max", "mean", "scale")
# [sweep] settings that are not searched: the method's, then this loop's.
METHOD_SETTINGS = ("method", "metric", "goal", "downsample")
LOOP_SETTINGS = ("max_trials", "trial_seconds", "storage", "study_name", "heartbeat_seconds")


def swept_spaces(sweep_config, prefix=""):
    """{'train.learning_rate': {distribution, min, max, mean, scale}, ...}: the searched settings."""
    spaces = {}
    for key, value in sweep_config.items():
        if key in METHOD_SETTINGS + LOOP_SETTINGS and not prefix:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"[sweep{prefix}] {key} = {value!r} is not a setting of the sweep; a searched "
                              f"setting is a section [sweep.SECTION.KEY] with {', '.join(SPACE_KEYS)}")
        if "distribution" in value:
            spaces[f"{prefix}.{key}".lstrip(".")] = value
        else:
            spaces.update(swept_spaces(value, f"{prefix}.{key}"))
    return spaces


def check_space(name, space, args):
    """One line saying what is wrong with a searched setting, or nothing."""
    where = f"[sweep.{name}]"
    node = args
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node or part == "sweep":
            raise ConfigError(f"{where}: the sweep searches {name}, which is not a setting of "
                              f"{args['env_name']} (puffer train {args['env_name']} --help lists them)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise ConfigError(f"{where}: {name} is {node!r}, not a number, so it cannot be searched")
    missing = [key for key in SPACE_KEYS if key not in space]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    if space["distribution"] not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {space['distribution']!r}; valid: {', '.join(DISTRIBUTIONS)}")
    low, high, mean, scale = space["min"], space["max"], space["mean"], space["scale"]
    for key in ("min", "max", "mean"):
        if isinstance(space[key], bool) or not isinstance(space[key], int | float) or not np.isfinite(space[key]):
            raise ConfigError(f"{where}: {key} must be a number, got {space[key]!r}")
    if not low < high:
        raise ConfigError(f"{where}: min {low:g} must be below max {high:g}")
    if not low <= mean <= high:
        raise ConfigError(f"{where}: mean {mean:g} is outside [min, max] = [{low:g}, {high:g}]")
    if space["distribution"] in ("log_normal", "uniform_pow2") and low <= 0:
        raise ConfigError(f"{where}: a {space['distribution']} distribution needs min > 0, got {low:g}")
    if space["distribution"] == "logit_normal" and not (0 < low and high < 1):
        raise ConfigError(f"{where}: a logit_normal distribution needs 0 < min and max < 1, got [{low:g}, {high:g}]")
    if scale != "auto" and (isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0):
        raise ConfigError(f"{where}: scale must be 'auto' or a positive number, got {scale!r}")


def check_sweep(args):
    """Everything a sweep needs, checked before any file is written. Returns the searched spaces."""
    config = args["sweep"]
    if config["method"] not in METHODS:
        raise ConfigError(f"unknown sweep.method {config['method']!r}; valid: {', '.join(METHODS)}")
    if config["metric"] not in ("score", "episode_length", "episode_return", "perf"):
        raise ConfigError(f"unknown sweep.metric {config['metric']!r}; valid: score, episode_length, "
                          "episode_return, perf")
    if config["goal"] not in ("maximize", "minimize"):
        raise ConfigError(f"sweep.goal must be maximize or minimize, got {config['goal']!r}")
    if config["max_trials"] < 1:
        raise ConfigError(f"sweep.max_trials must be at least 1, got {config['max_trials']}")
    if not config["trial_seconds"] > 0:
        raise ConfigError(f"sweep.trial_seconds (each trial's time budget) must be positive, got {config['trial_seconds']}")
    if config["heartbeat_seconds"] < 1:
        raise ConfigError(f"sweep.heartbeat_seconds must be at least 1, got {config['heartbeat_seconds']}")
    if config["downsample"] < 1:
        raise ConfigError(f"sweep.downsample must be at least 1, got {config['downsample']}")
    spaces = swept_spaces(config)
    if not spaces:
        raise ConfigError("the [sweep] section searches nothing: add a [sweep.train.learning_rate] section or the like")
    for name, space in spaces.items():
        check_space(name, space, args)
    require_logger_package(args)
    return spaces


def describe(args, spaces):
    """The record's first line: what is searched and how, so that --resume can check it is the same sweep."""
    return {"env_name": args["env_name"], "method": args["sweep"]["method"], "metric": args["sweep"]["metric"],
            "goal": args["sweep"]["goal"], "swept": list(spaces),
            "distributions": {name: space["distribution"] for name, space in spaces.items()},
            "spaces": spaces}


def read_record(path):
    """(header, trials) of a sweep record. A last line cut short (the writer was killed mid-write)
    is dropped from the file."""
    try:
        with open(path) as record:
            text = record.read()
    except OSError as error:
        raise ConfigError(f"cannot read the sweep record {path}: {error.strerror}") from None
    lines = text.split("\n")
    if lines[-1]:
        lines.pop()
        with open(path, "w") as record:
            record.write("".join(line + "\n" for line in lines if line))
    try:
        records = [json.loads(line) for line in lines if line]
    except json.JSONDecodeError as error:
        raise ConfigError(f"the sweep record {path} is not JSON lines ({error}); start a new sweep") from None
    if not records or "swept" not in records[0]:
        raise ConfigError(f"the sweep record {path} has no header line; start a new sweep")
    return records[0], records[1:]


def record_path(args, resume):
    """A new record, or the newest one of the env with --resume. Workers of a shared storage
    that start in the same second each have their own, told apart by process id."""
    data_dir = args["train"]["data_dir"]
    if resume:
        candidates = sorted(glob.glob(os.path.join(data_dir, f"sweep_{args['env_name']}_*.jsonl")))
        if not candidates:
            raise ConfigError(f"--resume: no sweep of {args['env_name']} in {data_dir}/ to continue")
        return candidates[-1]
    worker = f"_{os.getpid()}" if args["sweep"]["storage"] else ""
    return os.path.join(data_dir, f"sweep_{args['env_name']}_{time.strftime('%Y%m%d-%H%M%S')}{worker}.jsonl")


def append(path, line):
    """One record line, written in one call and flushed to disk, so a kill loses at most the running trial."""
    with open(path, "a") as record:
        record.write(json.dumps(line) + "\n")
        record.flush()
        os.fsync(record.fileno())


def start_record(path, header):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "x") as record:
            record.write(json.dumps(header) + "\n")
    except OSError as error:
        raise ConfigError(f"cannot write the sweep record {path}: {error.strerror}") from None


class TrialClock:
    """Ends a trial after its budget of seconds the way Ctrl-C would: train saves the policy and
    the learning curve so far, and the trial counts with what it reached."""

    def __init__(self, seconds):
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True
        self.lock = threading.Lock()
        self.running = False
        self.expired = False

    def expire(self):
        with self.lock:
            if self.running:
                self.expired = True
                _thread.interrupt_main()

    def __enter__(self):
        self.running = True
        self.timer.start()
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.running = False
        self.timer.cancel()


class TrialRecorder(RunRecorder):
    """A trial's learning curve, kept here for the sweep and also sent to W&B or Neptune when asked
    (PuffeRL would otherwise swap its own logger in for ours)."""

    def __init__(self, data_dir, remote=None):
        super().__init__(data_dir)
        self.remote = remote

    def log(self, logs, step):
        super().log(logs, step)
        if self.remote is not None:
            self.remote.log(logs, step)

    def close(self, model_path):
        super().close(model_path)
        if self.remote is not None:
            self.remote.close(model_path)


def remote_logger(args, pufferl):
    if args["neptune"]:
        return pufferl.NeptuneLogger(args)
    if args["wandb"]:
        return pufferl.WandbLogger(args)
    return None


def curve_points(recorder, metric, count):
    """Up to `count` (steps, metric, seconds) points along the trial's curve, each the mean of a chunk."""
    column = RunRecorder.COLUMNS.index(f"environment/{metric}")
    rows = [(row[0], row[column], row[1]) for row in recorder.rows if row[column] != ""]
    if not rows:
        return []
    chunks = np.array_split(np.array(rows, dtype=float), min(count, len(rows)))
    return [[int(chunk[:, 0].mean()), float(np.nan_to_num(chunk[:, 1].mean())), float(chunk[:, 2].mean())]
            for chunk in chunks]


def with_values(args, values):
    """A copy of args with each searched setting ('train.learning_rate': ...) set."""
    trial_args = copy.deepcopy(args)
    for name, value in values.items():
        *path, leaf = name.split(".")
        node = trial_args
        for part in path:
            node = node[part]
        node[leaf] = value
    return trial_args


def nested(values, steps=None):
    """{'train': {'learning_rate': ...}} from {'train.learning_rate': ...}, as the method reads them;
    a swept train.total_timesteps is the point's steps, as in PufferLib's own sweep."""
    tree = {}
    for name, value in values.items():
        *path, leaf = name.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = steps if name == "train.total_timesteps" and steps is not None else value
    return tree


def observe(search, trial):
    for steps, score, seconds in trial["points"]:
        search.observe(nested(trial["hyperparameters"], steps), score, max(seconds, 1e-3))


class Suggester:
    """Where a trial's values come from: an Optuna sampler, which reads the study itself, or one of
    PufferLib's methods, which first observes every finished trial of the study it has not seen yet,
    whichever worker and method ran it."""

    def __init__(self, args, spaces):
        self.method = args["sweep"]["method"]
        self.names = list(spaces)
        self.search = None
        self.seen = set()
        if self.method not in sweep_study.OPTUNA_METHODS:
            import pufferlib.sweep

            method_config = {key: value for key, value in args["sweep"].items() if key not in LOOP_SETTINGS}
            self.search = getattr(pufferlib.sweep, self.method)(method_config)

    def ask(self, study, dists):
        if self.search is None:
            return sweep_study.ask(study, dists, self.method)
        for trial in sweep_study.finished_trials(study):
            if trial.number not in self.seen and trial.value is not None:
                observe(self.search, sweep_study.record_line(trial))
            self.seen.add(trial.number)
        values = self.flat(self.search.suggest(None)[0])
        taken = [trial.params for trial in study.get_trials(deepcopy=False) if trial.state != TrialState.FAIL]
        if any(all(np.isclose(params.get(name, np.nan), value) for name, value in values.items()) for params in taken):
            # the point is running or done elsewhere (two workers starting at once both get the
            # search centre): a random point around the centre instead
            values = self.flat(self.search.hyperparameters.to_dict(self.search.hyperparameters.sample(1)[0]))
        return sweep_study.ask(study, dists, self.method, fixed=values)

    def flat(self, suggestion):
        values = {}
        for name in self.names:
            node = suggestion
            for part in name.split("."):
                node = node[part]
            values[name] = node
        return values


def claim(study, config, dists, suggester, dead_workers):
    """The next trial this worker runs, or None once the study holds sweep.max_trials finished
    trials. While the trials running elsewhere would make up the rest, waits on them: a trial whose
    worker dies is failed once its heartbeat is missed, and its place goes to a living worker."""
    waiting = False
    while True:
        if dead_workers is not None:
            dead_workers.fail_their_trials(study)
        finished = len(sweep_study.finished_trials(study))
        running = len(sweep_study.running_trials(study))
        if finished >= config["max_trials"]:
            return None
        if finished + running < config["max_trials"]:
            trial = suggester.ask(study, dists)
            ahead = [other for other in study.get_trials(deepcopy=False) if other.number < trial.number
                     and (other.state in sweep_study.FINISHED or other.state == TrialState.RUNNING)]
            if len(ahead) < config["max_trials"]:
                return trial
            # another worker took the last place at the same moment: give this one up unrun
            trial.set_user_attr("unrun", "sweep.max_trials were taken by other workers")
            study.tell(trial, state=TrialState.FAIL)
            continue
        if not waiting:
            print(f"sweep: {trial_count(finished)} finished, waiting on {running} running on other workers", flush=True)
            waiting = True
        time.sleep(config["heartbeat_seconds"])


def run_trial(args, study, trial, pufferl):
    """Train with the trial's values and report to the study; False if the study had already
    failed the trial (another worker took this one for dead)."""
    number = trial.number + 1
    print(f"sweep trial {number}: " + ", ".join(f"{name} = {value:.6g}" for name, value in trial.params.items()),
          flush=True)
    trial_args = with_values(args, trial.params)
    recorder = TrialRecorder(args["train"]["data_dir"], remote_logger(args, pufferl))
    # the recorder logs to W&B or Neptune itself; PuffeRL must not replace it
    trial_args["wandb"] = trial_args["neptune"] = False
    heartbeat_seconds = args["sweep"]["heartbeat_seconds"] if args["sweep"]["storage"] else None
    start = time.monotonic()
    try:
        with sweep_study.Heartbeat(study, trial, heartbeat_seconds):
            trial.set_user_attr("method", args["sweep"]["method"])
            with TrialClock(args["sweep"]["trial_seconds"]) as clock:
                try:
                    model_path, _ = train(trial_args, recorder)
                except KeyboardInterrupt as interrupt:
                    if not clock.expired or isinstance(interrupt, Terminated):
                        raise
                    model_path = interrupt.args[0] if interrupt.args else None
                    stop_on_signals()  # train left them ignored, as on the way out; the sweep goes on
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # failed before it began training: this worker was slower than the grace period
    except BaseException:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)  # frees its place at once
        raise
    points = curve_points(recorder, args["sweep"]["metric"], args["sweep"]["downsample"])
    final = recorder.rows[-1] if recorder.rows else None
    return sweep_study.finish(study, trial, points[-1][1] if points else None, {
        "steps": int(final[0]) if final else 0, "seconds": round(time.monotonic() - start, 2),
        "stopped_by": "trial_seconds" if clock.expired else "total_timesteps", "model": model_path,
        "points": points})


def sync_record(study, path, recorded):
    """Appends the study's finished trials that the local record lacks (with a storage, other
    workers' too) and redraws the picture; returns them."""
    new = [trial for trial in sweep_study.finished_trials(study) if trial.number not in recorded]
    for trial in new:
        append(path, sweep_study.record_line(trial))
        recorded.add(trial.number)
    if new:
        sweep_png(path, path.removesuffix(".jsonl") + ".png")
    return new


def stop_on_signals():
    """Ctrl-C and SIGTERM stop the sweep, and it says where it is. (pufferl's import made Ctrl-C
    call os._exit(0).)"""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_sigterm)


def trial_count(count):
    return f"{count} trial{'s' * (count != 1)}"


def sweep(args):
    """Run trials until the study holds sweep.max_trials finished ones; returns the exit status."""
    spaces = check_sweep(args)
    config = args["sweep"]
    header = describe(args, spaces)
    if config["storage"]:
        if args["resume"]:
            raise ConfigError("--resume continues a local record; a sweep with --sweep.storage continues its study "
                              "by itself: leave --resume out")
        header.update(storage=sweep_study.public_url(config["storage"]),
                      study=config["study_name"] or args["env_name"])
    dists = sweep_study.distributions(spaces)
    study = sweep_study.open_study(args, {key: header[key] for key in ("env_name", "metric", "goal", "spaces")})
    path = record_path(args, args["resume"])
    recorded = set()
    if args["resume"]:
        previous, lines = read_record(path)
        if {key: previous.get(key) for key in header} != header:
            raise ConfigError(f"--resume: {path} searched other settings or ranges than this sweep; "
                              "start a new sweep without --resume")
        study.add_trials([sweep_study.replayed_trial(line, dists) for line in lines])
        recorded = {trial.number for trial in study.trials}
    else:
        start_record(path, header)
    pufferl = import_pufferl()
    stop_on_signals()
    suggester = Suggester(args, spaces)
    sync_record(study, path, recorded)
    print(f"sweep record: {path} ({trial_count(len(sweep_study.finished_trials(study)))} so far)", flush=True)
    dead_workers = sweep_study.DeadWorkers(2 * config["heartbeat_seconds"]) if config["storage"] else None
    try:
        while (trial := claim(study, config, dists, suggester, dead_workers)) is not None:
            if not run_trial(args, study, trial, pufferl):
                print(f"sweep trial {trial.number + 1}: another worker missed this worker's heartbeat and failed "
                      "the trial; its result is not kept", file=sys.stderr, flush=True)
            for finished in sync_record(study, path, recorded):
                line = sweep_study.record_line(finished)
                print(f"sweep trial {line['trial']}: {config['metric']} {line['score']}, {line['steps']:,} steps, "
                      f"{line['seconds']:.0f} s" + (f" ({line['worker']})" if config["storage"] else ""), flush=True)
    except KeyboardInterrupt as interrupt:
        again = f"--sweep.storage {header['storage']}" if config["storage"] else "--resume"
        print(f"\n{stop_reason(interrupt)}: {trial_count(len(recorded))} recorded in {path}; "
              f"puffer sweep {args['env_name']} {again} continues", file=sys.stderr)
        return stop_status(interrupt)
    sync_record(study, path, recorded)
    sign = 1 if config["goal"] == "maximize" else -1
    scored = [trial for trial in sweep_study.finished_trials(study) if trial.value is not None]
    best = max(scored, key=lambda trial: sign * trial.value, default=None)
    print(f"sweep done: {len(recorded)} trials in {path}" +
          (f"; best {config['metric']} {best.value:.4g} by trial {best.number + 1}" if best else ""))
    return 0
