"""dsqn.load_agent: a trained or converted run's agent, in two lines, without an environment.

The agents' Q-values and actions are checked against the evaluations the runs wrote: each
evaluation's games are replayed here on envpool's Python API, by a loop written independently of
:class:`dsqn.learning.evaluation.Evaluator` (same env seeds, same per-step key splits), acting with
``Agent.act`` and recording ``max_a Agent.q``; scores, lengths and average max-Q must equal
the evaluation's.
"""

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import dsqn
from dsqn import cli
from dsqn.analyses.convert_run import ConversionOptions, convert_run
from dsqn.envs import make_seed_pool
from dsqn.rundir.checkpoints import CheckpointError
from dsqn.runtime import prng


@pytest.fixture(scope="module")
def trained_run(tiny_cartpole_dqn_run):
    return tiny_cartpole_dqn_run


@pytest.fixture(scope="module")
def converted_run(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "snn"
    convert_run(
        trained_run, out, ConversionOptions(time_steps=20, normalization_frames=100, episodes=2)
    )
    return out


def replay_evaluation(agent, episodes: int, epsilon: float, key: jax.Array):
    """Plays the evaluation protocol's games of ``agent``'s seed on the host: ``episodes`` envs
    of its evaluation pool, each one full game; the stream ``key`` is split every step into the
    next key and the step's action key. Returns per episode the return, the length, the mean
    over its steps of ``max_a Q`` and the maximum over its steps of ``max_a Q``."""
    env = make_seed_pool(agent.config, episodes, [agent.seed], train=False)
    obs, _ = env.reset()
    finished = np.zeros(episodes, bool)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, int)
    q_sums, q_maxes = np.zeros(episodes), np.full(episodes, -np.inf)
    while not finished.all():
        key, act_key = jax.random.split(key)
        best = np.asarray(agent.q(obs)).max(axis=1)
        actions = np.asarray(agent.act(obs, key=act_key, epsilon=epsilon))
        counted = ~finished
        q_sums += best * counted
        q_maxes = np.where(counted, np.maximum(q_maxes, best), q_maxes)
        obs, reward, terminated, truncated, _ = env.step(actions)
        returns += reward * counted
        lengths += counted
        finished |= (terminated | truncated) & counted
    env.close()
    return returns, lengths, q_sums / lengths, q_maxes


def assert_replays(agent, summary, episodes, epsilon, key):
    """The replayed games equal the evaluation's; with epsilon 0 every step is greedy, so the
    paper's average max Q (over greedy steps) is checked too."""
    returns, lengths, mean_max_q, max_q = replay_evaluation(agent, episodes, epsilon, key)
    np.testing.assert_array_equal(returns, summary["scores"])
    np.testing.assert_array_equal(lengths, summary["lengths"])
    np.testing.assert_allclose(mean_max_q.mean(), summary["average_mean_max_q"], rtol=1e-5)
    if epsilon == 0:
        np.testing.assert_allclose(max_q.mean(), summary["average_max_q"], rtol=1e-5)


def test_two_lines_from_the_package(trained_run):
    agent = dsqn.load_agent(trained_run, "best")
    obs = np.zeros((3, 4), np.float32)
    assert agent.q(obs).shape == (3, 2) and agent.q(obs).dtype == np.float32
    assert agent.act(obs).shape == (3,) and agent.act(obs).dtype == np.int32
    assert (agent.seed, agent.checkpoint, agent.spaces.num_actions) == (0, "best", 2)
    assert agent.config.name == "cartpole-dqn"


def test_an_agent_prints_as_a_one_line_summary_without_its_arrays(trained_run, converted_run):
    agent = dsqn.load_agent(trained_run, "best")
    text = repr(agent)
    assert str(agent) == text  # print(agent)
    # fc1 4 -> 16 and out 16 -> 2, weights and biases.
    assert agent.parameter_count == 4 * 16 + 16 + 16 * 2 + 2 == 114
    assert text == (
        f"Agent(run_dir={str(trained_run)!r}, seed=0, checkpoint='best', agent_steps=200, "
        "observations=float32[4], actions=2, network=MLPDQN (network.kind 'dqn', "
        "114 parameters))"
    )
    assert "Array" not in text and "[[" not in text and "\n" not in text
    # A sweep point's values follow its seed; a converted agent names its spiking network.
    point = dataclasses.replace(agent, values={"network.tau": 1.5})
    assert ", seed=0, network.tau=1.5, checkpoint='best'," in repr(point)
    converted = repr(dsqn.load_agent(converted_run, "best"))
    assert "network=ConvertedMLPSNN (" in converted and "114 parameters" in converted


