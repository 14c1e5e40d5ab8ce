"""The ``dsqn`` command line.

::

    dsqn presets [NAME] [--flags]             list presets, or print one preset's full config
                                              (JSON, or --section.field VALUE lines)
    dsqn train PRESET [--game G] [--seeds 0 1 2] [--run-dir DIR] [--section.field VALUE ...]
    dsqn train --config FILE.json [--section.field VALUE ...]   (the file, then the overrides)
    dsqn train --resume RUN_DIR [--run.total_agent_steps N]
    dsqn train PRESET --run-dir DIR --distributed   (one process per host: dsqn.runtime.distributed)
    dsqn evaluate RUN_DIR [--checkpoint best|final|STEP] [--episodes N] [--epsilon E]
    dsqn evaluate RUN_DIR --video DIR [--episodes N]   (one MP4 per game, with the spikes)
    dsqn report ROOT_OR_RUN_DIRS... --out DIR [--band minmax|std] [--x agent_steps|frames]
    dsqn energy RUN_DIR [--checkpoint best|final|STEP] [--episodes N] [--pj-per-ac 0.9]
    dsqn convert DQN_RUN_DIR --run-dir OUT [--time-steps 500] [--percentile 99.9] [--frames N]
    dsqn convert DQN_RUN_DIR --run-dir OUT --sweep-time-steps 100 250 500 --sweep-percentiles ...
    dsqn robustness RUN_DIR... --out DIR [--noise 0 0.01 ...] [--fgsm 0 0.001 ...]
    dsqn export RUN_DIR --out agent.nir [--checkpoint best|final|STEP] [--seed S] [--dt DT]
                                              the agent's Q-network as a NIR graph (dsqn.models.nir)
    dsqn versions [--constraints]             the software environment (JSON), or the pins of
                                              constraints.txt

Each subcommand is one entry of :data:`SUBCOMMANDS`: the function that adds its parser and the
handler that runs it.

Any config field can be set as ``--section.field value`` (``dsqn train --help`` lists them
all), e.g. ``--network.time_steps 8 --learner.replay_capacity_transitions 100000``. Invalid values
are rejected before anything runs, with a message naming the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["main", "build_parser", "parse_field_overrides", "SUBCOMMANDS"]

CHECKPOINT_HELP = "best (default), final (the latest checkpoint; also: latest), or an agent step"


class CommandLine(NamedTuple):
    """What a subcommand's handler gets beside its parsed options."""

    argv: list[str]
    """The whole command line after ``dsqn`` (recorded in the files a command writes)."""
    fields: list[str]
    """The ``--section.field VALUE`` arguments (only a subcommand that takes them gets any)."""


def parse_field_overrides(extra: list[str]) -> dict[str, str]:
    """``["--network.time_steps", "8", "--run.seeds", "0", "1"]`` -> dotted-path overrides.

    A field may take several values (tuples such as ``run.seeds``); they are joined by spaces.
    """
    from dsqn.config import ConfigError

    overrides: dict[str, list[str]] = {}
    current = None
    for token in extra:
        if token.startswith("--") and "." in token:
            current = token[2:]
            if "=" in current:
                current, value = current.split("=", 1)
                overrides.setdefault(current, []).append(value)
                current = None
            else:
                overrides.setdefault(current, [])
        elif current is not None and not token.startswith("--"):
            overrides[current].append(token)
        else:
            raise ConfigError(
                f"unexpected argument {token!r}; config fields are given as "
                "--section.field VALUE (see `dsqn presets dsqn` for the fields)"
            )
    missing = [k for k, v in overrides.items() if not v]
    if missing:
        raise ConfigError(f"no value given for {', '.join('--' + m for m in missing)}")
    return {k: " ".join(v) for k, v in overrides.items()}


