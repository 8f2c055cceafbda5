"""The binding's contract: parameters from one table, strict buffers, exact errors, a safe handle."""

import decimal
import fractions
import re

import gymnasium
import numpy as np
import pytest

from flappy_rl import GYMNASIUM_ID, Flappy, FlappyGymnasiumEnv, binding
from conftest import make_buffers

PARAMS = binding.params()


INT_PARAMS = {"max_steps", "frame_skip", "lidar_rays", "pixels_width", "pixels_height", "pixels_stack"}
CHOICES = {"obs_mode": ("features", "lidar", "pixels"), "difficulty": ("easy", "normal", "hard")}
NUMERIC = [name for name in PARAMS if name not in CHOICES]


def test_params_table():
    assert list(PARAMS) == ["gap", "pipe_speed", "pipe_spacing", "gravity", "flap_speed", "max_fall_speed",
                            "reward_pipe", "reward_crash", "reward_alive", "max_steps", "frame_skip", "obs_mode",
                            "lidar_rays", "lidar_range", "pixels_width", "pixels_height", "pixels_stack", "gap_spread",
                            "pipe_speed_spread", "pipe_spacing_spread", "gravity_spread", "difficulty"]
    assert PARAMS["max_steps"] == (10000, 1, 1_000_000_000)
    assert PARAMS["frame_skip"] == (1, 1, 16)
    for name, entry in PARAMS.items():
        kind = str if name in CHOICES else (int if name in INT_PARAMS else float)
        assert type(entry[0]) is kind, name
        if name in CHOICES:
            assert entry[1:] == (None, None) and entry[0] in CHOICES[name]
        else:
            assert all(type(v) is kind for v in entry) and entry[1] <= entry[0] <= entry[2], name
    assert binding.param_choices() == CHOICES
    assert set(binding.param_docs()) == set(PARAMS)


def test_check_params_fills_defaults_and_types():
    resolved = binding.check_params(gap=120, max_steps=np.int64(50))
    assert resolved == {**{k: d for k, (d, _, _) in PARAMS.items()}, "gap": 120.0, "max_steps": 50}
    assert type(resolved["gap"]) is float and type(resolved["max_steps"]) is int


def test_docstring_parameter_table_matches_the_c_table():
    doc = FlappyGymnasiumEnv.__doc__
    numbers = re.findall(r"^\s*\| (\w+)\s*\| ([-\d.e]+)\s*\| \[([-\d.e]+), ([-\d.e]+)\]", doc, re.M)
    choices = re.findall(r"^\s*\| (\w+)\s*\| ([a-z]+)\s*\| ([a-z]+(?:, [a-z]+)+)\s*\|", doc, re.M)
    assert {name: tuple(float(v) for v in values) for name, *values in numbers} == {
        name: tuple(float(v) for v in PARAMS[name]) for name in NUMERIC}
    assert {name: (default, tuple(names.split(", "))) for name, default, names in choices} == {
        name: (PARAMS[name][0], CHOICES[name]) for name in CHOICES}


@pytest.mark.parametrize("name", NUMERIC)
def test_out_of_range_parameter_names_the_range(name, buffers):
    default, lo, hi = PARAMS[name]
    for bad in (lo - 1, hi * 2 + 1):
        with pytest.raises(ValueError, match=rf"^{name} must be in \[{lo:.15g}, {hi:.15g}\], got "):
            binding.vec_init(*buffers, 4, 0, **{name: bad})
    for edge in (lo, hi):
        spec = binding.obs_spec(**{name: edge})
        obs = np.zeros((4, *spec["shape"]), spec["dtype"])
        binding.vec_close(binding.vec_init(obs, *buffers[1:], 4, 0, **{name: edge}))


@pytest.mark.parametrize("name", list(CHOICES))
def test_choice_parameters_name_their_choices(name, buffers):
    listed = ", ".join(repr(c) for c in CHOICES[name])
    with pytest.raises(ValueError, match=f"^{name} must be one of {re.escape(listed)}, got 'nope'$"):
        binding.check_params(**{name: "nope"})
    with pytest.raises(TypeError, match=f"^{name} must be one of {re.escape(listed)}, got 1$"):
        binding.check_params(**{name: 1})
    for choice in CHOICES[name]:
        assert binding.check_params(**{name: choice})[name] == choice


