"""The one-line titles above a sample's cells, shared by the notebook widgets and the exported pages."""
from __future__ import annotations

from .trace_view import SampleView


def step_title(v: SampleView, s: int) -> str:
    """The line above the token strip: where we are and how many positions are in each state."""
    c = v.counts(s)
    return (f"sample {v.sample} \u00b7 step {s + 1}/{v.num_steps} \u00b7 t={v.t[s]:.3f} \u00b7 nfe {int(v.nfe[s])}"
            f" \u00b7 masked {c['masked'] + c['soft'] + c['remasked']} (soft {c['soft']})"
            f" \u00b7 revealed {c['revealed']}")
