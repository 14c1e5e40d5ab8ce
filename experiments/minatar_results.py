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
  min-max band, one line per algorithm with several seeds, the random policy dashed;
  ``variants_<game>.png``: every one-seed run (T, the points of a tau sweep) beside seed 0 of
  ``minatar-dsqn``.

A sweep run's points are algorithms of their own (``"minatar-dsqn [network.tau=1.5]"``). The
main table holds the algorithms with several seeds, normalised both by this study's DQN and by
Young & Tian's published DQN (:data:`dsqn.config.games.MINATAR_DQN_SCORES`, read off their figure
by ``experiments/minatar_published.py``, whose output ``published_dqn.json`` is shown beside);
one-seed variants have a table of their own.

Converted runs (``dsqn convert`` of a ``minatar-dqn`` run: Tan et al. 2021's ANN-to-SNN
conversion; a ``conversion.json`` under the roots) get ``conversion.csv`` (one row per seed)
and a table in ``results.md``: the converted SNN's score beside its source DQN's on the same
games, the matching rate of greedy actions, firing rates and energy per action. Runs measured
by ``dsqn energy`` (an ``energy.json``) get a table of their energy per action.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from dsqn.config.games import (
    MINATAR_RANDOM_SCORES,
    MINATAR_SUFFIX,
    minatar_game,
    normalized_score,
)
from dsqn.reports import aggregates
from dsqn.reports.runs import agent_key, point_label, read_sweep

DQN = "minatar-dqn"
DSQN = "minatar-dsqn"


def run_dirs(roots: list[Path]) -> list[Path]:
    """Every directory under ``roots`` with a ``config.json`` and an ``evaluations.csv``."""
    found = set()
    for root in roots:
        for config in root.rglob("config.json"):
            if (config.parent / "evaluations.csv").is_file():
                found.add(config.parent)
    return sorted(found)


def _label(config: dict, run_dir: Path, values: dict[str, float] | None = None) -> str:
    """The algorithm's label: the config's name (a variant's name names its change), with a
    sweep point's values (``"minatar-dsqn [network.tau=1.5]"``)."""
    return point_label(str(config.get("name") or run_dir.name), values or {})


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _agent(row: dict, sweep: dict[str, tuple[float, ...]]) -> tuple[tuple[float, ...], int]:
    """``(sweep values, seed)`` of a CSV row; ``((), seed)`` without a sweep."""
    return tuple(float(row[path]) for path in sweep), int(row["seed"])


def seed_records(run_dir: Path) -> list[dict]:
    """One record per agent (seed, or sweep point and seed) of ``run_dir`` (see the module
    docstring)."""
    config = json.loads((run_dir / "config.json").read_text())
    sweep = read_sweep(run_dir)
    game = minatar_game(config["env"]["game"])
    total = config["run"]["total_agent_steps"] + (
        0
        if config["learner"]["schedule_counts_warmup"]
        else config["learner"]["warmup_agent_steps"]
    )
    evaluations = defaultdict(list)
    for row in _rows(run_dir / "evaluations.csv"):
        point = _agent(row, sweep)
        evaluations[point].append((int(row["agent_steps"]), float(row["return_mean"])))
    metrics = defaultdict(list)
    if (run_dir / "metrics.csv").is_file():
        for row in _rows(run_dir / "metrics.csv"):
            metrics[_agent(row, sweep)].append(row)
    final_file = run_dir / "evaluation.json"
    finished = json.loads(final_file.read_text())["per_seed"] if final_file.is_file() else None
    records = []
    for (point, seed), points in sorted(evaluations.items()):
        values = dict(zip(sweep, point, strict=True))
        steps = [s for s, _ in points]
        scores = [v for _, v in points]
        spiking = config["network"]["kind"] == "dsqn"
        record = {
            "algorithm": _label(config, run_dir, values),
            "game": game,
            "seed": seed,
            "time_steps": config["network"]["time_steps"] if spiking else "",
            "tau": values.get("network.tau", config["network"].get("tau", "")) if spiking else "",
            "agent_steps": max(steps),
            "total_agent_steps": total,
            "finished": finished is not None,
            "final": scores[int(np.argmax(steps))],
            "best": max(scores),
            "run_dir": str(run_dir),
            "curve": dict(points),
        }
        if finished is not None:
            entry = finished[agent_key(values, seed) if sweep else str(seed)]
            record["final"], record["best"] = entry["final"]["mean"], entry["best"]["mean"]
        rows = metrics.get((point, seed), [])
        for key in sorted(k for k in (rows[0] if rows else {}) if k.startswith("firing_rate_")):
            layer = key.removeprefix("firing_rate_")
            record[f"rate_{layer}_first"] = float(rows[0][key])
            record[f"rate_{layer}_last"] = float(rows[-1][key])
        records.append(record)
    return records


