"""dsqn.logs: CSV rows, truncation on resume, TensorBoard scalars, plain progress lines."""

import csv

from dsqn.logs import CsvLog, Progress, TensorBoard, truncate_csv


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
            "from dsqn.logs import Progress, in_notebook\n"
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
