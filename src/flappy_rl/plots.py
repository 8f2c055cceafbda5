"""PNG pictures of training: a run's learning curve and a sweep's scores, drawn with matplotlib.

Agg is matplotlib's file-only backend: pictures are written on servers and in CI, with no
display and no window.
"""

import csv
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def read_curve(csv_path):
    """The columns of a run's learning curve (RunRecorder's CSV) as lists of floats, nan where a
    logging window lacked the value; windows in which no episode ended are left out."""
    with open(csv_path, newline="") as rows:
        rows = [row for row in csv.DictReader(rows) if row["environment/score"] != ""]
    return {key: [float(row[key] or "nan") for row in rows] for key in ("agent_steps", "uptime", "environment/score",
                                                                 "environment/episode_length")}


def learning_curve_png(csv_path, png_path):
    """Score and episode length against steps (left) and against minutes (right)."""
    curve = read_curve(csv_path)
    figure, axes = plt.subplots(2, 2, figsize=(10, 6), sharex="col", constrained_layout=True)
    steps = [step / 1e6 for step in curve["agent_steps"]]
    minutes = [seconds / 60 for seconds in curve["uptime"]]
    for column, (x, label) in enumerate([(steps, "steps (millions)"), (minutes, "minutes of training")]):
        axes[0, column].plot(x, curve["environment/score"], color="tab:green")
        axes[0, column].set_ylabel("mean score (pipes)")
        axes[1, column].plot(x, curve["environment/episode_length"], color="tab:blue")
        axes[1, column].set_ylabel("mean episode length (frames)")
        axes[1, column].set_xlabel(label)
        for row in (0, 1):
            axes[row, column].grid(alpha=0.3)
            axes[row, column].ticklabel_format(axis="y", useOffset=False)
    figure.suptitle(f"learning curve: {os.path.basename(csv_path)}")
    figure.savefig(png_path, dpi=80)
    plt.close(figure)
    return png_path


def read_sweep(jsonl_path):
    """(header, trials) of a sweep record: its first line describes the sweep, each later line one trial."""
    with open(jsonl_path) as lines:
        records = [json.loads(line) for line in lines]
    return records[0], records[1:]


def sweep_png(jsonl_path, png_path):
    """One panel per swept hyperparameter: each finished trial's score against its value."""
    header, trials = read_sweep(jsonl_path)
    names = header["swept"]
    scored = [trial for trial in trials if trial["score"] is not None]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False,
                                constrained_layout=True)
    for axis, name in zip(axes.flat, names):
        axis.scatter([trial["hyperparameters"][name] for trial in scored], [trial["score"] for trial in scored],
                     c=[trial["trial"] for trial in scored], cmap="viridis", vmin=1, vmax=max(len(trials), 1))
        if header["distributions"][name] in ("log_normal", "uniform_pow2"):
            axis.set_xscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel(header["metric"])
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.suptitle(f"{header['env_name']}: {len(scored)} trials (colour: trial number)")
    figure.savefig(png_path, dpi=80)
    plt.close(figure)
    return png_path
