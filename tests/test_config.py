"""dsqn.config: the paper's numbers as defaults, presets, overrides, validation errors, and the
package's modules, one job each."""

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from dsqn import config as C

CONFIG_DIR = Path(C.__file__).parent


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
    assert cdqn.target_update_period_agent_steps == 8_000 and cdqn.cdqn_double_q
    assert (cdqn.replay_sampling, cdqn.priority_exponent, cdqn.importance_exponent_start) == (
        "proportional", 0.6, 0.4,
    )  # fmt: skip
    assert (cdqn.epsilon_schedule, cdqn.epsilon_end, cdqn.epsilon_decay_agent_steps) == (
        "exponential_linear", 0.01, 40_000_000,
    )  # fmt: skip
    assert C.preset("cdqn").env.envs_per_seed == 4
    assert C.preset("cdsqn").run.total_agent_steps == 10_000_000
    double = C.preset("double-dqn")
    assert (double.learner.loss, double.learner.target_update_period_agent_steps) == (
        "double", 30_000,
    )  # fmt: skip
    assert (double.learner.epsilon_end, double.eval.epsilon) == (0.01, 0.001)
    assert C.preset("double-dsqn").run.total_agent_steps == 1_000_000
    assert C.preset("cartpole-dsqn").env.game == "CartPole-v1"
    assert set(C.preset_descriptions()) == set(C.PRESETS)


def test_the_plif_cartpole_preset_differs_from_the_lif_one_only_in_its_neurons():
    """Same network, protocol and budget as cartpole-dsqn: PLIF neurons whose time constants
    step at 0.03x the learning rate are the only differences."""
    lif, plif = (C.to_dict(C.preset(n)) for n in ("cartpole-dsqn", "cartpole-dsqn-plif"))
    differences = {
        (section, field): (lif[section][field], plif[section][field])
        for section in ("network", "env", "learner", "eval", "run", "sweep")
        for field in lif[section]
        if lif[section][field] != plif[section][field]
    }
    assert differences == {
        ("network", "neuron"): ("lif", "plif"),
        ("learner", "neuron_learning_rate_scale"): (1.0, 0.03),
    }


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
        ({"learner.replay_sampling": "rank"}, "learner.replay_sampling"),
        ({"learner.priority_exponent": "-1"}, "learner.priority_exponent"),
        ({"learner.priority_epsilon": "0"}, "learner.priority_epsilon"),
        ({"learner.priority_initial_max": "0"}, "learner.priority_initial_max"),
        ({"learner.priority_max_tracking": "latest"}, "learner.priority_max_tracking"),
        ({"learner.priority_floor_of_mean": "1.5"}, "learner.priority_floor_of_mean"),
        ({"learner.priority_predecessor_fraction": "-0.5"}, "learner.priority_predecessor_fra"),
        ({"learner.importance_exponent_start": "1.2"}, "learner.importance_exponent_start"),
        ({"learner.importance_exponent_anneal_agent_steps": "0"}, "learner.importance_exponent_a"),
        ({"learner.importance_weight_max": "0"}, "learner.importance_weight_max"),
        ({"learner.cdqn_double_q": "true"}, "learner.cdqn_double_q applies to learner.loss cdqn"),
        ({"network.neuron": "plif", "network.tau": "1.0"}, "PLIF neuron's initial tau must be > 1"),
        ({"network.neuron": "izhikevich"}, "network.neuron"),
        ({"network.neuron_backend": "palas"}, "network.neuron_backend.*did you mean 'pallas'"),
        ({"learner.neuron_learning_rate_scale": "0.1"}, "no learnable neuron parameters"),
        ({"learner.learning_rate_end": "1e-5"}, "must be set together"),
        ({"learner.learning_rate_decay_agent_steps": "1000"}, "must be set together"),
        (
            {"learner.learning_rate_end": "-1", "learner.learning_rate_decay_agent_steps": "8"},
            "learner.learning_rate_end must be >= 0",
        ),
        (
            {"learner.learning_rate_end": "0", "learner.learning_rate_decay_agent_steps": "2"},
            "at least one update period",
        ),
        (
            {"network.neuron": "plif", "learner.neuron_learning_rate_scale": "0"},
            "learner.neuron_learning_rate_scale",
        ),
        ({"network.readout": "max_abs_mem"}, "network.readout.*membrane_max_abs"),
        ({"network.norm": "batchnorm"}, "network.norm"),
        ({"network.kind": "dqn", "network.norm": "popnorm"}, "normalises spiking layers"),
        ({"learner.weight_decay": "-0.01"}, "learner.weight_decay must be >= 0"),
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


