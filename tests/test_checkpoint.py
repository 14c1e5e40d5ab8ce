"""Tests for dsqn.rundir.checkpoints: round trips, pruning, atomicity and clear errors."""

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dsqn.learning import replay as replay_lib
from dsqn.rundir.checkpoints import Checkpointer, CheckpointError, CorruptCheckpoint

SEEDS = 2
CONFIG = {"game": "Pong", "network": {"T": 8, "tau": 2.0}, "total_agent_steps": 1000}


def make_state(offset: float = 0.0, conv1_out: int = 4) -> dict:
    """A small train state with a leading seed axis, shaped like the real one."""
    params = {
        "conv1": {"kernel": jnp.full((SEEDS, 3, 3, 2, conv1_out), 1.0 + offset)},
        "fc": {"kernel": jnp.arange(SEEDS * 6.0).reshape(SEEDS, 3, 2) + offset},
    }
    return {
        "params": params,
        "target_params": jax.tree.map(lambda x: x * 2.0, params),
        "opt_state": jax.vmap(optax.adam(1e-4).init)(params),
        "agent_steps": jnp.array([7, 7], jnp.int32),
        "key": jax.random.split(jax.random.key(int(offset)), SEEDS),
        "raw_key": jax.random.split(jax.random.PRNGKey(int(offset) + 1), SEEDS),
        "best": {"score": jnp.array([1.5, -2.0]) + offset, "params": params},
    }


def make_replay() -> dict:
    frames = jnp.arange(SEEDS * 16 * 8 * 8, dtype=jnp.int32).reshape(SEEDS, 16, 8, 8) % 256
    return {
        "frames": frames.astype(jnp.uint8),
        "action": jnp.ones((SEEDS, 16), jnp.int32),
        "cursor": jnp.array([3, 5], jnp.int32),
    }


def assert_trees_equal(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        if jax.dtypes.issubdtype(e.dtype, jax.dtypes.prng_key):
            a, e = jax.random.key_data(a), jax.random.key_data(e)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def metadata(agent_steps: int) -> dict:
    return {"config": CONFIG, "agent_steps": agent_steps}


def test_roundtrip_with_replay_and_both_kinds_of_keys(tmp_path: Path) -> None:
    state, replay = make_state(), make_replay()
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        ckpt.save(100, state, replay=replay, metadata=metadata(100))
        assert ckpt.has_replay(100)
        template = jax.eval_shape(make_state)
        restored = ckpt.restore(
            state_template=template,
            replay_template=jax.eval_shape(make_replay),
            expected_config=CONFIG,
        )
    assert_trees_equal(restored.state, state)
    assert_trees_equal(restored.replay, replay)
    assert jax.dtypes.issubdtype(restored.state["key"].dtype, jax.dtypes.prng_key)
    assert restored.state["raw_key"].dtype == jnp.uint32
    assert isinstance(restored.state["opt_state"][0], optax.ScaleByAdamState)
    assert restored.metadata == metadata(100)


def test_roundtrip_of_a_prioritized_replay(tmp_path: Path) -> None:
    """The replay's priorities, maximum and last updates survive a checkpoint exactly."""
    rule = replay_lib.PriorityRule(max_tracking="last_updated")

    def make():
        rep = replay_lib.init(12, 2, np.zeros((4, 6, 6), np.uint8), priority_rule=rule)
        return jax.vmap(lambda _: rep)(jnp.arange(SEEDS))

    rep = make()
    td = jnp.array([[0.5, 2.0], [3.0, 0.1]])
    rep = jax.vmap(replay_lib.update_priorities, in_axes=(0, None, None, 0, None))(
        rep, jnp.array([0, 1]), jnp.array([1, 0]), td, rule
    )
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        ckpt.save(3, make_state(), replay=rep, metadata=metadata(3))
        restored = ckpt.restore(
            state_template=jax.eval_shape(make_state), replay_template=jax.eval_shape(make)
        )
    assert_trees_equal(restored.replay, rep)
    assert restored.replay.priority_max.shape == (SEEDS,)


def test_checkpoint_without_replay_returns_none_with_a_warning(tmp_path: Path) -> None:
    state = make_state()
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, state, metadata=metadata(1))
        assert not ckpt.has_replay(1)
        state_restored, replay, meta = ckpt.restore(state_template=state)
        assert replay is None
        with pytest.warns(UserWarning, match="has no replay"):
            state_restored, replay, _ = ckpt.restore(
                state_template=state, replay_template=make_replay()
            )
    assert replay is None
    assert_trees_equal(state_restored, state)


