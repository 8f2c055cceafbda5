"""The game's rules, checked number by number on the C env (through env_get and the buffers)."""

import numpy as np
import pytest

from flappy_rl import Flappy, binding
from conftest import scripted_actions

NO_FLAP = np.zeros(1, np.int32)
FLAP = np.ones(1, np.int32)


def state(env, i=0):
    return binding.env_get(env.c_envs, i)


def test_geometry_is_the_original_games():
    assert (binding.WORLD_WIDTH, binding.WORLD_HEIGHT) == (288, 512)
    assert binding.GROUND_Y == 0.79 * 512
    assert binding.BIRD_X == pytest.approx(0.2 * 288)
    assert (binding.BIRD_WIDTH, binding.BIRD_HEIGHT, binding.PIPE_WIDTH) == (34, 24, 52)
    assert binding.BIRD_START_Y == (512 - 24) / 2
    assert binding.FLAP_CEILING == -2 * binding.BIRD_HEIGHT
    assert binding.FIRST_PIPE_X == 288 + 200
    assert binding.GAP_TOP_MIN == pytest.approx(0.2 * binding.GROUND_Y)
    assert binding.GAP_SPAN == pytest.approx(0.6 * binding.GROUND_Y)
    assert binding.FPS == 30


def test_param_defaults_are_the_original_games():
    defaults = {name: d for name, (d, lo, hi) in binding.params().items()}
    assert {k: defaults[k] for k in list(defaults)[:10]} == dict(
        gap=100, pipe_speed=4, pipe_spacing=144, gravity=1, flap_speed=9, max_fall_speed=10, reward_pipe=1,
        reward_crash=-1, reward_alive=0, max_steps=10000)
    # flappy-bird-gymnasium's LIDAR: 180 rays, 196 px (int(288 * 0.8) - 34); no randomization
    assert (defaults["obs_mode"], defaults["lidar_rays"], defaults["lidar_range"]) == ("features", 180, 196)
    assert all(defaults[f"{name}_spread"] == 0 for name in ("gap", "pipe_speed", "pipe_spacing", "gravity"))
    assert defaults["difficulty"] == "normal"


def test_reset_state():
    env = Flappy()
    s = state(env)
    assert (s["bird_x"], s["bird_y"], s["bird_vy"], s["tick"], s["score"]) == (57.6, 244, -9, 0, 0)
    assert [p["x"] for p in s["pipes"]] == [488, 632, 776, 920]
    for p in s["pipes"]:
        assert 0.2 * binding.GROUND_Y <= p["gap_top"] < 0.8 * binding.GROUND_Y - 100
        assert p["gap_bottom"] == p["gap_top"] + 100


def test_gravity_max_fall_and_ground_crash():
    """Without flaps: speed -9 rises by 1 a frame to the cap of 10; the bird's bottom reaches
    the ground (y >= 404.48 - 24) on frame 31, at y = 383."""
    env = Flappy()
    y, vy = 244.0, -9.0
    for t in range(1, 31):
        _, rew, term, trunc, _ = env.step(NO_FLAP)
        vy = min(vy + 1, 10)
        y += vy
        s = state(env)
        assert (s["bird_vy"], s["bird_y"], s["tick"]) == (vy, y, t)
        assert (rew[0], term[0], trunc[0]) == (0, False, False)
    assert y + 10 == 383 and 383 + 24 >= binding.GROUND_Y > 373 + 24
    _, rew, term, trunc, _ = env.step(NO_FLAP)
    assert (rew[0], term[0], trunc[0]) == (-1, True, False)
    assert state(env)["tick"] == 0 and state(env)["bird_y"] == 244  # reset itself


def test_flap_sets_speed_and_skips_gravity():
    env = Flappy()
    env.step(NO_FLAP)  # vy -8, y 236
    env.step(FLAP)
    assert (state(env)["bird_vy"], state(env)["bird_y"]) == (-9, 227)
    env.step(NO_FLAP)
    assert (state(env)["bird_vy"], state(env)["bird_y"]) == (-8, 219)


def test_flap_is_ignored_two_bird_heights_above_the_screen():
    env = Flappy()
    ys = []
    for _ in range(36):
        env.step(FLAP)
        ys.append(state(env)["bird_y"])
    # rises 9 a frame while its top is below -48: 244 - 9 * 33 = -53 after frame 33
    assert ys[32] == -53 and ys[31] == -44
    # frame 34 starts at -53 <= -48, so the flap is ignored and gravity acts: -9 + 1
    assert ys[33] - ys[32] == -8
    assert ys[34] - ys[33] == -7


