"""[train] ent_anneal_from: the entropy bonus PuffeRL's loss reads at each update."""

import pytest

from flappy_rl.checks import check
from flappy_rl.config import parse_args
from flappy_rl.train import entropy_coefficient, import_pufferl, train


@pytest.mark.parametrize("anneal_from,fraction_done,expected", [
    (1.0, 0.0, 0.01), (1.0, 1.0, 0.01), (1.0, 1.2, 0.01),  # 1: constant, even past the end
    (0.5, 0.0, 0.01), (0.5, 0.5, 0.01), (0.5, 0.75, 0.005), (0.5, 1.0, 0.0),
    (0.5, 1.1, 0.0),  # PuffeRL's last batch can overshoot total_timesteps: no negative bonus
    (0.0, 0.25, 0.0075), (0.0, 1.0, 0.0),
])
def test_the_bonus_holds_then_falls_linearly_to_zero_at_the_end(anneal_from, fraction_done, expected):
    assert entropy_coefficient(0.01, anneal_from, fraction_done) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("anneal_from", [0.5, 1.0])
def test_each_update_of_a_run_gets_the_scheduled_bonus(anneal_from, tmp_path, monkeypatch):
    """16 updates of 256 birds x 64 steps: the bonus that PuffeRL's loss reads at each."""
    monkeypatch.chdir(tmp_path)
    pufferl = import_pufferl()
    seen = []
    original_update = pufferl.PuffeRL.train

    def spy(self):
        seen.append((self.global_step, self.config["ent_coef"]))
        return original_update(self)

    monkeypatch.setattr(pufferl.PuffeRL, "train", spy)
    batch = 256 * 64
    args = parse_args("train", "puffer_flappy", [
        "--train.total-timesteps", str(16 * batch), "--env.num-envs", "256", "--train.minibatch-size", "4096",
        "--train.ent-coef", "0.02", "--train.ent-anneal-from", str(anneal_from)])
    check(args)
    train(args)
    assert [step for step, _ in seen] == [batch * k for k in range(1, 17)]
    expected = [0.02 if anneal_from == 1 or k <= 8 else 0.02 * (16 - k) / 8 for k in range(1, 17)]
    assert [bonus for _, bonus in seen] == pytest.approx(expected, abs=1e-15)
    assert pufferl.PuffeRL.__name__ == "PuffeRL"  # the schedule is a subclass: PufferLib's own class is untouched