def conversion_records(roots: list[Path]) -> list[dict]:
    """One record per seed of every converted run (``conversion.json``) under ``roots``."""
    records = []
    for path in sorted({p for root in roots for p in root.rglob("conversion.json")}):
        data = json.loads(path.read_text())
        config = json.loads((path.parent / "config.json").read_text())
        for seed, entry in sorted(data["per_seed"].items(), key=lambda kv: int(kv[0])):
            energy = entry["energy_per_action_nj"]
            records.append(
                {
                    "game": minatar_game(config["env"]["game"]),
                    "seed": int(seed),
                    "time_steps": data["time_steps"],
                    "percentile": data["percentile"],
                    "normalization_frames": data["normalization_frames"],
                    "checkpoint": data["checkpoint"],
                    "source_agent_steps": entry["agent_steps"],
                    "episodes": data["episodes"],
                    "ann": entry["ann"]["mean"],
                    "snn": entry["snn"]["mean"],
                    "matching_rate": entry["matching_rate"],
                    **{f"rate_{k}": v for k, v in entry["firing_rates"].items()},
                    "energy_snn_nj": energy["snn"],
                    "energy_ann_nj": energy["ann"],
                    "run_dir": str(path.parent),
                }
            )
    return records


def _conversion_lines(records: list[dict]) -> list[str]:
    """The converted SNNs beside their source DQNs, per game, T and percentile."""
    groups = defaultdict(list)
    for r in records:
        groups[(r["game"], r["time_steps"], r["percentile"], r["normalization_frames"])].append(r)
    lines = [
        "## ANN-to-SNN conversion (Tan et al. 2021)",
        "",
        "`dsqn convert` of every seed of the minatar-dqn cell (its best checkpoint): layer-wise "
        "normalisation at the given percentile of pre-activations on *frames* observations of "
        "the DQN playing at epsilon 0.05, IF neurons with reset by subtraction, the binary frame "
        "as the analog input, Q = output spikes + final membrane over T steps. The converted SNN "
        "and its DQN play the same games (same seeds and exploration draws, epsilon 0.001). "
        "*matching*: the fraction of held-out observations (other games) on which the two "
        "choose the same greedy action. Firing rates: spikes per neuron per time step while "
        "playing. Energy per action: 45 nm costs (`dsqn energy`: MACs x 4.6 pJ, synaptic "
        "operations x 0.9 pJ).",
        "",
        "| game | T | percentile | frames | seeds | DQN (same games) | converted SNN | matching | "
        "firing rate conv1 / fc1 / fc2 | energy per action, SNN / DQN (nJ) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (game, t, pct, frames), rs in sorted(groups.items()):
        rates = " / ".join(
            f"{np.mean([r.get(f'rate_{layer}', np.nan) for r in rs]):.3f}"
            for layer in ("conv1", "fc1", "fc2")
        )
        energy = (
            f"{np.mean([r['energy_snn_nj'] for r in rs]):,.0f} / "
            f"{np.mean([r['energy_ann_nj'] for r in rs]):,.0f}"
        )
        lines.append(
            f"| {game} | {t} | {pct:g} | {frames:,} | {len(rs)} | "
            f"{_mean_se([r['ann'] for r in rs])} | "
            f"{_mean_se([r['snn'] for r in rs])} | "
            f"{np.mean([r['matching_rate'] for r in rs]):.3f} | {rates} | {energy} |"
        )
    return lines


def energy_records(roots: list[Path]) -> list[dict]:
    """One record per ``energy.json`` (``dsqn energy RUN``) under ``roots``: its means over
    seeds."""
    records = []
    for path in sorted({p for root in roots for p in root.rglob("energy.json")}):
        data = json.loads(path.read_text())
        config = json.loads((path.parent / "config.json").read_text())
        records.append(
            {
                "game": minatar_game(config["env"]["game"]),
                "algorithm": _label(config, path.parent),
                "time_steps": data["time_steps"],
                "checkpoint": data["checkpoint"],
                "seeds": len(data["seeds"]),
                "episodes": data["episodes"],
                "firing_rate": data["firing_rate"],
                "synaptic_ops": data["synaptic_ops_per_action"],
                "first_layer_macs": data["macs_per_action_first_layer"],
                "snn_nj": data["energy_per_action_nj"]["snn"],
                "ann_nj": data["energy_per_action_nj"]["ann"],
            }
        )
    return records


def _energy_lines(records: list[dict]) -> list[str]:
    lines = [
        "## Energy per action (`dsqn energy`)",
        "",
        "Each seed's agent at the given checkpoint plays the evaluation games with spike "
        "counting on (epsilon 0.001); means over seeds. *firing rate*: spikes per neuron per "
        "time step over every spiking neuron; *SOP*: synaptic operations (each spike times its "
        "fan-out); the first layer's MACs count once per action (direct encoding). Energy: "
        "MACs x 4.6 pJ + SOP x 0.9 pJ (45 nm, Horowitz 2014), against the ReLU network of the "
        "same shape, MACs x 4.6 pJ. A silent network pays only its first layer.",
        "",
        "| game | algorithm | T | checkpoint | seeds | firing rate | SOP / action | "
        "first-layer MACs / action | energy per action, SNN / ReLU (nJ) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: (r["game"], r["algorithm"])):
        lines.append(
            f"| {r['game']} | {r['algorithm']} | {r['time_steps']} | {r['checkpoint']} | "
            f"{r['seeds']} | {r['firing_rate']:.4f} | {r['synaptic_ops']:,.0f} | "
            f"{r['first_layer_macs']:,.0f} | {r['snn_nj']:,.0f} / {r['ann_nj']:,.0f} |"
        )
    return lines


def _mean_se(values: list[float]) -> str:
    v = np.asarray(values, float)
    if len(v) < 2:
        return f"{v.mean():.2f} (1 seed)"
    return f"{v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f}"


PUBLISHED = Path(__file__).resolve().parents[1] / "docs/results/minatar/published_dqn.json"
"""Young & Tian's DQN read off their figure (``experiments/minatar_published.py``)."""


def _iqm(normalised: list[float]) -> str:
    """IQM with its 95% stratified-bootstrap interval, in %; "n/a" with fewer than 2 seeds."""
    if len(normalised) < 2:
        return "n/a"
    interval = aggregates.interval_estimate(aggregates.score_matrix([normalised]), aggregates.iqm)
    return f"{100 * interval.value:.0f}% [{100 * interval.low:.0f}%, {100 * interval.high:.0f}%]"


def _published_lines() -> list[str]:
    data = json.loads(PUBLISHED.read_text())
    lines = [
        "## Published: Young & Tian 2019's DQN",
        "",
        "Read off the only published form, the figure of the MinAtar paper and repository, by "
        "pixel measurement (`experiments/minatar_published.py`; `published_dqn.json`). Not the "
        "same protocol as above: the moving average (0.99) of *training* returns at epsilon "
        "0.1, mean of 30 runs, the full action set of 6 actions, RMSprop, one update per frame "
        "(4x this study's updates per step), 5M frames (= agent steps; MinAtar has no frame "
        "skip); Seaquest's curve predates MinAtar 1.0.11. The 5M value is the reference of "
        "the Young-&-Tian-normalised column above and of `dsqn report` on MinAtar.",
        "",
        "| game | DQN at 1M frames | DQN at 5M frames (the reference) |",
        "|---|---|---|",
    ]
    for game, entry in sorted(data["games"].items()):
        lines.append(f"| {game} | {entry['at_1M_frames']:.1f} | {entry['at_5M_frames']:.1f} |")
    return lines


def _variant_lines(groups: dict[tuple[str, str], list[dict]]) -> list[str]:
    """One-seed variants (T, tau) beside seed 0 of the spiking preset on the same game."""
    singles = {k: rs for k, rs in groups.items() if len(rs) == 1}
    if not singles:
        return []
    lines = [
        "## Variants on one seed: T and tau",
        "",
        "One run per value, seed 0, beside seed 0 of the 3-seed minatar-dsqn cell (T = 8, tau = "
        "2; the same seed's draws: agents that share a seed start from the same random "
        "numbers). One seed shows a direction, not a difference an interval supports. fc1 rate: "
        "spikes per neuron per time step at the last log line.",
        "",
        "| game | algorithm | T | tau | agent steps | final | best | fc1 rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for game in sorted({g for g, _ in singles}):
        base = [r for r in groups.get((game, DSQN), []) if r["seed"] == 0]
        rows = base + [rs[0] for (g, _), rs in sorted(singles.items()) if g == game]
        for r in rows:
            steps = f"{r['agent_steps']:,}" + ("" if r["finished"] else " (unfinished)")
            rate = r.get("rate_fc1_last")
            lines.append(
                f"| {game} | {r['algorithm']}{' (seed 0)' if r in base else ''} | "
                f"{r['time_steps']} | {r['tau']} | {steps} | {r['final']:.2f} | "
                f"{r['best']:.2f} | {'' if rate is None else f'{rate:.4f}'} |"
            )
    return lines


def markdown(
    records: list[dict],
    conversions: list[dict] | None = None,
    energies: list[dict] | None = None,
) -> str:
    groups = defaultdict(list)
    for r in records:
        groups[(r["game"], r["algorithm"])].append(r)
    study = {k: rs for k, rs in groups.items() if len(rs) > 1}
    dqn_final = {
        game: np.mean([r["final"] for r in rs]) for (game, algo), rs in study.items() if algo == DQN
    }
    lines = [
        "# MinAtar: DSQN against DQN",
        "",
        "Scores are mean returns of 30 evaluation games per seed (epsilon 0.001); cells read mean "
        "± standard error over seeds. *final*: the policy at the end (or, for an unfinished run, "
        "its latest evaluation); *best*: the best checkpoint (re-evaluated on fresh games when "
        "the run finished; otherwise the best evaluation during training, selected on those "
        "games: optimistic). Normalised IQM: interquartile mean over seeds of the final score "
        "normalised as (score − random) / (reference − random), with its 95% "
        "stratified-bootstrap interval (50,000 replicates). Two references: *this DQN* is this "
        "study's minatar-dqn mean final score on the game (same budget and seeds); *Y&T DQN* is "
        "Young & Tian 2019's published DQN after 5M frames (below; another protocol).",
        "",
        "| game | algorithm | seeds | agent steps | final | best | random | "
        "IQM, normalised by this DQN [95% CI] | IQM, normalised by Y&T DQN [95% CI] | "
        "at the steps all runs reached |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    common = defaultdict(lambda: float("inf"))
    for rs in study.values():
        for r in rs:
            common[r["game"]] = min(common[r["game"]], max(r["curve"]))
    for (game, algo), rs in sorted(study.items()):
        random = MINATAR_RANDOM_SCORES[game]
        reached = min(r["agent_steps"] for r in rs)
        total = rs[0]["total_agent_steps"]
        steps = f"{reached:,} of {total:,}" + (
            "" if all(r["finished"] for r in rs) else " (unfinished)"
        )
        own = "n/a"
        if game in dqn_final and dqn_final[game] > random:
            own = _iqm([(r["final"] - random) / (dqn_final[game] - random) for r in rs])
        cited = _iqm([normalized_score(game + MINATAR_SUFFIX, r["final"]) for r in rs])
        at = [r["curve"][common[game]] for r in rs if common[game] in r["curve"]]
        matched = f"{_mean_se(at)} at {common[game]:,}" if len(at) == len(rs) else "n/a"
        lines.append(
            f"| {game} | {algo} | {len(rs)} | {steps} | {_mean_se([r['final'] for r in rs])} | "
            f"{_mean_se([r['best'] for r in rs])} | {random:.2f} | {own} | {cited} | {matched} |"
        )
    if conversions:
        lines += ["", *_conversion_lines(conversions)]
    if energies:
        lines += ["", *_energy_lines(energies)]
    lines += ["", *_published_lines(), ""]
    variants = _variant_lines(groups)
    if variants:
        lines += [*variants, ""]
    lines += [
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


def _plot(ax, label: str, curves: list[dict[int, float]]) -> None:
    """The mean over curves with a min-max band, at the steps every curve has."""
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    table = np.array([[c[s] for s in steps] for c in curves])
    x = np.array(steps) / 1e6
    seeds = f"{len(table)} seeds" if len(table) > 1 else "seed 0" if label else "1 seed"
    line = ax.plot(x, table.mean(0), label=f"{label} ({seeds})")[0]
    if len(table) > 1:
        ax.fill_between(x, table.min(0), table.max(0), color=line.get_color(), alpha=0.2)


def _figure(game: str, entries: list[tuple[str, list[dict[int, float]]]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, curves in entries:
        _plot(ax, label, curves)
    ax.axhline(MINATAR_RANDOM_SCORES[game], color="0.4", ls="--", label="random")
    ax.set(xlabel="agent steps (millions)", ylabel="evaluation return", title=f"{game} (MinAtar)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(records: list[dict], out: Path) -> list[Path]:
    """``curves_<game>.png``: every algorithm with several seeds (mean, min-max band);
    ``variants_<game>.png``: every one-seed run beside seed 0 of the spiking preset."""
    groups = defaultdict(list)
    for r in records:
        groups[(r["game"], r["algorithm"])].append(r)
    paths = []
    for game in sorted({g for g, _ in groups}):
        main = [(a, [r["curve"] for r in rs]) for (g, a), rs in sorted(groups.items()) if g == game]
        paths.append(_figure(game, [e for e in main if len(e[1]) > 1], out / f"curves_{game}.png"))
        single = [e for e in main if len(e[1]) == 1]
        if single:
            base = [r for r in groups.get((game, DSQN), []) if r["seed"] == 0]
            reference = [(f"{DSQN}", [base[0]["curve"]])] if base else []
            paths.append(_figure(game, reference + single, out / f"variants_{game}.png"))
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
    conversions = conversion_records(args.roots)
    if conversions:
        columns = {k for r in conversions for k in r}
        with (args.out / "conversion.csv").open("w", newline="") as f:
            writer = csv.DictWriter(
                f, fieldnames=sorted(columns, key=lambda k: (k.startswith("rate_"), k))
            )
            writer.writeheader()
            writer.writerows(conversions)
    (args.out / "results.md").write_text(markdown(records, conversions, energy_records(args.roots)))
    figures = plot_curves(records, args.out)
    print(
        f"{len(dirs)} runs, {len(records)} seeds, {len(conversions)} converted seeds -> "
        f"{args.out} ({len(figures)} figures)"
    )


if __name__ == "__main__":
    main()
