"""What the C programs read, fuzzed under AddressSanitizer + UBSan: the demo's files and
arguments (csrc/demo.c, csrc/flappy_agent.h), and the web module's exports in any order with any
arguments (csrc/web.c, compiled natively: the sanitizers need no browser to find a bad read)."""

import pathlib
import subprocess

import numpy as np
import pufferlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flappy_rl import binding
from test_c_core import SANITIZE
from test_web import browser, open_page, site, url  # noqa: F401 (the page's fixtures, shared)

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUFFERNET = pathlib.Path(pufferlib.__file__).parent / "extensions"
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


def build(source, out_dir, *flags):
    exe = out_dir / pathlib.Path(source).stem
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                    *flags, f"-I{ROOT / 'csrc'}", f"-I{PUFFERNET}", str(ROOT / source), "-o", str(exe), "-lm"],
                   check=True)
    return exe


def mlp_policy(obs_size, env_lines, hidden=4):
    """A small MLP policy description, as `puffer export` writes one, and its weights count."""
    weights = obs_size * hidden + hidden + hidden * 2 + 2 + hidden + 1
    text = (f"flappy-policy 1\npolicy Policy\nrnn None\nobs_scale 1\nencoder linear {obs_size} {hidden}\n"
            f"encoder relu\nactor {hidden} 2\nvalue {hidden} 1\nweights {weights}\n")
    return text + "".join(f"env {name} {value}\n" for name, value in env_lines), weights


POLICIES = {
    "features": mlp_policy(8, [("obs_mode", "features")]),
    "lidar": mlp_policy(64, [("obs_mode", "lidar"), ("lidar_rays", 63)]),
    # 234 floats: as many values as a 9 x 26 frame has bytes
    "lidar233": mlp_policy(234, [("obs_mode", "lidar"), ("lidar_rays", 233)]),
    "pixels": mlp_policy(234, [("obs_mode", "pixels"), ("pixels_width", 9), ("pixels_height", 26),
                               ("pixels_stack", 1)]),
}


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("policies")
    files = {}
    for name, (text, count) in POLICIES.items():
        (out / f"{name}.txt").write_text(text)
        np.random.default_rng(0).normal(0, 0.5, count).astype("<f4").tofile(out / f"{name}.bin")
        files[name] = (out / f"{name}.txt", out / f"{name}.bin")
    return files


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build("csrc/demo.c", tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def web_calls(tmp_path_factory):
    return build("tests/c/web_calls.c", tmp_path_factory.mktemp("web"), f"-I{ROOT / 'tests' / 'c' / 'native'}")


def run_c(exe, *args):
    out = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=ASAN_ENV, timeout=120)
    return out.returncode, out.stdout, out.stderr


# -- the demo ----------------------------------------------------------------------------------

@pytest.mark.parametrize("policy,args,message", [
    # the review's case, at the smallest frame now allowed: the policy read 4 bytes a value
    ("lidar233", ["--obs_mode", "pixels", "--pixels_width", "9", "--pixels_height", "26", "--pixels_stack", "1"],
     "these env parameters give pixels observations of shape (1, 26, 9) uint8; the policy takes lidar "
     "observations of shape (234,) float32"),
    ("pixels", ["--obs_mode", "lidar", "--lidar_rays", "233"],
     "these env parameters give lidar observations of shape (234,) float32; the policy takes pixels "
     "observations of shape (1, 26, 9) uint8"),
    ("pixels", ["--pixels_width", "26", "--pixels_height", "9"], "pixels_height must be in [26, 512], got 9"),
    ("pixels", ["--pixels_width", "26", "--pixels_height", "26", "--pixels_stack", "1"],
     "these env parameters give pixels observations of shape (1, 26, 26) uint8; the policy takes pixels "
     "observations of shape (1, 26, 9) uint8"),
    ("features", ["--obs_mode", "lidar", "--lidar_rays", "7"],
     "these env parameters give lidar observations of shape (8,) float32; the policy takes features "
     "observations of shape (8,) float32"),
    ("features", ["--seed", "18446744073709551616"], "--seed must be a whole number, got '18446744073709551616'"),
])
def test_demo_refuses_observations_the_policy_does_not_take(policy, args, message, demo, policy_files):
    assert run_c(demo, *policy_files[policy], *args) == (2, "", f"flappy_demo: {message}\n")


