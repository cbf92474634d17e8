"""smkit.core.filmstrip: one sample of a real decode at steps 0, T/8, ..., T, as text."""
from __future__ import annotations

import pytest
import torch

import smkit
from smkit.core.errors import TraceError
from smkit.core.filmstrip import filmstrip, frame_steps, states
from smkit.core.tokens import text_of


def test_frame_steps():
    assert frame_steps(32) == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert frame_steps(3) == [0, 1, 2, 3]
    assert frame_steps(9, frames=3) == [0, 3, 6, 9]
    with pytest.raises(TraceError):
        frame_steps(0)


def test_filmstrip_of_a_decode(tiny_model):
    m = tiny_model.eval()
    g = smkit.generate(m, prompt="To", length=18, steps=8, strategy="confidence", soft_mask=False, seed=0)
    rows = states(g.trace, 0)
    assert rows.shape == (len(g.trace) + 1, 18)
    assert int((rows[0] == m.mask_id).sum()) == 16 and not (rows[-1] == m.mask_id).any()
    text = filmstrip(g.trace, frames=4)
    heads = [line for line in text.splitlines() if not line.startswith("    ")]
    assert heads[0] == "before the first step: 16 of 18 still masked, 0 forward passes"
    assert heads[-1] == f"after step 8 of 8: 0 of 18 still masked, {g.nfe} forward passes"
    assert len(heads) == 5
    assert text.splitlines()[1] == "    To" + "\u00b7" * 16
    assert g.texts[0] in text


def test_a_render_function_sees_what_is_new():
    seen = []
    m_ids = [5, 5, 1]

    def render(tokens, new):
        seen.append(new)
        return "".join("_" if t == 5 else str(t) for t in tokens)

    tok = None
    from smkit.core.trace import StepRecord, Trace
    before = torch.tensor([m_ids])
    after = torch.tensor([[2, 5, 1]])
    rec = StepRecord(step=0, block=0, t=torch.ones(1), tokens=after, masked_before=before == 5,
                     revealed=(before == 5) & (after != 5), remasked=torch.zeros(1, 3, dtype=torch.bool), lam=None,
                     entropy=None, topk_ids=None, topk_probs=None, nfe=1, wall_time=0.0,
                     fixed=torch.zeros(1, 3, dtype=torch.bool), mask_id=5)
    text = filmstrip(Trace.from_records([rec]), render=render, tokenizer=tok)
    assert "    __1" in text and "    2_1" in text
    assert seen == [[False, False, False], [True, False, False]]
    with pytest.raises(TraceError, match="tokenizer or a render"):
        filmstrip(Trace.from_records([rec]))


def test_text_of_shows_each_masked_token(tiny_model):
    tok = tiny_model.tokenizer
    ids = tok.encode("abc")
    assert text_of([ids[0], 99, ids[2]], tok, 99, "_") == "a_c"
