"""The `dsqn` command line: config files, --help, presets as flags, suggestions for typos."""

import json

import pytest

from dsqn import config as C
from dsqn.cli import main, parse_field_overrides

TINY = {
    "run": {
        "seeds": [0],
        "total_agent_steps": 400,
        "log_period_agent_steps": 200,
        "checkpoint_period_agent_steps": 200,
    },
    "eval": {"period_agent_steps": 200, "episodes": 2, "max_episode_agent_steps": 30},
    "learner": {"warmup_agent_steps": 100, "replay_capacity_transitions": 1000},
}


@pytest.mark.parametrize("name", C.PRESETS)
def test_presets_print_a_config_file_and_flags_that_read_back(name, capsys):
    assert main(["presets", name]) == 0
    assert C.from_dict(json.loads(capsys.readouterr().out)) == C.preset(name)
    assert main(["presets", name, "--flags"]) == 0
    tokens = capsys.readouterr().out.split()
    assert tokens[:2] == ["--name", name]
    overrides = parse_field_overrides(tokens[2:])
    assert C.apply_overrides(C.Config(name=name), overrides) == C.preset(name)


def test_presets_sources_cite_every_value(capsys):
    assert main(["presets", "cdqn", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "learner.priority_exponent = 0.6" in out and "--alpha 0.6" in out
    assert "learner.epsilon_end = 0.01" in out and "Wang & Ueda 2022" in out
    assert len(out.splitlines()) == len(C.preset_sources("cdqn")) + 1


def test_train_help_lists_every_field_with_type_default_and_doc(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for info in C.fields()[1:]:
        assert f"--{info.path} " in text, info.path
        assert f"(default: {C.flag_value(info.default)})" in text
        assert " ".join(info.doc.split()[:4]) in text, info.path
    assert "--network.v_reset float|None" in text and "--run.seeds int..." in text


def test_train_from_a_config_file_then_overrides_then_resume(tmp_path, capsys):
    data = C.to_dict(C.preset("cartpole-dqn"))
    for section, values in TINY.items():
        data[section].update(values)
    data["network"]["hidden_sizes"] = [16]
    path = tmp_path / "my.json"
    path.write_text(json.dumps(data))
    run = tmp_path / "run"
    args = ["train", "--config", str(path), "--run-dir", str(run), "--no-progress"]
    assert main([*args, "--learner.learning_rate", "5e-4", "--name", "mine"]) == 0
    saved = C.from_dict(json.loads((run / "config.json").read_text()))
    expected = C.apply_overrides(C.from_dict(data), {"learner.learning_rate": 5e-4, "name": "mine"})
    assert saved == expected
    resume = ["train", "--resume", str(run), "--run.total_agent_steps", "600", "--no-progress"]
    assert main(resume) == 0
    assert json.loads((run / "evaluation.json").read_text())["agent_steps"] == 600


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "cartpole-dqn", "--learning_rate", "3"], "did you mean learner.learning_rate"),
        (["train", "cartpole-dqn", "--lerner.learning_rate", "3"], "did you mean learner.learn"),
        (["train", "cartpole-dqn", "--network.timestep", "3"], "did you mean network.time_steps"),
        (["train", "cartpole-dqn", "--config", "{file}"], "a preset or --config, not both"),
        (["train", "--config", "{file}", "--resume", "x"], "drop PRESET/--config"),
        (["train", "--config", "{missing}"], "missing.json"),
        (["train", "--config", "{bad}"], "is not valid JSON"),
        (["train", "--config", "{typo}"], "did you mean network.time_steps"),
        (["train"], "or give --config FILE"),
        (["presets", "--flags"], "name it"),
    ],
)
def test_bad_config_input_gets_a_clear_error(args, needle, tmp_path, capsys):
    files = {"file": tmp_path / "ok.json", "missing": tmp_path / "missing.json"}
    files["file"].write_text(json.dumps(C.to_dict(C.preset("cartpole-dqn"))))
    files["bad"] = tmp_path / "bad.json"
    files["bad"].write_text("{'network': ")
    files["typo"] = tmp_path / "typo.json"
    files["typo"].write_text(json.dumps({"network": {"time_step": 8}}))
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    assert main([*args, "--run-dir", str(tmp_path / "r")] if args[0] == "train" else args) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# Every command, bad values: (arguments, texts the error must contain, separated by " | ": the
# value and what is valid). RUN is a real tiny DQN run (checkpoints at 200 and 400 agent
# steps); OUT and EMPTY are paths under the test's directory (OUT absent, EMPTY empty).
BAD_INPUT = [
    ("train nope --run-dir OUT", "'nope' | valid presets: dsqn,"),
    ("train cartpole-dqn --game CartPole-v9 --run-dir OUT", "'CartPole-v9' | CartPole-v1"),
    ("train dsqn --game Pongg --run-dir OUT", "Pongg | Pong"),
    ("train cartpole-dqn --network.tau -1 --run-dir OUT", "network.tau | > 0 | -1"),
    ("train cartpole-dqn --network.time_steps 0 --run-dir OUT", "network.time_steps | >= 1 | 0"),
    (
        "train cartpole-dqn --network.time_steps --run-dir OUT",
        "no value given for --network.time_steps",
    ),
    ("train cartpole-dqn --network.time_steps x --run-dir OUT", "'x' | int"),
    ("train cartpole-dqn --eval.epsilon 2 --run-dir OUT", "eval.epsilon | [0, 1] | 2"),
    (
        "train cartpole-dqn --run.total_agent_steps -5 --run-dir OUT",
        "run.total_agent_steps | > 0 | -5",
    ),
    (
        "train cartpole-dqn --run.checkpoint_period_minutes 0 --run-dir OUT",
        "run.checkpoint_period_minutes | > 0 | 0",
    ),
    (
        "train cartpole-dqn --learner.batch_size 64"
        " --learner.replay_capacity_transitions 32 --run-dir OUT",
        "batch_size (64) | (32)",
    ),
    ("train dsqn --env.protocol sticky --run-dir OUT", "'sticky' | machado"),
    ("train cartpole-dqn --seeds x --run-dir OUT", "--seeds | 'x'"),
    ("train --resume OUT", "OUT | config.json does not exist"),
    ("evaluate RUN --epsilon 2", "--epsilon must be in [0, 1], got 2.0"),
    ("evaluate RUN --episodes 0", "--episodes must be an integer >= 1, got 0"),
    ("evaluate RUN --checkpoint foo", "'foo' | best, final, latest | [200, 400]"),
    ("evaluate RUN --checkpoint 999", "step 999 | [200, 400]"),
    ("evaluate OUT", "OUT is not a run directory | config.json does not exist"),
    ("energy RUN --pj-per-ac -1", "--pj-per-ac must be a finite number > 0 | -1.0"),
    ("energy RUN --pj-per-mac inf", "--pj-per-mac must be a finite number > 0 | inf"),
    ("energy RUN --episodes 0", "--episodes must be an integer >= 1, got 0"),
    ("energy RUN --epsilon -0.1", "--epsilon must be in [0, 1], got -0.1"),
    ("energy OUT", "OUT is not a run directory"),
    ("convert RUN --run-dir OUT --time-steps 0", "--time-steps must be an integer >= 1, got 0"),
    ("convert RUN --run-dir OUT --percentile 101", "--percentile must be in (0, 100], got 101.0"),
    ("convert RUN --run-dir OUT --frames 0", "--frames must be an integer >= 1, got 0"),
    (
        "convert RUN --run-dir OUT --sweep-percentiles 50 0",
        "--sweep-percentiles must be in (0, 100], got [50.0, 0.0]",
    ),
    ("convert RUN --run-dir OUT --episodes 0", "--episodes must be an integer >= 1, got 0"),
    ("convert RUN --run-dir OUT --output-scale max", "'max' | abs_percentile"),
    ("convert OUT --run-dir EMPTY", "OUT is not a run directory"),
    ("robustness RUN --out OUT --noise -0.1", "--noise must be finite numbers >= 0, got [-0.1]"),
    ("robustness RUN --out OUT --fgsm nan", "--fgsm must be finite numbers >= 0, got [nan]"),
    ("robustness RUN --out OUT --episodes 0", "--episodes must be an integer >= 1, got 0"),
    ("robustness RUN OUT --out EMPTY", "OUT is not a run directory"),
    ("report OUT --out EMPTY", "OUT is not a directory"),
    ("report EMPTY --out OUT", "no run directory | under | EMPTY"),
    ("report RUN --out OUT --band iqr", "'iqr' | minmax | std"),
    ("presets nope", "'nope' | valid presets: dsqn,"),
]


