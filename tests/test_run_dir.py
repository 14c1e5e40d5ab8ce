"""dsqn.rundir.files: the run directory's files, written atomically and readable by colleagues."""

import dataclasses
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dsqn import config as C
from dsqn.learning.evaluation import EvalResult
from dsqn.learning.evaluation_stats import seed_summaries
from dsqn.rundir import files as rd


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Sets the process umask to the value given, restoring it after the test."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_write_json_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    rd.write_json(path, {"a": 1})
    rd.write_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        rd.write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_written_files_have_the_mode_of_any_new_file(tmp_path: Path, umask) -> None:
    for mask in (0o022, 0o027):
        umask(mask)
        reference = tmp_path / f"plain-{mask:o}.csv"
        reference.write_text("x\n")
        written = rd.write_json(tmp_path / f"written-{mask:o}.json", {})
        assert mode(written) == mode(reference) == 0o666 & ~mask


def test_every_file_of_a_run_is_readable_by_others(tiny_cartpole_dqn_run: Path, umask) -> None:
    """The tiny run is made under the test process's umask (022 unless set otherwise)."""
    files = [p for p in tiny_cartpole_dqn_run.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "evaluation.json", "metrics.csv"}
    modes = {p.name: mode(p) for p in files}
    assert len(set(modes.values())) == 1, modes


def test_read_json_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"a.json is not valid JSON"):
        rd.read_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"b.json should hold a JSON object, got list"):
        rd.read_json(tmp_path / "b.json")