def test_pruning_latest_and_specific_step(tmp_path: Path) -> None:
    with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
        assert ckpt.latest_step() is None and ckpt.all_steps() == []
        for step in (10, 20, 30):
            ckpt.save(step, make_state(offset=step), metadata=metadata(step))
        assert ckpt.all_steps() == [20, 30]
    # A fresh Checkpointer (a resumed run) sees the same steps.
    with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
        assert ckpt.latest_step() == 30
        assert ckpt.read_metadata()["agent_steps"] == 30
        state, _, meta = ckpt.restore(20, state_template=make_state())
    assert meta["agent_steps"] == 20
    assert_trees_equal(state, make_state(offset=20))


def test_asynchronous_save_roundtrip(tmp_path: Path) -> None:
    state = make_state(offset=3)
    with Checkpointer(tmp_path, asynchronous=True) as ckpt:
        ckpt.save(5, state, replay=make_replay(), metadata=metadata(5))
        assert ckpt.latest_step() == 5
        restored = ckpt.restore(state_template=state, replay_template=make_replay())
    assert_trees_equal(restored.state, state)
    assert_trees_equal(restored.replay, make_replay())


def test_no_checkpoints_and_missing_step_errors(tmp_path: Path) -> None:
    with Checkpointer(tmp_path / "empty") as ckpt:
        with pytest.raises(CheckpointError, match="no checkpoints in .*empty"):
            ckpt.restore(state_template=make_state())
    with Checkpointer(tmp_path / "run") as ckpt:
        ckpt.save(1, make_state(), metadata=metadata(1))
        ckpt.save(2, make_state(), metadata=metadata(2))
        with pytest.raises(
            CheckpointError, match=r"step 7 .* does not exist; available steps: \[1, 2\]"
        ):
            ckpt.restore(7, state_template=make_state())


# After a failed read, orbax's background I/O may call back into its already closed event
# loop; Python reports that as an unraisable exception at garbage collection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_corrupt_arrays_and_metadata_raise_checkpoint_error(tmp_path: Path) -> None:
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(), metadata=metadata(1))
        ckpt.save(2, make_state(), metadata=metadata(2))
    for path in (tmp_path / "2" / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":  # the OCDBT data files
            data = path.read_bytes()
            path.write_bytes(bytes(b ^ 0x5A for b in data[: len(data) // 2]))
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CorruptCheckpoint, match=r"step 2 .*corrupt.*valid checkpoints: \[1\]"):
            ckpt.restore(state_template=make_state())
        assert ckpt.valid_steps() == [1] and ckpt.all_steps() == [1, 2]
        state, _, _ = ckpt.restore(1, state_template=make_state())
    assert_trees_equal(state, make_state())

    (tmp_path / "1" / "metadata" / "metadata").write_text('{"config": {"game": ')
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CorruptCheckpoint, match=r"step 1 .*\(metadata\).*no other checkpoint"):
            ckpt.restore(1, state_template=make_state())
        # Set aside, not deleted: the step no longer counts, its files stay.
        aside = ckpt.set_aside(2)
        assert ckpt.all_steps() == [1] and aside.name.startswith("2.corrupt-")
        assert (aside / "state").is_dir()


def test_incompatible_tree_names_the_leaves(tmp_path: Path) -> None:
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(), replay=make_replay(), metadata=metadata(1))
        template = make_state(conv1_out=8)
        template["new_counter"] = jnp.zeros((SEEDS,), jnp.int32)
        del template["best"]
        replay_template = {**make_replay(), "frames": jnp.zeros((SEEDS, 32, 8, 8), jnp.uint8)}
        with pytest.raises(CheckpointError) as info:
            ckpt.restore(state_template=template, replay_template=replay_template)
    message = str(info.value)
    assert (
        "params/conv1/kernel: checkpoint (2, 3, 3, 2, 4) float32 vs expected (2, 3, 3, 2, 8)"
        " float32" in message
    )
    assert "opt_state/0/mu/conv1/kernel: checkpoint" in message
    assert "new_counter: in the template but not in the checkpoint" in message
    assert "best/score: in the checkpoint but not in the template" in message
    assert (
        "replay/frames: checkpoint (2, 16, 8, 8) uint8 vs expected (2, 32, 8, 8) uint8" in message
    )


def test_incompatible_config_names_the_fields(tmp_path: Path) -> None:
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(), metadata=metadata(1))
        expected = {**CONFIG, "network": {"T": 64, "tau": 2.0}, "total_agent_steps": 5000}
        with pytest.raises(CheckpointError) as info:
            ckpt.restore(state_template=make_state(), expected_config=expected)
        assert "config.network.T: checkpoint 8 vs expected 64" in str(info.value)
        assert "config.total_agent_steps" in str(info.value)
        with pytest.raises(CheckpointError, match="config.network.T") as info:
            ckpt.restore(
                state_template=make_state(),
                expected_config=expected,
                ignore_config_fields=("total_agent_steps",),
            )
        assert "total_agent_steps" not in str(info.value)
        ckpt.restore(
            state_template=make_state(),
            expected_config=expected,
            ignore_config_fields=("network", "total_agent_steps"),
        )


