"""dsqn.training.memory_budget: the figures of a run's memory, and runs refused or warned before
they allocate."""

import math
import warnings

import pytest

from dsqn import config as C
from dsqn.cli import main
from dsqn.training import memory_budget as memory
from dsqn.training.chunk import make_train


def _budget(available: int, seeds: int = 2) -> memory.Budget:
    return memory.Budget(
        "host RAM", available, seeds, replay_per_seed=3e9, state_per_seed=1e9, capacity=10**6,
        devices=1,
    )  # fmt: skip


def test_check_refuses_warns_or_passes_by_the_figures():
    with pytest.raises(memory.InsufficientMemory) as info:
        memory.check([_budget(int(7.9e9))])
    message = str(info.value)
    assert "needs about 8.00 GB of host RAM: replay 2 x 3.00 GB" in message
    assert "7.90 GB is available" in message
    assert "--learner.replay_capacity_transitions (now 1,000,000, 3,000 bytes per" in message
    assert "--seeds: 2 here" in message and "--run.check_memory false" in message
    with pytest.warns(UserWarning, match="does not fit"):
        memory.check([_budget(int(7.9e9))], refuse=False)
    with pytest.warns(UserWarning, match="little memory to spare"):
        memory.check([_budget(int(9e9))])  # 8 GB of 9 GB: over 80 %
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory.check([_budget(int(11e9))])
        # The compiled chunk's scratch counts on the device (the first budget) only.
        memory.check([_budget(int(11e9)), _budget(int(11e9))], scratch=0)
    with pytest.raises(memory.InsufficientMemory, match="compiled chunk scratch 2.00 GB"):
        memory.check([_budget(int(9.9e9))], scratch=int(2e9))
    with pytest.warns(UserWarning, match="little memory"):
        memory.check([_budget(int(11e9)), _budget(int(9e9))], scratch=int(2e9))


def _nature_dqn_params(actions: int) -> int:
    layers = [(8 * 8 * 4, 32), (4 * 4 * 32, 64), (3 * 3 * 64, 64), (3136, 512), (512, actions)]
    return sum(fan_in * out + out for fan_in, out in layers)


def test_budget_of_the_papers_atari_run_from_the_architecture():
    """Pong, the paper's DSQN: a replay of 1M transitions of one 84x84 frame, an action, a
    reward and a flag byte, plus the newest stack; five parameter copies (online, target,
    best, two Adam moments) of the Nature-DQN shapes."""
    exp = make_train(C.apply_overrides(C.preset("dsqn"), {"run.seeds": "0 1 2"}))
    (b,) = memory.budget(exp)
    assert b.where == "host RAM" and b.seeds == 3 and b.capacity == 10**6
    counters = 3 * 4  # head, filled, unrepresentable
    assert b.replay_per_seed == 10**6 * (84 * 84 + 1 + 4 + 1) + 4 * 84 * 84 + counters
    params = _nature_dqn_params(6)
    # Adam's step count, the key (2 x uint32), updates, best return and best step: 4 bytes each.
    assert b.state_per_seed == 5 * 4 * params + 4 + 8 + 3 * 4
    assert math.isclose(b.data, 3 * (7.062e9 + 5 * 4 * params), rel_tol=1e-4)


def test_papers_five_seeds_are_refused_on_a_24_gb_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 24 * 10**9)
    run = tmp_path / "run"
    assert main(["train", "dsqn", "--seeds", "0", "1", "2", "3", "4", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "needs about 35.48 GB of host RAM: replay 5 x 7.06 GB" in err
    assert "24.00 GB is available" in err and "--learner.replay_capacity_transitions" in err
    assert not run.exists()


def test_compiled_scratch_is_checked_before_the_first_chunk_runs(tmp_path, capsys, monkeypatch):
    """Replays and states fit with one byte to spare (a warning); the chunk's scratch memory
    then does not, and the run stops before its first chunk."""
    small = {
        "run.seeds": "0",
        "network.hidden_sizes": "16",
        "learner.replay_capacity_transitions": "4000",
    }
    cfg = C.apply_overrides(C.preset("cartpole-dqn"), small)
    args = ["train", "cartpole-dqn", "--no-progress"]
    args += [token for field, value in small.items() for token in (f"--{field}", value)]
    (b,) = memory.budget(make_train(cfg))
    monkeypatch.setattr(memory, "host_available_bytes", lambda: b.data + 1)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="little memory to spare"):
        assert main([*args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "compiled chunk scratch" in err and "does not fit" in err
    assert (
        not (run / "metrics.csv").exists()
        or len((run / "metrics.csv").read_text().splitlines()) <= 1
    )
