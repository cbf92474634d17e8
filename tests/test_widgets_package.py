"""smkit.widgets as a package: its import graph has no cycle, and it exports the public widgets only."""
from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

WIDGETS = Path(__file__).resolve().parent.parent / "widgets"
MODULES = sorted(p.stem for p in WIDGETS.glob("*.py") if p.stem != "__init__")


def imports_of(module: str) -> set[str]:
    """The widgets modules `module` imports, at the top or inside functions (`from .x import`, `from . import x`,
    `smkit.widgets.x`)."""
    tree = ast.parse((WIDGETS / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.level == 0 and (node.module or "").startswith("smkit.widgets."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[2] for a in node.names if a.name.startswith("smkit.widgets."))
    return out & set(MODULES)


def dependency_order() -> list[str]:
    """The modules, each after every module it imports; fails naming a cycle if there is one."""
    graph = {m: imports_of(m) for m in MODULES}
    order, state = [], {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        if state.get(m) == "open":
            cycle = path[path.index(m):] + [m]
            raise AssertionError(f"import cycle in widgets/: {' -> '.join(cycle)}")
        state[m] = "open"
        for dep in sorted(graph[m]):
            visit(dep, path + [m])
        state[m] = "done"
        order.append(m)

    for m in MODULES:
        visit(m, [])
    return order


def test_the_import_graph_has_no_cycle():
    order = dependency_order()
    assert sorted(order) == MODULES
    assert order.index("titles") < order.index("export") < order.index("explorer")  # export never needs explorer
    assert order.index("overlay") < order.index("comparison") and "explorer" not in imports_of("comparison")
    assert "explorer" not in imports_of("export")


def test_modules_import_in_dependency_order_in_a_fresh_interpreter():
    """Importing the modules leaves first, each import loads that module alone: its imports are all below it."""
    code = (
        "import importlib, json, sys\n"
        "import smkit.widgets\n"
        "loaded = []\n"
        f"for m in {dependency_order()!r}:\n"
        "    before = {n for n in sys.modules if n.startswith('smkit.widgets.')}\n"
        "    importlib.import_module('smkit.widgets.' + m)\n"
        "    loaded.append(sorted({n for n in sys.modules if n.startswith('smkit.widgets.')} - before))\n"
        "print(json.dumps(loaded))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[f"smkit.widgets.{m}"] for m in dependency_order()]


def test_the_package_exports_the_public_widgets_only():
    import smkit.widgets as W
    assert W.__all__ == ["Compare", "LiveDecoder", "SampleView", "TraceExplorer", "compare", "export", "figures",
                         "layouts", "sample_view"]
    for name in W.__all__:
        assert getattr(W, name) is not None
    assert W.layouts.LAYOUTS["token_strip"] is W.layouts.token_strip
    for name, module in (("PlotMarkers", "overlay"), ("STATE_COLOURS", "trace_view"), ("STATES", "trace_view"),
                         ("TokenStrip", "token_strip"), ("StepViews", "explorer")):
        with pytest.raises(AttributeError, match=f"has no attribute {name!r}"):
            getattr(W, name)
        assert name in vars(importlib.import_module(f"smkit.widgets.{module}"))  # still there, in its module
