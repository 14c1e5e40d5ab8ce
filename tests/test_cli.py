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
