"""Fuzzing with hypothesis: whatever parameters, actions and call orders come in, the process
survives, bad input gets a one-line TypeError/ValueError/RuntimeError, and the env stays usable.

CI runs the "ci" profile (conftest.py); `uv run pytest tests/test_fuzz.py --hypothesis-profile=long`
runs a hundred times as many examples."""

import math

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from flappy_rl import GYMNASIUM_ID, REFERENCE_ID, Flappy, FlappyVectorEnv, binding

PARAMS = binding.params()
CHOICES = binding.param_choices()
NUM_ENVS = 3

def value_for(name):
    """Values for parameter `name`: mostly near or inside its range, plus every wrong kind."""
    default, low, high = PARAMS[name]
    if name in CHOICES:
        right = st.sampled_from(CHOICES[name])
    elif type(default) is int:
        right = st.integers(max(low - 3, -2**63), high + 3) | st.sampled_from([low, high, 2**64, -2**70])
    else:
        right = (st.floats(low - 1, high + 1) | st.sampled_from([low, high, math.nan, math.inf, -math.inf])
                 | st.integers(int(low) - 2, int(high) + 2))
    wrong = st.none() | st.booleans() | st.text(max_size=4) | st.floats() | st.integers() | st.just([1.0])
    return right | wrong


parameter_sets = st.lists(
    st.sampled_from([*PARAMS, "gapp", "speed"]).flatmap(lambda name: st.tuples(
        st.just(name), value_for(name) if name in PARAMS else st.integers())),
    max_size=5).map(dict)


def problem_with(name, value):
    """The exception type the binding must raise for one keyword argument, or None if it is fine."""
    if name not in PARAMS:
        return TypeError
    default, low, high = PARAMS[name]
    if name in CHOICES:
        return None if value in CHOICES[name] else (ValueError if isinstance(value, str) else TypeError)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (type(default) is int and isinstance(value, float)):
        return TypeError
    return None if low <= value <= high else ValueError  # nan compares false: out of range


def assert_one_line(error):
    message = str(error)
    assert message and "\n" not in message, repr(message)


def assert_observations_in_space(env):
    space = env.single_observation_space
    obs = env.observations
    assert obs.dtype == space.dtype and obs.shape == (env.num_agents, *space.shape)
    if obs.dtype == np.float32:
        assert np.isfinite(obs).all()
    assert (obs >= space.low).all() and (obs <= space.high).all()


@given(params=parameter_sets, seed=st.integers(0, 2**64 - 1), actions=st.lists(st.integers(0, 1), min_size=30,
                                                                                 max_size=30))
def test_any_parameter_set_makes_a_working_env_or_one_clear_error(params, seed, actions):
    problems = {problem_with(name, value) for name, value in params.items()} - {None}
    try:
        env = Flappy(num_envs=NUM_ENVS, seed=seed, **params)
    except (TypeError, ValueError) as error:
        assert problems, f"{params} is valid but raised {error!r}"
        assert type(error) in problems, (params, error)
        assert_one_line(error)
        return
    assert not problems, f"{params} should have raised one of {problems}"
    for action in actions:
        env.step(np.full(NUM_ENVS, action, np.int32))
        assert_observations_in_space(env)
        assert np.isfinite(env.rewards).all()
    env.close()


action_arrays = hnp.arrays(
    dtype=hnp.integer_dtypes(endianness="=") | hnp.unsigned_integer_dtypes() | hnp.floating_dtypes()
    | st.just(np.dtype(bool)) | st.just(np.dtype("<U1")),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5) | st.just((NUM_ENVS,)),
)


@pytest.fixture(scope="module")
def shared_env():
    env = Flappy(num_envs=NUM_ENVS)
    yield env
    env.close()


