"""The Optuna study that holds a sweep's trials: in memory for one process alone, or in a database
(SQLite on one machine, PostgreSQL across machines) that any number of `puffer sweep` workers join.

Each searched setting is an Optuna distribution over the values the setting takes. A trial keeps,
beside its parameters and score, what the local record and PufferLib's methods need to rebuild it
on any worker (its learning-curve points, steps, seconds, model, worker, method) as user
attributes. A database study also keeps the searched space itself, so that a worker asking for
another space is refused before it writes anything.
"""

import contextlib
import math
import os
import socket
import threading
import time
import warnings

import optuna
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from flappy_rl.errors import ConfigError

# Trials that ran to their end: a trial whose run ended before any episode did has no score, and
# is PRUNED (the samplers rank it worst) rather than left out, so that it counts like the others.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The study attribute holding what a sweep searches; the method is not part of it, since workers
# with different methods may share one study.
SPACE_ATTRIBUTE = "flappy_rl.sweep"
# The study attribute naming the worker that joined last.
JOINED_ATTRIBUTE = "flappy_rl.last_joined"
# Optuna's samplers that need nothing beyond the declared dependencies, by class name.
OPTUNA_METHODS = ("TPESampler", "RandomSampler")


@contextlib.contextmanager
def quiet():
    """Without Optuna's notes on the experimental calls used here, and on a heartbeat used
    without Study.optimize (this loop beats itself, see Heartbeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def distribution(space):
    """The Optuna distribution of a searched setting. A logit_normal setting is drawn uniformly
    between min and max by Optuna's samplers (Protein alone searches it in log(1 - x))."""
    low, high = space["min"], space["max"]
    kind = space["distribution"]
    if kind == "int_uniform":
        return IntDistribution(math.ceil(low), math.floor(high))
    if kind == "uniform_pow2":
        # every power of two that PufferLib's Pow2 space can round to
        return CategoricalDistribution([2**k for k in range(round(math.log2(low)), round(math.log2(high)) + 1)])
    return FloatDistribution(low, high, log=kind == "log_normal")


def distributions(spaces):
    return {name: distribution(space) for name, space in spaces.items()}


def fit(value, dist):
    """A method's value as its distribution holds it: floats clipped into range (a normalized
    value mapped back can land a rounding error outside), ints as ints."""
    if isinstance(dist, FloatDistribution):
        return min(max(float(value), dist.low), dist.high)
    if isinstance(dist, IntDistribution):
        return min(max(int(round(value)), dist.low), dist.high)
    return int(value)


def public_url(url):
    """The storage URL without its password, as logs and the local record show it."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


# What a storage URL looks like, for the messages that refuse one.
STORAGE_FORMS = "sqlite:///FILE on one machine, postgresql://USER:PASSWORD@HOST/DATABASE across machines"


def storage_error(url, error):
    """One line for what went wrong with a storage: the database's own first line, or ours for a
    URL that names no database SQLAlchemy knows."""
    if isinstance(error, sqlalchemy.exc.ArgumentError):
        if isinstance(error, sqlalchemy.exc.NoSuchModuleError):
            kind = sqlalchemy.engine.make_url(url).drivername
            return ConfigError(f"--sweep.storage {public_url(url)}: no database of the kind '{kind}'; use "
                               f"{STORAGE_FORMS}")
        return ConfigError(f"--sweep.storage {public_url(url)}: not a database URL; use {STORAGE_FORMS}")
    cause = error
    while cause.__cause__ is not None and isinstance(cause, (optuna.exceptions.StorageInternalError, ImportError)):
        cause = cause.__cause__
    if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if isinstance(cause, ImportError):
        text = f"its database driver is not installed ({text})"
    return ConfigError(f"--sweep.storage {public_url(url)}: {text}")


def engine_options(url):
    """Waits that keep a busy or unreachable database from hanging a worker."""
    if url.startswith("sqlite"):
        # several workers write one file: wait for the lock instead of failing at once
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def lost_schema_race(error):
    """Whether opening a storage failed because another worker was creating its tables at the
    same moment: Optuna checks for each table and version row, then creates what it did not find,
    so the slower of two workers on a new database meets the faster one's rows or tables."""
    if isinstance(error, optuna.exceptions.StorageInternalError):
        error = error.__cause__
    if isinstance(error, sqlalchemy.exc.IntegrityError):
        return True
    return isinstance(error, sqlalchemy.exc.DBAPIError) and "already exists" in str(error.orig)