def _files(*roots) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for r in roots for p in r.rglob("*")}


@pytest.mark.parametrize("command,needles", BAD_INPUT, ids=[c for c, _ in BAD_INPUT])
def test_bad_input_to_every_command_exits_2_naming_it_and_writes_nothing(
    command, needles, tiny_cartpole_dqn_run, tmp_path, capsys
):
    names = {"RUN": tiny_cartpole_dqn_run, "OUT": tmp_path / "OUT", "EMPTY": tmp_path / "EMPTY"}
    names["EMPTY"].mkdir()
    before = _files(tiny_cartpole_dqn_run, tmp_path)
    try:
        code = main([str(names.get(a, a)) for a in command.split()])
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles.split(" | "):
        assert str(names.get(needle, needle)) in err or needle in err, (needle, err)
    assert _files(tiny_cartpole_dqn_run, tmp_path) == before


def test_versions_prints_the_environment_and_the_pins(capsys):
    import dsqn

    assert main(["versions"]) == 0
    environment = json.loads(capsys.readouterr().out)
    assert environment["dsqn"] == dsqn.__version__ and "jax" in environment["packages"]
    assert main(["versions", "--constraints"]) == 0
    pins = capsys.readouterr().out.split()
    assert any(pin.startswith("jax==") for pin in pins) and all("==" in pin for pin in pins)