@given(actions=action_arrays)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_action_array_steps_or_is_refused_without_a_trace(actions, shared_env):
    env = shared_env
    before = [buffer.copy() for buffer in (env.observations, env.actions, env.rewards, env.terminals, env.truncations)]
    tick = binding.env_get(env.c_envs, 0)["tick"]
    valid = (actions.shape == (NUM_ENVS,) and (actions.dtype.kind in "iub")
             and bool(np.isin(actions, [0, 1]).all()))
    try:
        env.step(actions)
    except (TypeError, ValueError) as error:
        assert not valid, f"{actions!r} is valid but raised {error!r}"
        assert_one_line(error)
        after = (env.observations, env.actions, env.rewards, env.terminals, env.truncations)
        for old, new in zip(before, after):
            np.testing.assert_array_equal(old, new)
        assert binding.env_get(env.c_envs, 0)["tick"] == tick
        return
    assert valid, f"{actions!r} should have been refused"
    np.testing.assert_array_equal(env.actions, actions)
    assert_observations_in_space(env)


class CallOrders(RuleBasedStateMachine):
    """Any order of reset, step (good and bad), log, render, env_get and close: an open env
    keeps working, a closed one raises RuntimeError on use and ignores another close."""

    def __init__(self):
        super().__init__()
        self.env = Flappy(num_envs=NUM_ENVS, render_mode="rgb_array", log_interval=1, max_steps=40)
        self.closed = False
        self.steps = 0

    def use(self, call):
        if self.closed:
            with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
                call()
            return None
        return call()

    @rule(seed=st.none() | st.integers(0, 2**64 - 1))
    def reset(self, seed):
        self.use(lambda: self.env.reset(seed))

    @rule(actions=st.lists(st.integers(0, 1), min_size=NUM_ENVS, max_size=NUM_ENVS))
    def step(self, actions):
        result = self.use(lambda: self.env.step(np.array(actions)))
        if result is not None:
            for log in result[4]:
                assert log["n"] >= 1 and 0 <= log["score"] and 1 <= log["episode_length"] <= 40

    @rule(bad=st.sampled_from([2, -1, 255]), at=st.integers(0, NUM_ENVS - 1))
    def step_with_a_bad_action(self, bad, at):
        actions = np.zeros(NUM_ENVS, np.int64)
        actions[at] = bad
        error = RuntimeError if self.closed else ValueError
        with pytest.raises(error):
            self.env.step(actions)

    @rule()
    def log(self):
        log = self.use(lambda: binding.vec_log(self.env.c_envs))
        if log is not None:
            assert log["n"] >= 0 and all(math.isfinite(v) for v in log.values())

    @rule()
    def render(self):
        frame = self.use(self.env.render)
        if frame is not None:
            assert frame.shape == (512, 288, 3) and frame.dtype == np.uint8

    @rule(i=st.integers(-2, NUM_ENVS + 1))
    def env_get(self, i):
        if self.closed:
            self.use(lambda: binding.env_get(self.env.c_envs, i))
        elif 0 <= i < NUM_ENVS:
            assert binding.env_get(self.env.c_envs, i)["tick"] <= 40
        else:
            with pytest.raises(IndexError):
                binding.env_get(self.env.c_envs, i)

    @rule()
    def close(self):
        self.env.close()
        self.closed = True

    @invariant()
    def observations_stay_in_bounds(self):
        if not self.closed:
            assert_observations_in_space(self.env)

    def teardown(self):
        self.env.close()


TestCallOrders = CallOrders.TestCase
TestCallOrders.settings = settings(stateful_step_count=30)  # examples from the profile


# -- the Gymnasium entry points -------------------------------------------------------------


