"""compare(trace_a, trace_b): two decodes side by side on one step axis (binary vs SM at the same budget).

One slider (with play) moves both: each trace shows its own step min(step, its last step). Two token
strips, a heatmap per trace of lambda or entropy (a toggle) with the step marker, and the fraction still
masked and the mean entropy per step of both. Selecting a position in either strip marks it in both.
"""
from __future__ import annotations

import ipywidgets as W

from . import figures as F
from .export import compare_page, write_page
from .overlay import overlaid
from .titles import step_label
from .token_strip import TokenStrip
from .trace_view import opening_step, sample_view
from smkit.core.errors import ConfigError


class Compare(W.VBox):
    """Two traces on a shared step axis; `.step`, `.position`, `.field` move it. Without `step=` it opens at
    the first step where either trace has a soft position (`opening_step`, as `TraceExplorer` does)."""

    def __init__(self, trace_a, trace_b, model=None, *, model_b=None, names=("A", "B"), sample: int = 0,
                 step: int | None = None, field: str = "lam", tokenizer=None, mask_id: int | None = None,
                 soft_mask: dict | None = None, interval_ms: int = 300):
        if field not in ("lam", "entropy"):
            raise ConfigError(f"field={field!r}: choose 'lam' or 'entropy'")
        if len(names) != 2:
            raise ConfigError(f"names={names!r}: give exactly two names, one per trace")
        self.traces, self.names, self.sample_index = (trace_a, trace_b), tuple(str(n) for n in names), sample
        model_b = model if model_b is None else model_b
        self.views = [sample_view(tr, sample, model=m, tokenizer=tokenizer, mask_id=mask_id, soft_mask=soft_mask)
                      for tr, m in ((trace_a, model), (trace_b, model_b))]
        self.num_steps = max(v.num_steps for v in self.views)
        # without step=, open where the explorer does: the first step where either trace has a soft position
        step = opening_step(*self.views) if step is None else min(max(int(step), 0), self.num_steps - 1)
        self._step, self._position, self._field = step, -1, field
        self.strips = [TokenStrip() for _ in self.views]
        self.heatmaps, self.heat_marks = overlaid(self._heat_figure())
        self.progress, self.progress_marks = overlaid(F.progress_figure(self.views, list(self.names), step))
        self.slider = W.IntSlider(value=step, min=0, max=self.num_steps - 1, description="step",
                                  layout=W.Layout(width="420px"))
        self.play = W.Play(value=step, min=0, max=self.num_steps - 1, interval=interval_ms, description="play")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.field_toggle = W.ToggleButtons(options=[("\u03bb", "lam"), ("entropy", "entropy")], value=field,
                                            style={"button_width": "auto"})  # a fixed width cut "entropy" short
        self.slider.observe(lambda ch: self._show(step=ch["new"]), "value")
        self.field_toggle.observe(lambda ch: self._set_field(ch["new"]), "value")
        for s in self.strips:
            s.observe(lambda ch: self._show(position=ch["new"]), "selected")
        self._show(step, force=True)
        half = W.Layout(width="50%")
        super().__init__([W.HBox([self.play, self.slider, self.field_toggle]),
                          W.HBox([W.Box([s], layout=half) for s in self.strips]), self.heatmaps, self.progress,
                          self.heat_marks, self.progress_marks])
        self.add_class("smkit-compare")

    def _heat_figure(self):
        return F.heatmaps_figure(self.views, self._step, self._position, field=self._field,
                                 titles=[f"{'λ' if self._field == 'lam' else 'entropy'}: {n}" for n in self.names])

    def steps_shown(self, step: int | None = None) -> list[int]:
        """The step each trace shows at slider value `step` (its own last step once it has finished)."""
        step = self._step if step is None else step
        return [v.clamp_step(step) for v in self.views]

    def _show(self, step: int | None = None, position: int | None = None, force: bool = False) -> None:
        step = self._step if step is None else min(max(int(step), 0), self.num_steps - 1)
        position = self._position if position is None else int(position)
        moved = force or step != self._step
        self._step, self._position = step, position
        for s, v, own, name in zip(self.strips, self.views, self.steps_shown(step), self.names):
            if s.selected != position:
                s.selected = position
            if moved:
                s.show(v, own, f"{name} \u00b7 {step_label(own, v.num_steps)} \u00b7 t={v.t[own]:.3f} "
                               f"\u00b7 still masked {int(v.masked_after(own).sum())}")
        # markers move in the overlays; the figures are not touched (see overlay.py)
        self.heat_marks.shapes = F.marker_shapes(self.steps_shown(step), position, len(self.views))
        self.progress_marks.shapes = [F.vline(step, i) for i in range(2)]

    def _set_field(self, field: str) -> None:
        self._field = field
        fresh = self._heat_figure()
        with self.heatmaps.batch_update():
            for i, tr in enumerate(fresh.data):
                self.heatmaps.data[i].update(x=tr.x, y=tr.y, z=tr.z, zmin=tr.zmin, zmax=tr.zmax,
                                             colorscale=tr.colorscale, hovertemplate=tr.hovertemplate)
            for i, ann in enumerate(fresh.layout.annotations):
                self.heatmaps.layout.annotations[i].text = ann.text

    # ------------------------------------------------------------ state
    @property
    def step(self) -> int:
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        self.slider.value = min(max(int(value), 0), self.num_steps - 1)

    @property
    def position(self) -> int:
        return self._position

    @position.setter
    def position(self, value: int) -> None:
        self._show(position=int(value))

    @property
    def field(self) -> str:
        return self._field

    @field.setter
    def field(self, value: str) -> None:
        self.field_toggle.value = value

    def to_html(self, path, include_plotlyjs=True) -> str:
        """A standalone page (no kernel): both strips, the heatmaps and the per-step curves on one slider."""
        return write_page(path, compare_page(self.views, list(self.names), self._step, self._field),
                          include_plotlyjs)

    def __repr__(self) -> str:
        return (f"Compare(names={self.names!r}, steps={[v.num_steps for v in self.views]}, "
                f"length={[v.length for v in self.views]}, sample={self.sample_index}, step={self._step}, "
                f"field={self._field!r})")


def compare(trace_a, trace_b, model=None, **kwargs) -> Compare:
    """Two traces side by side on a shared step axis. See `Compare` for the options."""
    return Compare(trace_a, trace_b, model, **kwargs)
