"""The one-line titles above a sample's cells, shared by the notebook widgets and the exported pages, and how
steps and lambdas are written in them.

Steps are numbered from 0, as the trace (`trace[step]`), the explorer's `.step`, its slider and the heatmaps'
step axis number them: "step 9 of 0-15" is the tenth of sixteen steps."""
from __future__ import annotations

from .trace_view import SampleView


def step_label(step: int, num_steps: int) -> str:
    return f"step {step} of 0\u2013{num_steps - 1}"


def lambda_text(value: float) -> str:
    """A lambda with three significant digits: 0.207, 0.0067, 1.2e-05 (never a 0.00 that hides a small gate)."""
    return f"{float(value):.3g}"


def step_title(v: SampleView, s: int) -> str:
    """The line above the token strip: where we are and how many positions are in each state."""
    c = v.counts(s)
    return (f"sample {v.sample} \u00b7 {step_label(s, v.num_steps)} \u00b7 t={v.t[s]:.3f} \u00b7 nfe {int(v.nfe[s])}"
            f" \u00b7 masked {c['masked'] + c['soft'] + c['remasked']} (soft {c['soft']})"
            f" \u00b7 revealed {c['revealed']}")