def test_fields_list_every_field_with_type_default_and_doc():
    infos = {f.path: f for f in C.fields()}
    for section in ("network", "env", "learner", "eval", "run", "sweep"):
        for field in dataclasses.fields(getattr(C.Config(), section)):
            info = infos.pop(f"{section}.{field.name}")
            assert info.default == field.default and info.doc
    assert list(infos) == ["name"]
    assert C.fields()[2].path == "network.time_steps"
    time_steps = next(f for f in C.fields() if f.path == "network.time_steps")
    assert (time_steps.type, time_steps.default) == ("int", 64)
    assert time_steps.doc == "simulation steps T per forward pass (spiking only). Paper: 64."
    v_reset = next(f for f in C.fields() if f.path == "network.v_reset")
    assert v_reset.type == "float | None"
    assert v_reset.doc == "hard-reset potential (paper: 0.0), or None for soft reset."
    seeds = next(f for f in C.fields() if f.path == "run.seeds")
    assert seeds.type == "tuple[int, ...]"


@pytest.mark.parametrize("name", C.PRESETS)
def test_flags_read_back_to_the_preset(name):
    cfg = C.preset(name)
    overrides = {}
    for line in C.to_flags(cfg):
        flag, _, value = line.partition(" ")
        overrides[flag.removeprefix("--")] = value
    assert C.apply_overrides(C.Config(), overrides) == cfg
    assert C.from_dict(C.to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data,needle",
    [
        ({"network": {"time_step": 8}}, "did you mean network.time_steps"),
        ({"netwrok": {"time_steps": 8}}, "unknown config field 'netwrok'"),
        ({"learning_rate": 1e-3}, "did you mean learner.learning_rate"),
        ({"network": {"time_steps": "8"}}, "network.time_steps must be int, got '8'"),
        ({"network": {"time_steps": 8.5}}, "network.time_steps must be int"),
        ({"network": {"detach_reset": 1}}, "network.detach_reset must be bool"),
        ({"run": {"seeds": 0}}, "run.seeds must be a list"),
        ({"network": []}, "section 'network' must be an object"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_from_dict_errors_name_the_field(data, needle):
    with pytest.raises(C.ConfigError, match=needle):
        C.from_dict(data)


def test_from_dict_reads_partial_files_and_run_configs():
    cfg = C.from_dict({"network": {"time_steps": 8, "tau": 3}, "run": {"seeds": [1, 2]}})
    assert cfg.name == "custom" and cfg.network.time_steps == 8 and cfg.network.tau == 3.0
    assert isinstance(cfg.network.tau, float) and cfg.run.seeds == (1, 2)
    assert cfg.learner == C.LearnerConfig()  # missing sections keep the paper's values
    run_config = {**C.to_dict(C.preset("dqn")), "meta": {"jax_version": "0.0"}}
    assert C.from_dict(run_config) == C.preset("dqn")


def test_atari_smoke_is_a_small_atari_run():
    cfg = C.validate(C.preset("atari-smoke"))
    assert cfg.env.suite == "atari" and cfg.run.total_agent_steps <= 5_000
    assert cfg.learner.warmup_agent_steps < cfg.run.total_agent_steps
    assert cfg.eval.max_episode_agent_steps is not None


@pytest.mark.parametrize("name", ["cdqn", "cdsqn", "double-dqn", "double-dsqn"])
def test_every_value_of_the_compared_methods_is_cited(name):
    """Every field where a C-DQN or Double preset departs from the paper's DSQN (other than
    the network kind) carries its source; the DSQN variant differs from the DQN one only in
    the network."""
    cfg, paper, sources = C.preset(name), C.preset("dsqn"), C.preset_sources(name)
    changed = {
        f"{section}.{field.name}"
        for section in ("network", "env", "learner", "eval", "run")
        for field in dataclasses.fields(getattr(cfg, section))
        if getattr(getattr(cfg, section), field.name)
        != getattr(getattr(paper, section), field.name)
    } - {"network.kind"}
    assert changed and changed <= set(sources), changed - set(sources)
    assert all(sources.values())
    ann = C.preset(name.replace("dsqn", "dqn"))
    assert dataclasses.replace(cfg, name="x", network=ann.network) == dataclasses.replace(
        ann, name="x"
    )


def _dsqn_imports(path: Path) -> list[str]:
    """Every import of a dsqn module in the file (also inside functions; relative ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "dsqn"]
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] == "dsqn":
                found.append("." * node.level + (node.module or ""))
    return found


def test_the_schema_is_a_leaf():
    """Every module may read the config's shape: dsqn.config.schema imports nothing of dsqn."""
    assert _dsqn_imports(CONFIG_DIR / "schema.py") == []


def test_the_package_only_reexports_its_modules_names():
    """dsqn/config/__init__.py defines nothing: it imports the public names of its modules (each
    the defining module's object) and lists them in ``__all__``."""
    tree = ast.parse((CONFIG_DIR / "__init__.py").read_text())
    for node in tree.body[1:]:  # after the docstring
        if isinstance(node, ast.ImportFrom):
            assert node.module.startswith("dsqn.config.") and node.level == 0, ast.unparse(node)
        else:
            assert isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__", (
                f"dsqn/config/__init__.py defines {ast.unparse(node)[:60]!r}: put it in a module"
            )
    modules = ("schema", "presets", "overrides", "validation")
    owners = {m: __import__(f"dsqn.config.{m}", fromlist=["_"]) for m in modules}
    exported = [name for m in owners.values() for name in m.__all__]
    assert sorted(exported) == sorted(C.__all__)  # every module's public names, each once
    for module in owners.values():
        for name in module.__all__:
            assert getattr(C, name) is getattr(module, name)


def _valid_list(overrides: dict[str, str]) -> list[str]:
    """The valid values a validation error lists for the (invalid) ``overrides``."""
    with pytest.raises(C.ConfigError, match="valid: ") as error:
        C.validate(C.apply_overrides(C.preset("dsqn"), overrides))
    return ast.literal_eval(str(error.value).rsplit("valid: ", 1)[1])


def test_validation_takes_the_losses_from_their_owner(monkeypatch):
    """learner.loss and learner.td_error accept exactly the losses and errors of
    dsqn.learning.losses, read when validating: a loss registered there is valid here."""
    from dsqn.learning import losses

    assert _valid_list({"learner.loss": "sarsa"}) == list(losses.LOSSES)
    assert _valid_list({"learner.td_error": "l1"}) == list(losses.ERROR_KINDS)
    for kind in losses.LOSSES:
        C.validate(C.apply_overrides(C.preset("dsqn"), {"learner.loss": kind}))
    monkeypatch.setattr(losses, "LOSSES", {**losses.LOSSES, "sarsa": losses.dqn_loss})
    monkeypatch.setattr(losses, "ERROR_KINDS", (*losses.ERROR_KINDS, "l1"))
    C.validate(C.apply_overrides(C.preset("dsqn"), {"learner.loss": "sarsa"}))
    C.validate(C.apply_overrides(C.preset("dsqn"), {"learner.td_error": "l1"}))


def test_validation_takes_the_steppings_from_the_stepping_module():
    """env.stepping accepts exactly the steppings that dsqn.envs.stepping implements: one
    list, which the stepping module reads from the schema (importable without envpool)."""
    pytest.importorskip("envpool")
    from dsqn.envs import stepping

    assert stepping.STEPPINGS is C.STEPPINGS
    assert _valid_list({"env.stepping": "ffi"}) == list(stepping.STEPPINGS)
    for name in stepping.STEPPINGS:
        C.validate(C.apply_overrides(C.preset("dsqn"), {"env.stepping": name}))


@pytest.mark.parametrize(
    "name,overrides,bad",
    [
        (
            "cartpole-dqn",
            {"run.log_period_agent_steps": "3000"},
            ["eval.period_agent_steps", "run.checkpoint_period_agent_steps"],
        ),
        (
            "cartpole-dqn",
            {"run.checkpoint_period_agent_steps": "15000"},
            ["run.checkpoint_period_agent_steps"],
        ),
        ("dsqn", {"eval.period_agent_steps": "15000"}, ["eval.period_agent_steps"]),
    ],
)
def test_a_period_between_chunks_that_the_log_period_does_not_divide_names_the_fix(
    name, overrides, bad
):
    """The user changed one period: the error names every field that the log period no longer
    divides, the flags that fix it (with values that validate) and log periods that work."""
    config = C.apply_overrides(C.preset(name), overrides)
    with pytest.raises(C.ConfigError, match="multiple of run.log_period_agent_steps") as error:
        C.validate(config)
    fix, _, others = str(error.value).partition(", or choose a log period")
    flags = dict(re.findall(r"--(\S+) (\d+)", fix))
    assert list(flags) == bad
    C.validate(C.apply_overrides(config, flags))
    log_periods = re.findall(r"\d+", others.partition("--run.log_period_agent_steps")[2])
    assert log_periods
    for value in log_periods:
        C.validate(C.apply_overrides(config, {"run.log_period_agent_steps": value}))
