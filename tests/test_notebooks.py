"""The notebooks: each runs end to end at small size, and each .ipynb mirrors its jupytext .py.

Every ``notebooks/*.ipynb`` is executed in a fresh kernel of the interpreter running the tests,
with ``DSQN_NOTEBOOK_SMALL=1`` (tiny sizes), JAX on the CPU and strict rank promotion, under a
per-notebook wall-clock deadline. Notebooks are edited as jupytext percent-format scripts
(``notebooks/NAME.py``); the paired ``NAME.ipynb`` is generated from it and stored executed at
full size with its outputs (``python notebooks/execute.py``), which the sync tests check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PAIRED_STEMS = sorted(
    {path.stem for path in NOTEBOOK_DIR.glob("[0-9]*.py")} | {p.stem for p in NOTEBOOKS}
)  # notebooks/execute.py is the tool that runs them, not a notebook
KERNEL_NAME = "python3"
NOTEBOOK_DEADLINE_S = 240  # wall-clock budget for one whole notebook at small size
SMALL_SWITCH = "DSQN_NOTEBOOK_SMALL"
KERNEL_ENV = {
    SMALL_SWITCH: "1",
    "JAX_PLATFORMS": "cpu",
    "JAX_NUMPY_RANK_PROMOTION": "raise",
}


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A ``python3`` kernelspec for this very interpreter, independent of installed specs.

    The user's ``python3`` spec may point at another Python (e.g. a bare ``python`` on PATH)
    that lacks ``dsqn``; writing our own into a temporary directory avoids that and needs no
    ``jupyter kernelspec install``.
    """
    kernels_dir = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels_dir / KERNEL_NAME)
    manager = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    assert manager.get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    return manager


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_at_small_size(
    notebook_path: Path, kernel_spec_manager: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
):
    for name, value in KERNEL_ENV.items():
        monkeypatch.setenv(name, value)  # the kernel inherits the environment of this process
    notebook = nbformat.read(notebook_path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_DEADLINE_S
    client = NotebookClient(
        notebook,
        km=KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager),
        kernel_name=KERNEL_NAME,
        # One deadline for the whole notebook: each cell gets what is left of it.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.monotonic()
    client.execute()  # raises CellExecutionError (with the traceback) if any cell fails
    elapsed = time.monotonic() - start
    assert elapsed < NOTEBOOK_DEADLINE_S, f"{notebook_path.name} took {elapsed:.0f} s"
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)


@pytest.mark.parametrize("stem", PAIRED_STEMS)
def test_ipynb_is_the_jupytext_conversion_of_its_script(stem: str):
    script, stored_path = NOTEBOOK_DIR / f"{stem}.py", NOTEBOOK_DIR / f"{stem}.ipynb"
    assert script.exists(), f"{stored_path.name} has no paired script {script.name}"
    assert stored_path.exists(), (
        f"{script.name} has no paired notebook; run `jupytext --to ipynb {script}`"
    )
    expected = jupytext.read(script, fmt="py:percent")
    stored = nbformat.read(stored_path, as_version=4)
    nbformat.validate(stored)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ], f"{stored_path.name} is out of date; run `jupytext --sync {script}` or `--to ipynb`"
    assert stored.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=lambda p: p.name)
def test_ipynb_is_stored_executed_at_full_size(notebook_path: Path):
    """Every code cell ran once, in order, without an error, at full size: what
    ``python notebooks/execute.py`` stores (a reader on the web sees the outputs)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    run = notebook.metadata.get("dsqn", {})
    assert run.get("small") is False, (
        f"{notebook_path.name} was not stored by `python notebooks/execute.py` at full size"
    )
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{notebook_path.name}: cells not run once each in order ({counts}); "
        "run `python notebooks/execute.py`"
    )
    errors = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs)
    ]
    assert not errors, f"{notebook_path.name}: cells {errors} stored an error"
    assert any(cell.get("outputs") for cell in notebook.cells), f"{notebook_path.name} is empty"


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_honours_the_small_switch(notebook_path: Path):
    source = "\n".join(cell.source for cell in nbformat.read(notebook_path, as_version=4).cells)
    assert SMALL_SWITCH in source, f"{notebook_path.name} never reads {SMALL_SWITCH}"