@pytest.mark.parametrize("checkpoint", ["best", "final"])
def test_q_and_act_are_what_dsqn_evaluate_played(trained_run, checkpoint):
    """With exploration, so that the keys, epsilon-greedy draws and Q-values must all match."""
    epsilon = 0.5
    args = ["evaluate", str(trained_run), "--checkpoint", checkpoint, "--episodes", "3"]
    assert cli.main([*args, "--epsilon", str(epsilon)]) == 0
    evaluated = json.loads((trained_run / "evaluations" / f"{checkpoint}.json").read_text())
    agent = dsqn.load_agent(trained_run, checkpoint)
    summary = evaluated["per_seed"]["0"]
    assert agent.agent_steps == summary["agent_steps"]
    key = prng.stream_key(0, prng.Stream.EVALUATE)
    assert_replays(agent, summary, 3, epsilon, key)


def test_best_is_the_evaluated_best_and_steps_name_checkpoints(trained_run):
    evaluation = json.loads((trained_run / "evaluation.json").read_text())["per_seed"]["0"]
    best = dsqn.load_agent(trained_run, "best")
    assert best.agent_steps == evaluation["best"]["agent_steps"] == 200
    # The best parameters are those the checkpoint of their evaluation's step saved.
    selected = dsqn.load_agent(trained_run, best.agent_steps)
    jax.tree.map(np.testing.assert_array_equal, best.params, selected.params)
    final = dsqn.load_agent(trained_run, "final")
    assert final.agent_steps == evaluation["final"]["agent_steps"] == 400
    by_step = dsqn.load_agent(trained_run, 400)
    jax.tree.map(np.testing.assert_array_equal, by_step.params, final.params)
    assert not np.array_equal(best.params["out"]["kernel"], final.params["out"]["kernel"])


def test_converted_agent_is_what_the_conversion_evaluated(converted_run, trained_run):
    agent = dsqn.load_agent(converted_run, "best")
    assert agent.config.name == "converted-snn" and agent.network.time_steps == 20
    evaluation = json.loads((converted_run / "evaluation.json").read_text())
    summary = evaluation["per_seed"]["0"]["best"]
    key = prng.stream_key(0, prng.Stream.CONVERSION_EVAL)
    assert_replays(agent, summary, 2, evaluation["epsilon"], key)
    # The output layer's parameters are the source's divided by its scale.
    scale = json.loads((converted_run / "conversion.json").read_text())["per_seed"]["0"]
    source = dsqn.load_agent(trained_run, "best")
    np.testing.assert_allclose(
        agent.params["out"]["bias"], source.params["out"]["bias"] / scale["scales"]["out"], 1e-6
    )


def test_loading_needs_no_envpool(trained_run, converted_run):
    """In a fresh interpreter where importing envpool fails, both runs load and give the same
    Q-values as here."""
    obs = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["envpool"] = None  # any import of envpool now raises ImportError
        import numpy as np
        import dsqn
        obs = np.asarray({obs.tolist()}, np.float32)
        out = {{run: np.asarray(dsqn.load_agent(run).q(obs)).tolist()
               for run in ({str(trained_run)!r}, {str(converted_run)!r})}}
        assert not any(name.startswith("dsqn.envs") for name in sys.modules)
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    q = json.loads(done.stdout.strip().splitlines()[-1])
    for run in (trained_run, converted_run):
        np.testing.assert_allclose(q[str(run)], dsqn.load_agent(run).q(obs), rtol=1e-6)


def test_a_run_without_recorded_spaces_still_loads(trained_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    config = json.loads((old / "config.json").read_text())
    del config["meta"]["spaces"]
    (old / "config.json").write_text(json.dumps(config))
    agent = dsqn.load_agent(old, "best")
    assert agent.spaces == dsqn.load_agent(trained_run, "best").spaces
    obs = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(agent.q(obs), dsqn.load_agent(trained_run).q(obs))


def test_bad_input_gets_a_clear_error(trained_run, converted_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope is not a run directory: .* does not exist"):
        dsqn.load_agent(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json does not exist"):
        dsqn.load_agent(tmp_path)
    with pytest.raises(ValueError, match=r"'bestest' is not valid: .* checkpoint: \[200, 400\]"):
        dsqn.load_agent(trained_run, "bestest")
    with pytest.raises(CheckpointError, match=r"step 999 .* available steps: \[200, 400\]"):
        dsqn.load_agent(trained_run, 999)
    with pytest.raises(ValueError, match=r"no seed 7; its seeds are \[0\]"):
        dsqn.load_agent(trained_run, seed=7)
    with pytest.raises(ValueError, match="converted from checkpoint 'best'"):
        dsqn.load_agent(converted_run, "final")
    agent = dsqn.load_agent(trained_run)
    with pytest.raises(ValueError, match=r"\[B, 4\] \(float32.*got shape \(4,\)"):
        agent.q(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="needs a key"):
        agent.act(np.zeros((1, 4), np.float32), epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon must lie in"):
        agent.act(np.zeros((1, 4), np.float32), key=jax.random.key(0), epsilon=1.5)
