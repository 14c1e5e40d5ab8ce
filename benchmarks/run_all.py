"""Runs every benchmark, each in its own process, and prints one JSON object of their results.

Each benchmark is started as ``python -m benchmarks.NAME`` from the repository root (a fresh
process, so one benchmark's compiled programs and threads do not disturb the next); ``--quick``
and ``--smoke`` are passed on. A benchmark that fails is reported with its exit status and the
end of its stderr instead of a result.

Usage: python -m benchmarks.run_all [--only update act ...] [--out results.json] [--quick]
       [--smoke]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("matmul", "update", "act", "compare", "memory", "train", "neuron_backends")


def run_one(name: str, flags: list[str]) -> dict:
    """The JSON result of ``python -m benchmarks.<name> <flags>``, or its failure."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"failed": proc.returncode, "stderr_tail": proc.stderr[-2000:]}
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    flags = [f for f, on in (("--quick", args.quick), ("--smoke", args.smoke)) if on]
    results = {name: run_one(name, flags) for name in args.only}
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    common.emit(results)
    return results


if __name__ == "__main__":
    main()