def test_nan_and_huge_values_are_out_of_range(buffers):
    with pytest.raises(ValueError, match=r"^gap must be in \[30, 240\], got nan$"):
        binding.vec_init(*buffers, 4, 0, gap=float("nan"))
    with pytest.raises(ValueError, match=r"^max_steps must be in \[1, 1000000000\]"):
        binding.vec_init(*buffers, 4, 0, max_steps=2**70)
    with pytest.raises(ValueError, match=r"^gravity must be in"):
        binding.vec_init(*buffers, 4, 0, gravity=float("inf"))


@pytest.mark.parametrize("name,value,given", [
    ("max_steps", 10**12, "1000000000000"),  # was "got 2147483647": clamped to int before the range check
    ("max_steps", -10**12, "-1000000000000"),
    ("lidar_rays", 2**31, "2147483648"),
    ("max_steps", np.int64(10**12), "1000000000000"),
    ("max_steps", 2**70, "1180591620717411303424"),
    ("gap", 10**20, "100000000000000000000"),  # not the double's "1e+20"
    ("gap", 10**400, "1" + "0" * 400),  # beyond a double: was OverflowError
    ("gap", np.float32(300.1), "300.1"),  # not its double's 300.1000061035156
    ("gap", decimal.Decimal("1e400"), "1E+400"),  # not inf
    ("gap", fractions.Fraction(1000, 3), "1000/3"),
    ("gap", 1000.0, "1000"),  # a Python float: the range check's own text, as from the command line
], ids=["max_steps-1e12", "max_steps-minus-1e12", "lidar_rays-2**31", "max_steps-np.int64", "max_steps-2**70",
        "gap-10**20", "gap-10**400", "gap-np.float32", "gap-Decimal", "gap-Fraction", "gap-float"])
def test_out_of_range_messages_quote_the_value_given_in_every_front_end(name, value, given, buffers):
    _, lo, hi = PARAMS[name]
    message = f"^{name} must be in \\[{lo:.15g}, {hi:.15g}\\], got {re.escape(given)}$"
    for make in (lambda: binding.check_params(**{name: value}), lambda: binding.vec_init(*buffers, 4, 0, **{name: value}),
                 lambda: Flappy(**{name: value}), lambda: FlappyGymnasiumEnv(**{name: value}),
                 lambda: gymnasium.make(GYMNASIUM_ID, **{name: value}),
                 lambda: gymnasium.make_vec(GYMNASIUM_ID, num_envs=2, vectorization_mode="vector_entry_point",
                                            **{name: value})):
        with pytest.raises(ValueError, match=message):
            make()


def test_unknown_parameter_names_the_valid_ones(buffers):
    with pytest.raises(TypeError, match=r"^unknown parameter 'gapp'; valid parameters: gap, pipe_speed, .*difficulty$"):
        binding.vec_init(*buffers, 4, 0, gapp=100)
    with pytest.raises(TypeError, match="unknown parameter 'gapp'"):
        Flappy(gapp=100)


@pytest.mark.parametrize("name,value,message", [
    ("gap", "100", "gap must be a number, got str"),
    ("gap", True, "gap must be a number, got bool"),
    ("gap", None, "gap must be a number, got NoneType"),
    ("max_steps", 10.0, "max_steps must be an int, got float"),
    ("max_steps", "10", "max_steps must be an int, got str"),
    ("max_steps", False, "max_steps must be an int, got bool"),
])
def test_wrongly_typed_parameter(name, value, message, buffers):
    with pytest.raises(TypeError, match=f"^{message}$"):
        binding.vec_init(*buffers, 4, 0, **{name: value})


