"""Test-wide settings: strict rank promotion, CPU only, deterministic hypothesis profile."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from processes import kill_all  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    """Child processes of a test (and their children) are killed when it ends, however."""
    yield
    kill_all()


TINY_CARTPOLE_DQN = [
    "train", "cartpole-dqn", "--seeds", "0",
    "--run.total_agent_steps", "400",
    "--run.log_period_agent_steps", "200",
    "--run.checkpoint_period_agent_steps", "200",
    "--eval.period_agent_steps", "200",
    "--eval.episodes", "2",
    "--eval.max_episode_agent_steps", "30",
    "--learner.warmup_agent_steps", "100",
    "--learner.replay_capacity_transitions", "1000",
    "--network.hidden_sizes", "16",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_cartpole_dqn_run(tmp_path_factory):
    """A real, tiny `cartpole-dqn` run directory (one seed, 400 agent steps), made once."""
    from dsqn import cli

    run_dir = tmp_path_factory.mktemp("shared-runs") / "dqn"
    assert cli.main([*TINY_CARTPOLE_DQN, "--run-dir", str(run_dir)]) == 0
    return run_dir
