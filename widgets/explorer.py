"""TraceExplorer: scrub back and forth through a recorded decode.

A step slider with play/pause and a sample selector drive `StepViews`: the sample's cells as a layout
places them (the token strip, or a board such as the sudoku grid: layouts.py), the lambda and
entropy heatmaps (drawn once; only a marker moves), the fed-back mixture of the selected position, its
trajectory over the steps and the lambda(H) curve with the current step's masked positions on it.
"""
from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go

from . import figures as F
from .cell_grid import CellGrid
from .export import explorer_page, write_page
from .layouts import Layout, get_layout, token_strip
from .overlay import overlaid
from .titles import step_title
from .token_strip import TokenStrip
from .trace_view import SampleView, final_texts, num_samples, opening_step, sample_view


SMALL_WIDTH = 320  # px: three small figures side by side fill a JupyterLab output area


class StepViews:
    """The views of one SampleView at one (step, position); `show` moves them, `redraw` replaces the data.

    `cells` shows the sample's positions as `layout` places them (layouts.py): a TokenStrip for the token
    strip, a CellGrid for any other layout (a sudoku board)."""

    def __init__(self, view: SampleView, step: int = 0, position: int = -1, layout: Layout = token_strip):
        self.view, self.step, self.position, self.layout = view, step, position, layout
        self.cells = TokenStrip(selected=position) if layout is token_strip else CellGrid(layout, selected=position)
        self.heatmaps, self.heat_marks = overlaid(F.heatmaps_figure([view], step, position))
        self.mixture = go.FigureWidget(F.mixture_figure(view, step, position))
        self.trajectory, self.traj_marks = overlaid(F.trajectory_figure(view, step, position))
        self.lambda_h, self.lam_marks = overlaid(F.lambda_figure(view, step, position))
        with self.lambda_h.batch_update():  # its points are drawn by the overlay, not by plotly
            F.apply(self.lambda_h, {"traces": {1: dict(x=[], y=[], text=[]), 2: dict(x=[], y=[])}})
        self.lam_marks.shapes = F.lambda_points(view, step, position)
        self.cells.show(view, step, self._title())
        for fig in (self.mixture, self.trajectory, self.lambda_h):
            fig.layout.width = SMALL_WIDTH
        self.box = W.VBox([self.cells, self.heatmaps,
                           W.HBox([self.mixture, self.trajectory, self.lambda_h], layout=W.Layout(flex_flow="row wrap")),
                           self.heat_marks, self.traj_marks, self.lam_marks])

    @property
    def strip(self):
        """The cells view (a TokenStrip with the default layout); the name predates layouts."""
        return self.cells

    def _title(self) -> str:
        return step_title(self.view, self.step)

    def show(self, step: int | None = None, position: int | None = None) -> None:
        """Move to (step, position); only what changed is sent to the browser."""
        step = self.view.clamp_step(self.step if step is None else step)
        position = self.position if position is None else int(position)
        if position >= self.view.length:
            position = -1
        moved, selected = step != self.step, position != self.position
        self.step, self.position = step, position
        if self.cells.selected != position:
            self.cells.selected = position
        if moved:
            self.cells.show(self.view, step, self._title())
        # markers move in the overlays: the figures under them are not touched (see overlay.py)
        self.heat_marks.shapes = F.marker_shapes(step, position)
        self.traj_marks.shapes = [F.vline(step)]
        if selected:
            update = F.trajectory_update(self.view, step, position, data=True)
            update.pop("shapes")
            with self.trajectory.batch_update():
                F.apply(self.trajectory, update)
        if position >= 0 or selected:
            with self.mixture.batch_update():
                F.apply(self.mixture, F.mixture_update(self.view, step, position))
        self.lam_marks.shapes = F.lambda_points(self.view, step, position)

    def redraw(self, view: SampleView, step: int | None = None) -> None:
        """Replace the data (another sample, or more steps from a live decode) and show `step`."""
        self.view = view
        with self.heatmaps.batch_update():
            self.heatmaps.data[0].update(**F.heat_data(view, "lam"), **F.lam_colour_props(view))
            self.heatmaps.data[1].update(**F.heat_data(view, "entropy"))
            for axis in ("yaxis", "yaxis2"):
                self.heatmaps.layout[axis].range = [view.num_steps - 0.5, -0.5]
        self.trajectory.layout.xaxis.range = [-0.5, max(view.num_steps - 0.5, 0.5)]
        hx, ly = F.lambda_curve(view.soft_mask, F.entropy_max(view))
        with self.lambda_h.batch_update():
            self.lambda_h.data[0].update(x=hx, y=ly)
            self.lambda_h.layout.xaxis.range = [0, F.entropy_max(view)]
        step = view.num_steps - 1 if step is None else view.clamp_step(step)
        self.step = -1  # force a full refresh
        pos, self.position = self.position, -2
        self.show(step, pos)


