"""`smkit run` keeps one plotly.js per run folder: the executed notebook and its HTML page load `plotly.min.js`
from the run folder instead of carrying the 4.8 MB library each; `self_contained=True` keeps it inline."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill")
plotly_offline = pytest.importorskip("plotly.offline")
BIN = Path(sys.executable).parent

FIGURE = ("import plotly.io as pio\n"
          "import plotly.graph_objects as go\n"
          "pio.renderers.default = 'plotly_mimetype+notebook'\n"
          "go.Figure(go.Scatter(y=list(range(n)))).show()\n")


def _plotly_notebook(path: Path) -> Path:
    import nbformat
    params = nbformat.v4.new_code_cell("n: int = 3  # points")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(FIGURE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
    """No user-level kernelspec shadowing the venv's python3; the venv's tools first on PATH."""
    home = tmp_path / "jupyter"
    for sub, var in (("data", "JUPYTER_DATA_DIR"), ("config", "JUPYTER_CONFIG_DIR"), ("ipython", "IPYTHONDIR")):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")


def test_one_plotly_js_per_run_folder_unless_self_contained(tmp_path, jupyter_env):
    from smkit.notebooks import export_html, run_notebook
    js = plotly_offline.get_plotlyjs()
    nb = _plotly_notebook(tmp_path / "fig.ipynb")

    shared = run_notebook(nb, {"n": 4}, out=tmp_path / "runs")
    run_dir = shared.notebook.parent
    page = shared.html.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and js not in page and js not in _joined_outputs(shared.notebook)
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in page
    assert [p.relative_to(run_dir) for p in run_dir.rglob("plotly*.js")] == [Path("plotly.min.js")]
    assert (run_dir / "plotly.min.js").read_text(encoding="utf-8") == js
    assert shared.html.stat().st_size < 1_000_000

    alone = export_html(shared.notebook, tmp_path / "elsewhere" / "alone.html", self_contained=True)
    assert js in alone.read_text(encoding="utf-8") and not (alone.parent / "plotly.min.js").exists()

    inline = run_notebook(nb, {"n": 4}, out=tmp_path / "runs", name="inline", self_contained=True)
    assert js in inline.html.read_text(encoding="utf-8") and js in _joined_outputs(inline.notebook)
    assert not (inline.notebook.parent / "plotly.min.js").exists()


def _joined_outputs(notebook: Path) -> str:
    import nbformat
    nb = nbformat.read(str(notebook), as_version=4)
    return "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
