"""Execute every notebook at full size and store it with its outputs.

    python notebooks/execute.py [NAME ...]      (default: every notebooks/NAME.py)

Each jupytext script ``notebooks/NAME.py`` (the version that is edited) is converted to a
notebook, executed top to bottom in a fresh kernel of this interpreter (JAX on the CPU, strict
rank promotion, ``DSQN_NOTEBOOK_SMALL`` unset: the full sizes), and written to
``notebooks/NAME.ipynb`` with its outputs, so that a reader on the web sees the figures and
numbers. The notebook's metadata records when and on what it ran (``metadata.dsqn``). A cell
that fails stops the script and leaves the stored notebook as it was.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent
KERNEL_NAME = "python3"
KERNEL_ENV = {"JAX_PLATFORMS": "cpu", "JAX_NUMPY_RANK_PROMOTION": "raise"}
SMALL_SWITCH = "DSQN_NOTEBOOK_SMALL"
CELL_TIMEOUT_S = 3600


def execute(script: Path, kernels: KernelSpecManager) -> float:
    """Run ``script`` as a notebook and write ``<stem>.ipynb`` with its outputs; seconds taken."""
    notebook = jupytext.read(script, fmt="py:percent")
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    client = NotebookClient(
        notebook,
        km=KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernels),
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.monotonic()
    client.execute()
    seconds = time.monotonic() - start
    notebook.metadata["dsqn"] = {
        "executed": datetime.date.today().isoformat(),
        "small": False,
        "seconds": round(seconds),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}",
    }
    nbformat.validate(notebook)
    nbformat.write(notebook, script.with_suffix(".ipynb"))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    args = parser.parse_args(argv)
    scripts = sorted(p for p in NOTEBOOK_DIR.glob("[0-9]*.py"))
    if args.names:
        known = {p.stem: p for p in scripts}
        unknown = [n for n in args.names if Path(n).stem not in known]
        if unknown:
            parser.error(f"unknown notebooks {unknown}; valid: {sorted(known)}")
        scripts = [known[Path(n).stem] for n in args.names]
    os.environ.pop(SMALL_SWITCH, None)
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    with tempfile.TemporaryDirectory() as kernels_dir:
        write_kernel_spec(Path(kernels_dir) / KERNEL_NAME)
        kernels = KernelSpecManager(kernel_dirs=[kernels_dir], ensure_native_kernel=False)
        assert kernels.get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
        for script in scripts:
            print(f"{script.name}: running ...", flush=True)
            print(f"{script.name}: {execute(script, kernels):.0f} s", flush=True)


if __name__ == "__main__":
    main()
