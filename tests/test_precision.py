"""run.matmul_precision: every training and evaluation program is traced at the configured
precision; on CPU all levels compute the same float32 bits (as the README states)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsqn import config as C
from dsqn.learning.evaluation import Evaluator
from dsqn.models.networks import DQN
from dsqn.runtime.precision import MATMUL_PRECISIONS, matmul_precision
from dsqn.training.chunk import make_train


def _tiny(precision: str) -> C.Config:
    return C.apply_overrides(
        C.preset("cartpole-dqn"),
        {
            "run.seeds": "0",
            "network.hidden_sizes": "8",
            "learner.warmup_agent_steps": "0",
            "learner.batch_size": "4",
            "learner.replay_capacity_transitions": "64",
            "eval.episodes": "2",
            "eval.max_episode_agent_steps": "5",
            "run.matmul_precision": precision,
        },
    )


def _precisions(hlo: str) -> set[str]:
    """The precision levels of the dot products and convolutions of a lowered program."""
    lines = [line for line in hlo.splitlines() if "dot_general" in line or "convolution" in line]
    assert lines, "the program has no matrix products"
    return {level for line in lines for level in re.findall(r"\b(DEFAULT|HIGHEST|HIGH)\b", line)}


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_training_and_evaluation_programs_take_the_configured_precision(precision):
    config = _tiny(precision)
    assert C.to_dict(config)["run"]["matmul_precision"] == precision  # recorded in config.json
    exp = make_train(config)
    carry = exp.init_carry()
    level = precision.upper()
    # Traced inside the program: the caller's context does not matter.
    with matmul_precision("high"):
        chunk = exp.chunk_fn(2).lower(carry).as_text()
    assert _precisions(chunk) == {level}
    evaluator = Evaluator(config, exp.network, [0])
    evaluator(carry.train.params, jnp.stack([jax.random.key(1)]))
    (run,) = evaluator._runs.values()
    timestep = jax.tree.map(lambda x: x[:2], carry.timestep)
    handles = tuple(x.handle for x in evaluator._xla)
    keys = jnp.stack([jax.random.key(1)])
    hlo = run.lower(evaluator._values, carry.train.params, keys, 0.0, handles, timestep)
    assert _precisions(hlo.as_text()) == {level}


def test_every_level_computes_the_same_float32_on_cpu():
    if jax.default_backend() != "cpu":
        pytest.skip("a statement about XLA:CPU")
    net = DQN(6)
    obs = jax.random.randint(jax.random.key(0), (8, 4, 84, 84), 0, 256).astype(jnp.uint8)
    params = net.init(jax.random.key(1), obs)["params"]
    q = {}
    for level in MATMUL_PRECISIONS:
        with matmul_precision(level):
            q[level] = np.asarray(jax.jit(net.apply)({"params": params}, obs))
    for level in MATMUL_PRECISIONS:
        np.testing.assert_array_equal(q[level], q["highest"], err_msg=level)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="'tf32'.*default, high, highest"):
        matmul_precision("tf32")
    with pytest.raises(C.ConfigError, match="run.matmul_precision"):
        C.validate(_tiny("fastest"))