@pytest.mark.parametrize("value,error,message", [
    (0, ValueError, r"frame_skip must be in \[1, 16\], got 0"),
    (17, ValueError, r"frame_skip must be in \[1, 16\], got 17"),
    ("2", TypeError, "frame_skip must be an int, got str"),
    (2.5, TypeError, "frame_skip must be an int, got float"),
])
def test_bad_frame_skip_is_refused_alike_by_the_binding_and_the_twin(value, error, message, buffers):
    for make in (lambda: binding.vec_init(*buffers, 4, 0, frame_skip=value), lambda: Flappy(frame_skip=value),
                 lambda: FlappyGymnasiumEnv(frame_skip=value), lambda: binding.check_params(frame_skip=value)):
        with pytest.raises(error, match=f"^{message}$"):
            make()


def test_numpy_scalars_are_accepted(buffers):
    binding.vec_close(binding.vec_init(*buffers, 4, np.uint64(3), gap=np.float32(120), max_steps=np.int32(9)))


@pytest.mark.parametrize("seed,error,message", [
    (-1, ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    (2**64, ValueError, r"seed must be in \[0, 2\*\*64\), got 18446744073709551616"),
    (1.5, TypeError, "seed must be an int, got float"),
    ("1", TypeError, "seed must be an int, got str"),
])
def test_bad_seed(seed, error, message, buffers):
    with pytest.raises(error, match=f"^{message}$"):
        binding.vec_init(*buffers, 4, seed)
    handle = binding.vec_init(*buffers, 4, 0)
    with pytest.raises(error, match=f"^{message}$"):
        binding.vec_reset(handle, seed)


def test_largest_seed_is_accepted(buffers):
    binding.vec_reset(binding.vec_init(*buffers, 4, 2**64 - 1), 2**64 - 1)


@pytest.mark.parametrize("num_envs,error,message", [
    (0, ValueError, r"num_envs must be in \[1, 2147483647\], got 0"),
    (-3, ValueError, r"num_envs must be in \[1, 2147483647\], got -3"),
    (2.0, TypeError, "num_envs must be an int, got float"),
])
def test_bad_num_envs(num_envs, error, message, buffers):
    with pytest.raises(error, match=f"^{message}$"):
        binding.vec_init(*buffers, num_envs, 0)


BUFFER_NAMES = ["observations", "actions", "rewards", "terminals", "truncations"]
BUFFER_DTYPES = ["float32", "int32", "float32", "bool", "bool"]


@pytest.mark.parametrize("k", range(5))
def test_buffer_not_an_array(k):
    buffers = make_buffers(4)
    buffers[k] = buffers[k].tolist()
    with pytest.raises(TypeError, match=f"^{BUFFER_NAMES[k]} must be a numpy array, got list$"):
        binding.vec_init(*buffers, 4, 0)


@pytest.mark.parametrize("k", range(5))
def test_buffer_wrong_dtype(k):
    buffers = make_buffers(4)
    buffers[k] = buffers[k].astype(np.float64)
    with pytest.raises(TypeError, match=f"^{BUFFER_NAMES[k]} must have dtype {BUFFER_DTYPES[k]}, got float64$"):
        binding.vec_init(*buffers, 4, 0)


def test_buffer_wrong_byte_order():
    buffers = make_buffers(4)
    buffers[2] = buffers[2].astype(">f4")
    with pytest.raises(TypeError, match="^rewards must have dtype float32, got >f4$"):
        binding.vec_init(*buffers, 4, 0)


@pytest.mark.parametrize("k", range(5))
def test_buffer_wrong_shape(k):
    buffers = make_buffers(4)
    buffers[k] = make_buffers(5)[k]
    want, got = ("(4, 8)", "(5, 8)") if k == 0 else ("(4,)", "(5,)")
    with pytest.raises(ValueError, match=f"^{BUFFER_NAMES[k]} must have shape {re.escape(want)}, got {re.escape(got)}$"):
        binding.vec_init(*buffers, 4, 0)


def test_observation_buffer_wrong_width():
    buffers = make_buffers(4)
    buffers[0] = np.zeros((4, 7), np.float32)
    with pytest.raises(ValueError, match=r"^observations must have shape \(4, 8\), got \(4, 7\)$"):
        binding.vec_init(*buffers, 4, 0)


@pytest.mark.parametrize("k", range(5))
def test_buffer_not_contiguous_or_read_only(k):
    buffers = make_buffers(4)
    strided = make_buffers(8)[k][::2]
    buffers[k] = strided
    with pytest.raises(ValueError, match=f"^{BUFFER_NAMES[k]} must be C-contiguous, aligned and writeable$"):
        binding.vec_init(*buffers, 4, 0)
    buffers[k] = make_buffers(4)[k]
    buffers[k].flags.writeable = False
    with pytest.raises(ValueError, match=f"^{BUFFER_NAMES[k]} must be C-contiguous, aligned and writeable$"):
        binding.vec_init(*buffers, 4, 0)


def test_bad_action_names_env_and_value_and_changes_nothing(buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    binding.vec_step(handle)
    before = [b.copy() for b in buffers]
    state_before = binding.env_get(handle, 2)
    buffers[1][:] = [0, 1, 2, 0]
    with pytest.raises(ValueError, match=r"^action 2 at env 2 is not 0 \(do nothing\) or 1 \(flap\)$"):
        binding.vec_step(handle)
    for b, old in zip([buffers[0], buffers[2], buffers[3], buffers[4]], [before[0], *before[2:]]):
        np.testing.assert_array_equal(b, old)
    assert binding.env_get(handle, 2) == state_before
    buffers[1][:] = [0, 0, 0, -1]
    with pytest.raises(ValueError, match=r"^action -1 at env 3 is not"):
        binding.vec_step(handle)
    buffers[1][:] = 0
    binding.vec_step(handle)  # usable again
    assert binding.env_get(handle, 2)["tick"] == state_before["tick"] + 1


@pytest.mark.parametrize("actions,error,message", [
    (np.array([0, 1, 0, 7], np.int64), ValueError, r"^action 7 at env 3 is not"),
    (np.array([0, 1, 0, 2**32 + 1], np.int64), ValueError, r"^action 4294967297 at env 3 is not"),
    (np.array([2**64 - 1, 0, 0, 0], np.uint64), ValueError, r"^action 18446744073709551615 at env 0 is not"),
    (np.array([0, 1, 0, -128], np.int8), ValueError, r"^action -128 at env 3 is not"),
    (np.array([0.0, 1.0, 0.0, 1.0]), TypeError, r"^actions must be integers, got dtype float64$"),
    (np.array(["a", "b", "c", "d"]), TypeError, r"^actions must be integers, got dtype <U1$"),
    (np.zeros(5, np.int32), ValueError, r"^actions must have shape \(4,\), got \(5,\)$"),
    (np.zeros((4, 1), np.int32), ValueError, r"^actions must have shape \(4,\), got \(4, 1\)$"),
    (1, ValueError, r"^actions must have shape \(4,\), got \(\)$"),
])
def test_bad_action_arrays(actions, error, message, buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    buffers[1][:] = [1, 0, 1, 0]
    with pytest.raises(error, match=message):
        binding.vec_step(handle, actions)
    np.testing.assert_array_equal(buffers[1], [1, 0, 1, 0])  # the action buffer is untouched
    assert binding.env_get(handle, 0)["tick"] == 0


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool",
                                   ">i8", ">u2"])
def test_action_arrays_of_any_integer_dtype(dtype, buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    binding.vec_step(handle, np.array([1, 0, 1, 1]).astype(dtype))
    np.testing.assert_array_equal(buffers[1], [1, 0, 1, 1])
    binding.vec_step(handle, np.array([0, 1, 0, 0, 1, 1, 0, 0]).astype(dtype)[::2])  # strided
    np.testing.assert_array_equal(buffers[1], [0, 0, 1, 0])
    binding.vec_step(handle, [1, 1, 0, 0])
    np.testing.assert_array_equal(buffers[1], [1, 1, 0, 0])


def test_closed_handle_raises_instead_of_crashing(buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    binding.vec_close(handle)
    for call in (lambda: binding.vec_close(handle), lambda: binding.vec_step(handle), lambda: binding.vec_reset(handle, 0),
                 lambda: binding.vec_log(handle), lambda: binding.env_get(handle, 0)):
        with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
            call()


def test_handle_keeps_its_buffers_alive():
    buffers = make_buffers(4)
    handle = binding.vec_init(*buffers, 4, 0)
    obs = buffers[0]
    del buffers
    import gc
    gc.collect()
    for _ in range(100):
        binding.vec_step(handle)
    assert np.isfinite(obs).all()


def test_not_a_handle():
    with pytest.raises(TypeError, match="^expected a handle from vec_init, got int$"):
        binding.vec_step(3)


def test_env_get_index_range(buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    for i in (-1, 4):
        with pytest.raises(IndexError, match=rf"^env index {i} out of range \[0, 4\)$"):
            binding.env_get(handle, i)


def test_wrapper_step_validates_through_the_binding():
    env = Flappy(num_envs=3)
    with pytest.raises(ValueError, match=r"^action 3 at env 1 is not"):
        env.step(np.array([0, 3, 0]))
    with pytest.raises(TypeError, match="^actions must be integers"):
        env.step(np.array([0.5, 0, 0]))
    env.step(np.array([0, 1, 0]))  # int64 from torch/numpy is fine


def test_wrapper_close_is_idempotent_and_step_after_close_raises():
    env = Flappy()
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros(1, np.int32))


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(log_interval=0), ValueError, "^log_interval must be a positive int, got 0$"),
    (dict(render_mode="bogus"), ValueError, "^render_mode must be None"),
    (dict(gap=10), ValueError, r"^gap must be in \[30, 240\], got 10$"),
])
def test_wrapper_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Flappy(**kwargs)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int8, np.uint16])
@pytest.mark.parametrize("values,first", [([2, 0, 3, 0], "action 2 at env 0"), ([0, 3, 0, 2], "action 3 at env 1"),
                                          ([1, 0, 9, 7], "action 9 at env 2")])
