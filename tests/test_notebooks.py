"""The notebooks: each runs end to end at small size, and each .ipynb mirrors its jupytext .py.

Every ``notebooks/*.ipynb`` is executed in a fresh kernel of the interpreter running the tests,
with ``DSQN_NOTEBOOK_SMALL=1`` (tiny sizes), JAX on the CPU and strict rank promotion, under a
per-notebook wall-clock deadline. Notebooks are edited as jupytext percent-format scripts
(``notebooks/NAME.py``); the paired ``NAME.ipynb`` is generated from it and stored without
outputs, which the sync tests check.
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
    {path.stem for path in NOTEBOOK_DIR.glob("*.py")} | {p.stem for p in NOTEBOOKS}
)
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
def test_ipynb_is_stored_without_outputs(notebook_path: Path):
    notebook = nbformat.read(notebook_path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{notebook_path.name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{notebook_path.name} cell {index} was run"


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_honours_the_small_switch(notebook_path: Path):
    source = "\n".join(cell.source for cell in nbformat.read(notebook_path, as_version=4).cells)
    assert SMALL_SWITCH in source, f"{notebook_path.name} never reads {SMALL_SWITCH}"