def test_demo_plays_a_policy_of_each_observation_mode(demo, policy_files):
    for name in ("features", "lidar", "pixels"):
        status, out, err = run_c(demo, *policy_files[name], "--episodes", "2", "--max_steps", "300")
        assert (status, err) == (0, ""), (name, err)
        assert out.splitlines()[-1].startswith("2 episodes: mean score"), out


def test_demo_weights_limit_and_its_message_agree(demo, policy_files, tmp_path):
    """The limit on the weights line was the per-layer one (2^22), worded as if the count were
    not positive; a policy of more weights than the total limit (2^26) is refused as such."""
    text, _ = POLICIES["features"]
    for count, accepted in [(2**22 + 1, True), (2**26, True), (2**26 + 1, False), (0, False)]:
        (tmp_path / "p.txt").write_text(text.replace("weights 51", f"weights {count}"))
        status, _, err = run_c(demo, tmp_path / "p.txt", policy_files["features"][1])
        assert status == 2
        if accepted:  # the count is read; it disagrees with the layers
            assert err.endswith(f"the description's layers take 51 weights, but it says weights {count}\n"), err
        else:
            assert err.endswith("line 9: weights must be a count in [1, 67108864]\n"), err


LINE_EDITS = ["drop", "duplicate", "number", "huge", "negative", "garbage", "swap"]
DEMO_OPTIONS = ["--episodes", "--seed", "--greedy", "--obs_mode", "--lidar_rays", "--pixels_width", "--pixels_height",
                "--pixels_stack", "--frame_skip", "--max_steps", "--gap", "--nope", "extra"]
VALUES = ["1", "0", "-1", "2", "9", "26", "63", "233", "1e9", "nan", "pixels", "lidar", "features", "",
          "99999999999999999999"]


def edit_description(text, edits):
    lines = text.splitlines()
    for kind, at, value in edits:
        k = at % len(lines)
        words = lines[k].split()
        if kind == "drop":
            del lines[k]
        elif kind == "duplicate":
            lines.insert(k, lines[k])
        elif kind == "swap":
            lines[k], lines[-1 - k] = lines[-1 - k], lines[k]
        elif words:
            replacement = {"number": str(value), "huge": str(2**31 + value), "negative": str(-value),
                           "garbage": "x\x01y"}[kind]
            words[-1] = replacement
            lines[k] = " ".join(words)
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@settings(max_examples=60)
@given(policy=st.sampled_from(sorted(POLICIES)),
       edits=st.lists(st.tuples(st.sampled_from(LINE_EDITS), st.integers(0, 40), st.integers(0, 300)), max_size=3),
       weight_cut=st.sampled_from([None, 0, -4, 4, -1]),
       options=st.lists(st.tuples(st.sampled_from(DEMO_OPTIONS), st.sampled_from(VALUES)), max_size=4))
def test_demo_plays_or_refuses_any_files_and_arguments_in_one_line(policy, edits, weight_cut, options, demo,
                                                                    policy_files, tmp_path_factory):
    """Whatever the files and arguments: exit 0 with a summary, or 2 with one line; never a
    sanitizer report."""
    out = tmp_path_factory.mktemp("case")
    description, weights = policy_files[policy]
    (out / "p.txt").write_text(edit_description(description.read_text(), edits))
    data = weights.read_bytes()
    if weight_cut is not None:
        data = data[:weight_cut] if weight_cut <= 0 else data + bytes(weight_cut)
    (out / "w.bin").write_bytes(data)
    args = [part for option, value in options for part in ((option,) if option == "--greedy" else (option, value))]
    status, stdout, stderr = run_c(demo, out / "p.txt", out / "w.bin", "--episodes", "1", "--max_steps", "200", *args)
    assert status in (0, 2), stderr[-3000:]
    if status == 2:
        assert stderr.startswith("flappy_demo: ") and stderr.count("\n") == 1 and stdout == "", stderr
    else:
        assert stderr == "" and stdout.splitlines()[-1].startswith("1 episodes: mean score"), stdout


