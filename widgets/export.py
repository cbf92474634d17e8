"""Standalone HTML pages (plotly, no kernel) of the widgets, for sharing and for papermill/HTML runs.

A page holds the figures the widget shows (built by `figures.py`), the token strip (or the layout's board)
drawn by the widget's own JavaScript (`token_strip.ESM`, `cell_grid.ESM`, fed by a small stand-in for the
widget model) and a step slider with play. The arrays a page needs are embedded once as JSON, computed in
Python: the page's JavaScript looks numbers up and computes no formula (the SM mixture weights come from
`SampleView.mixture_table`, i.e. smkit.core.softmask.mixture_weights); moving the slider only moves markers and
re-colours the strip, as in the notebook. Size: O(steps x positions x k) numbers, plus plotly.js
(about 4.7 MB) when `include_plotlyjs=True` (the default: the page works offline).
"""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from . import cell_grid
from . import figures as F
from .layouts import Layout, step_fields, token_strip
from .titles import step_label, step_title
from .token_strip import CSS, ESM
from .trace_view import STATE_COLOURS, STATES, SampleView


def view_data(view: SampleView, titles: list[str] | None = None) -> dict:
    """What the page's JavaScript needs of one SampleView (numbers rounded for size)."""
    steps = range(view.num_steps)
    return {
        "S": view.num_steps, "L": view.length, "k": view.k, "mask_id": view.mask_id, "vocab": view.labels,
        "labels": [view.token_labels(s) for s in steps], "colours": [view.colours(s) for s in steps],
        "states": [view.state_codes(s).tolist() for s in steps], "state_names": list(STATES),
        "tokens": view.tokens.tolist(), "lam": np.round(view.lam.astype(np.float64), 5).tolist(),
        "entropy": np.round(view.entropy.astype(np.float64), 4).tolist(),
        "topk_ids": [view.topk_at(s)[0].tolist() for s in steps],
        "topk_probs": [np.round(view.topk_at(s)[1].astype(np.float64), 4).tolist() for s in steps],
        "t": np.round(view.t.astype(np.float64), 4).tolist(),
        "nfe": view.nfe.tolist(), "titles": titles or [step_label(s, view.num_steps) for s in steps],
        "mixture": mixture_weights_json(view),
    }


def mixture_weights_json(view: SampleView) -> list:
    """[S][L] the SM mixture fed back at each (step, position), as Python computes it (`SampleView.mixture`,
    smkit.core.softmask.mixture_weights): weights of [MASK] then the k candidates; null where not masked."""
    table = view.mixture_table()
    return [[None if np.isnan(w[0]) else np.round(w, 6).tolist() for w in row] for row in table]


def _fig(div: str, fig, role: str, **extra) -> dict:
    return {"div": div, "fig": json.loads(fig.to_json()), "role": role, **extra}


def explorer_page(view: SampleView, step: int, position: int = -1, title: str = "smkit trace",
                  layout: Layout = token_strip) -> dict:
    """The explorer's page; a layout other than the token strip shows its board (cell_grid.py) instead."""
    titles = [step_title(view, s) for s in range(view.num_steps)]
    board = None
    if layout is not token_strip:
        board = {"cells": [[c.to_dict() for c in layout(step_fields(view, s))] for s in range(view.num_steps)]}
    return {"title": title, "steps": view.num_steps, "step": step, "position": position,
            "views": [view_data(view, titles)], "strips": [] if board else [0], "board": board,
            "figures": [_fig("smkit-heat", F.heatmaps_figure([view], step, position), "heat", panel_views=[0, 0]),
                        _fig("smkit-mix", F.mixture_figure(view, step, position), "mixture"),
                        _fig("smkit-traj", F.trajectory_figure(view, step, position), "trajectory"),
                        _fig("smkit-lam", F.lambda_figure(view, step, position), "lambda")],
            "layout": [["smkit-heat"], ["smkit-mix", "smkit-traj", "smkit-lam"]]}


def compare_page(views: list[SampleView], names: list[str], step: int, field: str = "lam",
                 title: str = "smkit compare") -> dict:
    steps = max(v.num_steps for v in views)
    titles = [[f"{n} \u00b7 {step_label(min(s, v.num_steps - 1), v.num_steps)}" for s in range(steps)]
              for v, n in zip(views, names)]
    return {"title": title, "steps": steps, "step": step, "position": -1,
            "views": [view_data(v, t) for v, t in zip(views, titles)], "strips": list(range(len(views))),
            "figures": [_fig("smkit-heat", F.heatmaps_figure(views, step, -1, field=field,
                                                              titles=[f"{field}: {n}" for n in names]),
                             "heat", panel_views=list(range(len(views)))),
                        _fig("smkit-progress", F.progress_figure(views, names, step), "progress")],
            "layout": [["smkit-heat"], ["smkit-progress"]], "board": None}