@pytest.mark.parametrize("gravity,max_fall", [(0.5, 10.0), (1.0, 5.0), (2.5, 7.25), (0.1, 10.0)])
def test_gravity_and_fall_cap_parameters(gravity, max_fall):
    env = Flappy(gravity=gravity, max_fall_speed=max_fall, flap_speed=3)
    vy = -3.0
    for _ in range(12):
        env.step(NO_FLAP)
        vy = min(vy + gravity, max_fall)
        assert state(env)["bird_vy"] == vy


def hover(env, y_target, frames):
    """Flap whenever the bird's top is below y_target; returns (reward, terminal) per frame."""
    out = []
    for _ in range(frames):
        _, rew, term, _, _ = env.step(np.array([state(env)["bird_y"] > y_target], np.int32))
        out.append((rew[0], term[0]))
    return out


@pytest.mark.parametrize("y_target", [30, 360])
def test_pipe_crash_on_the_first_frame_in_the_column(y_target):
    """A bird hovering above every possible gap (top < 80.9) or below every possible gap
    (bottom > 323.6) crashes on the frame the first pipe's left edge passes the bird's right
    edge: 488 - 4 * 100 = 88 < 57.6 + 34 <= 92. On the frame before, the observation says which
    edge it will hit: feature 3 > 0 (the bird's top above the gap's) or feature 4 < 0 (its
    bottom below the gap's)."""
    for seed in range(5):
        env = Flappy(seed=seed)
        frames = hover(env, y_target, 99)
        assert not any(term for _, term in frames)
        top_margin, bottom_margin = env.observations[0, 3], env.observations[0, 4]
        assert (top_margin > 0 and bottom_margin > 0) if y_target == 30 else (top_margin < 0 and bottom_margin < 0)
        assert hover(env, y_target, 1) == [(-1, True)]


def test_scoring_moment_and_pipe_recycling():
    """With the default speed a pipe's centre reaches the bird's centre (57.6 + 17) on frame
    110 (488 + 26 - 4 * 110 = 74 <= 74.6), then every 144 / 4 = 36 frames."""
    env = Flappy(gap=200)
    rewards, scores, first_x = [], [], []
    for _ in range(110 + 36 * 3):
        _, rew, term, _, _ = env.step(scripted_actions(env.observations))
        assert not term[0]
        rewards.append(rew[0])
        scores.append(state(env)["score"])
        first_x.append(state(env)["pipes"][0]["x"])
    scored_frames = [t + 1 for t, r in enumerate(rewards) if r != 0]
    assert scored_frames == [110, 146, 182, 218]
    assert set(rewards) == {0, 1}
    assert scores[109] == 1 and scores[108] == 0 and scores[-1] == 4
    # the oldest pipe is recycled once its right edge is left of x = 0: 488 - 4 * 136 + 52 < 0
    assert first_x[134] == 488 - 4 * 135 and first_x[135] == 488 - 4 * 136 + 144


def test_reward_parameters():
    env = Flappy(gap=200, reward_pipe=2.5, reward_alive=0.125, reward_crash=-7)
    rewards = []
    for _ in range(111):
        _, rew, _, _, _ = env.step(scripted_actions(env.observations))
        rewards.append(rew[0])
    assert set(rewards[:109]) == {0.125} and rewards[109] == 2.5 + 0.125
    for _ in range(40):
        _, rew, term, _, _ = env.step(NO_FLAP)
        if term[0]:
            assert rew[0] == -7
            break
    else:
        pytest.fail("the bird never crashed")


def test_truncation_at_max_steps_resets_the_episode():
    env = Flappy(max_steps=40)
    frames = hover(env, 200, 39)
    assert all(not t for _, t in frames)
    obs, rew, term, trunc, _ = env.step(np.array([state(env)["bird_y"] > 200], np.int32))
    assert (rew[0], term[0], trunc[0]) == (0, False, True)
    assert state(env)["tick"] == 0
    assert obs[0, 1] == pytest.approx(-0.9) and obs[0, 2] == 1.0  # a new episode's first observation


def test_crash_on_the_last_frame_is_terminal_not_truncated():
    env = Flappy(max_steps=31)  # no flaps: the ground is hit on frame 31
    for _ in range(30):
        env.step(NO_FLAP)
    _, _, term, trunc, _ = env.step(NO_FLAP)
    assert (term[0], trunc[0]) == (True, False)


