"""Static plotly figures of a SampleView, shared by the live widgets and the HTML export.

Each `*_figure` builds a `go.Figure` once; each `*_update` returns what changes when the step or the
selected position changes, as `{trace index: properties}` and `{shape index: properties}`, so a widget
applies it inside `fig.batch_update()` and the exported page applies the same numbers from JavaScript.
Heatmaps are position (x) by step (y, step 0 on top); shape 0..P-1 mark the step, P..2P-1 the position.
The lambda heatmap uses the token strip's colours on the same scale: grey where lambda < 1e-3 (plain masked),
light violet to violet from there up to the scale, the largest lambda the model's gate gives (`SampleView.lam_top`; the
colour bar says so); blank (white) cells are positions not masked after that step.
Every figure leaves the top 60 px to plotly's toolbar: titles sit under it, never behind it.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .titles import lambda_text
from .trace_view import MASK_COLOUR, SOFT_COLOUR, SOFT_LIGHT, SOFT_MIN_LAMBDA, SampleView

MARK = "#d62728"
FONT = dict(size=11)
SPACING = 0.14  # between heatmap panels: room for the left panel's colour bar
TOP = 62  # px above the plot area: plotly's toolbar (about 28 px) and, under it, the titles


def _title(text: str) -> dict:
    """A figure title just above the plot area, under the toolbar."""
    return dict(text=text, x=0, xref="paper", xanchor="left", y=1, yref="paper", yanchor="bottom", pad=dict(b=6))


def _axis(i: int) -> str:
    return "" if i == 0 else str(i + 1)


def marker_shapes(step, pos: int, panels: int = 2) -> list[dict]:
    """A box around row `step` in each panel (`step` may be a list, one per panel), then a box around
    column `pos` in each panel (hidden when pos < 0)."""
    steps = list(step) if isinstance(step, (list, tuple)) else [step] * panels
    rows = [dict(type="rect", xref=f"x{_axis(i)} domain", yref=f"y{_axis(i)}", x0=0, x1=1, y0=steps[i] - 0.5,
                 y1=steps[i] + 0.5, line=dict(color=MARK, width=2), fillcolor="rgba(0,0,0,0)", layer="above")
            for i in range(panels)]
    cols = [dict(type="rect", xref=f"x{_axis(i)}", yref=f"y{_axis(i)} domain", x0=pos - 0.5, x1=pos + 0.5, y0=0,
                 y1=1, line=dict(color=MARK, width=1, dash="dot"), fillcolor="rgba(0,0,0,0)", layer="above",
                 visible=pos >= 0)
            for i in range(panels)]
    return rows + cols


def vline(step: float, axis: int = 0) -> dict:
    """A vertical line at x = step across panel `axis` (the current step on a curve over the steps)."""
    return dict(type="line", xref=f"x{_axis(axis)}", yref=f"y{_axis(axis)} domain", x0=step, x1=step, y0=0, y1=1,
                line=dict(color=MARK, width=2))


def _domain_end(i: int, n: int, spacing: float) -> float:
    """Right edge (paper coordinates) of subplot column i of n, as make_subplots lays them out."""
    width = (1 - spacing * (n - 1)) / n
    return i * (width + spacing) + width


def heat_z(view: SampleView, field: str) -> np.ndarray:
    """Heatmap rows (steps) of 'lam' or 'entropy' as float32 [S, L], NaN where blank."""
    return view.lam_map() if field == "lam" else view.entropy_map()


def heat_data(view: SampleView, field: str) -> dict:
    """The heatmap of 'lam' or 'entropy' as columns x (position), y (step), z: the cells drawn, each row and
    column kept (a NaN cell where all of it is blank, so that cells keep their size). 1-D numeric arrays travel
    to the browser as binary; a 2-D z would travel as nested lists (about 10 s for L = S = 1024)."""
    m = heat_z(view, field)
    drawn = ~np.isnan(m)
    ys, xs = np.nonzero(drawn)
    cols, rows = np.flatnonzero(~drawn.any(0)), np.flatnonzero(~drawn.any(1))
    x = np.concatenate([xs, cols, np.zeros(len(rows), dtype=xs.dtype)]).astype(np.int32)
    y = np.concatenate([ys, np.zeros(len(cols), dtype=ys.dtype), rows]).astype(np.int32)
    z = np.concatenate([m[drawn], np.full(len(cols) + len(rows), np.nan, dtype=np.float32)]).astype(np.float32)
    return {"x": x, "y": y, "z": z}


def lam_colour_props(view: SampleView) -> dict:
    """The lambda heatmap's colours: zmax = the gate's scale (`view.lam_top`), grey below SOFT_MIN_LAMBDA (plain
    masked), then light violet to violet; the colour bar marks 0 and the scale (1 where the SM values are unknown)."""
    top, scale = view.lam_top, (view.soft_mask or {}).get("scale")
    cut = min(SOFT_MIN_LAMBDA / top, 1.0)
    top_label = f"scale {lambda_text(top)}" if scale is not None and float(scale) == top else "1"
    return dict(zmin=0, zmax=top, colorscale=[[0, MASK_COLOUR], [cut, MASK_COLOUR], [cut, SOFT_LIGHT], [1, SOFT_COLOUR]],
                colorbar=dict(title=dict(text="\u03bb", side="top"), tickvals=[0, top], ticktext=["0", top_label]))


def heatmaps_figure(views: list[SampleView], step: int, pos: int = -1, field: str = "both",
                    titles: list[str] | None = None, height: int = 362) -> go.Figure:
    """Lambda and entropy heatmaps (field='both', one view) or one field for several views side by side."""
    if field == "both":
        (view,) = views
        panels = [(view, "lam"), (view, "entropy")]
        titles = titles or ["\u03bb fed back (masked after the step)" if view.has_lambda else
                            "no \u03bb: this decode feeds back none", "entropy H (nats, positions predicted)"]
    else:
        panels = [(v, field) for v in views]
        titles = titles or [f"{field} {i}" for i in range(len(views))]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=titles,
                        horizontal_spacing=SPACING)
    for i, (v, f) in enumerate(panels):
        sym = "\u03bb" if f == "lam" else "H"
        colours = lam_colour_props(v) if f == "lam" else dict(colorscale="Viridis", zmin=0, zmax=None, colorbar={})
        colours["colorbar"].update(len=0.9, thickness=10, xanchor="left",
                                   x=_domain_end(i, len(panels), SPACING) + 0.005)
        fig.add_trace(go.Heatmap(
            **heat_data(v, f), name=f"{f}", **colours,
            hovertemplate=f"pos %{{x}}<br>step %{{y}}<br>{sym} %{{z:.4g}}<extra></extra>"), row=1, col=i + 1)
        fig.update_xaxes(title_text="position", row=1, col=i + 1)
    for i, (v, _) in enumerate(panels):  # fixed ranges: moving a marker never re-runs autorange
        fig.update_xaxes(range=[-0.5, v.length - 0.5], row=1, col=i + 1)
        fig.update_yaxes(range=[v.num_steps - 0.5, -0.5], row=1, col=i + 1)
    fig.update_yaxes(title_text="step", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=50, r=50, t=TOP, b=40), font=FONT, plot_bgcolor="#ffffff",
                      shapes=marker_shapes(step, pos, len(panels)))
    return fig


def mixture_figure(view: SampleView, step: int, pos: int, height: int = 300) -> go.Figure:
    fig = go.Figure(go.Bar(x=[], y=[], marker_color=[], texttemplate="%{y:.3f}", textposition="outside",
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=45, r=10, t=TOP, b=55), font=FONT, title=_title(""),
                      yaxis=dict(range=[0, 1.15], title="weight"), xaxis=dict(
                          type="category", title="(1-\u03bb)\u00b7E[m] + \u03bb\u00b7\u03a3 \u03c0\u1d62\u00b7E[v\u1d62]"))
    apply(fig, mixture_update(view, step, pos))
    return fig


def mixture_update(view: SampleView, step: int, pos: int) -> dict:
    """The superposition fed back at `pos` after `step`: bar heights (1 - lambda) and lambda * pi_i."""
    if pos < 0:
        return {"traces": {0: dict(x=[], y=[], marker_color=[])},
                "layout": dict(title_text="click a position: its mixture")}
    names, weights = view.mixture(step, pos)
    masked = names[0] == "[MASK]" and len(names) > 1
    colours = [MASK_COLOUR] + [SOFT_COLOUR] * (len(names) - 1) if masked else ["#58a0c9"]
    lam = float(view.lam[step, pos]) if masked else 0.0
    title = (f"pos {pos}, step {step}: fed back, \u03bb={lam:.3f}" if masked
             else f"pos {pos}, step {step}: exact token, weight 1")
    return {"traces": {0: dict(x=names, y=weights, marker_color=colours)}, "layout": dict(title_text=title)}


def trajectory_figure(view: SampleView, step: int, pos: int, height: int = 300) -> go.Figure:
    fig = go.Figure([go.Scatter(x=[], y=[], name="\u03bb", mode="lines", line=dict(color=SOFT_COLOUR)),
                     go.Scatter(x=[], y=[], name="H (nats)", mode="lines", line=dict(color="#2a9d8f")),
                     go.Scatter(x=[], y=[], name="top-1 p", mode="lines", line=dict(color="#e9a23b", dash="dot")),
                     go.Scatter(x=[], y=[], name="revealed", mode="markers+text", textposition="top center",
                                marker=dict(color="#58c98b", size=11, symbol="star"))])
    fig.update_layout(height=height, margin=dict(l=40, r=10, t=TOP, b=40), font=FONT, xaxis_title="step",
                      title=_title(""),
                      legend=dict(orientation="h", y=-0.25), shapes=[vline(step)],
                      xaxis_range=[-0.5, max(view.num_steps - 0.5, 0.5)])
    apply(fig, trajectory_update(view, step, pos, data=True))
    return fig


def trajectory_update(view: SampleView, step: int, pos: int, data: bool = True) -> dict:
    """The selected position over all steps (data=True) and the current-step line (always)."""
    out = {"traces": {}, "shapes": [vline(step)], "layout": {}}
    if data:
        steps = list(range(view.num_steps))
        if pos < 0:
            out["traces"] = {i: dict(x=[], y=[]) for i in range(4)}
            out["layout"] = dict(title_text="trajectory: click a position")
        else:
            r = view.reveal_step(pos)
            out["traces"] = {0: dict(x=steps, y=view.lam[:, pos].round(4).tolist()),
                             1: dict(x=steps, y=view.entropy[:, pos].round(4).tolist()),
                             2: dict(x=steps, y=view.top1[:, pos].round(4).tolist()),
                             3: dict(x=[] if r is None else [r],
                                     y=[] if r is None else [float(view.top1[r, pos])],
                                     text=[] if r is None else [view.labels[int(view.tokens[r, pos])]])}
            out["layout"] = dict(title_text=f"position {pos} over the steps")
    return out


def lambda_curve(soft_mask: dict | None, h_max: float, n: int = 200) -> tuple[list, list]:
    """(H, lambda(H)) of the learned w, computed by smkit.soft_mask_lambda itself."""
    if not soft_mask:
        return [], []
    import torch
    import smkit
    h = torch.linspace(0.0, h_max, n, dtype=torch.float64)
    lam = smkit.soft_mask_lambda(None, torch.tensor(soft_mask["scale"], dtype=torch.float64),
                                 torch.tensor(soft_mask["centre"], dtype=torch.float64),
                                 torch.tensor(soft_mask["steepness"], dtype=torch.float64), entropy=h)
    return h.tolist(), lam.tolist()


def entropy_max(view: SampleView) -> float:
    """Right end of the lambda(H) axis: 3 nats, or past the largest entropy in the trace."""
    return max(3.0, float(np.nanmax(view.entropy)) * 1.05 if view.entropy.size else 3.0)


def lambda_figure(view: SampleView, step: int, pos: int, height: int = 300) -> go.Figure:
    hx, ly = lambda_curve(view.soft_mask, entropy_max(view))
    sm = view.soft_mask
    name = (f"\u03bb(H): scale={sm['scale']:.3f}<br>steepness={sm['steepness']:.2f} centre={sm['centre']:.2f}" if sm
            else "\u03bb(H) (w unknown)" if view.has_lambda else "no \u03bb: this decode feeds back none")
    fig = go.Figure([go.Scatter(x=hx, y=ly, mode="lines", name=name, line=dict(color="#555")),
                     go.Scatter(x=[], y=[], mode="markers", name="masked now",
                                marker=dict(color=SOFT_COLOUR, size=6, opacity=0.7),
                                hovertemplate="pos %{text}<br>H %{x:.3f}<br>\u03bb %{y:.3f}<extra></extra>"),
                     go.Scatter(x=[], y=[], mode="markers", name="selected",
                                marker=dict(color=MARK, size=11, symbol="circle-open", line=dict(width=2)))])
    fig.update_layout(height=height, margin=dict(l=45, r=10, t=TOP, b=40), font=FONT, xaxis_title="entropy H (nats)",
                      yaxis_title="\u03bb", legend=dict(orientation="h", y=-0.25), title=_title(name),
                      xaxis_range=[0, entropy_max(view)], yaxis_range=[-0.03 * view.lam_top, 1.05 * view.lam_top])
    apply(fig, lambda_update(view, step, pos))
    return fig


def lambda_update(view: SampleView, step: int, pos: int) -> dict:
    """The masked positions after `step` as points (H, lambda) on the curve; the selected one ringed."""
    p, h, lam = view.lambda_points(step)
    sel = {"x": [], "y": []}
    if pos >= 0 and view.tokens[step, pos] == view.mask_id:
        sel = {"x": [float(view.entropy[step, pos])], "y": [float(view.lam[step, pos])]}
    return {"traces": {1: dict(x=h.round(4).tolist(), y=lam.round(5).tolist(), text=p.tolist()), 2: sel}}


def lambda_points(view: SampleView, step: int, pos: int) -> list[dict]:
    """The same points as overlay shapes (overlay.py): the masked positions, then the selected one ringed."""
    update = lambda_update(view, step, pos)["traces"]
    pts = update[1]
    return [dict(type="points", xref="x", yref="y", x=pts["x"], y=pts["y"], size=7, color=SOFT_COLOUR,
                 text=[f"pos {p}: H {h:.3f}, \u03bb {v:.3f}" for p, h, v in zip(pts["text"], pts["x"], pts["y"])]),
            dict(type="points", xref="x", yref="y", x=update[2]["x"], y=update[2]["y"], size=13, color=MARK,
                 ring=True, text=[f"pos {pos}"] * len(update[2]["x"]))]


def progress_figure(views: list[SampleView], names: list[str], step: int, height: int = 300) -> go.Figure:
    """Fraction still masked and mean entropy of the predicted positions per step, one line per view."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["fraction still masked", "mean H of predicted positions"])
    dashes = ["solid", "dash", "dot", "dashdot"]
    colours = ["#1f77b4", SOFT_COLOUR, "#2a9d8f", "#e9a23b"]
    for i, (v, n) in enumerate(zip(views, names)):
        steps = list(range(v.num_steps))
        masked = (v.tokens == v.mask_id).mean(axis=1)
        emap = v.entropy_map()
        seen = np.isfinite(emap)
        ent = np.where(seen, emap, 0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
        for col, y in ((1, masked), (2, ent)):
            fig.add_trace(go.Scatter(x=steps, y=np.nan_to_num(y).round(4).tolist(), name=n, mode="lines",
                                     legendgroup=n, showlegend=col == 1,
                                     line=dict(dash=dashes[i % 4], color=colours[i % 4])), row=1, col=col)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, margin=dict(l=45, r=10, t=TOP, b=40), font=FONT,
                      shapes=[vline(step, i) for i in range(2)])
    fig.update_xaxes(range=[-0.5, max(v.num_steps for v in views) - 0.5])
    return fig


def apply(fig, update: dict) -> None:
    """Apply an `*_update` dict to a Figure or FigureWidget (call inside `fig.batch_update()` for one message)."""
    for i, props in update.get("traces", {}).items():
        fig.data[i].update(**props)
    if "shapes" in update:
        fig.layout.shapes = update["shapes"]
    if update.get("layout"):
        fig.layout.update(**update["layout"])