CONTROLLER = r"""
const D = JSON.parse(document.getElementById("smkit-data").textContent);
const load = async (src) => (await import(URL.createObjectURL(new Blob([src], {type: "text/javascript"})))).default;
const strip = await load(D.esm);
function standIn(state) {
  const cbs = {};
  const fire = (k) => (cbs["change:" + k] || []).forEach((f) => f());
  return {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; fire(k); },
    update: (obj) => {  // one call of each listener, however many keys changed
      Object.assign(state, obj);
      new Set(Object.keys(obj).flatMap((k) => cbs["change:" + k] || [])).forEach((f) => f());
    },
    save_changes: () => {},
    on: (ev, f) => { (cbs[ev] = cbs[ev] || []).push(f); },
    off: (ev, f) => { cbs[ev] = (cbs[ev] || []).filter((g) => g !== f); },
  };
}
const clamp = (V, s) => Math.max(0, Math.min(s, V.S - 1));
function tips(V, s) {
  const out = [];
  for (let p = 0; p < V.L; p++) {
    const c = V.topk_ids[s][p].map((id, r) => [id, V.topk_probs[s][p][r]]).filter(([id, q]) => q > 0)
      .map(([id, q]) => V.vocab[id] + " " + q.toFixed(2)).join("  ") || "-";
    out.push("pos " + p + " | " + V.state_names[V.states[s][p]] + " " + V.vocab[V.tokens[s][p]] + " | \u03bb=" +
             V.lam[s][p].toFixed(3) + " H=" + V.entropy[s][p].toFixed(2) + " | top-" + V.topk_ids[s][p].length + ": " + c);
  }
  return out;
}
const models = D.strips.map((vi) => {
  const m = standIn({labels: [], colours: [], states: [], tips: [], selected: D.position, title: "", palette: D.palette});
  const el = document.getElementById("smkit-strip-" + vi);
  strip.render({model: m, el});
  return m;
});
let board = null;  // the layout's board (cell_grid.py) in place of the strip
if (D.board) {
  board = standIn({cells: [], selected: D.position, title: "", palette: D.palette});
  (await load(D.board_esm)).render({model: board, el: document.getElementById("smkit-board")});
  models.push(board);
}
for (const f of D.figures) Plotly.newPlot(f.div, f.fig.data, f.fig.layout, {responsive: true});
let step = D.step, pos = D.position;
const byRole = (r) => D.figures.filter((f) => f.role === r);

function mixture(V, s, p) {  // the weights come from Python (V.mixture), never recomputed here
  const tok = V.tokens[s][p], w = V.mixture[s][p];
  if (tok !== V.mask_id || !w) return {x: [V.vocab[tok]], y: [1], c: ["#58a0c9"], title: "pos " + p + ", step " + s + ": exact token, weight 1"};
  const ids = V.topk_ids[s][p].slice(0, w.length - 1);
  return {x: ["[MASK]"].concat(ids.map((id, r) => (r + 1) + ": " + V.vocab[id])), y: w,
          c: [D.palette.masked].concat(ids.map(() => D.palette.soft)),
          title: "pos " + p + ", step " + s + ": fed back, \u03bb=" + V.lam[s][p].toFixed(3)};
}
function showStep() {
  D.strips.forEach((vi, i) => {
    const V = D.views[vi], s = clamp(V, step);
    models[i].update({labels: V.labels[s], colours: V.colours[s], states: V.states[s].map((c) => V.state_names[c]),
                      tips: tips(V, s), title: V.titles[s]});
  });
  if (board) { const s = clamp(D.views[0], step); board.update({cells: D.board.cells[s], title: D.views[0].titles[s]}); }
  document.getElementById("smkit-step-label").textContent = "step " + step + " of 0\u2013" + (D.steps - 1);
  // whole shapes arrays: plotly.js then redraws the shapes only, not the heatmaps
  for (const f of byRole("heat")) {
    const gd = document.getElementById(f.div), n = f.panel_views.length;
    Plotly.relayout(gd, {shapes: gd.layout.shapes.map((sh, i) => i < n
      ? {...sh, y0: clamp(D.views[f.panel_views[i]], step) - 0.5, y1: clamp(D.views[f.panel_views[i]], step) + 0.5}
      : {...sh, x0: pos - 0.5, x1: pos + 0.5, visible: pos >= 0})});
  }
  for (const f of [...byRole("progress"), ...byRole("trajectory")]) {
    const gd = document.getElementById(f.div);
    Plotly.relayout(gd, {shapes: gd.layout.shapes.map((sh) => ({...sh, x0: step, x1: step}))});
  }
  const V = D.views[0], s = clamp(V, step);
  for (const f of byRole("lambda")) {
    const px = [], py = [], pt = [];
    for (let p = 0; p < V.L; p++) if (V.tokens[s][p] === V.mask_id) { px.push(V.entropy[s][p]); py.push(V.lam[s][p]); pt.push(p); }
    const sel = pos >= 0 && V.tokens[s][pos] === V.mask_id;
    Plotly.restyle(f.div, {x: [px, sel ? [V.entropy[s][pos]] : []], y: [py, sel ? [V.lam[s][pos]] : []], text: [pt, []]}, [1, 2]);
  }
  for (const f of byRole("mixture")) {
    if (pos < 0) { Plotly.restyle(f.div, {x: [[]], y: [[]]}, [0]); continue; }
    const m = mixture(V, s, pos);
    Plotly.restyle(f.div, {x: [m.x], y: [m.y], "marker.color": [m.c]}, [0]);
    Plotly.relayout(f.div, {"title.text": m.title});
  }
}
function showPosition() {
  const V = D.views[0];
  for (const f of byRole("trajectory")) {
    if (pos < 0) { Plotly.restyle(f.div, {x: [[], [], [], []], y: [[], [], [], []]}, [0, 1, 2, 3]); continue; }
    const xs = [...Array(V.S).keys()];
    let r = -1;
    for (let i = 0; i < V.S; i++) if (V.states[i][pos] === V.state_names.indexOf("revealed")) r = i;
    Plotly.restyle(f.div, {x: [xs, xs, xs, r < 0 ? [] : [r]],
                           y: [xs.map((i) => V.lam[i][pos]), xs.map((i) => V.entropy[i][pos]), xs.map((i) => V.topk_probs[i][pos][0]),
                               r < 0 ? [] : [V.topk_probs[r][pos][0]]],
                           text: [[], [], [], r < 0 ? [] : [V.vocab[V.tokens[r][pos]]]]}, [0, 1, 2, 3]);
    Plotly.relayout(f.div, {"title.text": "position " + pos + " over the steps"});
  }
  showStep();
}
models.forEach((m) => m.on("change:selected", () => {
  const p = m.get("selected");
  if (p !== pos) { pos = p; models.forEach((o) => { if (o.get("selected") !== p) o.set("selected", p); }); showPosition(); }
}));
const range = document.getElementById("smkit-step");
range.addEventListener("input", () => { step = parseInt(range.value, 10); showStep(); });
let timer = null;
document.getElementById("smkit-play").addEventListener("click", (ev) => {
  if (timer) { clearInterval(timer); timer = null; ev.target.textContent = "\u25b6 play"; return; }
  ev.target.textContent = "\u23f8 pause";
  timer = setInterval(() => { step = (step + 1) % D.steps; range.value = step; showStep(); }, 300);
});
showPosition();
window.smkitPage = {D, models, get step() { return step; }, get position() { return pos; }};
"""

PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 16px; }
.smkit-controls { display: flex; gap: 10px; align-items: center; margin: 6px 0; }
.smkit-controls input[type=range] { width: 420px; }
.smkit-row { display: flex; gap: 6px; flex-wrap: wrap; }
.smkit-row > div { flex: 1 1 300px; min-width: 280px; }
.smkit-strips { display: flex; gap: 12px; }
.smkit-strips > div { flex: 1 1 0; }
#smkit-board { margin: 6px 0; }
"""


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def render_page(page: dict, include_plotlyjs=True) -> str:
    """HTML text of a page; include_plotlyjs: True (inline, offline), 'cdn', or False (the host provides it)."""
    import plotly.offline
    if include_plotlyjs is True:
        plotly_tag = f"<script>{plotly.offline.get_plotlyjs()}</script>"
    elif include_plotlyjs == "cdn":
        plotly_tag = (f'<script src="https://cdn.plot.ly/plotly-{plotly.offline.get_plotlyjs_version()}.min.js">'
                      "</script>")
    else:
        plotly_tag = ""
    data = dict(page, esm=ESM, palette=dict(STATE_COLOURS))
    css = CSS
    if page.get("board"):
        data["board_esm"] = cell_grid.ESM
        css += cell_grid.CSS
    strips = "".join(f'<div id="smkit-strip-{i}"></div>' for i in page["strips"])
    strips += '<div id="smkit-board"></div>' if page.get("board") else ""
    rows = "".join('<div class="smkit-row">' + "".join(f'<div id="{d}"></div>' for d in row) + "</div>"
                   for row in page["layout"])
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(page['title'])}</title>\n"
            f"<style>{css}{PAGE_CSS}</style>\n{plotly_tag}\n</head><body>\n"
            f"<h3>{html.escape(page['title'])}</h3>\n"
            f'<div class="smkit-controls"><button id="smkit-play">\u25b6 play</button>'
            f'<input type="range" id="smkit-step" min="0" max="{page["steps"] - 1}" value="{page["step"]}">'
            f'<span id="smkit-step-label"></span></div>\n'
            f'<div class="smkit-strips">{strips}</div>\n{rows}\n'
            f'<script type="application/json" id="smkit-data">{_json(data)}</script>\n'
            f'<script type="module">{CONTROLLER}</script>\n</body></html>\n')


def write_page(path, page: dict, include_plotlyjs=True) -> str:
    """Write the page atomically (temp file, then rename); returns the path as a string."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_page(page, include_plotlyjs)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return str(path)
