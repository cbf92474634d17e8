"""plotly.js in executed notebooks and their HTML pages: one `plotly.min.js` per run folder, referenced by each
page, instead of the 4.8 MB library inline in every notebook and page.

plotly's "notebook" renderer (the shipped notebooks select it so that their HTML export stays interactive) puts
the whole library in the output of the cell that selects it, and nbconvert copies that output into the page.
`share_plotly_js` swaps each inline copy for a script tag that loads `plotly.min.js` from the notebook's folder
and writes that file there unless it exists (`fig.write_html(..., include_plotlyjs="directory")` writes the same
file, so a run folder holds one copy); `embed_plotly_js` puts the library back inline, for a self-contained page.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

PLOTLY_FILE = "plotly.min.js"
REFERENCE = f'<script charset="utf-8" src="{PLOTLY_FILE}"></script>'  # as plotly's include_plotlyjs="directory"


def plotly_js() -> str | None:
    """The plotly.js library the installed plotly inlines, or None without plotly."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return get_plotlyjs()


def _html_outputs(nb):
    """The output bundles of `nb` (a NotebookNode) that hold HTML."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if isinstance(data.get("text/html"), str):
                yield data


def share_plotly_js(nb, folder) -> bool:
    """Replace every inline copy of plotly.js in `nb`'s HTML outputs (in place) by a reference to `plotly.min.js`;
    when `nb` references it, write the file into `folder` unless it is there. True when `nb` changed."""
    js = plotly_js()
    if js is None:
        return False
    changed = referenced = False
    for data in _html_outputs(nb):
        html, count = _replace_inline(data["text/html"], js)
        if count:
            data["text/html"], changed = html, True
        referenced = referenced or REFERENCE in html
    if referenced:
        write_plotly_js(folder, js)
    return changed


def embed_plotly_js(nb) -> bool:
    """Replace every reference to `plotly.min.js` in `nb`'s HTML outputs (in place) by the library inline.
    True when `nb` changed."""
    js = plotly_js()
    changed = False
    for data in _html_outputs(nb):
        if js is not None and REFERENCE in data["text/html"]:
            data["text/html"] = data["text/html"].replace(REFERENCE, f"<script>{js}</script>")
            changed = True
    return changed


def write_plotly_js(folder, js: str | None = None) -> Path:
    """`folder/plotly.min.js`, written (atomically) unless it exists."""
    path = Path(folder) / PLOTLY_FILE
    if not path.is_file():
        tmp = path.with_name(f".{PLOTLY_FILE}.tmp")
        tmp.write_text(plotly_js() if js is None else js, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _replace_inline(html: str, js: str) -> tuple[str, int]:
    """`html` with each `<script ...>` element whose body is exactly `js` replaced by REFERENCE; and how many."""
    if len(html) < len(js):
        return html, 0
    count, start = 0, 0
    while (i := html.find(js, start)) >= 0:
        opening = html.rfind("<script", 0, i)
        closing = html.find("</script>", i + len(js))
        if opening >= 0 and closing >= 0 and re.fullmatch(r"<script[^>]*>\s*", html[opening:i]) \
                and not html[i + len(js):closing].strip():
            html = html[:opening] + REFERENCE + html[closing + len("</script>"):]
            start, count = opening + len(REFERENCE), count + 1
        else:
            start = i + len(js)
    return html, count
