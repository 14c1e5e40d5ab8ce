"""A 9-agent sweep in one process against the same 9 agents as 3 processes of 3 seeds.

On the ``cartpole-dsqn`` preset, as a user runs it (``dsqn train`` in a fresh process, so every
figure includes start-up, env creation, compilation, the periodic and final evaluations and the
checkpoints):

- ``sweep``: ``dsqn train cartpole-dsqn --seeds 0 1 2 --sweep network.tau 1.5 2 4``, 9 agents
  in one program;
- ``separate``: ``dsqn train cartpole-dsqn --seeds 0 1 2 --network.tau T`` for T = 1.5, 2, 4,
  one process after another.

Every run trains ``--agent-steps`` agent steps per agent (the preset's learner, a warm-up of a
tenth of that, one evaluation of ``--eval-episodes`` games at the end). Agent steps per second
count every agent's steps: ``9 x agent steps / wall seconds`` of all processes. The ratio
``sweep / separate`` is the speed-up of the sweep.

``--smoke`` runs 2 agents (two values, one seed) for 64 agent steps: it checks the benchmark runs.

Usage: python -m benchmarks.sweep [--agent-steps 4000] [--eval-episodes 5] [--quick] [--smoke]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

TAUS = ("1.5", "2", "4")
SEEDS = ("0", "1", "2")


def train_command(
    run_dir: Path,
    agent_steps: int,
    eval_episodes: int,
    time_steps: int | None,
    seeds: tuple[str, ...] = SEEDS,
):
    """``dsqn train cartpole-dsqn`` for ``agent_steps`` agent steps, one evaluation at the end."""
    warmup = max(agent_steps // 10 // 4 * 4, 16)
    command = [
        sys.executable,
        "-m",
        "dsqn.cli",
        "train",
        "cartpole-dsqn",
        "--no-progress",
        "--seeds",
        *seeds,
        "--run-dir",
        str(run_dir),
        "--run.total_agent_steps",
        str(agent_steps),
        "--run.log_period_agent_steps",
        str(agent_steps),
        "--run.checkpoint_period_agent_steps",
        str(agent_steps),
        "--eval.period_agent_steps",
        str(agent_steps),
        "--eval.episodes",
        str(eval_episodes),
        "--learner.warmup_agent_steps",
        str(warmup),
        "--learner.schedule_counts_warmup",
        "true",
    ]
    if time_steps is not None:
        command += ["--network.time_steps", str(time_steps)]
    return command


def wall_seconds(commands: list[list[str]]) -> float:
    """Runs the commands one after another; their total wall time."""
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--agent-steps", type=int, default=4000, help="agent steps per agent")
    p.add_argument("--eval-episodes", type=int, default=5, help="final evaluation games")
    args = p.parse_args(argv)
    steps, episodes, time_steps = args.agent_steps, args.eval_episodes, None
    taus, seeds = TAUS, SEEDS
    if args.quick:
        steps = 2000
    if args.smoke:  # 2 agents: one process less to start
        steps, episodes, time_steps, taus, seeds = 64, 1, 2, TAUS[:2], SEEDS[:1]
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        sweep = train_command(root / "sweep", steps, episodes, time_steps, seeds)
        sweep += ["--sweep", "network.tau", *taus]
        separate = [
            train_command(root / f"tau{tau}", steps, episodes, time_steps, seeds)
            + ["--network.tau", tau]
            for tau in taus
        ]
        seconds = {"separate": wall_seconds(separate), "sweep": wall_seconds([sweep])}
    agents = len(taus) * len(seeds)
    rates = {k: agents * steps / s for k, s in seconds.items()}
    result = {
        "benchmark": "sweep",
        "machine": common.machine_info(),
        "preset": "cartpole-dsqn",
        "agents": agents,
        "agent_steps_per_agent": steps,
        "eval_episodes": episodes,
        "wall_seconds": seconds,
        "agent_steps_per_s": rates,
        "sweep_over_separate": rates["sweep"] / rates["separate"],
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