def split_field_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separates ``--section.field VALUE...`` groups from the ordinary arguments."""
    ordinary, fields = [], []
    in_field = False
    for token in argv:
        if token.startswith("--"):
            in_field = "." in token.split("=", 1)[0]
        (fields if in_field else ordinary).append(token)
    return ordinary, fields


def _add_field_help(parser: argparse.ArgumentParser) -> None:
    """One help entry per config field, grouped by section, generated from the dataclasses.

    ``--section.field`` tokens are taken out of the command line before argparse runs
    (:func:`split_field_arguments`), so these entries only document them.
    """
    from dsqn.config import fields, flag_value

    groups: dict[str, argparse._ArgumentGroup] = {}
    for info in fields():
        if "." not in info.path:
            continue
        section = info.path.split(".")[0]
        if section not in groups:
            groups[section] = parser.add_argument_group(f"config fields: {section}")
        metavar = info.type.replace(" ", "").replace("tuple[", "").replace(",...]", "...")
        groups[section].add_argument(
            f"--{info.path}",
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=f"{info.doc} (default: {flag_value(info.default)})".replace("%", "%%"),
        )


def _add_versions(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn versions [--constraints]``: the software environment a run would record."""
    p = sub.add_parser(name, help="the software environment a run would record")
    p.add_argument(
        "--constraints",
        action="store_true",
        help="print name==version pins of the installed dependencies (constraints.txt)",
    )


def _add_presets(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn presets [NAME] [--flags | --sources]``: the presets, or one preset's config."""
    p = sub.add_parser(name, help="list the presets, or print one preset's config")
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--flags",
        action="store_true",
        help="print the preset as --section.field VALUE lines instead of JSON",
    )
    p.add_argument(
        "--sources",
        action="store_true",
        help="print each value the preset sets with its source (paper, code, flag)",
    )


def _add_train(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn train``: a preset, a config file or a resumed run, then the config field
    overrides (listed in its help, one entry per field)."""
    from dsqn.config.sweep import SWEEPABLE

    p = sub.add_parser(
        name,
        usage="dsqn train [PRESET | --config FILE | --resume RUN_DIR] [options] "
        "[--section.field VALUE ...]",
        help="train a preset or a config file (or resume a run)",
        description="Train PRESET, or the config in --config FILE; then every --section.field "
        "VALUE given replaces that field. The fields, their types and defaults (the paper's "
        "values; presets change some) are listed below.",
    )
    p.add_argument("preset", nargs="?", help="preset name (see `dsqn presets`)")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a JSON config (e.g. from `dsqn presets NAME > FILE`, or a run's config.json); "
        "missing fields take the defaults below",
    )
    p.add_argument("--name", help="a label for the run (default: the preset's name)")
    p.add_argument("--game", help="Atari game (e.g. Pong) or classic env (e.g. CartPole-v1)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds trained together (vmapped)")
    p.add_argument(
        "--sweep",
        nargs="+",
        action="append",
        metavar=("FIELD", "VALUE"),
        help="train every value of FIELD (e.g. --sweep network.tau 1.5 2 4) beside every seed, "
        "as one vmapped axis of agents; repeat for a grid. Sweepable: " + ", ".join(SWEEPABLE),
    )
    p.add_argument("--run-dir", type=Path, help="the run directory (default runs/<game>/...)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    p.add_argument(
        "--track",
        choices=["wandb"],
        help="also log to Weights & Biases (pip install -e '.[wandb]'; WANDB_MODE=offline "
        "writes the run under RUN_DIR/wandb/ with no network): the metrics of metrics.csv and "
        "evaluations.csv, the config and the final evaluation",
    )
    p.add_argument("--wandb-project", default="dsqn", help="the W&B project (default: dsqn)")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a multi-host run: jax.distributed.initialize() from the "
        "environment (SLURM, Open MPI, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
        "JAX_PROCESS_ID); the seeds are sharded over the devices of all processes",
    )
    _add_field_help(p)


def _add_evaluate(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn evaluate RUN_DIR``: a checkpoint re-evaluated, or (``--video``) games recorded."""
    p = sub.add_parser(name, help="re-evaluate a checkpoint of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--episodes", type=int, help="episodes per seed (default: the run's)")
    p.add_argument("--epsilon", type=float, help="exploration rate (default: the run's)")
    p.add_argument(
        "--video",
        type=Path,
        metavar="DIR",
        help="instead of evaluating, play --episodes games per seed (default 1) and write one "
        "MP4 per game into DIR: the game beside the Q-values and, for spiking networks, each "
        "layer's firing rate and fc1's spike raster at every decision",
    )


def _add_report(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn report RUNS... --out DIR``: tables and figures over many runs."""
    p = sub.add_parser(name, help="tables (Markdown + CSV) and plots of many runs")
    p.add_argument("runs", nargs="+", type=Path, help="run directories, or roots to search")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--band", default="minmax", choices=["minmax", "std"], help="band over seeds")
    p.add_argument("--x", default="agent_steps", choices=["agent_steps", "frames"])


def _add_energy(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn energy RUN_DIR``: spike statistics and energy per action of a checkpoint."""
    p = sub.add_parser(name, help="firing rates, synaptic operations and energy per action")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--episodes", type=int, help="evaluation episodes per seed")
    p.add_argument("--epsilon", type=float, help="exploration rate (default: the run's)")
    p.add_argument("--pj-per-ac", type=float, default=0.9, help="energy of one accumulate (pJ)")
    p.add_argument("--pj-per-mac", type=float, default=4.6, help="energy of one MAC (pJ)")


def _add_convert(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn convert DQN_RUN_DIR --run-dir OUT``: one conversion, or a sweep of them."""
    p = sub.add_parser(name, help="ANN-to-SNN conversion of a trained DQN run (Tan et al.)")
    p.add_argument("dqn_run_dir", type=Path)
    p.add_argument("--run-dir", type=Path, required=True, help="the converted run's directory")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--time-steps", type=int, default=500, help="simulation length T per action")
    p.add_argument("--percentile", type=float, default=99.9, help="robust normalisation level")
    p.add_argument("--frames", type=int, default=15_000, help="normalisation frames per seed")
    p.add_argument(
        "--output-scale",
        default="percentile",
        choices=["percentile", "abs_percentile"],
        help="output layer scale: the percentile of Q (the paper), or of |Q| (when Q < 0)",
    )
    p.add_argument("--episodes", type=int, help="evaluation episodes (default: the run's)")
    p.add_argument("--sweep-time-steps", type=int, nargs="+", help="sweep over these T")
    p.add_argument("--sweep-percentiles", type=float, nargs="+", help="sweep these percentiles")


def _add_robustness(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn robustness RUNS... --out DIR``: scores under input noise and FGSM attacks."""
    p = sub.add_parser(name, help="score under Gaussian noise and FGSM attacks")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (trained or converted)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.05])
    p.add_argument("--fgsm", type=float, nargs="+", default=[0.0, 0.001, 0.005, 0.01])
    p.add_argument("--episodes", type=int, help="evaluation episodes (default: the run's)")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)


