"""puffer sweep --sweep.storage: workers sharing one study in SQLite and in a PostgreSQL server
that these tests start, a killed worker's trial failed without blocking the others, resuming, and
one-line refusals that write nothing."""

import glob
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from flappy_rl import cli, sweep_study
from flappy_rl.config import parse_args
from flappy_rl.sweep import Suggester, check_sweep, describe

CLI = [sys.executable, "-m", "flappy_rl.cli", "sweep", "puffer_flappy"]
# Trials of a few seconds: 64 birds, 16-step rollouts, one minibatch. A heartbeat every 3 s: a
# trial is dead after 6 s without one, well above what a live worker on the loaded test machine
# takes between beats, so that no living worker's trial is failed.
TINY = ["--env.num-envs", "64", "--train.bptt-horizon", "16", "--train.minibatch-size", "1024",
        "--train.total-timesteps", "20000", "--sweep.heartbeat-seconds", "3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server (Debian's postgresql package) on a free local port; yields
    the URL of its superuser. The server refuses to run as root, so root runs it as postgres, in
    a folder of its own (pytest's folders are root's alone)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert binaries, "PostgreSQL is not installed: apt-get install -y postgresql"
    bin_dir = os.path.dirname(binaries[-1])
    folder = tempfile.mkdtemp(prefix="flappy-postgres-")
    port = free_port()
    as_owner = ["su", "postgres", "-s", "/bin/sh", "-c"] if os.geteuid() == 0 else ["/bin/sh", "-c"]
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    start = (f"{bin_dir}/initdb -D {folder}/data -A trust -U postgres >/dev/null && {bin_dir}/pg_ctl -D "
             f"{folder}/data -o '-k {folder} -p {port} -c listen_addresses=127.0.0.1' -l {folder}/log -w start "
             ">/dev/null")
    try:
        if subprocess.run([*as_owner, start], timeout=120).returncode != 0:
            log = open(f"{folder}/log").read() if os.path.exists(f"{folder}/log") else ""
            pytest.fail(f"the PostgreSQL server did not start:\n{log[-3000:]}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        # a server that never started has nothing to stop, and says so on stderr
        subprocess.run([*as_owner, f"{bin_dir}/pg_ctl -D {folder}/data -m immediate stop >/dev/null 2>&1"],
                       timeout=60)
        shutil.rmtree(folder)


# Far above what a worker takes here (about 10 s to start and a few seconds a trial), so that
# only a worker that hangs reaches it.
WORKER_SECONDS = 300


class Worker:
    """A `puffer sweep` process. Its output goes to files, not pipes: a pipe that nobody reads
    while the test waits fills up (a trial's dashboard writes tens of kB a second), and the worker
    would stop mid-trial on its next print, holding its trial."""

    def __init__(self, tmp_path, storage, *argv):
        self.log = tmp_path / f"worker-{time.monotonic_ns()}"
        with open(f"{self.log}.out", "w") as out, open(f"{self.log}.err", "w") as err:
            self.process = subprocess.Popen([*CLI, *TINY, "--sweep.storage", storage, *argv], cwd=tmp_path, env=ENV,
                                            stdout=out, stderr=err, text=True)
        self.pid = self.process.pid

    def has_printed(self, text):
        return text in open(f"{self.log}.out").read()

    def stderr(self):
        return open(f"{self.log}.err").read()[-3000:]

    def wait(self, seconds=WORKER_SECONDS):
        """The exit status; a worker still running after `seconds` is killed and fails the test."""
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker {self.pid} still ran after {seconds} s; its stderr:\n{self.stderr()}")

    def kill(self):
        self.process.kill()
        self.process.wait()

    def finish(self):
        """The stdout of a worker that must end well."""
        assert self.wait() == 0, self.stderr()
        return open(f"{self.log}.out").read()


@pytest.fixture
def workers():
    """Starts workers, and kills any left running when the test ends, passed or not."""
    started = []

    def start(*args):
        started.append(Worker(*args))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()


def started(out):
    """The trial numbers a worker started."""
    return [int(number) for number in re.findall(r"^sweep trial (\d+): train\.", out, re.MULTILINE)]


def study_of(storage, name="puffer_flappy"):
    return optuna.load_study(study_name=name, storage=storage)


def two_workers_share_one_study(tmp_path, storage, methods, workers):
    started_workers = [workers(tmp_path, storage, "--sweep.max-trials", "3", "--sweep.method", method)
                       for method in methods]
    outs = [worker.finish() for worker in started_workers]
    trials = study_of(storage).get_trials()
    finished = [trial for trial in trials if trial.state in sweep_study.FINISHED]
    assert len(finished) == 3
    # every other trial is one a worker gave up unrun, having asked at the same moment as another
    assert all(trial.user_attrs.get("unrun") for trial in trials if trial.state not in sweep_study.FINISHED)
    # no trial ran twice: each finished trial was started by exactly one worker, the one it names
    runs = [started(out) for out in outs]
    assert sorted(runs[0] + runs[1]) == sorted(trial.number + 1 for trial in finished)
    pids = {worker.pid: run for worker, run in zip(started_workers, runs)}
    for trial in finished:
        pid = int(trial.user_attrs["worker"].rpartition(":")[2])
        assert trial.number + 1 in pids[pid] and (tmp_path / trial.user_attrs["model"]).is_file()
    # each worker's local record holds every finished trial of the study, whoever ran it
    records = sorted((tmp_path / "experiments").glob("sweep_puffer_flappy_*.jsonl"))
    assert len(records) == 2
    for record in records:
        header, *lines = [json.loads(line) for line in record.read_text().splitlines()]
        assert header["storage"] == storage and header["study"] == "puffer_flappy"
        assert sorted(line["trial"] for line in lines) == sorted(trial.number + 1 for trial in finished)
        assert record.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return finished


def test_two_workers_on_one_sqlite_file_run_the_requested_trials_between_them(tmp_path, workers):
    storage = f"sqlite:///{tmp_path}/sweep.db"
    two_workers_share_one_study(tmp_path, storage, ["Protein", "Protein"], workers)


def test_two_workers_on_postgresql_with_different_methods_share_one_study(tmp_path, postgres, workers):
    finished = two_workers_share_one_study(tmp_path, postgres, ["Protein", "TPESampler"], workers)
    assert {trial.user_attrs["method"] for trial in finished} <= {"Protein", "TPESampler"}


def test_a_killed_workers_trial_is_failed_and_the_next_worker_runs_then_resumes(tmp_path, workers):
    storage = f"sqlite:///{tmp_path}/sweep.db"
    # a trial far longer than the test: killed while it trains
    doomed = workers(tmp_path, storage, "--train.total-timesteps", "1e10", "--sweep.max-trials", "1")
    deadline = time.monotonic() + WORKER_SECONDS
    while not (doomed.has_printed("sweep trial 1: ") and any(  # until it took its trial and beat once
            trial.user_attrs.get("worker") for trial in study_of(storage).get_trials(states=(TrialState.RUNNING,)))):
        if doomed.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker never started its trial; its stderr:\n{doomed.stderr()}")
        time.sleep(0.5)
    doomed.kill()
    # the next worker fails the dead worker's trial once its heartbeat is missed (at once, or after
    # waiting on it, as the next worker starts within the grace period or after it), then runs its own
    out = workers(tmp_path, storage, "--sweep.max-trials", "1").finish()
    killed, survivor = study_of(storage).get_trials()
    assert killed.state == TrialState.FAIL and killed.user_attrs["worker"].endswith(f":{doomed.pid}")
    assert survivor.state in sweep_study.FINISHED and started(out) == [2]
    # running again with the same storage and study resumes: one trial more, Protein having seen the first
    out = workers(tmp_path, storage, "--sweep.max-trials", "2").finish()
    assert "(1 trial so far)" in out and started(out) == [3]
    assert [trial.state in sweep_study.FINISHED for trial in study_of(storage).get_trials()] == [False, True, True]


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed(tmp_path, workers):
    storage = f"sqlite:///{tmp_path}/sweep.db"
    args = parse_args("sweep", "puffer_flappy", ["--sweep.storage", storage])
    spaces = check_sweep(args)
    header = describe(args, spaces)
    study = sweep_study.open_study(args, {key: header[key] for key in ("env_name", "metric", "goal", "spaces")})
    # what a worker killed between taking a trial and beating leaves: a running trial, no heartbeat
    sweep_study.ask(study, sweep_study.distributions(spaces), "RandomSampler")
    out = workers(tmp_path, storage, "--sweep.max-trials", "1").finish()
    assert "sweep: 0 trials finished, waiting on 1 running on other workers" in out
    orphan, survivor = study_of(storage).get_trials()
    assert orphan.state == TrialState.FAIL and "worker" not in orphan.user_attrs
    assert survivor.state in sweep_study.FINISHED and started(out) == [2]


def test_protein_observes_every_finished_trial_of_the_study_whoever_ran_it(tmp_path):
    args = parse_args("sweep", "puffer_flappy", ["--sweep.storage", f"sqlite:///{tmp_path}/sweep.db"])
    spaces = check_sweep(args)
    header = describe(args, spaces)
    study = sweep_study.open_study(args, {key: header[key] for key in ("env_name", "metric", "goal", "spaces")})
    dists = sweep_study.distributions(spaces)
    for number, (rate, score) in enumerate([(0.001, 3.0), (0.01, 7.0)]):
        study.add_trial(optuna.trial.create_trial(
            value=score, params={"train.learning_rate": rate, "train.gamma": 0.99, "train.ent_coef": 0.01},
            distributions=dists, user_attrs={"points": [[10000, score / 2, 1.0], [20000, score, 2.0]],
                                             "worker": f"elsewhere:{number}", "method": "TPESampler"}))
    suggester = Suggester(args, spaces)
    trial = suggester.ask(study, dists)
    # both trials, read from the database: Protein keeps one observation per point of the space,
    # the last of the trial's curve
    assert sorted(obs["output"] for obs in suggester.search.success_observations) == [3.0, 7.0]
    assert trial.number == 2 and trial.params.keys() == dists.keys()


def refused(tmp_path, capsys, *argv):
    """The one line of a refused sweep; checks that it wrote no local record."""
    data_dir = tmp_path / "experiments"
    assert cli.main(["sweep", "puffer_flappy", "--train.data-dir", str(data_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not data_dir.exists()
    return err


def test_an_unreachable_storage_is_refused_in_one_line(tmp_path, capsys):
    port = free_port()
    err = refused(tmp_path, capsys, "--sweep.storage", f"postgresql://postgres:secret@127.0.0.1:{port}/postgres")
    assert err == (f"puffer: error: --sweep.storage postgresql://postgres:***@127.0.0.1:{port}/postgres: connection "
                   f'failed: connection to server at "127.0.0.1", port {port} failed: Connection refused\n')
    err = refused(tmp_path, capsys, "--sweep.storage", f"sqlite:///{tmp_path}/missing/sweep.db")
    assert err == f"puffer: error: --sweep.storage sqlite:///{tmp_path}/missing/sweep.db: unable to open database file\n"
    assert not (tmp_path / "missing").exists()


def test_a_url_that_names_no_usable_database_is_refused_in_one_line(tmp_path, capsys):
    forms = "use sqlite:///FILE on one machine, postgresql://USER:PASSWORD@HOST/DATABASE across machines"
    err = refused(tmp_path, capsys, "--sweep.storage", "sweep.db")
    assert err == f"puffer: error: --sweep.storage sweep.db: not a database URL; {forms}\n"
    err = refused(tmp_path, capsys, "--sweep.storage", "postgres://me:secret@host/db")
    assert err == (f"puffer: error: --sweep.storage postgres://me:***@host/db: no database of the kind 'postgres'; "
                   f"{forms}\n")
    # SQLite reads the query only with uri=true; without it this would write a file called "ro.db?mode=ro"
    url = f"sqlite:///{tmp_path}/ro.db?mode=ro"
    err = refused(tmp_path, capsys, "--sweep.storage", url)
    assert err == (f"puffer: error: --sweep.storage {url}: Query string argument(s) 'mode' are not accepted by the "
                   "pysqlite driver and are being ignored; SQLite URI arguments require that 'uri=true' also be "
                   "present in the URL.\n")
    sqlite3.connect(tmp_path / "ro.db").close()
    url = f"sqlite:///file:{tmp_path}/ro.db?mode=ro&uri=true"
    err = refused(tmp_path, capsys, "--sweep.storage", url)
    assert err == f"puffer: error: --sweep.storage {url}: attempt to write a readonly database\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ro.db"]


def test_a_study_of_another_search_space_is_refused_and_left_as_it_was(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/sweep.db"
    args = parse_args("sweep", "puffer_flappy", ["--sweep.storage", storage])
    header = describe(args, check_sweep(args))
    sweep_study.open_study(args, {key: header[key] for key in ("env_name", "metric", "goal", "spaces")})
    before = (tmp_path / "sweep.db").read_bytes()
    err = refused(tmp_path, capsys, "--sweep.storage", storage, "--sweep.train.gamma.min", "0.95")
    assert err == (f"puffer: error: --sweep.storage {storage}: the study 'puffer_flappy' searches other settings, "
                   "ranges or goals than this sweep; pass another --sweep.study-name\n")
    assert (tmp_path / "sweep.db").read_bytes() == before
    err = refused(tmp_path, capsys, "--sweep.storage", storage, "--resume")
    assert err == ("puffer: error: --resume continues a local record; a sweep with --sweep.storage continues its "
                   "study by itself: leave --resume out\n")


def test_a_database_without_write_permission_is_refused_and_left_as_it_was(tmp_path, capsys, postgres):
    engine = sqlalchemy.create_engine(postgres)
    args = parse_args("sweep", "puffer_flappy", ["--sweep.storage", postgres, "--sweep.study-name", "read_only"])
    header = describe(args, check_sweep(args))
    study = sweep_study.open_study(args, {key: header[key] for key in ("env_name", "metric", "goal", "spaces")})
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE ROLE reader LOGIN"))
        connection.execute(sqlalchemy.text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader"))
    reader = postgres.replace("postgres@", "reader@")
    err = refused(tmp_path, capsys, "--sweep.storage", reader, "--sweep.study-name", "read_only")
    assert re.fullmatch(rf"puffer: error: --sweep\.storage {re.escape(reader)}: permission denied for table \w+\n", err)
    assert study.get_trials() == [] and study_of(postgres, "read_only").user_attrs == study.user_attrs
