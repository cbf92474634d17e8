"""smkit.trace_hf_generate: a transformers DiffusionGemmaForBlockDiffusion decode recorded as a smkit Trace, on a tiny
random config built on the CPU from transformers' own classes. Tracing changes nothing in the decode; the trace
ends on what generate returned; its accepted positions follow the model's entropy bound; the explorer shows it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import smkit
from smkit import Trace

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "DiffusionGemmaForBlockDiffusion"):
    pytest.skip("this transformers has no DiffusionGemmaForBlockDiffusion", allow_module_level=True)

C, STEPS, BOUND = 8, 5, 0.1        # canvas (block) length, denoising steps, generate's default entropy bound


@pytest.fixture(scope="module")
def model():
    from transformers import (DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, DiffusionGemmaTextConfig,
                              Gemma4VisionConfig)
    text = DiffusionGemmaTextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, global_head_dim=16, max_position_embeddings=256, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"], num_experts=2, top_k_experts=1, moe_intermediate_size=32,
        pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=1,
                                num_key_value_heads=1, head_dim=16)
    cfg = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=C, boi_token_id=60,
                               eoi_token_id=61, image_token_id=62)
    torch.manual_seed(0)
    return DiffusionGemmaForBlockDiffusion(cfg).eval()


PROMPT = torch.tensor([[2, 5, 6, 7], [2, 9, 10, 11]])
KW = dict(max_new_tokens=2 * C, max_denoising_steps=STEPS)


@pytest.fixture(scope="module")
def traced(model):
    torch.manual_seed(1)
    plain = model.generate(PROMPT, **KW)
    torch.manual_seed(1)
    out, trace = smkit.trace_hf_generate(model, PROMPT, k_trace=3, **KW)
    return plain, out, trace


def test_tracing_changes_nothing_and_the_trace_ends_on_the_output(model, traced):
    plain, out, trace = traced
    assert torch.equal(out.sequences, plain.sequences)
    assert np.array_equal(trace.tokens_after(-1), out.sequences.numpy())
    assert "_prepare_sampler" not in model.__dict__          # the model is left as it was
    assert trace.meta["blocks"] == [[4, 4 + C], [4 + C, 4 + 2 * C]] and trace.mask_id == 64
    assert "lam" not in trace.fields and trace.lam is None
    maps = trace.sample_maps(1)
    for s in range(len(trace)):
        r = trace[s]
        assert np.array_equal(maps["tokens"][s], r.tokens[1].numpy())
        assert np.array_equal(maps["entropy"][s], r.entropy[1].numpy())
        assert np.array_equal(maps["top1"][s], r.topk_probs[1, :, 0].numpy())


def test_each_step_holds_the_block_draft_acceptance_and_statistics(traced):
    _, out, trace = traced
    denoising = [trace[s] for s in range(len(trace)) if float(trace[s].t[0]) > 0]
    assert len(denoising) == 2 * STEPS and trace[-1].nfe == 2 * STEPS
    assert [round(float(r.t[0]), 3) for r in denoising[:STEPS]] == [1.0, 0.8, 0.6, 0.4, 0.2]
    for r in denoising:
        lo = 4 + C * r.block
        block = slice(lo, lo + C)
        assert (r.tokens[:, lo + C:] == 64).all() and r.fixed[:, :4].all()
        ent, ids, probs = r.entropy[:, block], r.topk_ids[:, block], r.topk_probs[:, block]
        assert (ent > 0).all() and (probs[..., :-1] >= probs[..., 1:]).all() and (probs.sum(-1) <= 1 + 1e-5).all()
        for b in range(2):
            accepted = r.tokens[b, block] != 64
            # accepted positions show the draft, the argmax of the processed logits
            assert torch.equal(r.tokens[b, block][accepted], ids[b, :, 0][accepted])
            # the model's entropy bound: the lowest-entropy positions, sum minus max within the bound
            h = ent[b]
            if accepted.any() and (~accepted).any():
                assert h[accepted].max() <= h[~accepted].min() + 1e-5
            assert float(h[accepted].sum() - h[accepted].max()) <= BOUND + 1e-4


def test_a_streamer_of_yours_still_runs(model):
    class Drafts:
        def __init__(self):
            self.drafts, self.blocks = [], []

        def put(self, value):
            self.blocks.append(value)

        def put_draft(self, value):
            self.drafts.append(value)

        def end(self):
            self.blocks.append("end")

    mine = Drafts()
    torch.manual_seed(1)
    out, trace = smkit.trace_hf_generate(model, PROMPT, streamer=mine, **KW)
    assert len(mine.drafts) == 2 * STEPS and mine.blocks[-1] == "end" and len(mine.blocks) == 4
    assert torch.equal(mine.drafts[STEPS - 1], out.sequences[:, 4:4 + C])


def test_the_trace_saves_opens_and_shows_without_lambda(traced, tmp_path):
    pytest.importorskip("ipywidgets")
    from smkit.widgets import TraceExplorer
    _, out, trace = traced
    back = Trace.open(trace.save(tmp_path / "hf.trace"))
    assert np.array_equal(back.tokens_after(-1), out.sequences.numpy()) and back.meta == trace.meta
    ex = TraceExplorer(back, step=3)
    assert "no \u03bb" in ex.views.heatmaps.layout.annotations[0].text
    assert "no \u03bb" in ex.views.lambda_h.layout.title.text
    assert ex.strip.states[:4] == ["fixed"] * 4


def test_bad_arguments(model):
    with pytest.raises(smkit.ConfigError, match="DiffusionGemmaForBlockDiffusion"):
        smkit.trace_hf_generate(torch.nn.Linear(2, 2), PROMPT)
    with pytest.raises(smkit.ConfigError, match="k_trace=0"):
        smkit.trace_hf_generate(model, PROMPT, k_trace=0)
    with pytest.raises(smkit.ConfigError, match="input_ids"):
        smkit.trace_hf_generate(model, [2, 5, 6])
