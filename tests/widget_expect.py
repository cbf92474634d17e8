"""What the widgets should show, computed here from a trace's StepRecords (not by the widgets' code)."""
from __future__ import annotations

import numpy as np

from smkit.widgets.trace_view import SOFT_COLOUR, SOFT_LIGHT, SOFT_MIN_LAMBDA, STATE_COLOURS, blend, display_token


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def expected_states(rec, sample, mask_id) -> list[str]:
    """The state of every position after the step: fixed, revealed, remasked, soft, masked or decoded."""
    tokens, lam = _np(rec.tokens)[sample], _np(rec.lam)[sample]
    fixed, rev, rem = _np(rec.fixed)[sample], _np(rec.revealed)[sample], _np(rec.remasked)[sample]
    out = []
    for p in range(tokens.shape[0]):
        if fixed[p]:
            out.append("fixed")
        elif rev[p]:
            out.append("revealed")
        elif rem[p]:
            out.append("remasked")
        elif tokens[p] == mask_id:
            out.append("soft" if lam[p] >= SOFT_MIN_LAMBDA else "masked")  # lambda < 1e-3: plain masked
        else:
            out.append("decoded")
    return out


def gate_top(trace) -> float:
    """The largest lambda the trace's gate can give: its recorded scale (lambda = scale * sigmoid(...))."""
    return float(trace.meta["sm"]["scale"])


def expected_colours(rec, sample, mask_id, top: float) -> list[str]:
    """Background of every position: by state; a soft one blends light violet -> violet by lambda / top, top
    being the gate's scale (`gate_top`): the colour scale spans the lambdas the model can feed back."""
    lam = _np(rec.lam)[sample]
    return [blend(SOFT_LIGHT, SOFT_COLOUR, [lam[p] / top])[0] if s == "soft" else STATE_COLOURS[s]
            for p, s in enumerate(expected_states(rec, sample, mask_id))]


def expected_labels(rec, sample, mask_id, tokenizer) -> list[str]:
    """Text of every position: its token; a soft position its top candidate; a plain masked one a dot."""
    tokens, top = _np(rec.tokens)[sample], _np(rec.topk_ids)[sample, :, 0]
    text = lambda i: display_token(tokenizer.decode([int(i)]))
    out = []
    for p, s in enumerate(expected_states(rec, sample, mask_id)):
        out.append(text(top[p]) if s == "soft" else "\u00b7" if s in ("masked", "remasked") else text(tokens[p]))
    return out


def hex_to_css_rgb(colour: str) -> str:
    """'#a1b2c3' as a browser reports an element's style.background: 'rgb(161, 178, 195)'."""
    h = colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))
