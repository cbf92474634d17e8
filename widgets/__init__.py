"""smkit.widgets: the visual layer (ipywidgets + plotly). Imported lazily; `import smkit` never loads it.

    from smkit.widgets import TraceExplorer, LiveDecoder, compare
    TraceExplorer(g.trace, model=m)      # scrub a recorded decode
    TraceExplorer(g.trace, model=m, layout="auto")   # a 9x9 board for sudoku traces (see `layouts`)
    LiveDecoder(m)                       # decode step by step, views update as steps arrive
    compare(trace_a, trace_b, model=m)   # two decodes on one step axis
    widget.to_html("page.html")          # a standalone page, no kernel needed (`export` builds it)
    figures.heatmaps_figure([sample_view(g.trace, 0, model=m)], step)   # static plotly figures

The package exports what a notebook needs; the pieces (TokenStrip, CellGrid, PlotMarkers, STATE_COLOURS,
...) stay importable from their modules (`smkit.widgets.token_strip`, `.cell_grid`, `.overlay`, `.trace_view`).
Needs the `widgets` extra: pip install "smkit[widgets]".
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "TraceExplorer": "explorer", "LiveDecoder": "live", "Compare": "comparison", "compare": "comparison",
    "SampleView": "trace_view", "sample_view": "trace_view", "figures": None, "export": None, "layouts": None,
}

__all__ = sorted(_EXPORTS)



def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'smkit.widgets' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_EXPORTS[name] or name}", __name__)
    except ImportError as err:
        raise ImportError(f"smkit.widgets.{name} needs the widget libraries: pip install 'smkit[widgets]' "
                          f"({err})") from err
    value = module if _EXPORTS[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
