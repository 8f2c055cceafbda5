"""The MLP policy's input scale: what it computes, and that a checkpoint carries it."""

import pytest
import torch

from flappy_rl.errors import CheckpointError
from flappy_rl.checkpoint import load_weights
from flappy_rl.policy import Policy


class FeatureEnv:
    single_observation_space = type("Box", (), {"shape": (8,)})()
    single_action_space = type("Discrete", (), {"n": 2})()


def observations():
    return torch.linspace(-1, 1, 5 * 8).reshape(5, 8)


@pytest.mark.parametrize("obs_scale", [1.0, 8.0, 0.25])
def test_the_encoder_sees_the_observation_times_obs_scale(obs_scale):
    torch.manual_seed(0)
    policy = Policy(FeatureEnv(), obs_scale=obs_scale)
    obs = observations()
    assert torch.equal(policy.encode_observations(obs), policy.encoder(obs * obs_scale))
    if obs_scale != 1.0:
        assert not torch.equal(policy.encode_observations(obs), policy.encoder(obs))


def test_a_checkpoint_carries_the_scale_it_was_trained_with(tmp_path):
    torch.manual_seed(0)
    trained = Policy(FeatureEnv(), obs_scale=8.0)
    torch.save(trained.state_dict(), tmp_path / "scaled.pt")
    loaded = Policy(FeatureEnv(), obs_scale=1.0)
    load_weights(loaded, str(tmp_path / "scaled.pt"), "cpu")
    assert loaded.obs_scale.item() == 8.0
    assert torch.equal(loaded.forward_eval(observations())[0], trained.forward_eval(observations())[0])


def test_a_checkpoint_from_before_obs_scale_plays_unscaled(tmp_path):
    torch.manual_seed(0)
    old = Policy(FeatureEnv())
    state = {key: value for key, value in old.state_dict().items() if key != "obs_scale"}
    torch.save(state, tmp_path / "old.pt")
    loaded = Policy(FeatureEnv(), obs_scale=8.0)
    load_weights(loaded, str(tmp_path / "old.pt"), "cpu")
    assert loaded.obs_scale.item() == 1.0
    assert torch.equal(loaded.forward_eval(observations())[0], old.forward_eval(observations())[0])


def test_a_checkpoint_with_a_bad_scale_shape_is_refused(tmp_path):
    state = Policy(FeatureEnv()).state_dict()
    state["obs_scale"] = torch.ones(3)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"obs_scale has shape \[3\], the policy's is \[\]"):
        load_weights(Policy(FeatureEnv()), str(tmp_path / "odd.pt"), "cpu")


@pytest.mark.parametrize("obs_scale", [0.0, -1.0, 300.0, float("nan")])
def test_obs_scale_out_of_range_is_refused(obs_scale):
    with pytest.raises(ValueError, match=r"obs_scale must be in \(0, 256\], got "):
        Policy(FeatureEnv(), obs_scale=obs_scale)


@pytest.mark.parametrize("saved", [0.0, float("nan"), 1e6])
def test_a_checkpoint_with_a_scale_out_of_range_is_refused(tmp_path, saved):
    state = Policy(FeatureEnv()).state_dict()
    state["obs_scale"] = torch.tensor(saved)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=rf"odd.pt has obs_scale {saved}, outside \(0, 256\]"):
        load_weights(Policy(FeatureEnv()), str(tmp_path / "odd.pt"), "cpu")