def test_the_first_bad_action_is_reported_whatever_the_dtype(dtype, values, first, buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    with pytest.raises(ValueError, match=rf"^{first} is not 0 \(do nothing\) or 1 \(flap\)$"):
        binding.vec_step(handle, np.array(values, dtype))
    binding.vec_close(handle)


@pytest.mark.parametrize("view,expected", [
    (lambda act: act[::-1], [0, 0, 1, 1]),  # the review's case: it applied all zeros
    (lambda act: act[[3, 2, 1, 0]], [0, 0, 1, 1]),  # a fancy-indexed copy, for comparison
    (lambda act: act.view(np.uint32), [1, 1, 0, 0]),  # same data and layout, another integer type
    (lambda act: np.lib.stride_tricks.as_strided(act, (4,), (0,)), [1, 1, 1, 1]),  # env 0's action for all
])
def test_views_of_the_action_buffer_are_read_as_any_array(view, expected, buffers):
    handle = binding.vec_init(*buffers, 4, 0)
    buffers[1][:] = [1, 1, 0, 0]
    binding.vec_step(handle, view(buffers[1]))
    np.testing.assert_array_equal(buffers[1], expected)
    assert [binding.env_get(handle, i)["bird_vy"] == -binding.params()["flap_speed"][0] for i in range(4)] == [
        bool(a) for a in expected]


@pytest.mark.parametrize("view,error,message", [
    (lambda act: act.view(np.float32), TypeError, r"^actions must be integers, got dtype float32$"),
    (lambda act: act.reshape(1, 4), ValueError, r"^actions must have shape \(4,\), got \(1, 4\)$"),
    (lambda act: act[:3], ValueError, r"^actions must have shape \(4,\), got \(3,\)$"),
    (lambda act: act.view(np.int16), ValueError, r"^actions must have shape \(4,\), got \(8,\)$"),
])
def test_views_of_the_action_buffer_are_checked_as_any_array(view, error, message, buffers):
    """A view sharing the buffer's data pointer used to skip every check: float bits were
    stepped as actions."""
    handle = binding.vec_init(*buffers, 4, 0)
    buffers[1][:] = [1, 0, 1, 0]
    with pytest.raises(error, match=message):
        binding.vec_step(handle, view(buffers[1]))
    np.testing.assert_array_equal(buffers[1], [1, 0, 1, 0])
    assert binding.env_get(handle, 0)["tick"] == 0