def test_a_field_added_later_compares_as_its_old_value(tmp_path: Path) -> None:
    """A checkpoint written before ``sweep`` existed restores under a config without a sweep,
    and not under one with a sweep."""
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(), metadata=metadata(1))
        added = {"sweep.network_tau": []}
        plain = {**CONFIG, "sweep": {"network_tau": []}}
        ckpt.restore(state_template=make_state(), expected_config=plain, absent_config_fields=added)
        swept = {**CONFIG, "sweep": {"network_tau": [1.5, 4.0]}}
        with pytest.raises(CheckpointError, match="config.sweep.network_tau: checkpoint \\[\\]"):
            ckpt.restore(
                state_template=make_state(), expected_config=swept, absent_config_fields=added
            )
        with pytest.raises(CheckpointError, match="checkpoint <absent> vs expected \\[\\]"):
            ckpt.restore(state_template=make_state(), expected_config=plain)


def test_leftovers_of_interrupted_saves_are_ignored_then_cleared(tmp_path: Path) -> None:
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(), metadata=metadata(1))
    # A save killed before its rename leaves a temporary directory without the commit file; an
    # interrupted copy of the run leaves a step directory without it.
    shutil.copytree(tmp_path / "1", tmp_path / "2.orbax-checkpoint-tmp-1700000000")
    (tmp_path / "2.orbax-checkpoint-tmp-1700000000" / "commit_success.txt").unlink()
    (tmp_path / "3" / "state").mkdir(parents=True)
    (tmp_path / "3" / "state" / "_METADATA").write_text("{")

    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.all_steps() == [1]
        assert ckpt.latest_step() == 1
        state, _, _ = ckpt.restore(state_template=make_state())
        assert_trees_equal(state, make_state())
        with pytest.raises(CheckpointError, match="step 3 .* is incomplete"):
            ckpt.restore(3, state_template=make_state())
        with pytest.warns(UserWarning) as record:
            ckpt.save(2, make_state(offset=2), metadata=metadata(2))
        messages = " ".join(str(w.message) for w in record)
        assert "left over by an interrupted save" in messages
        assert "3 is not a complete checkpoint" in messages
        assert ckpt.all_steps() == [1, 2]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "3" not in names and any(n.startswith("3.incomplete-") for n in names)
    assert not any("orbax-checkpoint-tmp" in n for n in names)


def test_save_rejects_non_increasing_steps_and_bad_metadata(tmp_path: Path) -> None:
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(5, make_state(), metadata=metadata(5))
        with pytest.raises(CheckpointError, match=r"cannot save step 3 .*\[5\] already exist"):
            ckpt.save(3, make_state(), metadata=metadata(3))
        ckpt.delete(5)
        ckpt.save(3, make_state(), metadata=metadata(3))
        assert ckpt.all_steps() == [3]
        with pytest.raises(ValueError, match="JSON"):
            ckpt.save(4, make_state(), metadata={"config": {"x": object()}})
    with pytest.raises(ValueError, match="max_to_keep"):
        Checkpointer(tmp_path, max_to_keep=0)


def test_keep_all_checkpoints(tmp_path):
    import jax.numpy as jnp

    ckpt = Checkpointer(tmp_path / "all", max_to_keep=None)
    for step in (1, 2, 3, 4):
        ckpt.save(step, {"x": jnp.full((2,), step)}, metadata={"step": step})
    assert ckpt.all_steps() == [1, 2, 3, 4]
    ckpt.close()