def _add_export(sub: argparse._SubParsersAction, name: str) -> None:
    """``dsqn export RUN_DIR --out FILE``: one agent's Q-network as a NIR graph."""
    p = sub.add_parser(name, help="the agent's Q-network as a NIR graph (dsqn.models.nir)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the graph's file (HDF5, .nir)")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--seed", type=int, help="the training seed (default: the run's first)")
    p.add_argument(
        "--dt",
        type=float,
        default=1.0,
        help="one step in the graph's time unit: tau is written as tau * dt (default 1: in "
        "steps; snnTorch 1.0's importer assumes 1e-4)",
    )


def _cmd_export(args: argparse.Namespace, line: CommandLine) -> int:
    import os

    import nir

    from dsqn.rundir.loading import load_agent

    agent = load_agent(args.run_dir, args.checkpoint, seed=args.seed)
    graph = agent.to_nir(dt=args.dt)  # refuses before anything is written
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    nir.write(partial, graph)
    os.replace(partial, args.out)
    meta = graph.metadata
    print(
        f"seed {agent.seed}, checkpoint {agent.checkpoint} (agent step {agent.agent_steps}): "
        f"{len(graph.nodes)} nodes, T = {meta['dsqn_time_steps']}, Q = the "
        f"{meta['dsqn_readout']} of the output over the T steps -> {args.out}"
    )
    return 0


def _cmd_convert(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.analyses import convert_run
    from dsqn.rundir import files as rd

    options = convert_run.ConversionOptions(
        time_steps=args.time_steps,
        percentile=args.percentile,
        output_scale=args.output_scale,
        normalization_frames=args.frames,
        checkpoint=args.checkpoint,
        episodes=args.episodes,
        command=["dsqn", *line.argv],
    )
    if args.sweep_time_steps or args.sweep_percentiles:
        convert_run.sweep(
            args.dqn_run_dir,
            args.run_dir,
            time_steps=args.sweep_time_steps or [args.time_steps],
            percentiles=args.sweep_percentiles or [args.percentile],
            options=options,
        )
        print((args.run_dir / rd.SWEEP_MARKDOWN).read_text())
        return 0
    out = convert_run.convert_run(args.dqn_run_dir, args.run_dir, options)
    summary = out["summary"]
    print(
        f"converted SNN (T={args.time_steps}, percentile {args.percentile}): "
        f"{json.dumps(summary)}\nwritten to {args.run_dir}"
    )
    return 0


def _cmd_robustness(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.analyses.robustness import robustness_report
    from dsqn.rundir import files as rd

    robustness_report(
        args.runs,
        args.out,
        noise_stds=args.noise,
        fgsm_eps=args.fgsm,
        episodes=args.episodes,
        checkpoint=args.checkpoint,
    )
    print((args.out / rd.ROBUSTNESS_MARKDOWN).read_text())
    return 0


def _cmd_energy(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.analyses.energy_report import energy_report
    from dsqn.rundir import files as rd

    energy_report(
        args.run_dir,
        checkpoint=args.checkpoint,
        episodes=args.episodes,
        epsilon=args.epsilon,
        pj_per_ac=args.pj_per_ac,
        pj_per_mac=args.pj_per_mac,
    )
    print((args.run_dir / rd.ENERGY_MARKDOWN).read_text())
    print(f"written to {args.run_dir / rd.ENERGY} and {args.run_dir / rd.ENERGY_MARKDOWN}")
    return 0


def _cmd_report(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.reports.plots import write_all_plots
    from dsqn.reports.report import write_report

    runs = args.runs[0] if len(args.runs) == 1 else args.runs
    paths = write_report(runs, args.out)
    figures = write_all_plots(runs, args.out / "figures", x=args.x, band=args.band)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"{len(figures)} figures in {args.out / 'figures'}")
    return 0


def _cited_values(config, sources: dict[str, str]) -> str:
    """``field = value   source`` lines of the cited values; the other fields keep the paper's
    defaults."""
    from dsqn import config as C

    def value(path: str) -> str:
        section, field = path.split(".")
        return C.flag_value(getattr(getattr(config, section), field))

    entries = [(f"{path} = {value(path)}", source) for path, source in sources.items()]
    width = max((len(entry) for entry, _ in entries), default=0)
    lines = [f"{entry:<{width}}   {source}" for entry, source in entries]
    return "\n".join([*lines, "(every other field: the paper's default, `dsqn presets NAME`)"])


def _cmd_versions(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.runtime import versions

    if args.constraints:
        print("\n".join(versions.constraints()))
    else:
        print(json.dumps(versions.environment(), indent=2))
    return 0


def _cmd_presets(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn import config as C

    if args.name:
        config = C.preset(args.name)
        if args.flags:
            print("\n".join(C.to_flags(config)))
        elif args.sources:
            print(_cited_values(config, C.preset_sources(args.name)))
        else:
            print(json.dumps(C.to_dict(config), indent=2))
        return 0
    if args.flags or args.sources:
        raise C.ConfigError(
            "--flags and --sources describe one preset: name it, e.g. `dsqn presets cdqn --sources`"
        )
    width = max(len(n) for n in C.PRESETS)
    for name, desc in C.preset_descriptions().items():
        print(f"{name:<{width}}  {desc}")
    return 0


def _cmd_train(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn import config as C
    from dsqn.training.launch import run_training

    overrides: dict[str, Any] = parse_field_overrides(line.fields)
    command = ["dsqn", *line.argv]
    tracking = {"track": args.track, "wandb_project": args.wandb_project}
    if args.distributed:
        if args.resume is None and args.run_dir is None:
            raise C.ConfigError(
                "--distributed needs --run-dir (every process must write to the same run "
                "directory, on a file system all hosts share)"
            )
        from dsqn.runtime.distributed import initialize

        initialize()
    if args.resume is not None:
        if args.preset or args.config or args.game or args.seeds or args.name or args.sweep:
            raise C.ConfigError(
                "--resume continues a run with its own config: drop PRESET/--config/--game/"
                "--seeds/--name/--sweep"
            )
        result = run_training(
            run_dir=args.resume,
            resume=True,
            overrides=overrides,
            progress=not args.no_progress,
            command=command,
            **tracking,
        )
    else:
        config = _base_config(args)
        if args.name:
            overrides["name"] = args.name
        if args.game:
            overrides["env.game"] = args.game
        if args.seeds:
            overrides["run.seeds"] = list(args.seeds)
        overrides.update(_sweep_overrides(args.sweep or []))
        config = C.validate(C.apply_overrides(config, overrides))
        result = run_training(
            config, args.run_dir, progress=not args.no_progress, command=command, **tracking
        )
    return 0 if result["status"] == "finished" else 130


def _sweep_overrides(sweeps: list[list[str]]) -> dict[str, str]:
    """``--sweep network.tau 1.5 2 4`` -> ``{"sweep.network_tau": "1.5 2 4"}``."""
    from dsqn import config as C
    from dsqn.config.sweep import sweep_field

    overrides = {}
    for field, *values in sweeps:
        if not values:
            raise C.ConfigError(f"--sweep {field} needs at least one value")
        key = sweep_field(field)
        if key in overrides:
            raise C.ConfigError(f"--sweep {field} is given twice: list all its values once")
        overrides[key] = " ".join(values)
    return overrides


def _base_config(args):
    """The config that the overrides apply to: the preset, or the ``--config`` file."""
    from dsqn import config as C

    if args.preset and args.config:
        raise C.ConfigError(
            f"give a preset or --config, not both (got {args.preset!r} and {str(args.config)!r})"
        )
    if args.config:
        try:
            data = json.loads(args.config.read_text())
        except json.JSONDecodeError as err:
            raise C.ConfigError(f"--config {args.config} is not valid JSON: {err}") from None
        return C.from_dict(data)
    if not args.preset:
        raise C.ConfigError(
            f"name a preset to train, or give --config FILE; valid presets: {', '.join(C.PRESETS)}"
        )
    return C.preset(args.preset)


def _cmd_evaluate(args: argparse.Namespace, line: CommandLine) -> int:
    from dsqn.analyses.reevaluation import evaluate_checkpoint

    if args.video is not None:
        from dsqn.analyses.video import record_videos

        videos = record_videos(
            args.run_dir,
            args.video,
            checkpoint=args.checkpoint,
            episodes=args.episodes or 1,
            epsilon=args.epsilon,
        )
        for v in videos:
            print(
                f"seed {v['seed']} game {v['episode']}: score {v['score']:g}, {v['frames']} "
                f"decisions -> {v['path']}"
            )
        return 0
    out = evaluate_checkpoint(
        args.run_dir, checkpoint=args.checkpoint, episodes=args.episodes, epsilon=args.epsilon
    )
    for seed, entry in out["per_seed"].items():
        print(
            f"seed {seed}: {entry['mean']:.2f} +- {entry['std']:.2f} over "
            f"{len(entry['scores'])} episodes (agent step {entry['agent_steps']})"
        )
    print(f"written to {out['path']}")
    return 0


class Subcommand(NamedTuple):
    """One ``dsqn`` subcommand: how its parser is built and what runs it."""

    add_parser: Callable[[argparse._SubParsersAction, str], None]
    """Adds the subcommand's parser, of the given name, to the subparsers."""
    run: Callable[[argparse.Namespace, CommandLine], int]
    """Runs the parsed command; returns the exit status."""
    takes_fields: bool = False
    """Whether ``--section.field VALUE`` arguments are accepted (config overrides)."""


SUBCOMMANDS: dict[str, Subcommand] = {
    "versions": Subcommand(_add_versions, _cmd_versions),
    "presets": Subcommand(_add_presets, _cmd_presets),
    "train": Subcommand(_add_train, _cmd_train, takes_fields=True),
    "evaluate": Subcommand(_add_evaluate, _cmd_evaluate),
    "report": Subcommand(_add_report, _cmd_report),
    "energy": Subcommand(_add_energy, _cmd_energy),
    "convert": Subcommand(_add_convert, _cmd_convert),
    "robustness": Subcommand(_add_robustness, _cmd_robustness),
    "export": Subcommand(_add_export, _cmd_export),
}
"""Subcommand name -> its parser and handler, in the order ``dsqn --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The ``dsqn`` parser: one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="dsqn", description="Deep Spiking Q-Networks in JAX: train, evaluate, analyse."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        subcommand.add_parser(sub, name)
    return parser


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


# Option values every command checks before it reads or writes anything: argparse dest ->
# (test, what is valid).
_VALID_VALUES: dict[str, tuple[Any, str]] = {
    "episodes": (lambda v: v >= 1, "an integer >= 1"),
    "epsilon": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "time_steps": (lambda v: v >= 1, "an integer >= 1"),
    "sweep_time_steps": (lambda v: v >= 1, "integers >= 1"),
    "percentile": (lambda v: 0 < v <= 100, "in (0, 100]"),
    "sweep_percentiles": (lambda v: 0 < v <= 100, "in (0, 100]"),
    "frames": (lambda v: v >= 1, "an integer >= 1"),
    "pj_per_ac": (lambda v: v > 0 and _finite(v), "a finite number > 0 (picojoules)"),
    "pj_per_mac": (lambda v: v > 0 and _finite(v), "a finite number > 0 (picojoules)"),
    "noise": (lambda v: v >= 0 and _finite(v), "finite numbers >= 0"),
    "fgsm": (lambda v: v >= 0 and _finite(v), "finite numbers >= 0"),
    "dt": (lambda v: v > 0 and _finite(v), "a finite number > 0"),
}
# Arguments that name existing run directories (read, never created), per command; report's
# may also be roots that hold run directories.
_EXISTING_RUNS = {
    "evaluate": "run_dir",
    "energy": "run_dir",
    "convert": "dqn_run_dir",
    "robustness": "runs",
    "report": "runs",
    "export": "run_dir",
}


def _check_arguments(args: argparse.Namespace) -> None:
    """Rejects an out-of-range option value, or a run directory that does not exist, naming
    the option and what is valid, before the command reads or writes anything."""
    from dsqn.config import ConfigError
    from dsqn.rundir import files as rd

    for dest, (valid, description) in _VALID_VALUES.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if not all(valid(v) for v in (value if isinstance(value, list) else [value])):
            option = "--" + dest.replace("_", "-")
            raise ConfigError(f"{option} must be {description}, got {value}")
    dest = _EXISTING_RUNS.get(args.command)
    paths = getattr(args, dest) if dest else []
    for path in paths if isinstance(paths, list) else [paths]:
        if args.command == "report" and not path.is_dir():
            raise ConfigError(f"{path} is not a directory (a run or a root of runs)")
        if args.command != "report":
            rd.require_run_dir(path)


def _reject_unknown(
    parser: argparse.ArgumentParser, subcommand: Subcommand, unknown: list[str]
) -> None:
    """Unrecognised arguments: for a subcommand that takes config fields (``train``), an option
    that looks like a config field without its section (``--learning_rate``) gets the field's
    full name."""
    from dsqn.config import unknown_field_error

    options = [u for u in unknown if u.startswith("--")]
    if subcommand.takes_fields and options:
        raise unknown_field_error(options[0][2:].split("=")[0])
    parser.error(f"unrecognized arguments: {' '.join(unknown)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dsqn`` console script."""
    from dsqn.config import ConfigError
    from dsqn.rundir.checkpoints import CheckpointError
    from dsqn.rundir.files import WriteFailed
    from dsqn.rundir.lock import LockLost, RunLocked

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    ordinary, fields = split_field_arguments(argv)
    args, unknown = parser.parse_known_args(ordinary)
    subcommand = SUBCOMMANDS[args.command]
    try:
        if unknown:
            _reject_unknown(parser, subcommand, unknown)
        _check_arguments(args)
        if fields and not subcommand.takes_fields:
            parser.error(f"unexpected arguments {fields}")
        return subcommand.run(args, CommandLine(argv, fields))
    except (
        ConfigError,
        CheckpointError,
        FileNotFoundError,
        FileExistsError,
        RunLocked,
        LockLost,
        WriteFailed,
    ) as err:
        print(f"dsqn: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad game names and other invalid input from the factories
        print(f"dsqn: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        if err.name not in ("envpool", "wandb", "imageio", "nir"):
            raise
        print(f"dsqn: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