class TraceExplorer(W.VBox):
    """Scrub a Trace: `TraceExplorer(g.trace, model=m)`; `.step`, `.position`, `.sample` move it.

    `layout=` places the positions (layouts.py): "token_strip" (the default), "sudoku" (a 9x9 board:
    givens, cells revealed at this step, lambda as shading, top-k candidates on hover), "auto" (the
    sudoku board when every sample's final text is 9 lines of 9 characters, else the strip), another
    registered name, or a function `StepFields -> list[Cell]` such as `layouts.grid(rows, cols)`.

    A trace from `smkit.generate` records its mask id, the SM values it was decoded with (the lambda(H)
    curve) and its tokenizer (token text); `model=` or `tokenizer=` / `mask_id=` / `soft_mask=` / `k=`
    fill in what a trace lacks or override it. The heatmaps are sent once; moving the step moves
    overlay markers and re-colours the strip (see overlay.py for why the figures are left alone).

    Without `step=` it opens at the first step where some position is soft (`opening_step`). Steps are
    numbered from 0 everywhere: `.step`, the slider, the title line ("step 9 of 0-15") and the heatmaps.
    """

    def __init__(self, trace, model=None, *, sample: int = 0, step: int | None = None, position: int = -1,
                 tokenizer=None, mask_id: int | None = None, soft_mask: dict | None = None, k: int | None = None,
                 interval_ms: int = 300, layout="token_strip"):
        self.trace = trace
        self._source = dict(model=model, tokenizer=tokenizer, mask_id=mask_id, soft_mask=soft_mask, k=k)
        view = sample_view(trace, sample, **self._source)
        self.layout_name, place = get_layout(layout, final_texts(trace, view.vocab_text) if layout == "auto" else None)
        step = opening_step(view) if step is None else view.clamp_step(step)
        self.views = StepViews(view, step, position, place)
        self.slider = W.IntSlider(value=step, min=0, max=view.num_steps - 1, description="step",
                                  continuous_update=True, layout=W.Layout(width="420px"))
        self.play = W.Play(value=step, min=0, max=view.num_steps - 1, interval=interval_ms, description="play")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.sample_select = W.Dropdown(options=[(f"sample {i}", i) for i in range(num_samples(trace))],
                                        value=sample, description="sample", layout=W.Layout(width="180px"))
        self.slider.observe(lambda ch: self.views.show(step=ch["new"]), "value")
        self.views.cells.observe(lambda ch: self.views.show(position=ch["new"]), "selected")
        self.sample_select.observe(self._on_sample, "value")
        self.views.heatmaps.data[0].on_click(self._on_click)
        self.views.heatmaps.data[1].on_click(self._on_click)
        super().__init__([W.HBox([self.play, self.slider, self.sample_select]), self.views.box])
        self.add_class("smkit-trace-explorer")

    # ------------------------------------------------------------ state
    @property
    def view(self) -> SampleView:
        return self.views.view

    @property
    def cells(self):
        """The view of the sample's positions: a TokenStrip, or a CellGrid for a board layout."""
        return self.views.cells

    @property
    def strip(self):
        return self.views.cells

    @property
    def step(self) -> int:
        return self.views.step

    @step.setter
    def step(self, value: int) -> None:
        self.slider.value = self.view.clamp_step(value)

    @property
    def position(self) -> int:
        return self.views.position

    @position.setter
    def position(self, value: int) -> None:
        self.views.cells.selected = int(value)

    @property
    def sample(self) -> int:
        return self.sample_select.value

    @sample.setter
    def sample(self, value: int) -> None:
        self.sample_select.value = int(value)

    def _on_sample(self, change) -> None:
        self.views.redraw(sample_view(self.trace, change["new"], **self._source), self.step)

    def _on_click(self, trace, points, selector) -> None:
        if points.xs:
            self.step = int(points.ys[0])
            self.position = int(points.xs[0])

    # ------------------------------------------------------------ output
    def to_html(self, path, include_plotlyjs=True) -> str:
        """A standalone page (no kernel) of the current sample: slider, its cells (strip or board, as laid out
        here) and the plotly views."""
        page = explorer_page(self.view, self.step, self.position, layout=self.views.layout)
        return write_page(path, page, include_plotlyjs)

    def __repr__(self) -> str:
        v = self.view
        shown = "" if self.layout_name == "token_strip" else f", layout={self.layout_name!r}"
        return (f"TraceExplorer(samples={len(self.sample_select.options)}, steps={v.num_steps}, length={v.length}, "
                f"sample={self.sample}, step={self.step}, position={self.position}{shown})")
