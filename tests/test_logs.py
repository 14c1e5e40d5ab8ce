"""dsqn.training.logs: CSV rows, truncation on resume, TensorBoard scalars, plain progress lines."""

import csv
import json

import pytest

from dsqn.training.logs import CsvLog, Progress, TensorBoard, truncate_csv


def test_csv_log_appends_and_truncates(tmp_path):
    path = tmp_path / "m.csv"
    log = CsvLog(path, ["seed", "agent_steps", "loss"])
    for step in (100, 200, 300):
        log.write({"seed": 0, "agent_steps": step, "loss": None if step == 100 else 0.5})
    log.close()
    log = CsvLog(path, ["seed", "agent_steps", "loss"])  # reopened: no second header
    log.write({"seed": 0, "agent_steps": 400, "loss": float("nan")})
    log.close()
    rows = list(csv.DictReader(open(path)))
    assert [r["agent_steps"] for r in rows] == ["100", "200", "300", "400"]
    assert rows[0]["loss"] == "" and rows[1]["loss"] == "0.5" and rows[3]["loss"] == ""
    truncate_csv(path, 200)
    assert [r["agent_steps"] for r in csv.DictReader(open(path))] == ["100", "200"]


def test_tensorboard_writes_events(tmp_path):
    tb = TensorBoard(tmp_path / "tb")
    tb.write(0, 10, {"loss": 1.0, "skipped": None, "nan": float("nan")})
    tb.close()
    assert any(p.name.startswith("events") for p in (tmp_path / "tb").iterdir())


def test_progress_prints_plain_lines_when_not_a_tty(capsys):
    bar = Progress(total=1000, initial=0)
    bar.update(500, 123.0, "returns 1.0")
    bar.write("hello")
    quiet = Progress(total=1000, initial=0, enabled=False)
    quiet.update(600, 1.0, "x")
    quiet.write("hidden")
    quiet.write("shown", always=True)
    out = capsys.readouterr().out
    assert "agent_steps 500/1000" in out and "123 SPS" in out and "ETA" in out
    assert "hello" in out and "hidden" not in out and "shown" in out


def test_progress_bar_in_a_jupyter_kernel():
    """In a notebook (a real Jupyter kernel, where stderr is not a terminal) the progress is a
    tqdm.auto bar; in a plain process without a terminal it is log lines."""
    import os
    from pathlib import Path

    from jupyter_client.manager import start_new_kernel

    src = str(Path(__file__).resolve().parents[1] / "src")
    kernel, client = start_new_kernel(env={**os.environ, "PYTHONPATH": src})
    try:
        code = (
            "from dsqn.training.logs import Progress, in_notebook\n"
            "bar = Progress(100, 0)\n"
            "bar.update(50, 10.0, 'half')\n"
            "print('RESULT', in_notebook(), type(bar._bar).__module__.split('.')[0])"
        )
        msg_id = client.execute(code)
        text = []
        while True:
            msg = client.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)
    output = "".join(text)
    assert "RESULT True tqdm" in output and "50/100" in output
    assert "[dsqn] agent_steps" not in output
    assert Progress(100, 0)._bar is None  # pytest's stderr is not a terminal either


def _tfrecords(path):
    """The records of a TensorBoard event file (TFRecord framing: length, its CRC, data, CRC)."""
    import struct

    raw = path.read_bytes()
    pos = 0
    while pos < len(raw):
        (length,) = struct.unpack("<Q", raw[pos : pos + 8])
        yield raw[pos + 12 : pos + 12 + length]
        pos += 12 + length + 4


def _events(run_dir):
    from tensorboardX.proto.event_pb2 import Event

    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        yield from (Event.FromString(r) for r in _tfrecords(path))


def test_tensorboard_gets_the_metrics_hyperparameters_and_evaluation(tiny_cartpole_dqn_run):
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    scalars, hparams = {}, {}
    for event in _events(tiny_cartpole_dqn_run):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    hparams = dict(data.session_start_info.hparams)
            elif value.HasField("simple_value"):
                scalars[(value.tag, event.step)] = value.simple_value
    rows = list(csv.DictReader(open(tiny_cartpole_dqn_run / "metrics.csv")))
    last = rows[-1]
    for column in ("episode_return", "loss", "q_mean", "epsilon", "sps"):
        tag = (f"seed_{last['seed']}/{column}", int(last["agent_steps"]))
        assert abs(scalars[tag] - float(last[column])) <= 1e-5 * max(1, abs(float(last[column])))
    assert hparams["learner.learning_rate"].number_value == 2.3e-3
    assert hparams["network.kind"].string_value == "dqn"
    assert hparams["network.hidden_sizes"].string_value == "[16]"
    evaluation = json.loads((tiny_cartpole_dqn_run / "evaluation.json").read_text())
    final = scalars[("evaluation/final/mean", evaluation["agent_steps"])]
    assert final == pytest.approx(evaluation["summary"]["final"]["mean"])


