"""LiveDecoder: decode step by step and watch the views update as the steps arrive.

It consumes `smkit.iter_steps`, the library's one step loop; it never decodes by itself. Controls: prompt,
strategy, length, steps, k, SM on/off and a lambda override (a hook at the sampler's lambda point that
feeds back the same lambda at every masked position). Run decodes in a background thread so the Stop
button (and the rest of the notebook) stays responsive; `run()` decodes in the calling thread.
"""
from __future__ import annotations

import threading

import ipywidgets as W

from .explorer import StepViews
from .export import explorer_page, write_page
from .trace_view import sample_view
from smkit.core.errors import ConfigError


def _strategies() -> list[str]:
    import smkit
    return sorted(smkit.STRATEGIES)


class LiveDecoder(W.VBox):
    """`LiveDecoder(model)`: set the controls, press Run (or call `.run()`); `.records` holds the steps."""

    def __init__(self, model, *, prompt: str = "", length: int | None = None, steps: int = 32,
                 strategy: str = "confidence", k: int | None = None, soft_mask: bool = True, seed: int = 0,
                 lam_override: float | None = None, sample_every: int = 1):
        self.model = model
        seq_len = model.config.seq_len
        length = seq_len if length is None else length
        k = model.soft_mask.k if k is None else k
        names = _strategies()
        self.prompt = W.Textarea(value=prompt, description="prompt", placeholder="(optional) text to continue",
                                 layout=W.Layout(width="420px", height="3.2em"))
        self.strategy = W.Dropdown(options=names if strategy in names else names + [strategy], value=strategy,
                                   description="strategy")
        self.length = W.BoundedIntText(value=length, min=2, max=seq_len, description="length",
                                       layout=W.Layout(width="160px"))
        self.steps = W.BoundedIntText(value=steps, min=1, max=4096, description="steps", layout=W.Layout(width="160px"))
        self.k = W.BoundedIntText(value=k, min=1, max=model.config.vocab_size - 1, description="k",
                                  layout=W.Layout(width="130px"))
        self.seed = W.IntText(value=seed, description="seed", layout=W.Layout(width="130px"))
        self.soft = W.Checkbox(value=soft_mask, description="soft mask (SM)", indent=False)
        self.override = W.Checkbox(value=lam_override is not None, description="override \u03bb", indent=False)
        self.lam_value = W.FloatSlider(value=0.5 if lam_override is None else lam_override, min=0.0, max=1.0,
                                       step=0.01, description="\u03bb =", readout_format=".2f")
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status = W.HTML("ready")
        self.slider = W.IntSlider(value=0, min=0, max=0, description="step", disabled=True,
                                  layout=W.Layout(width="420px"))
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.slider.observe(self._on_slider, "value")
        self.sample_every = max(1, int(sample_every))
        self.records: list = []
        self.trace = None  # the steps received so far, a smkit Trace in memory
        self.views: StepViews | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._following = True
        self.error: BaseException | None = None
        self.area = W.VBox([])
        super().__init__([W.HBox([self.prompt, W.VBox([self.strategy, self.soft])]),
                          W.HBox([self.length, self.steps, self.k, self.seed]),
                          W.HBox([self.override, self.lam_value]),
                          W.HBox([self.run_button, self.stop_button, self.status]), self.slider, self.area])
        self.add_class("smkit-live-decoder")

    # ------------------------------------------------------------ decoding
    def settings(self) -> dict:
        """The keyword arguments handed to `smkit.iter_steps` from the controls."""
        kw = dict(prompt=self.prompt.value or None, num_samples=1, length=int(self.length.value),
                  steps=int(self.steps.value), strategy=self.strategy.value, soft_mask=bool(self.soft.value),
                  seed=int(self.seed.value), sm={"k": int(self.k.value)})
        if self.override.value and self.soft.value:
            kw["hooks"] = {"lambda": _constant_lambda(float(self.lam_value.value))}
        return kw

    def steps_iterator(self):
        import smkit
        return smkit.iter_steps(self.model, **self.settings())

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Decode in a background thread (the Run button)."""
        if self.running:
            return
        self._thread = threading.Thread(target=self.run, name="smkit-live-decoder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the step in progress (the Stop button)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, on_step=None) -> list:
        """Decode in this thread, updating the views at every step; `on_step(decoder, record)` is called
        after each. Returns the records received (fewer than `steps` when stopped)."""
        self._stop.clear()
        self.records, self.error, self._following = [], None, True
        self.trace = None
        self._soft_mask = {**self.model.soft_mask.values(), "k": int(self.k.value)}
        self.run_button.disabled, self.stop_button.disabled, self.slider.disabled = True, False, True
        self.status.value = "decoding\u2026"
        steps = self.steps_iterator()
        try:
            for rec in steps:
                self._receive(rec)
                if on_step is not None:
                    on_step(self, rec)
                if self._stop.is_set():
                    break
        except BaseException as err:  # shown in the widget, and kept for the caller
            self.error = err
            self.status.value = f"<span style='color:#c00'>error: {type(err).__name__}: {err}</span>"
            raise
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()
            self.run_button.disabled, self.stop_button.disabled = False, True
            self.slider.disabled = not self.records
            if self.error is None:
                done = "stopped" if self._stop.is_set() and len(self.records) < int(self.steps.value) else "done"
                self.status.value = f"{done}: {len(self.records)} steps"
                if self.views is not None and self.views.step != self.views.view.num_steps - 1:
                    self.views.show(step=self.views.view.num_steps - 1)
        return self.records

    def _receive(self, rec) -> None:
        from smkit.core.trace import Trace
        self.records.append(rec)
        n = len(self.records)
        if self.trace is None:  # the run's first step: a trace in memory that grows as the steps arrive
            self.trace = Trace.from_records([rec], meta={"mask_id": self.model.mask_id, "sm": self._soft_mask},
                                            tokenizer=self.model.tokenizer, n_ids=self.model.config.vocab_size)
            view = sample_view(self.trace, 0, model=self.model, k=int(self.k.value), soft_mask=self._soft_mask)
            if self.views is None:
                self.views = StepViews(view, 0, -1)
                self.views.cells.observe(lambda ch: self.views.show(position=ch["new"]), "selected")
                self.area.children = [self.views.box]
            else:
                self.views.redraw(view, step=0)
        else:
            self.trace.append(rec)
            view = self.views.view
            view.refresh()
            if n % self.sample_every == 0 or self._stop.is_set():
                self.views.redraw(view, step=n - 1 if self._following else self.views.step)
        with self.slider.hold_trait_notifications():
            self.slider.max = n - 1
            if self._following:
                self.slider.value = n - 1
        self.status.value = f"decoding\u2026 step {n}/{int(self.steps.value)}"

    def _on_slider(self, change) -> None:
        if self.views is None:
            return
        last = self.views.view.num_steps - 1
        self._following = change["new"] >= last
        if self.views.step != change["new"]:
            self.views.show(step=change["new"])

    # ------------------------------------------------------------ output
    def to_html(self, path, include_plotlyjs=True) -> str:
        """A standalone page of the steps received so far (same as TraceExplorer.to_html)."""
        if self.views is None:
            raise ConfigError("nothing decoded yet: press Run or call .run() before .to_html()")
        return write_page(path, explorer_page(self.views.view, self.views.step, self.views.position), include_plotlyjs)

    def __repr__(self) -> str:
        return (f"LiveDecoder(length={self.length.value}, steps={self.steps.value}, strategy={self.strategy.value!r}, "
                f"k={self.k.value}, soft_mask={self.soft.value}, received={len(self.records)})")


def _constant_lambda(value: float):
    """A hook at the sampler's "lambda" point: the same lambda everywhere (the sampler keeps it only where
    the position is still masked)."""
    def hook(lam, state):
        return lam.new_full(lam.shape, value)
    return hook