# -- the web module ----------------------------------------------------------------------------

def test_web_module_refuses_an_agent_of_another_observation_and_bad_seeds(web_calls, policy_files):
    """The review's cases: an agent of another observation mode, loaded after a restart, read
    past the observation buffer when it acted; web_restart(-1.0) converted an out-of-range
    double to an integer. Now the agent waits for a restart, and the seed is refused."""
    status, out, err = run_c(web_calls, "review", *policy_files["pixels"], *policy_files["lidar233"])
    assert (status, err) == (0, ""), err[-3000:]
    refused = "seed must be a whole number in [0, 2^53), got"
    assert out.splitlines() == [
        "load pixels: 0", "restart 3: 0", f"act: {out.splitlines()[2][-1]}", "load lidar: 0",
        "act: 0 (these env parameters give pixels observations of shape (1, 26, 9) uint8; the policy takes lidar "
        "observations of shape (234,) float32)",
        "step: 0", "restart 4: 0", "act after restart: ok",
        f"restart -1: -1 ({refused} -1)", f"restart 0.5: -1 ({refused} 0.5)",
        f"restart 9007199254740992: -1 ({refused} 9007199254740992)", f"restart 1.0000000000000001e+300: -1 "
        f"({refused} 1.0000000000000001e+300)", "step: 0"]


@pytest.mark.parametrize("seed", range(4))
def test_web_module_survives_any_order_of_calls(seed, web_calls, policy_files):
    """Every export, in random orders with random arguments (agents of every observation mode,
    seeds of any double, indices out of the table): no sanitizer report."""
    files = [path for name in ("features", "lidar", "pixels", "lidar233") for path in policy_files[name]]
    status, out, err = run_c(web_calls, 20_000, seed, *files)
    assert (status, err) == (0, ""), err[-3000:]
    assert out.startswith("ok: 20000 calls")


# -- the page: options from the URL ------------------------------------------------------------


@pytest.mark.parametrize("query,message", [
    ("?seed=-1", "?seed= must be a whole number in [0, 2^53), got '-1'"),  # was passed to web_restart as it was
    ("?seed=abc", "?seed= must be a whole number in [0, 2^53), got 'abc'"),
    ("?seed=1e3", "?seed= must be a whole number in [0, 2^53), got '1e3'"),
    ("?seed=9007199254740992", "?seed= must be a whole number in [0, 2^53), got '9007199254740992'"),
    ("?seed=2.5&mode=fly", "?seed= must be a whole number in [0, 2^53), got '2.5'; ?mode= must be play or watch, "
                           "got 'fly'"),
    ("?speed=7&paused=yes", "?speed= must be one of the speed menu's values, got '7'; ?paused= must be 0 or 1, "
                            "got 'yes'"),
    ("?gapp=120", "unknown URL option 'gapp'"),
])
def test_the_page_refuses_bad_url_options_with_a_message(open_page, query, message):
    page = open_page(query)
    state = page.state()
    assert state["message"] == message
    assert isinstance(state["seed"], int) and 0 <= state["seed"] < 2**31  # a random seed, as without ?seed=
    page.js("flappy.advance(5)")  # the game runs
    assert page.errors == []


def test_the_largest_seed_a_page_takes(open_page):
    page = open_page("?seed=9007199254740991&paused=1")
    assert (page.state()["message"], page.state()["seed"]) == ("", 2**53 - 1)
