"""dsqn.config: the paper's numbers as defaults, presets, overrides, validation errors."""

import dataclasses

import pytest

from dsqn import config as C


def test_paper_defaults():
    cfg = C.preset("dsqn")
    n, lr, ev, r, e = cfg.network, cfg.learner, cfg.eval, cfg.run, cfg.env
    assert (n.kind, n.time_steps, n.neuron, n.tau, n.v_threshold, n.v_reset) == (
        "dsqn", 64, "lif", 2.0, 1.0, 0.0,
    )  # fmt: skip
    assert (n.detach_reset, n.surrogate, n.surrogate_alpha, n.readout, n.decay_input) == (
        False, "atan", 2.0, "rate", True,
    )  # fmt: skip
    assert (lr.loss, lr.td_error, lr.discount, lr.learning_rate, lr.adam_eps) == (
        "dqn", "huber", 0.99, 1e-4, 1e-8,
    )  # fmt: skip
    assert lr.max_grad_norm is None and lr.batch_size == 32
    assert lr.update_period_agent_steps == 4 and lr.target_update_period_agent_steps == 10_000
    assert lr.warmup_agent_steps == 50_000 and lr.replay_capacity_transitions == 1_000_000
    assert (lr.epsilon_start, lr.epsilon_end, lr.epsilon_decay_agent_steps) == (1.0, 0.1, 1_000_000)
    assert r.total_agent_steps == 50_000_000
    assert (ev.period_agent_steps, ev.episodes, ev.epsilon) == (250_000, 30, 0.05)
    assert (e.suite, e.protocol, e.envs_per_seed) == ("atari", "paper", 1)


def test_presets_validate_and_differ_as_described():
    for name in C.PRESETS:
        C.validate(C.preset(name))
    assert C.preset("dqn").network.kind == "dqn"
    assert C.preset("dsqn-if").network.neuron == "if"
    assert C.preset("dsqn-spike-readout").network.readout == "spike_rate"
    maxmem = C.preset("dsqn-maxmem").network
    assert (maxmem.time_steps, maxmem.readout, maxmem.detach_reset) == (8, "membrane_max", True)
    cdqn = C.preset("cdqn").learner
    assert (cdqn.loss, cdqn.learning_rate, cdqn.adam_eps, cdqn.max_grad_norm) == (
        "cdqn", 6.25e-5, 5e-5, 10.0,
    )  # fmt: skip
    assert cdqn.target_update_period_agent_steps == 8_000
    assert C.preset("cdsqn").run.total_agent_steps == 10_000_000
    assert C.preset("double-dsqn").run.total_agent_steps == 1_000_000
    assert C.preset("cartpole-dsqn").env.game == "CartPole-v1"
    assert set(C.preset_descriptions()) == set(C.PRESETS)


def test_overrides_parse_by_type():
    cfg = C.apply_overrides(
        C.preset("dsqn"),
        {
            "network.time_steps": "8",
            "network.v_reset": "none",
            "network.detach_reset": "true",
            "learner.learning_rate": "6.25e-5",
            "learner.max_grad_norm": "10",
            "run.seeds": "0 1 2",
            "run.total_agent_steps": "1e6",
            "network.hidden_sizes": "64,32",
            "name": "mine",
        },
    )
    assert cfg.network.time_steps == 8 and cfg.network.v_reset is None
    assert cfg.network.detach_reset is True and cfg.learner.learning_rate == 6.25e-5
    assert cfg.learner.max_grad_norm == 10.0 and cfg.run.seeds == (0, 1, 2)
    assert cfg.run.total_agent_steps == 1_000_000 and cfg.network.hidden_sizes == (64, 32)
    assert cfg.name == "mine"


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"network.timesteps": "8"}, "did you mean network.time_steps"),
        ({"netwrk.tau": "2"}, "valid"),
        ({"network.time_steps": "eight"}, "network.time_steps"),
        ({"network.detach_reset": "maybe"}, "network.detach_reset"),
    ],
)
def test_override_errors_name_the_field(overrides, needle):
    with pytest.raises(C.ConfigError, match=needle):
        C.apply_overrides(C.preset("dsqn"), overrides)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"network.time_steps": "0"}, "network.time_steps"),
        ({"network.tau": "0"}, "network.tau"),
        ({"network.readout": "softmax"}, "network.readout"),
        ({"network.surrogate": "atna"}, "did you mean 'atan'"),
        ({"learner.batch_size": "64", "learner.replay_capacity_transitions": "32"}, "batch_size"),
        ({"learner.discount": "1.5"}, "learner.discount"),
        ({"learner.loss": "sarsa"}, "learner.loss"),
        ({"run.total_agent_steps": "-1"}, "run.total_agent_steps"),
        ({"run.seeds": "0 0"}, "distinct"),
        ({"env.envs_per_seed": "3"}, "multiple of env.envs_per_seed"),
        ({"env.envs_per_seed": "8", "learner.update_period_agent_steps": "3"}, "divide"),
        ({"eval.period_agent_steps": "15000"}, "multiple of run.log_period_agent_steps"),
        ({"eval.epsilon": "2"}, "eval.epsilon"),
        ({"env.protocol": "sticky"}, "env.protocol"),
    ],
)
def test_validation_rejects_impossible_values(overrides, needle):
    with pytest.raises(C.ConfigError, match=needle):
        C.validate(C.apply_overrides(C.preset("dsqn"), overrides))


def test_unknown_preset_suggests_nearest():
    with pytest.raises(C.ConfigError, match="did you mean 'dsqn'"):
        C.preset("dsq")


def test_dict_roundtrip_and_unknown_keys():
    cfg = C.apply_overrides(C.preset("cartpole-dsqn"), {"network.v_reset": "none"})
    assert C.from_dict(C.to_dict(cfg)) == cfg
    data = C.to_dict(cfg)
    data["network"]["bogus"] = 1
    with pytest.raises(C.ConfigError, match="bogus"):
        C.from_dict(data)


def test_every_field_is_documented():
    for cls in (C.NetworkConfig, C.EnvConfig, C.LearnerConfig, C.EvalConfig, C.RunConfig):
        for field in dataclasses.fields(cls):
            assert f"{field.name}:" in cls.__doc__, f"{cls.__name__}.{field.name} undocumented"