def open_storage(url, heartbeat_seconds):
    """Optuna's storage for a URL; a worker that stops beating for twice heartbeat_seconds is
    taken for dead, and its running trial is failed by the next worker that looks."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    attempts = 5
    for attempt in range(1, attempts + 1):
        with quiet():
            # SQLAlchemy warns of a URL it half ignores (sqlite:///f.db?mode=ro opens f.db to write):
            # that URL would not do what it says, so it is refused
            warnings.simplefilter("error", sqlalchemy.exc.SAWarning)
            try:
                return optuna.storages.RDBStorage(url, engine_options(url), heartbeat_interval=heartbeat_seconds,
                                                  grace_period=2 * heartbeat_seconds)
            except sqlalchemy.exc.SAWarning as warning:
                text = str(warning).split(" (Background on this warning")[0]
                raise ConfigError(f"--sweep.storage {public_url(url)}: {text}") from None
            except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError) as error:
                if attempt < attempts and lost_schema_race(error):
                    time.sleep(0.2 * attempt)  # the other worker has made the tables by then: find them
                    continue
                raise storage_error(url, error) from None
            except ValueError as error:  # a URL that names no database
                raise ConfigError(f"--sweep.storage {public_url(url)}: {error}") from None


def open_study(args, space):
    """The sweep's study: a fresh one in memory without a storage; with one, the named study,
    created if new, refused if it searches another space. Checks that the database takes
    writes before returning, so that a refused worker has written nothing."""
    config = args["sweep"]
    direction = config["goal"]
    if not config["storage"]:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(direction=direction)
    url = config["storage"]
    name = config["study_name"] or args["env_name"]
    storage = open_storage(url, config["heartbeat_seconds"])
    try:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            try:
                study = optuna.create_study(study_name=name, storage=storage, direction=direction)
                study.set_user_attr(SPACE_ATTRIBUTE, space)
                return study
            except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
                study = optuna.load_study(study_name=name, storage=storage)
        asked = study.user_attrs.get(SPACE_ATTRIBUTE)
        if asked is None:
            asked = wait_for_space(study)
        if asked != space:
            raise ConfigError(f"--sweep.storage {public_url(url)}: the study {name!r} searches other settings, "
                              f"ranges or goals than this sweep; pass another --sweep.study-name")
        # a first write, refused here if the database takes none
        study.set_user_attr(JOINED_ATTRIBUTE, f"{worker_name()} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        raise storage_error(url, error) from None
    return study


def wait_for_space(study, seconds=10):
    """The space of a study that another worker has just created and not yet described."""
    for _ in range(seconds * 10):
        threading.Event().wait(0.1)
        asked = study._storage.get_study_user_attrs(study._study_id).get(SPACE_ATTRIBUTE)
        if asked is not None:
            return asked
    raise ConfigError(f"the study {study.study_name!r} was not made by puffer sweep; pass another --sweep.study-name")


def sampler(method):
    if method == "TPESampler":
        # constant_liar: a trial still running elsewhere counts as a poor one, so that workers
        # asking at the same time spread out instead of drawing the same point
        with quiet():
            return optuna.samplers.TPESampler(constant_liar=True)
    return optuna.samplers.RandomSampler()


def ask(study, dists, method, fixed=None):
    """A new running trial: drawn by the Optuna method, or holding PufferLib's suggestion `fixed`."""
    with quiet():
        if fixed is None:
            study.sampler = sampler(method)
        else:
            study.sampler = optuna.samplers.PartialFixedSampler(
                {name: fit(value, dists[name]) for name, value in fixed.items()}, optuna.samplers.RandomSampler())
        return study.ask(dists)


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


