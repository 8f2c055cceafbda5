"""The Gymnasium envs backed by C: FlappyEnv ("flappy_rl/FlappyBird-v0") and FlappyVectorEnv
(its make_vec vector entry point). Semantics as Gymnasium defines them, parity with the twin,
the vector env against a loop of single envs, wrappers, bad input."""

import collections.abc
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from flappy_rl import GYMNASIUM_ID, REFERENCE_ID, FlappyEnv, FlappyGymnasiumEnv, FlappyVectorEnv, binding
from conftest import scripted_action
from test_parity import PARAM_SETS

MODES = [dict(), dict(obs_mode="lidar", lidar_rays=15), dict(obs_mode="pixels", pixels_stack=3, pixels_width=12,
                                                              pixels_height=26)]


def make_vec(num_envs, **kwargs):
    return gymnasium.make_vec(GYMNASIUM_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def test_import_pulls_in_neither_pufferlib_nor_torch():
    code = ("import sys, gymnasium, flappy_rl; env = gymnasium.make('flappy_rl/FlappyBird-v0'); env.reset(seed=0); "
            "env.step(1); gymnasium.make_vec('flappy_rl/FlappyBird-v0', 2, vectorization_mode='vector_entry_point'); "
            "print(sorted(m for m in ('torch', 'pufferlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
    # and PufferLib users keep their import
    code = "from flappy_rl import Flappy; import pufferlib; print(issubclass(Flappy, pufferlib.PufferEnv))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "True\n"


def test_ids_make_the_c_env_and_the_twin():
    env = gymnasium.make(GYMNASIUM_ID, gap=150)
    assert isinstance(env.unwrapped, FlappyEnv) and env.unwrapped.params["gap"] == 150
    assert isinstance(gymnasium.make(REFERENCE_ID).unwrapped, FlappyGymnasiumEnv)
    # the episode limit is the core's max_steps: no TimeLimit wrapper on top
    assert gymnasium.spec(GYMNASIUM_ID).max_episode_steps is None
    wrapper, names = env, []
    while wrapper is not wrapper.unwrapped:
        names.append(type(wrapper).__name__)
        wrapper = wrapper.env
    assert "TimeLimit" not in names
    vec = make_vec(3, max_episode_steps=40)
    assert isinstance(vec, FlappyVectorEnv) and vec.max_episode_steps == 40 and vec.params["max_steps"] == 40
    # the core ends an episode at whichever comes first: max_steps frames or max_episode_steps steps
    assert make_vec(3, max_episode_steps=40, max_steps=50).params["max_steps"] == 40
    assert make_vec(3, max_episode_steps=40, max_steps=50, frame_skip=4).params["max_steps"] == 50
    with pytest.raises(ValueError, match=r"^max_episode_steps must be a positive int or None, got 0$"):
        make_vec(3, max_episode_steps=0)


@pytest.mark.parametrize("params", MODES + [dict(render_mode="rgb_array")])
def test_env_checker_passes_without_warnings(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # every check but opening each render mode (human needs a display: tests/test_render_window.py)
        env = gymnasium.make(GYMNASIUM_ID, **params).unwrapped
        check_env(env, skip_render_check=True)
        env.reset(seed=0)
        env_render_passive_checker(env)


@pytest.mark.parametrize("params", PARAM_SETS)
def test_single_env_matches_the_twin_without_auto_reset(params):
    """Episode after episode, reset by hand as Gymnasium users do: the C env and the twin agree
    on every observation (the last of an episode included), reward, terminal and truncation."""
    env, twin = gymnasium.make(GYMNASIUM_ID, **params), gymnasium.make(REFERENCE_ID, **params)
    rng = np.random.default_rng(1)
    seeds = iter([7, None, 2**64 - 1, None, None, 12, None, None])
    episodes = 0
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        t_obs, _ = twin.reset(seed=seed)
        assert np.array_equal(obs, t_obs) and info == {}
        for _ in range(3000):
            action = scripted_action(twin.unwrapped.state()) ^ int(rng.random() < 0.03)
            obs, reward, terminated, truncated, info = env.step(action)
            t_obs, t_reward, t_terminated, t_truncated, _ = twin.step(action)
            assert (reward, terminated, truncated) == (t_reward, t_terminated, t_truncated)
            assert np.array_equal(obs, t_obs) and obs.dtype == t_obs.dtype and info == {}
            if terminated or truncated:
                episodes += 1
                break
    assert episodes >= 6


def test_step_after_the_end_raises_until_reset():
    env = gymnasium.make(GYMNASIUM_ID, max_steps=5, render_mode="rgb_array")  # too short to crash
    twin = gymnasium.make(REFERENCE_ID, max_steps=5, render_mode="rgb_array")
    start, _ = env.reset(seed=0)
    twin.reset(seed=0)
    results = [env.step(0) for _ in range(5)]
    [twin.step(0) for _ in range(5)]
    assert np.array_equal(env.render(), twin.render())  # the last frame, not the next episode's first
    assert [(r[2], r[3]) for r in results] == [(False, False)] * 4 + [(False, True)]
    last_obs = results[-1][0]
    for _ in range(2):
        with pytest.raises(gymnasium.error.ResetNeeded, match=r"^the episode is over \(terminated or truncated\): "
                                                              r"call reset\(\) before step\(\)$"):
            env.step(0)
    assert np.array_equal(results[-1][0], last_obs)  # the returned observation was a copy
    obs, _ = env.reset()
    assert np.array_equal(obs[:2], start[:2]) and not np.array_equal(obs[:2], last_obs[:2])  # the bird starts again
    assert env.step(0)[3] is False
    with pytest.raises(gymnasium.error.ResetNeeded):
        FlappyEnv().step(0)  # before the first reset


def test_seeding_follows_gymnasium():
    env = FlappyEnv(gap_spread=40)
    first = env.reset(seed=5)[0]
    assert np.array_equal(env.reset(seed=5)[0], first)
    after = [env.reset()[0] for _ in range(3)]  # continues the generator: new games
    assert not any(np.array_equal(obs, first) for obs in after)
    assert env.np_random_seed == 5
    # without a seed, the first reset draws one from entropy: two envs play different games
    assert not np.array_equal(FlappyEnv(gap_spread=40).reset()[0], FlappyEnv(gap_spread=40).reset()[0])
    # a vector env seeds env i with seed + i, as Gymnasium's vector envs do
    vec = FlappyVectorEnv(4, gap_spread=40)
    vec_obs = vec.reset(seed=9)[0]
    for i in range(4):
        assert np.array_equal(FlappyEnv(gap_spread=40).reset(seed=9 + i)[0], vec_obs[i])
    # env_index picks the generator stream: the same game as env i of flappy_rl.Flappy
    assert not np.array_equal(FlappyEnv(env_index=1, gap_spread=40).reset(seed=9)[0], vec_obs[0])
    with pytest.raises(gymnasium.error.Error, match=r"^Seed must be a python integer, actual type: <class 'float'>$"):
        env.reset(seed=1.5)
    with pytest.raises(gymnasium.error.Error, match=r"^Seed must be in \[0, 2\*\*64\), got -1$"):
        env.reset(seed=-1)


@pytest.mark.parametrize("action", [2, -1, 0.5, 1.0, "1", None, np.array([1]), np.array([[0]]), [0]])
def test_single_env_refuses_bad_actions_and_changes_nothing(action):
    env, clean = FlappyEnv(), FlappyEnv()
    env.reset(seed=3)
    clean.reset(seed=3)
    env.step(1)
    clean.step(1)
    with pytest.raises(gymnasium.error.InvalidAction, match=r"^action .* is not 0 \(do nothing\) or 1 \(flap\)$"):
        env.step(action)
    for a in [0, 1, np.int64(0), np.array(1), True] * 4:
        assert all(np.array_equal(x, y) for x, y in zip(env.step(a), clean.step(a)))


@pytest.mark.parametrize("params", MODES + [dict(max_steps=40, difficulty="hard")])
def test_vector_env_equals_a_loop_of_single_envs(params):
    """FlappyVectorEnv against Gymnasium's own SyncVectorEnv over FlappyEnv, both in next-step
    autoreset mode, with the same seed: equal step by step, resets included."""
    n = 5
    vec = make_vec(n, **params)
    loop = SyncVectorEnv([lambda: FlappyEnv(**params)] * n, autoreset_mode=AutoresetMode.NEXT_STEP)
    assert vec.metadata["autoreset_mode"] == loop.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.observation_space == loop.observation_space and vec.action_space == loop.action_space
    assert vec.single_observation_space == loop.single_observation_space
    rng = np.random.default_rng(4)
    ends = 0
    for seed in (11, None, 3):
        obs, info = vec.reset(seed=seed)
        l_obs, _ = loop.reset(seed=seed)
        assert np.array_equal(obs, l_obs) and info == {}
        for _ in range(400):
            actions = (rng.random(n) < 0.08).astype(np.int64)
            result, expected = vec.step(actions), loop.step(actions)
            for got, want in zip(result[:4], expected[:4]):
                assert np.array_equal(got, want)
            # rewards stay the core's float32 (SyncVectorEnv's are float64); the rest alike
            assert [r.dtype for r in result[:4]] == [want.dtype for want in expected[:1]] + [np.float32, bool, bool]
            assert result[4] == {}
            ends += int(result[2].sum() + result[3].sum())
    assert ends > 20


def test_vector_env_returns_its_buffers_or_copies():
    vec = make_vec(3)
    obs, _ = vec.reset(seed=0)
    step_obs = vec.step(np.zeros(3, np.int32))[0]
    assert step_obs is obs  # overwritten in place, as PufferLib's and SyncVectorEnv(copy=False)'s
    copying = make_vec(3, copy=True)
    first, _ = copying.reset(seed=0)
    result = copying.step(np.zeros(3, np.int32))
    assert result[0] is not first and not np.shares_memory(result[0], copying.step(np.zeros(3, np.int32))[0])


@pytest.mark.parametrize("actions,error,message", [
    (np.array([0, 1, 2]), ValueError, r"^action 2 at env 2 is not 0 \(do nothing\) or 1 \(flap\)$"),
    (np.array([-1, 0, 5], np.int32), ValueError, r"^action -1 at env 0 is not 0 \(do nothing\) or 1 \(flap\)$"),
    (np.array([0, 1]), ValueError, r"^actions must have shape \(3,\), got \(2,\)$"),
    (np.zeros((3, 1), np.int64), ValueError, r"^actions must have shape \(3,\), got \(3, 1\)$"),
    (np.zeros(3, np.float32), TypeError, r"^actions must be integers, got dtype float32$"),
    ([0, 1, 3], ValueError, r"^action 3 at env 2 is not 0 \(do nothing\) or 1 \(flap\)$"),
])
def test_vector_env_refuses_bad_actions_and_changes_nothing(actions, error, message):
    vec, clean = make_vec(3), make_vec(3)
    vec.reset(seed=2)
    clean.reset(seed=2)
    with pytest.raises(error, match=message):
        vec.step(actions)
    for t in range(100):
        a = np.array([t % 7 == 0, t % 5 == 0, 0], np.int64)
        assert all(np.array_equal(x, y) for x, y in zip(vec.step(a)[:4], clean.step(a)[:4]))
    with pytest.raises(ValueError, match=r"^a list of seeds needs one per env \(3\), got 2$"):
        vec.reset(seed=[1, 2])
    with pytest.raises(gymnasium.error.Error, match=r"^Seed must be in \[0, 2\*\*64\), got 18446744073709551616$"):
        vec.reset(seed=2**64 - 2)  # env 2's seed, 2**64, is out of range
    with pytest.raises(ValueError, match=r"^reset_mask is for autoreset mode Disabled; this env's is NextStep"):
        vec.reset(options={"reset_mask": np.ones(3, bool)})


def test_record_episode_statistics_counts_what_the_loop_counts():
    n, steps = 8, 600
    vec = gymnasium.wrappers.vector.RecordEpisodeStatistics(make_vec(n, max_steps=100))
    vec.reset(seed=1)
    rng = np.random.default_rng(0)
    returns, current, lengths, ticks = [], np.zeros(n), [], np.zeros(n, int)
    reported = []
    for _ in range(steps):
        obs, rewards, terminated, truncated, info = vec.step((rng.random(n) < 0.1).astype(np.int32))
        current += rewards
        ticks += 1
        for i in np.flatnonzero(terminated | truncated):
            returns.append(current[i])
            lengths.append(ticks[i])
        current[terminated | truncated] = 0
        ticks[terminated | truncated] = -1  # the next step starts the episode and is not counted
        if "episode" in info:
            mask = info["_episode"]
            reported += list(zip(info["episode"]["r"][mask], info["episode"]["l"][mask]))
    assert len(reported) == len(returns) > 20
    assert sorted(reported) == sorted(zip(np.float32(returns), lengths))


def test_vector_render_draws_each_env_when_asked():
    vec = make_vec(4, render_mode="rgb_array", gap_spread=40)
    vec.reset(seed=6)
    for t in range(60):  # the first pipes come into view
        vec.step(np.full(4, t % 6 == 0, np.int32))
    frames = vec.render()
    assert len(frames) == 4 and isinstance(frames, collections.abc.Sequence)
    for i in range(4):
        single = FlappyEnv(render_mode="rgb_array", gap_spread=40)
        single.reset(seed=6 + i)
        for t in range(60):
            single.step(int(t % 6 == 0))
        assert frames[i].shape == (512, 288, 3) and frames[i].dtype == np.uint8
        assert np.array_equal(frames[i], single.render())
    assert not np.array_equal(frames[0], frames[1])
    assert [f.shape for f in frames[1:3]] == [(512, 288, 3)] * 2
    with pytest.raises(IndexError, match=r"^env index 4 out of range for 4 envs$"):
        frames[4]
    assert make_vec(2).render() is None


def test_gymnasium_video_recorder_writes_a_video(tmp_path):
    vec = gymnasium.wrappers.vector.RecordVideo(make_vec(64, render_mode="rgb_array"), str(tmp_path / "videos"),
                                                video_length=60, record_first_only=True, fps=30)
    vec.reset(seed=0)
    for t in range(60):
        vec.step(np.full(64, t % 8 == 0, np.int32))
    vec.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    import imageio.v3 as iio

    frames = iio.imread(videos[0])
    assert frames.shape[1:] == (512, 288, 3) and 55 <= len(frames) <= 61


def test_closed_envs_refuse_to_step_and_close_twice():
    env = FlappyEnv()
    env.reset(seed=0)
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
        env.reset(seed=0)
    vec = make_vec(2)
    vec.close()
    vec.close()
    with pytest.raises(RuntimeError, match="^this Flappy env is closed$"):
        vec.step(np.zeros(2, np.int32))


def test_constructor_errors_are_one_line():
    with pytest.raises(ValueError, match=r"^num_envs must be a positive int, got 0$"):
        FlappyVectorEnv(0)
    with pytest.raises(TypeError, match=r"^unknown parameter 'gapp'"):
        gymnasium.make(GYMNASIUM_ID, gapp=3)
    with pytest.raises(ValueError, match=r"^render_mode must be None, 'human' or 'rgb_array', got 'rgb'$"):
        make_vec(2, render_mode="rgb")
    with pytest.raises(ValueError, match=r"^env_index must be a non-negative int, got -1$"):
        FlappyEnv(env_index=-1)
    assert binding.params()["max_steps"][0] == FlappyEnv().params["max_steps"] == 10000


class MadeEnvs:
    """n envs from gymnasium.make, seeded seed + i and reset on the step after an episode ends,
    as a vector env in next-step autoreset mode does: the plain loop the vector modes must match."""

    def __init__(self, n, **kwargs):
        self.envs = [gymnasium.make(GYMNASIUM_ID, **kwargs) for _ in range(n)]
        self.ended = [False] * n

    def reset(self, seed):
        self.ended = [False] * len(self.envs)
        seeds = seed if isinstance(seed, list) else [None if seed is None else seed + i for i in range(len(self.envs))]
        return np.stack([env.reset(seed=s)[0] for env, s in zip(self.envs, seeds)]), {}

    def step(self, actions):
        results = []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            if self.ended[i]:
                results.append((env.reset()[0], 0.0, False, False))
            else:
                results.append(env.step(int(action))[:4])
            self.ended[i] = results[-1][2] or results[-1][3]
        return tuple(np.array(column) for column in zip(*results))

    def close(self):
        for env in self.envs:
            env.close()


@pytest.mark.parametrize("params", [dict(frame_skip=4), dict(frame_skip=3, obs_mode="lidar", lidar_rays=9),
                                    dict(obs_mode="pixels", pixels_width=18, pixels_height=32, frame_skip=2),
                                    dict(difficulty="hard", frame_skip=5, max_steps=37)])
def test_every_gymnasium_mode_plays_the_same_episodes(params):
    """gymnasium.make, make_vec sync, async and the C vector env, with max_episode_steps=10 and
    the same seeds and actions: equal step by step. The review's cases: with frame_skip 4 the
    C vector env truncated after 3 steps (it counted frames), agreed with sync only on env 0
    (Gymnasium seeds env i with seed + i), and refused a list of seeds."""
    n, limit = 4, 10
    modes = {"make": MadeEnvs(n, max_episode_steps=limit, **params)}
    for mode in ("sync", "async", "vector_entry_point"):
        modes[mode] = gymnasium.make_vec(GYMNASIUM_ID, num_envs=n, vectorization_mode=mode,
                                         max_episode_steps=limit, **params)
    rng = np.random.default_rng(7)
    lengths, truncations = [], 0
    for seed in (3, None, [8, None, 2**40, 0]):
        first = [env.reset(seed=seed)[0] for env in modes.values()]
        for obs in first[1:]:
            np.testing.assert_array_equal(obs, first[0])
        steps = np.zeros(n, int)
        for _ in range(60):
            actions = (rng.random(n) < 0.12).astype(np.int64)
            results = {mode: env.step(actions)[:4] for mode, env in modes.items()}
            want = results["make"]
            for mode, got in results.items():
                for k, (g, w) in enumerate(zip(got, want)):
                    np.testing.assert_array_equal(g, w, err_msg=f"{mode}, output {k}")
            steps += 1
            for i in np.flatnonzero(want[2] | want[3]):
                lengths.append(steps[i])
                steps[i] = -1  # the next step starts the next episode
            truncations += int(want[3].sum())
    for env in modes.values():
        env.close()
    # episodes run their ten steps (not three), or the steps that max_steps frames allow
    frame_skip, max_steps = params["frame_skip"], params.get("max_steps", 10000)
    assert max(lengths) == min(limit, -(-max_steps // frame_skip)) and truncations > 5
