"""flappy_set_param, the C side's way to set a parameter from text (the demo, the web page):
the table it enumerates is the binding's, and every mistake reads as the binding words it."""

import pathlib
import subprocess

import pytest

from flappy_rl import binding
from test_c_core import SANITIZE

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def params_check(tmp_path_factory):
    exe = tmp_path_factory.mktemp("params") / "params_check"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    f"-I{ROOT / 'csrc'}", str(ROOT / "tests" / "c" / "params_check.c"), "-o", str(exe), "-lm"],
                   check=True)
    return exe


def run_c(exe, *pairs):
    out = subprocess.run([str(exe), *pairs], capture_output=True, text=True, timeout=60)
    assert out.stderr == ""
    return out.stdout.splitlines()


def python_error(**kwargs):
    with pytest.raises((TypeError, ValueError)) as error:
        binding.check_params(**kwargs)
    return str(error.value)


def test_table_enumerates_the_binding_table(params_check):
    lines = run_c(params_check)
    assert lines[0] == "ok"
    c_values = dict(line.split(" ") for line in lines[1:])
    defaults = binding.check_params()
    choices = binding.param_choices()
    assert list(c_values) == list(binding.params())
    for name, text in c_values.items():
        expected = choices[name].index(defaults[name]) if name in choices else defaults[name]
        assert float(text) == expected, name


@pytest.mark.parametrize("name, text, value", [
    ("gap", "abc", "abc"),
    ("gap", "", ""),
    ("gap", " 5", " 5"),
    ("max_steps", "2.5", 2.5),
    ("max_steps", "1e3", 1e3),
    ("max_steps", "ten", "ten"),
    ("obs_mode", "rgb", "rgb"),
    ("obs_mode", "it's", "it's"),
    ("difficulty", "Hard", "Hard"),
    ("nope", "1", 1),
    ("gap", "1000", 1000.0),
    ("gap", "nan", float("nan")),
    ("max_steps", "0", 0),
    ("max_steps", "99999999999", 99999999999),
    ("max_steps", "1000000000000", 1000000000000),
    ("max_steps", "99999999999999999999999", 99999999999999999999999),  # beyond long long too
    ("lidar_rays", "-99999999999", -99999999999),
    ("frame_skip", "0", 0),
    ("frame_skip", "17", 17),
    ("frame_skip", "2.5", 2.5),
    ("frame_skip", "two", "two"),
])
def test_mistakes_read_as_the_binding_words_them(params_check, name, text, value):
    assert run_c(params_check, name, text) == [f"error: {python_error(**{name: value})}"]


@pytest.mark.parametrize("text", ["1000000000000", "-1000000000000", "99999999999999999999999"])
def test_a_whole_number_beyond_int_is_quoted_as_typed(params_check, text):
    """It was clamped to int before the range check: "got 2147483647"."""
    assert run_c(params_check, "max_steps", text) == [f"error: max_steps must be in [1, 1000000000], got {text}"]


def test_values_set_as_from_python(params_check):
    pairs = {"gap": ("120.5", 120.5), "max_steps": ("77", 77), "frame_skip": ("4", 4),
             "obs_mode": ("lidar", "lidar"), "difficulty": ("hard", "hard"), "pipe_speed": ("1e1", 10.0)}
    lines = run_c(params_check, *[text for name, (text, _) in pairs.items() for text in (name, text)])
    resolved = binding.check_params(**{name: value for name, (_, value) in pairs.items()})
    choices = binding.param_choices()
    c_values = dict(line.split(" ") for line in lines[1:])
    for name, value in resolved.items():
        assert float(c_values[name]) == (choices[name].index(value) if name in choices else value), name