# The user attribute naming the worker (host:pid) that runs a trial. The worker sets it right
# after the trial's first heartbeat: a running trial without it is one whose worker died between
# taking it and beating.
WORKER_ATTRIBUTE = "worker"


class Heartbeat:
    """Tells the storage that this worker is alive while it holds a trial: a first beat as it
    takes the trial, then one every `interval` seconds from a thread, until the trial ends.
    Without a storage (interval None) there is no one to tell."""

    def __init__(self, study, trial, interval):
        self.study = study
        self.trial = trial
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.beat, daemon=True)

    def beat(self):
        while not self.stop.wait(self.interval):
            # a database busy or out of reach for a moment must not stop the beating for good
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
                self.study._storage.record_heartbeat(self.trial._trial_id)

    def __enter__(self):
        if self.interval is not None:
            self.study._storage.record_heartbeat(self.trial._trial_id)
            self.thread.start()
        try:
            self.trial.set_user_attr(WORKER_ATTRIBUTE, worker_name())
        except BaseException:  # the trial was failed meanwhile: beat no more
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


class DeadWorkers:
    """Fails the running trials whose workers died, so that their places go to living workers.
    Optuna's check fails a trial whose last heartbeat is older than the grace period, but never one
    that has no heartbeat at all: the trial of a worker killed between taking it and its first
    beat. Such a trial names no worker; it is failed once this worker has seen it so for the grace
    period, timed by this worker's own clock (the trial's start time is another machine's)."""

    def __init__(self, grace_seconds):
        self.grace_seconds = grace_seconds
        self.first_seen = {}  # trial id -> when this worker first saw it running without a worker

    def fail_their_trials(self, study):
        with quiet():
            optuna.storages.fail_stale_trials(study)
        now = time.monotonic()
        unclaimed = [trial._trial_id for trial in running_trials(study) if WORKER_ATTRIBUTE not in trial.user_attrs]
        self.first_seen = {trial_id: self.first_seen.get(trial_id, now) for trial_id in unclaimed}
        for trial_id, seen in self.first_seen.items():
            if now - seen >= self.grace_seconds:
                # another worker may fail it at the same moment
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                    study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)


def finished_trials(study):
    return [trial for trial in study.get_trials(deepcopy=False) if trial.state in FINISHED]


def running_trials(study):
    return [trial for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def record_line(trial):
    """A finished trial as a line of the local record."""
    attrs = trial.user_attrs
    return {"trial": trial.number + 1, "hyperparameters": dict(trial.params),
            "score": trial.value if trial.state == TrialState.COMPLETE else None,
            "steps": attrs.get("steps", 0), "seconds": attrs.get("seconds", 0.0),
            "stopped_by": attrs.get("stopped_by"), "model": attrs.get("model"), "points": attrs.get("points", []),
            "method": attrs.get("method"), "worker": attrs.get("worker")}


def replayed_trial(line, dists):
    """A line of a local record as a finished trial of an in-memory study (--resume)."""
    attrs = {key: line.get(key) for key in ("steps", "seconds", "stopped_by", "model", "points", "method", "worker")}
    params = {name: fit(value, dists[name]) for name, value in line["hyperparameters"].items()}
    scored = line["score"] is not None
    return optuna.trial.create_trial(state=TrialState.COMPLETE if scored else TrialState.PRUNED,
                                     value=line["score"] if scored else None, params=params, distributions=dists,
                                     user_attrs={key: value for key, value in attrs.items() if value is not None})


def finish(study, trial, score, attrs):
    """Reports a trial that ran: its score (PRUNED without one) and what rebuilds it. False when
    another worker failed the trial meanwhile, having missed this worker's heartbeat."""
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if score is None:
        told = study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        told = study.tell(trial, score, skip_if_finished=True)
    return told.state != TrialState.FAIL