def test_max_steps_one():
    env = Flappy(num_envs=3, max_steps=1)
    for _ in range(5):
        _, rew, term, trunc, _ = env.step(np.zeros(3, np.int32))
        assert trunc.all() and not term.any() and (rew == 0).all()


def test_every_step_overwrites_rewards_flags_and_observations():
    """Stale values planted in every buffer are overwritten: rewards and flags by this step's
    (0 and False for 30 frames, then the crash on frame 31), observations entirely."""
    env = Flappy(num_envs=8)
    for t in range(1, 32):
        env.rewards[:] = 123.0
        env.terminals[:] = t < 31
        env.truncations[:] = True
        env.observations[:] = np.nan
        env.step(np.zeros(8, np.int32))
        assert (env.rewards == (-1.0 if t == 31 else 0.0)).all()
        assert (env.terminals == (t == 31)).all()
        assert not env.truncations.any()
        assert np.isfinite(env.observations).all()


def expected_observation(s, params):
    """The observation table of the docstring, computed from env_get's state."""
    y, vy, pipes, k = s["bird_y"], s["bird_vy"], s["pipes"], s["next_pipe"]
    bx, h = binding.BIRD_X, binding.BIRD_HEIGHT
    values = [(y + h / 2) / binding.GROUND_Y * 2 - 1, vy / max(params["flap_speed"], params["max_fall_speed"])]
    for p in pipes[k:k + 2]:
        values += [(p["x"] - bx) / 288, (p["gap_top"] - y) / binding.GROUND_Y,
                   (p["gap_bottom"] - (y + h)) / binding.GROUND_Y]
    return np.clip(values, -1, 1)


@pytest.mark.parametrize("params", [{}, dict(pipe_spacing=100, pipe_speed=9, flap_speed=12), dict(gap=240)])
def test_observation_layout_and_range(params):
    env = Flappy(num_envs=16, seed=3, **params)
    rng = np.random.default_rng(0)
    seen_next_behind = False
    for _ in range(3000):
        actions = np.where(rng.random(16) < 0.1, 1 - scripted_actions(env.observations), scripted_actions(env.observations))
        obs, *_ = env.step(actions.astype(np.int32))
        assert obs.dtype == np.float32 and obs.shape == (16, 8)
        assert (obs >= -1).all() and (obs <= 1).all()
        for i in range(0, 16, 5):
            s = state(env, i)
            np.testing.assert_allclose(obs[i], expected_observation(s, env.params), rtol=1e-6, atol=1e-6)
            # the next pipe is the first whose right edge is right of the bird's left edge
            k = s["next_pipe"]
            assert s["pipes"][k]["x"] + 52 > 57.6 and (k == 0 or s["pipes"][k - 1]["x"] + 52 <= 57.6)
            seen_next_behind |= k == 1
    assert seen_next_behind


def test_auto_reset_gives_the_first_observation_of_a_new_episode():
    env = Flappy(num_envs=2)
    first = env.observations.copy()
    for _ in range(31):
        obs, _, term, _, _ = env.step(np.zeros(2, np.int32))
    assert term.all()
    np.testing.assert_array_equal(obs[:, :3], first[:, :3])  # bird and first pipe's distance as at reset
    assert not np.array_equal(obs[:, 3:], first[:, 3:])  # new gaps: the generator went on


def test_log_means_and_clearing():
    env = Flappy(num_envs=4, log_interval=10)
    infos = [env.step(np.zeros(4, np.int32))[4] for _ in range(40)]
    # every bird crashes on frame 31: nothing to report at steps 10, 20, 30; all four at 40
    assert infos[9] == infos[19] == infos[29] == []
    assert infos[39] == [dict(score=0.0, episode_return=-1.0, episode_length=31.0, perf=0.0, gap=100.0, pipe_speed=4.0,
                              pipe_spacing=144.0, gravity=1.0, n=4.0)]
    assert binding.vec_log(env.c_envs) == dict(score=0.0, episode_return=0.0, episode_length=0.0, perf=0.0, gap=0.0,
                                               pipe_speed=0.0, pipe_spacing=0.0, gravity=0.0, n=0.0)


def test_a_report_after_reset_covers_only_the_episodes_since_the_reset():
    """reset() used to leave the C log as it was: the first report counted episodes from before."""
    env = Flappy(num_envs=4, max_steps=2, log_interval=4)
    for _ in range(3):
        env.step(np.zeros(4, np.int32))  # four episodes end at step 2
    env.reset(0)
    infos = [env.step(np.zeros(4, np.int32))[4] for _ in range(4)]
    assert infos[3] == [dict(score=0.0, episode_return=0.0, episode_length=2.0, perf=0.0, gap=100.0,
                             pipe_speed=4.0, pipe_spacing=144.0, gravity=1.0, n=8.0)]