@given(params=parameter_sets, vector=st.booleans())
@example(params={"pipe_speed": 21.0}, vector=False)  # crashes within the 20 steps: reset, then go on
def test_gymnasium_make_with_any_parameters_works_or_gives_one_clear_error(params, vector):
    problems = {problem_with(name, value) for name, value in params.items()} - {None}
    try:
        if vector:
            env = gymnasium.make_vec(GYMNASIUM_ID, NUM_ENVS, vectorization_mode="vector_entry_point", **params)
        else:
            env = gymnasium.make(GYMNASIUM_ID, **params)
    except (TypeError, ValueError) as error:
        assert problems and type(error) in problems, (params, error)
        assert_one_line(error)
        return
    assert not problems, f"{params} should have raised one of {problems}"
    space = env.observation_space
    obs, _ = env.reset(seed=0)
    for t in range(20):
        obs, _, terminated, truncated, _ = env.step(np.full(NUM_ENVS, t % 4 == 0) if vector else int(t % 4 == 0))
        assert space.contains(obs)
        if not vector and (terminated or truncated):  # fast pipes can end an episode within 20 steps
            obs, _ = env.reset()
            assert space.contains(obs)
    env.close()


@given(actions=action_arrays)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_gymnasium_vector_env_steps_any_action_array_or_refuses_it_without_a_trace(actions):
    env, clean = FlappyVectorEnv(NUM_ENVS, copy=True), FlappyVectorEnv(NUM_ENVS, copy=True)
    env.reset(seed=1)
    clean.reset(seed=1)
    valid = actions.shape == (NUM_ENVS,) and actions.dtype.kind in "iub" and bool(np.isin(actions, [0, 1]).all())
    try:
        env.step(actions)
    except (TypeError, ValueError) as error:
        assert not valid, f"{actions!r} is valid but raised {error!r}"
        assert_one_line(error)
    else:
        assert valid, f"{actions!r} should have been refused"
        clean.step(actions)
    for t in range(40):
        a = np.full(NUM_ENVS, t % 5 == 0, np.int32)
        assert all(np.array_equal(x, y) for x, y in zip(env.step(a)[:4], clean.step(a)[:4]))


class GymnasiumCallOrders(RuleBasedStateMachine):
    """The C Gymnasium env and the twin driven by any order of reset, step (good, bad, after the
    episode's end) and render: the same answers, the same errors, and no state changed by a
    refused call."""

    def __init__(self):
        super().__init__()
        self.env = gymnasium.make(GYMNASIUM_ID, render_mode="rgb_array", max_steps=40).unwrapped
        self.twin = gymnasium.make(REFERENCE_ID, render_mode="rgb_array", max_steps=40).unwrapped
        self.started = self.over = False

    @rule(seed=st.integers(0, 2**64 - 1) | st.none())
    def reset(self, seed):
        if seed is None and not self.started:
            seed = 0  # an unseeded first reset draws from entropy: not comparable
        obs, _ = self.env.reset(seed=seed)
        assert np.array_equal(obs, self.twin.reset(seed=seed)[0])
        self.started, self.over = True, False

    @rule(action=st.integers(0, 1) | st.sampled_from([np.int64(1), np.int8(0), np.array(1)]))
    def step(self, action):
        if not self.started or self.over:
            with pytest.raises(gymnasium.error.ResetNeeded):
                self.env.step(action)
            return
        result, expected = self.env.step(action), self.twin.step(int(action))
        assert np.array_equal(result[0], expected[0]) and result[1:4] == expected[1:4]
        self.over = result[2] or result[3]

    @rule(action=st.integers().filter(lambda a: a not in (0, 1)) | st.floats() | st.text(max_size=2) | st.none()
          | st.just([0]) | st.just(np.array([1])))
    def step_with_a_bad_action(self, action):
        error = gymnasium.error.ResetNeeded if not self.started or self.over else gymnasium.error.InvalidAction
        with pytest.raises(error) as raised:
            self.env.step(action)
        assert_one_line(raised.value)

    @rule()
    def render(self):
        if self.started:
            assert np.array_equal(self.env.render(), self.twin.render())

    def teardown(self):
        self.env.close()


TestGymnasiumCallOrders = GymnasiumCallOrders.TestCase
TestGymnasiumCallOrders.settings = settings(stateful_step_count=50)
