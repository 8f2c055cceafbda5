"""The PNGs of a run's learning curve and of a sweep, drawn headless with matplotlib's Agg backend."""

import csv
import json
import struct

from flappy_rl.plots import learning_curve_png, read_curve, sweep_png
from flappy_rl.train import RunRecorder


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_learning_curve_is_read_from_the_recorders_csv_and_drawn(tmp_path):
    path = tmp_path / "run.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(RunRecorder.COLUMNS)
        writer.writerow([65536, 1.5, 40000.0, "", "", "", ""])  # a logging window in which no episode ended
        writer.writerow([131072, 3.0, 43000.0, 0.5, 120.0, -0.5, 0.0])
        writer.writerow([196608, 4.5, 43500.0, 2.0, 180.0, 1.0, 0.0])
    assert read_curve(path) == {"agent_steps": [131072.0, 196608.0], "uptime": [3.0, 4.5],
                                "environment/score": [0.5, 2.0], "environment/episode_length": [120.0, 180.0]}
    learning_curve_png(path, tmp_path / "run.png")
    assert png_size(tmp_path / "run.png") == (800, 480)  # 10 x 6 inches at 80 dpi


def test_sweep_picture_has_a_panel_per_swept_setting_and_skips_unscored_trials(tmp_path):
    header = {"env_name": "puffer_flappy", "metric": "score", "swept": ["train.learning_rate", "train.gamma"],
              "distributions": {"train.learning_rate": "log_normal", "train.gamma": "logit_normal"}}
    trials = [{"trial": 1, "hyperparameters": {"train.learning_rate": 0.003, "train.gamma": 0.995}, "score": 12.0},
              {"trial": 2, "hyperparameters": {"train.learning_rate": 0.01, "train.gamma": 0.99}, "score": None}]
    path = tmp_path / "sweep.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in [header, *trials]))
    sweep_png(path, tmp_path / "sweep.png")
    assert png_size(tmp_path / "sweep.png") == (640, 256)  # two panels of 4 x 3.2 inches at 80 dpi