def _wandb_records(path):
    """The records of a W&B run file (:W&B header, then LevelDB log blocks of 32 KiB)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    raw, pos, pending = path.read_bytes(), 7, b""
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if kind == 0:
            pos += left
            continue
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def test_wandb_offline_run_logs_the_csv_metrics_config_and_evaluation(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from conftest import TINY_CARTPOLE_DQN

    from dsqn.cli import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    assert main([*TINY_CARTPOLE_DQN, "--run-dir", str(run), "--track", "wandb"]) == 0
    meta = json.loads((run / "config.json").read_text())["meta"]
    (path,) = run.glob(f"wandb/offline-run-*-{meta['wandb']['id']}/run-*.wandb")
    history, summary, config = [], {}, {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = record.history.item
            history.append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}
            )
        elif kind == "summary":
            updates = record.summary.update
            summary.update(
                {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in updates}
            )
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in record.config.update})
    for row in csv.DictReader(open(run / "metrics.csv")):
        logged = next(
            h
            for h in history
            if h.get("agent_steps") == int(row["agent_steps"]) and "seed_0/sps" in h
        )
        for column, text in row.items():
            if column not in ("seed", "agent_steps") and text:
                assert logged[f"seed_0/{column}"] == pytest.approx(float(text), rel=1e-5), column
    for row in csv.DictReader(open(run / "evaluations.csv")):
        logged = next(
            h
            for h in history
            if h.get("agent_steps") == int(row["agent_steps"]) and "seed_0/eval/return_mean" in h
        )
        assert logged["seed_0/eval/return_mean"] == pytest.approx(float(row["return_mean"]))
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    assert config["learner"]["learning_rate"] == 2.3e-3
    assert config["meta"]["environment"]["packages"]["flax"]
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert summary["final/mean"] == pytest.approx(evaluation["summary"]["final"]["mean"])
    assert summary["evaluation"]["per_seed"]["0"]["final"]["scores"] == pytest.approx(
        evaluation["per_seed"]["0"]["final"]["scores"]
    )


def test_a_full_disk_leaves_whole_rows_only(tmp_path):
    """On a real full file system (a 8 KiB tmpfs), the row that does not fit is cut off again:
    the OSError reaches the caller and the file parses with every row whole."""
    from tmpfs import small_tmpfs

    columns = ["seed", "agent_steps", "loss", "note"]
    with small_tmpfs(tmp_path / "disk", "8k") as disk:
        log = CsvLog(disk / "m.csv", columns)
        written = 0
        with pytest.raises(OSError, match="No space left"):
            for step in range(10_000):
                log.write({"seed": 0, "agent_steps": step, "loss": 0.25, "note": "x" * 37})
                written += 1
        log.close()
        text = (disk / "m.csv").read_bytes().decode()
    assert written > 10 and text.endswith("\r\n")
    rows = list(csv.DictReader(text.splitlines()))
    assert [int(r["agent_steps"]) for r in rows] == list(range(written))
    assert all(r["note"] == "x" * 37 for r in rows)


def test_truncation_on_resume_drops_a_half_written_last_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("seed,agent_steps\r\n0,100\r\n0,200\r\n0,3")
    truncate_csv(path, 1000)
    assert path.read_text() == "seed,agent_steps\n0,100\n0,200\n"


@pytest.mark.timeout(120)
def test_tensorboard_on_a_full_disk_raises_instead_of_hanging(tmp_path):
    """tensorboardX's writer thread would die on the failed write and leave later writes and
    close blocked on its queue; the error comes back to the caller instead."""
    from tmpfs import small_tmpfs

    with small_tmpfs(tmp_path / "disk", "16k") as disk:
        tb = TensorBoard(disk / "tb")
        with pytest.raises(OSError, match="TensorBoard events failed: No space left"):
            for step in range(100_000):
                tb.write(0, step, {f"value_{i}": float(i) for i in range(50)})
        with pytest.raises(OSError, match="No space left"):
            tb.close()