def test_log_score_and_perf():
    env = Flappy(num_envs=2, gap=200, max_steps=110 + 36 * 2, log_interval=110 + 36 * 2)
    for _ in range(110 + 36 * 2 - 1):
        env.step(scripted_actions(env.observations))
    _, _, _, trunc, info = env.step(scripted_actions(env.observations))
    assert trunc.all()
    assert info == [dict(score=3.0, episode_return=3.0, episode_length=182.0, perf=3 / 50, gap=200.0, pipe_speed=4.0,
                         pipe_spacing=144.0, gravity=1.0, n=2.0)]


# -- frame_skip: one step repeats its action for frame_skip frames --------------------------------

def test_frame_skip_repeats_the_action_for_every_frame():
    """frame_skip=3 from the start (y 244, speed -9): a flap step flaps on all three frames
    (y 244 - 3 * 9 = 217), a no-flap step adds gravity on each (-8, -7, -6: y 196); the tick
    counts frames, the observation is the state after the last one."""
    env = Flappy(frame_skip=3)
    obs, rew, term, trunc, _ = env.step(FLAP)
    s = state(env)
    assert (s["bird_y"], s["bird_vy"], s["tick"]) == (217, -9, 3)
    assert (rew[0], term[0], trunc[0]) == (0, False, False)
    assert obs[0, 0] == np.float32((217 + 12) * (2 / binding.GROUND_Y) - 1)
    env.step(NO_FLAP)
    s = state(env)
    assert (s["bird_y"], s["bird_vy"], s["tick"]) == (196, -6, 6)


def test_frame_skip_sums_the_rewards_of_its_frames():
    """gap=240 leaves every gap spanning y 83.6 .. 320.9, so a bird hovering near y = 190 never
    crashes; the first pipe is passed on frame 110, the second frame of step 37 at frame_skip=3:
    that step's reward is 3 * 0.125 + 1, the others 3 * 0.125."""
    env = Flappy(frame_skip=3, gap=240, reward_alive=0.125)
    rewards, scores = [], []
    for _ in range(40):
        _, rew, term, _, _ = env.step(np.array([state(env)["bird_y"] > 190], np.int32))
        assert not term[0]
        rewards.append(rew[0])
        scores.append(state(env)["score"])
    assert rewards[36] == 1.375 and set(rewards[:36] + rewards[37:]) == {0.375}
    assert scores[35] == 0 and scores[36] == 1 and state(env)["tick"] == 120


def test_frame_skip_truncates_at_max_steps_frames():
    """max_steps=10 at frame_skip=4: steps of 4, 4 and 2 frames, truncated on the third, and the
    episode is logged as 10 frames long."""
    env = Flappy(frame_skip=4, max_steps=10, log_interval=3)
    ticks, flags = [], []
    for _ in range(3):
        _, rew, term, trunc, info = env.step(NO_FLAP)
        ticks.append(state(env)["tick"])
        flags.append((rew[0], term[0], trunc[0]))
    assert ticks == [4, 8, 0] and flags == [(0, False, False)] * 2 + [(0, False, True)]
    assert info[0]["episode_length"] == 10 and info[0]["n"] == 1
    assert (state(env)["bird_y"], state(env)["bird_vy"]) == (244, -9)  # the next episode, not stepped


def test_frame_skip_stops_on_the_crash_frame():
    """No flaps hit the ground on frame 31: at frame_skip=5 that is the first frame of step 7,
    which ends there: reward_crash alone, the next episode at its start (no frame of it played),
    31 frames logged."""
    env = Flappy(frame_skip=5, reward_alive=0.5, log_interval=7)
    for _ in range(6):
        _, rew, term, _, _ = env.step(NO_FLAP)
        assert (rew[0], term[0]) == (2.5, False)
    assert state(env)["tick"] == 30
    _, rew, term, trunc, info = env.step(NO_FLAP)
    assert (rew[0], term[0], trunc[0]) == (-1, True, False)
    s = state(env)
    assert (s["tick"], s["bird_y"], s["bird_vy"], s["pipes"][0]["x"]) == (0, 244, -9, 488)
    assert info[0]["episode_length"] == 31 and info[0]["episode_return"] == 6 * 2.5 - 1