def test_config_round_trip_with_spaces_and_conversion(tmp_path: Path) -> None:
    config = C.preset("cartpole-dqn")
    spaces = rd.Spaces((4,), "float32", 2)
    rd.write_config(tmp_path, config, command=["dsqn", "x"], spaces=spaces)
    assert rd.read_config(tmp_path) == config
    assert rd.read_spaces(tmp_path) == spaces
    assert rd.conversion_settings(tmp_path) is None
    rd.write_config(
        tmp_path, config, command=None, spaces=spaces, name="converted-snn", conversion={"x": 1}
    )
    assert rd.read_config(tmp_path).name == "converted-snn"
    assert rd.conversion_settings(tmp_path) == {"x": 1}
    data = rd.read_config_data(tmp_path)
    del data["meta"]["spaces"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert rd.read_spaces(tmp_path) is None


def test_evaluation_record_by_hand() -> None:
    result = EvalResult(
        returns=np.array([[1.0, 3.0], [10.0, 10.0]]),
        lengths=np.array([[5, 7], [9, 9]]),
        max_q=np.array([[0.5, np.nan], [2.0, 4.0]]),
        mean_max_q=np.array([[0.5, 1.5], [2.0, 4.0]]),
        spike_sums=None,
        steps=np.array([12.0, 18.0]),
    )
    per_seed = seed_summaries(result, [3, 8], [100, 60])
    assert per_seed["3"] == {
        "agent_steps": 100,
        "mean": 2.0,
        "std": 1.0,
        "scores": [1.0, 3.0],
        "lengths": [5, 7],
        "average_max_q": 0.5,  # the episode without a greedy step is left out
        "average_mean_max_q": 1.0,
    }
    assert per_seed["8"]["mean"] == 10.0 and per_seed["8"]["average_max_q"] == 3.0
    config = C.preset("dsqn")
    record = rd.evaluation_record(
        config,
        name="dsqn",
        agent_steps=100,
        episodes=2,
        epsilon=0.05,
        per_seed={"3": {"final": per_seed["3"], "best": None}, "8": {"final": per_seed["8"]}},
    )
    assert record["frames"] == 400  # Atari: 4 frames per agent step
    assert record["summary"]["final"] == {"mean": 6.0, "std_over_seeds": 4.0, "seeds": 2}
    assert record["summary"]["best"] == {"mean": None, "std_over_seeds": None, "seeds": 0}
    assert rd.frames_per_agent_step("classic") == 1
    with pytest.raises(ValueError, match="suite 'mujoco' unknown; known: atari, classic"):
        rd.frames_per_agent_step("mujoco")


def test_checkpoint_steps(tiny_cartpole_dqn_run: Path, tmp_path: Path) -> None:
    assert rd.checkpoint_steps(tiny_cartpole_dqn_run) == [200, 400]
    assert rd.checkpoint_steps(tmp_path) == []


def test_a_run_older_than_a_field_reads_as_it_was_trained(tmp_path: Path) -> None:
    """config.json written before life_loss_stack, head, neuron_backend, matmul_precision and
    sweep existed: they read as the behaviour of that time, not today's defaults."""
    data = C.to_dict(C.preset("dsqn"))
    for path in rd.ADDED_FIELDS:
        section, field = path.split(".")
        del data[section][field]
    (tmp_path / rd.CONFIG).write_text(json.dumps(data))
    config = rd.read_config(tmp_path)
    assert config.env.life_loss_stack == "carry" != C.preset("dsqn").env.life_loss_stack
    assert config.network.head == "linear" and config.network.neuron_backend == "scan"
    assert config.run.matmul_precision == "default" and config.sweep == C.SweepConfig()
    assert config.learner.neuron_learning_rate_scale == 1.0
    assert config.network.dueling_joined is True  # fc2 was trained whole
    assert config.network.norm == "none" and config.learner.weight_decay == 0.0


FIELDS_OF_THE_FIRST_RUNS = frozenset(
    """name network.kind network.time_steps network.neuron network.tau network.v_threshold
    network.v_reset network.decay_input network.detach_reset network.surrogate
    network.surrogate_alpha network.readout network.learn_threshold network.param_init
    network.hidden_sizes network.compute_dtype env.suite env.game env.protocol env.envs_per_seed
    env.max_episode_agent_steps env.stepping learner.loss learner.td_error learner.discount
    learner.learning_rate learner.adam_eps learner.max_grad_norm learner.batch_size
    learner.update_period_agent_steps learner.target_update_period_agent_steps
    learner.warmup_agent_steps learner.schedule_counts_warmup learner.epsilon_schedule
    learner.epsilon_start learner.epsilon_mid learner.epsilon_mid_agent_steps learner.epsilon_end
    learner.epsilon_decay_agent_steps learner.truncation_bootstraps learner.cdqn_double_q
    learner.replay_capacity_transitions learner.replay_sampling learner.priority_exponent
    learner.priority_epsilon learner.priority_initial_max learner.priority_max_tracking
    learner.priority_floor_of_mean learner.priority_predecessor_fraction
    learner.importance_exponent_start learner.importance_exponent_anneal_agent_steps
    learner.importance_weights_normalized learner.importance_weight_max eval.period_agent_steps
    eval.episodes eval.epsilon eval.max_episode_agent_steps eval.best_ties run.total_agent_steps
    run.seeds run.log_period_agent_steps run.checkpoint_period_agent_steps
    run.checkpoint_period_minutes run.save_replay run.check_memory run.keep_checkpoints
    run.shard_seeds""".split()
)
"""The config fields of the first saved runs. A field added since must be in
``rd.ADDED_FIELDS`` with the behaviour runs had before it existed."""


def _config_fields() -> set[str]:
    paths = set()
    for section in dataclasses.fields(C.Config):
        value = getattr(C.Config(), section.name)
        if dataclasses.is_dataclass(value):
            paths |= {f"{section.name}.{f.name}" for f in dataclasses.fields(value)}
        else:
            paths.add(section.name)
    return paths


def test_every_field_added_since_the_first_runs_says_how_those_runs_behave() -> None:
    """A new config field without an ``ADDED_FIELDS`` entry would make every older run read
    with today's default: resumed, loaded and re-evaluated with a behaviour it never had."""
    fields = _config_fields()
    unlisted = fields - FIELDS_OF_THE_FIRST_RUNS - set(rd.ADDED_FIELDS)
    assert not unlisted, (
        f"config fields {sorted(unlisted)} need an entry in dsqn.rundir.files.ADDED_FIELDS: the "
        "value that gives runs saved before the field existed their behaviour"
    )
    assert set(rd.ADDED_FIELDS) <= fields
    assert not FIELDS_OF_THE_FIRST_RUNS & set(rd.ADDED_FIELDS)
    # Each entry is a value the field can take: a config holding all of them validates.
    data = C.to_dict(C.preset("dsqn"))
    for path, value in rd.ADDED_FIELDS.items():
        section, field = path.split(".")
        data[section][field] = value
    C.validate(C.from_dict(data))
