"""smkit's sampler against the decoding loop of the paper's code (`MDLM_SM._ddpm_caching_update`), on the paper-
format fixture model. The reference below follows that loop's rules, written here from its description:
- the first pass is plain; every later pass feeds the head the output of the last pass that ran (untruncated);
- the head: lambda = scale * sigmoid(steepness * (sum p log(p + 1e-10) - centre)) at masked positions, the k most
  likely tokens weighted by a softmax over their logits, mixed with the input token's embedding;
- a pass runs only when a token changed since the last one; otherwise the last output is reused (no forward);
- SUBS with -1e6 for the mask column and for every id but the input token at unmasked positions.
smkit's trajectory is replayed through it (teacher forcing): at every step the output smkit used must be the
reference's, and the steps that spent no forward pass must be the same ones."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import smkit
from smkit.io.paper_formats import load_paper_model

FIXTURE = Path(__file__).parent / "fixtures" / "paper_formats"
MASK, FLOOR, TOL = 299, -1e5, 1e-4


@pytest.fixture(scope="module")
def model():
    return load_paper_model(FIXTURE / "sm.ckpt")


def reference_subs(logits, x):
    out = logits.clone()
    out[..., MASK] += -1e6
    out = out - out.logsumexp(-1, keepdim=True)
    keep = x != MASK
    out[keep] = -1e6
    out[keep, x[keep]] = 0.0
    return out


def reference_pass(model, x, feedback):
    """One forward of the paper's MDLM_SM: plain when `feedback` is None, else through its soft-masking head."""
    emb = model.backbone.get_input_embeddings().weight
    if feedback is None:
        inputs = emb[x]
    else:
        head = model.soft_mask
        p = feedback.softmax(-1)
        neg_entropy = (p * (p + 1e-10).log()).sum(-1)
        lam = head.scale * torch.sigmoid(head.steepness * (neg_entropy - head.centre))
        lam = torch.where(x == MASK, lam, torch.zeros_like(lam)).unsqueeze(-1)
        top_logits, top_ids = feedback.topk(head.k, -1)
        weights = torch.cat([1 - lam, lam * top_logits.softmax(-1)], -1)            # [B, L, k + 1]
        ids = torch.cat([x.unsqueeze(-1), top_ids], -1)
        inputs = (weights.unsqueeze(-1) * emb[ids]).sum(-2)
    return reference_subs(model.backbone(inputs_embeds=inputs).float(), x)


def gap(ours, ref):
    keep = (ours > FLOOR) | (ref > FLOOR)
    return (ours[keep] - ref[keep]).abs().max().item()


def decode(model, cache: str, steps: int = 64, strategy: str = "ancestral", capture: bool = False):
    """A decode of 2 samples; with `capture`, also the log-probabilities each step used (the "logits" hook)."""
    used = []
    hooks = {"logits": lambda log_probs, state: used.append(log_probs.clone())} if capture else None
    g = smkit.generate(model, length=64, steps=steps, strategy=strategy, soft_mask=True, cache=cache, seed=3,
                       num_samples=2, hooks=hooks)
    return g, used


@pytest.mark.parametrize("strategy, steps", [("ancestral", 64), ("confidence", 16)])
def test_token_cache_follows_the_papers_loop(model, strategy, steps):
    """Per sample: the paper's loop decides for the whole batch at once (a pass runs when any sample changed), smkit
    for each sample (a sample's result does not depend on the batch it is decoded in). One sample alone: the same."""
    g, used = decode(model, "tokens", steps=steps, strategy=strategy, capture=True)
    records = list(g.trace)
    assert len(used) == len(records)
    x = torch.full((2, 64), MASK)
    last_x, last_out, passes = None, None, 0
    with torch.no_grad():
        for rec, ours in zip(records, used):
            ran = torch.ones(2, dtype=torch.bool) if last_x is None else (x != last_x).any(-1)
            if bool(ran.any()):
                fresh = reference_pass(model, x, last_out)
                last_out = fresh if last_out is None else torch.where(ran[:, None, None], fresh, last_out)
                last_x, passes = x.clone(), passes + 1
            assert rec.cached == (not bool(ran.any())) and rec.nfe == passes, rec.step
            assert gap(ours, last_out) < TOL, rec.step
            x = rec.tokens
    assert not records[0].cached
    assert any(r.cached for r in records) == (strategy == "ancestral")   # top-n rules reveal every step


def test_default_cache_runs_a_pass_whenever_the_input_changes(model):
    """smkit's default differs from the paper's: with SM on the next input is built from the newest output, so it
    differs from the last one even when no token changed, and the pass runs."""
    paper, _ = decode(model, "tokens")
    ours, _ = decode(model, "inputs")
    assert not any(r.cached for r in ours.trace) and ours.nfe == len(list(ours.trace))
    assert paper.nfe < ours.nfe


def test_cached_steps_survive_a_saved_trace(model, tmp_path):
    g, _ = decode(model, "tokens", steps=48)
    g.trace.save(tmp_path / "t.trace")
    back = smkit.Trace.open(tmp_path / "t.trace")
    assert [r.cached for r in back] == [r.cached for r in g.trace] and any(r.cached for r in back)


def test_cache_setting_is_checked(model):
    with pytest.raises(smkit.SmkitError, match="cache"):
        smkit.generate(model, length=8, steps=2, cache="never")
