"""`puffer` beside the full pufferlib package: flappy envs are ours, any other env goes to
PufferLib's own CLI (here a stand-in package playing its part: the real one can't be built
here) with the same arguments; without that package, one line naming the envs we run."""

import os
import pathlib
import subprocess
import sys

from flappy_rl import cli

STAND_IN = '''
import sys


def main():
    print("pufferlib.pufferl.main got", sys.argv[1:])
    return 3
'''


def stand_in_pufferlib(root, with_configs=True):
    package = root / "pufferlib"
    (package / "config" / "ocean").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pufferl.py").write_text(STAND_IN)
    if with_configs:
        (package / "config" / "default.ini").write_text("[base]\nenv_name = default\n")
        (package / "config" / "ocean" / "breakout.ini").write_text("[base]\nenv_name = puffer_breakout\n")
    return root


def run_puffer(*argv, pythonpath=None):
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "flappy_rl.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=300)


def test_other_envs_go_to_pufferlibs_cli_with_the_same_arguments(tmp_path):
    root = stand_in_pufferlib(tmp_path)
    out = run_puffer("train", "puffer_breakout", "--train.learning-rate", "0.01", "--vec.num-envs", "2",
                     pythonpath=root)
    assert out.stdout == ("pufferlib.pufferl.main got ['train', 'puffer_breakout', '--train.learning-rate', '0.01', "
                          "'--vec.num-envs', '2']\n")
    assert out.returncode == 3 and out.stderr == ""
    # flappy envs stay ours, even with PufferLib's CLI at hand (an option error: the stand-in
    # shadows the real pufferlib, which training needs)
    ours = run_puffer("train", "puffer_flappy", "--bogus", "1", pythonpath=root)
    assert ours.returncode == 2 and ours.stderr == ("puffer: error: unknown option --bogus (puffer train puffer_flappy "
                                                    "--help lists them)\n")


def test_without_pufferlibs_configs_one_line_names_our_envs(tmp_path, capsys):
    # pufferlib-core (our dependency) has pufferl but no configs: nothing to hand over to
    message = ("puffer: error: unknown env 'puffer_breakout': this puffer runs puffer_flappy, puffer_flappy_lidar, "
               "puffer_flappy_pixels; PufferLib's other envs need the full pufferlib package installed\n")
    assert cli.main(["train", "puffer_breakout"]) == 2
    assert capsys.readouterr().err == message
    out = run_puffer("eval", "puffer_breakout", pythonpath=stand_in_pufferlib(tmp_path, with_configs=False))
    assert (out.returncode, out.stdout, out.stderr) == (2, "", message)


def test_both_script_names_are_installed():
    bin_dir = pathlib.Path(sys.executable).parent
    for name in ("puffer", "flappy-puffer"):
        out = subprocess.run([str(bin_dir / name), "--help"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.startswith("usage: puffer MODE ENV"), (name, out.stderr)
