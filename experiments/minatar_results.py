"""The MinAtar study's tables and curves, from its run directories (finished or not).

    python experiments/minatar_results.py RUNS_ROOT [RUNS_ROOT ...] --out docs/results/minatar

Reads every run directory under the roots (``config.json`` + ``evaluations.csv``) and writes:

- ``per_seed.csv``: one row per run and seed: the agent steps reached, whether the run finished,
  the final policy's score and the best checkpoint's score, and the firing rate of every spiking
  layer at the first and at the last log line. A finished run's scores are those of
  ``evaluation.json`` (fresh games: the final policy, and the best checkpoint re-evaluated). An
  unfinished run's are read from its evaluations during training: "final" is its latest
  evaluation, "best" the best one (selected on those same games, so optimistic).
- ``results.md``: per game and algorithm the mean and standard error over seeds of both scores,
  the random policy's score (measured in the original package, :data:`dsqn.config.games.
  MINATAR_RANDOM_SCORES`), and the interquartile mean with its 95% stratified-bootstrap interval
  of the DQN-normalised scores, (score - random) / (DQN - random), where DQN is the study's own
  ``minatar-dqn`` mean final score on that game (100% = this study's DQN, under the same budget
  and seeds); the mean over seeds of the evaluation at the largest number of agent steps that
  every run of the game reached (the comparison at equal experience while runs are unfinished);
  then the firing rates.
- ``curves_<game>.png``: the evaluation score against agent steps, the mean over seeds with a
  min-max band, one line per algorithm, the random policy dashed.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from dsqn.config.games import MINATAR_RANDOM_SCORES, minatar_game
from dsqn.reports import aggregates

DQN = "minatar-dqn"


def run_dirs(roots: list[Path]) -> list[Path]:
    """Every directory under ``roots`` with a ``config.json`` and an ``evaluations.csv``."""
    found = set()
    for root in roots:
        for config in root.rglob("config.json"):
            if (config.parent / "evaluations.csv").is_file():
                found.add(config.parent)
    return sorted(found)


def _label(config: dict, run_dir: Path) -> str:
    """The algorithm's label: the config's name (a variant's name names its change)."""
    return str(config.get("name") or run_dir.name)


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def seed_records(run_dir: Path) -> list[dict]:
    """One record per seed of ``run_dir`` (see the module docstring)."""
    config = json.loads((run_dir / "config.json").read_text())
    game = minatar_game(config["env"]["game"])
    total = config["run"]["total_agent_steps"] + (
        0
        if config["learner"]["schedule_counts_warmup"]
        else config["learner"]["warmup_agent_steps"]
    )
    evaluations = defaultdict(list)
    for row in _rows(run_dir / "evaluations.csv"):
        evaluations[int(row["seed"])].append((int(row["agent_steps"]), float(row["return_mean"])))
    metrics = defaultdict(list)
    if (run_dir / "metrics.csv").is_file():
        for row in _rows(run_dir / "metrics.csv"):
            metrics[int(row["seed"])].append(row)
    final_file = run_dir / "evaluation.json"
    finished = json.loads(final_file.read_text())["per_seed"] if final_file.is_file() else None
    records = []
    for seed, points in sorted(evaluations.items()):
        steps = [s for s, _ in points]
        scores = [v for _, v in points]
        record = {
            "algorithm": _label(config, run_dir),
            "game": game,
            "seed": seed,
            "time_steps": config["network"]["time_steps"]
            if config["network"]["kind"] == "dsqn"
            else "",
            "agent_steps": max(steps),
            "total_agent_steps": total,
            "finished": finished is not None,
            "final": scores[int(np.argmax(steps))],
            "best": max(scores),
            "run_dir": str(run_dir),
            "curve": dict(points),
        }
        if finished is not None:
            entry = finished[str(seed)]
            record["final"], record["best"] = entry["final"]["mean"], entry["best"]["mean"]
        rows = metrics.get(seed, [])
        for key in sorted(k for k in (rows[0] if rows else {}) if k.startswith("firing_rate_")):
            layer = key.removeprefix("firing_rate_")
            record[f"rate_{layer}_first"] = float(rows[0][key])
            record[f"rate_{layer}_last"] = float(rows[-1][key])
        records.append(record)
    return records


def curves(run_dir: Path) -> tuple[str, str, dict[int, list[tuple[int, float]]]]:
    config = json.loads((run_dir / "config.json").read_text())
    by_seed = defaultdict(list)
    for row in _rows(run_dir / "evaluations.csv"):
        by_seed[int(row["seed"])].append((int(row["agent_steps"]), float(row["return_mean"])))
    return _label(config, run_dir), minatar_game(config["env"]["game"]), by_seed


def _mean_se(values: list[float]) -> str:
    v = np.asarray(values, float)
    if len(v) < 2:
        return f"{v.mean():.2f} (1 seed)"
    return f"{v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f}"


def markdown(records: list[dict]) -> str:
    groups = defaultdict(list)
    for r in records:
        groups[(r["game"], r["algorithm"])].append(r)
    dqn_final = {
        game: np.mean([r["final"] for r in rs])
        for (game, algo), rs in groups.items()
        if algo == DQN
    }
    lines = [
        "# MinAtar: DSQN against DQN",
        "",
        "Scores are mean returns of 30 evaluation games per seed (epsilon 0.001); cells read mean "
        "± standard error over seeds. *final*: the policy at the end (or, for an unfinished run, "
        "its latest evaluation); *best*: the best checkpoint (re-evaluated on fresh games when "
        "the run finished; otherwise the best evaluation during training, selected on those "
        "games: optimistic). DQN-normalised IQM: interquartile mean over seeds of (score − "
        "random) / (DQN − random), DQN = this study's minatar-dqn mean final score on the game, "
        "with its 95% stratified-bootstrap interval (50,000 replicates).",
        "",
        "| game | algorithm | seeds | agent steps | final | best | random | "
        "final, DQN-normalised IQM [95% CI] | at the steps all runs reached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    common = defaultdict(lambda: float("inf"))
    for r in records:
        common[r["game"]] = min(common[r["game"]], max(r["curve"]))
    for (game, algo), rs in sorted(groups.items()):
        random = MINATAR_RANDOM_SCORES[game]
        reached = min(r["agent_steps"] for r in rs)
        total = rs[0]["total_agent_steps"]
        steps = f"{reached:,} of {total:,}" + (
            "" if all(r["finished"] for r in rs) else " (unfinished)"
        )
        iqm = "n/a"
        if game in dqn_final and dqn_final[game] > random:
            normalised = [(r["final"] - random) / (dqn_final[game] - random) for r in rs]
            if len(normalised) > 1:
                interval = aggregates.interval_estimate(
                    aggregates.score_matrix([normalised]), aggregates.iqm
                )
                iqm = (
                    f"{100 * interval.value:.0f}% [{100 * interval.low:.0f}%, "
                    f"{100 * interval.high:.0f}%]"
                )
        at = [r["curve"][common[game]] for r in rs if common[game] in r["curve"]]
        matched = f"{_mean_se(at)} at {common[game]:,}" if len(at) == len(rs) else "n/a"
        lines.append(
            f"| {game} | {algo} | {len(rs)} | {steps} | {_mean_se([r['final'] for r in rs])} | "
            f"{_mean_se([r['best'] for r in rs])} | {random:.2f} | {iqm} | {matched} |"
        )
    lines += [
        "",
        "## Firing rates (spikes per neuron per time step, mean over seeds)",
        "",
        "| game | algorithm | T | layer | at the first log line | at the last |",
        "|---|---|---|---|---|---|",
    ]
    for (game, algo), rs in sorted(groups.items()):
        layers = sorted(
            k.removeprefix("rate_").removesuffix("_first") for k in rs[0] if k.endswith("_first")
        )
        for layer in layers:
            first = np.mean([r[f"rate_{layer}_first"] for r in rs])
            last = np.mean([r[f"rate_{layer}_last"] for r in rs])
            lines.append(
                f"| {game} | {algo} | {rs[0]['time_steps']} | {layer} | {first:.4f} | {last:.4f} |"
            )
    lines += ["", "## Per seed", "", "See `per_seed.csv`.", ""]
    return "\n".join(lines)


def plot_curves(dirs: list[Path], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_game = defaultdict(list)
    for d in dirs:
        label, game, by_seed = curves(d)
        by_game[game].append((label, by_seed))
    paths = []
    for game, entries in sorted(by_game.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for label, by_seed in sorted(entries):
            steps = sorted(set.intersection(*(set(s for s, _ in p) for p in by_seed.values())))
            table = np.array([[dict(p)[s] for s in steps] for p in by_seed.values()])
            x = np.array(steps) / 1e6
            line = ax.plot(x, table.mean(0), label=f"{label} ({len(table)} seeds)")[0]
            ax.fill_between(x, table.min(0), table.max(0), color=line.get_color(), alpha=0.2)
        ax.axhline(MINATAR_RANDOM_SCORES[game], color="0.4", ls="--", label="random")
        ax.set(
            xlabel="agent steps (millions)", ylabel="evaluation return", title=f"{game} (MinAtar)"
        )
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out / f"curves_{game}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/results/minatar"))
    args = parser.parse_args()
    dirs = run_dirs(args.roots)
    if not dirs:
        parser.error(f"no run directory with evaluations.csv under {args.roots}")
    records = [r for d in dirs for r in seed_records(d)]
    rows = [{k: v for k, v in r.items() if k != "curve"} for r in records]
    args.out.mkdir(parents=True, exist_ok=True)
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k.startswith("rate_"), k))
    with (args.out / "per_seed.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "results.md").write_text(markdown(records))
    figures = plot_curves(dirs, args.out)
    print(f"{len(dirs)} runs, {len(records)} seeds -> {args.out} ({len(figures)} figures)")


if __name__ == "__main__":
    main()
