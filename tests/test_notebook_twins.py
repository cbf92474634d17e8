"""Every notebook is stored twice, as .ipynb and as its jupytext py:percent twin: the two must hold the same
cells (type, source, tags). After editing one: `jupytext --sync notebooks/X.ipynb`."""
from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source.strip("\n"), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def drift(ipynb: Path, py: Path) -> str | None:
    """None when the pair agrees, else where it first differs."""
    a, b = _cells(nbformat.read(str(ipynb), as_version=4)), _cells(jupytext.read(str(py)))
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"cell {i}: {ipynb.name} has {x[0]} {x[2]} {x[1][:80]!r}, {py.name} has {y[0]} {y[2]} {y[1][:80]!r}"
    if len(a) != len(b):
        return f"{ipynb.name} has {len(a)} cells, {py.name} has {len(b)}"
    return None


def test_every_notebook_has_a_twin_and_every_twin_a_notebook():
    assert NOTEBOOKS
    py_files = {p for p in NB_DIR.rglob("*.py") if ".ipynb_checkpoints" not in p.parts}
    assert {p.with_suffix(".py") for p in NOTEBOOKS} == py_files


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: str(p.relative_to(NB_DIR)))
def test_twins_hold_the_same_cells(ipynb):
    problem = drift(ipynb, ipynb.with_suffix(".py"))
    assert problem is None, f"{problem}; run `jupytext --sync {ipynb.relative_to(NB_DIR.parent)}`"


def test_a_drifted_pair_is_caught(tmp_path):
    source = NOTEBOOKS[0]
    ipynb, py = tmp_path / source.name, tmp_path / source.with_suffix(".py").name
    ipynb.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    text = source.with_suffix(".py").read_text(encoding="utf-8")
    py.write_text(text, encoding="utf-8")
    assert drift(ipynb, py) is None
    py.write_text(text.replace("import smkit", "import smkit  # edited in the twin only", 1), encoding="utf-8")
    assert "cell" in drift(ipynb, py)
    nb = nbformat.read(str(ipynb), as_version=4)
    nb.cells[-1].metadata["tags"] = ["solution"]
    nbformat.write(nb, str(ipynb))
    py.write_text(text, encoding="utf-8")
    assert drift(ipynb, py) is not None, "tags count too"
