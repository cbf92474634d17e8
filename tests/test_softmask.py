"""The SM operator against docs/method.md section 2, computed densely in float64 as the reference."""
import math

import pytest
import torch

import smkit
from smkit.core.softmask import (SoftMask, entropy_from_log_probs, soft_mask_embeddings, soft_mask_inputs,
                            soft_mask_lambda, sparse_mixture)


def reference(input_ids, logits, E, mask_id, k, ws, wb, wa):
    """Dense float64 reading of the formulas: e = (1-lam) E[m] + lam * sum_topk pi_i E[v_i]."""
    logits, E = logits.double(), E.double()
    p = torch.softmax(logits, -1)
    H = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    lam = ws * torch.sigmoid(wa * (-H - wb))
    top_p, top_i = p.topk(k, -1)
    pi = top_p / top_p.sum(-1, keepdim=True)
    soft = (pi.unsqueeze(-1) * E[top_i]).sum(-2)
    mixed = (1 - lam).unsqueeze(-1) * E[mask_id] + lam.unsqueeze(-1) * soft
    masked = (input_ids == mask_id).unsqueeze(-1)
    return torch.where(masked, mixed, E[input_ids]), torch.where(input_ids == mask_id, lam, torch.zeros_like(lam))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_embeddings_match_formula(seed, k):
    g = torch.Generator().manual_seed(seed)
    V, D, mask_id = 50, 16, 49
    E = torch.randn(V, D, generator=g)
    logits = torch.randn(2, 7, V, generator=g) * 3
    logits[..., mask_id] = float("-inf")
    ids = torch.randint(0, V - 1, (2, 7), generator=g)
    ids[torch.rand(2, 7, generator=g) < 0.6] = mask_id
    ws, wb, wa = float(torch.rand((), generator=g)), -float(torch.rand((), generator=g)) * 3, 1 + 9 * float(torch.rand((), generator=g))
    got = soft_mask_embeddings(ids, logits, E, mask_id, k, ws, wb, wa)
    want, _ = reference(ids, logits, E, mask_id, k, ws, wb, wa)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_lambda_matches_formula_and_anchor_values():
    # docs/method.md: with scale = 1, w_a = 6.66, w_b = -0.75: lambda ~ 0.99 at H = 0, 0.5 at H = 0.75, ~0 beyond 2 nats.
    V = 200
    peaked = torch.full((V,), -1e9); peaked[3] = 0.0
    two = torch.full((V,), -1e9); two[:2] = 0.0
    lam = soft_mask_lambda(torch.stack([peaked, two, torch.zeros(V)]), 1.0, -0.75, 6.66)
    assert lam[0] == pytest.approx(1 / (1 + math.exp(-6.66 * 0.75)), abs=1e-6)
    assert lam[0] > 0.99
    assert lam[1] == pytest.approx(1 / (1 + math.exp(-6.66 * (0.75 - math.log(2)))), abs=1e-6)
    assert lam[2] < 1e-12  # H = log 200 = 5.3 nats
    # H = 0.75 exactly gives 0.5
    h = torch.tensor([0.75])
    assert float(soft_mask_lambda(torch.zeros(1, 2), 1.0, -0.75, 6.66, entropy=h)) == pytest.approx(0.5)


def test_finite_with_inf_logits_and_k_beyond_support():
    V, mask_id = 10, 9
    E = torch.randn(V, 4)
    logits = torch.full((1, 3, V), float("-inf"))
    logits[..., 0] = 0.0  # a one-hot distribution: only one finite logit, k = 5 asks for more
    ids = torch.tensor([[mask_id, 2, mask_id]])
    out = soft_mask_embeddings(ids, logits, E, mask_id, 5, 0.9, -0.75, 6.66)
    assert torch.isfinite(out).all()
    lam = float(soft_mask_lambda(logits[0, :1], 0.9, -0.75, 6.66))
    torch.testing.assert_close(out[0, 0], (1 - lam) * E[mask_id] + lam * E[0])


def test_unmasked_positions_keep_exact_embedding():
    V, mask_id = 30, 29
    E = torch.randn(V, 8)
    ids = torch.tensor([[1, mask_id, 5, 7]])
    out = soft_mask_embeddings(ids, torch.randn(1, 4, V), E, mask_id, 3, 0.99, -0.5, 5.0)
    assert torch.equal(out[0, 0], E[1]) and torch.equal(out[0, 2], E[5]) and torch.equal(out[0, 3], E[7])


def test_k1_mixes_mask_and_argmax():
    V, mask_id = 12, 11
    E = torch.randn(V, 4)
    logits = torch.randn(1, 1, V)
    ids = torch.tensor([[mask_id]])
    out = soft_mask_embeddings(ids, logits, E, mask_id, 1, 0.7, -1.0, 3.0)
    lam = float(soft_mask_lambda(logits, 0.7, -1.0, 3.0))
    torch.testing.assert_close(out[0, 0], (1 - lam) * E[mask_id] + lam * E[int(logits.argmax())])


def test_sm_inputs_from_a_given_top_k_equal_the_operator_and_are_exact_where_lambda_is_zero():
    g = torch.Generator().manual_seed(0)
    V, D, mask_id, k = 40, 8, 39, 3
    E = torch.randn(V, D, generator=g)
    logp = torch.log_softmax(torch.randn(2, 6, V, generator=g) * 2, -1)
    logp[..., mask_id] = float("-inf")
    ids = torch.randint(0, mask_id, (2, 6), generator=g)
    ids[:, ::2] = mask_id
    top_logp, top_ids = logp.topk(k, -1)
    lam = soft_mask_lambda(logp, 0.8, -1.0, 4.0)        # not zeroed at unmasked positions: the builder does it
    got = soft_mask_inputs(ids, top_ids, top_logp, lam, mask_id, E)
    assert torch.equal(got, soft_mask_embeddings(ids, logp, E, mask_id, k, 0.8, -1.0, 4.0))
    assert torch.equal(got[:, 1::2], E[ids[:, 1::2]])
    assert torch.equal(soft_mask_inputs(ids, top_ids, top_logp, torch.zeros_like(lam), mask_id, E), E[ids])
    mix_ids, weights = sparse_mixture(ids, top_ids, top_logp, lam, mask_id)
    assert mix_ids.shape == weights.shape == (2, 6, k + 1) and torch.equal(mix_ids[..., 1:], top_ids)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 6))


def test_one_entropy_from_logits_or_log_probs():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 5, 20, generator=g) * 3
    logits[..., -1] = float("-inf")
    p = torch.softmax(logits.double(), -1)
    want = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    torch.testing.assert_close(smkit.entropy_from_logits(logits).double(), want, rtol=1e-5, atol=1e-5)
    logp = torch.log_softmax(logits, -1)
    torch.testing.assert_close(entropy_from_log_probs(logp).double(), want, rtol=1e-5, atol=1e-5)
    assert torch.equal(entropy_from_log_probs(logp[..., :-1], finite=True), entropy_from_log_probs(logp[..., :-1]))
    leaf = logp.clone().requires_grad_()
    with_grad = entropy_from_log_probs(leaf)   # out of place under autograd, in place without: the same numbers
    assert torch.equal(with_grad.detach(), entropy_from_log_probs(logp))
    with_grad.sum().backward()
    assert torch.isfinite(leaf.grad).all()


def test_softmask_module_three_scalars_in_range():
    sm = SoftMask(k=3, scale=0.3, centre=-0.75, steepness=6.66)
    params = [p for p in sm.parameters() if p.requires_grad]
    assert len(params) == 3 and all(p.numel() == 1 for p in params)
    assert sm.values()["scale"] == pytest.approx(0.3) and sm.values()["centre"] == pytest.approx(-0.75)
    assert sm.values()["steepness"] == pytest.approx(6.66, rel=1e-5)
    with torch.no_grad():
        for p in params:
            p.fill_(1e4)
    assert 0 < sm.values()["scale"] <= 1 and sm.values()["steepness"] > 0 and sm.values()["centre"] < 0
    with torch.no_grad():
        for p in params:
            p.fill_(-1e4)
    assert sm.values()["scale"] >= 0 and sm.values()["steepness"] > 0 and sm.values()["centre"] < 0


@pytest.mark.parametrize("kwargs, word", [({"k": 0}, "k="), ({"scale": 1.5}, "scale="), ({"centre": 0.2}, "centre="),
                                          ({"steepness": -1.0}, "steepness=")])
def test_softmask_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SoftMask(**kwargs)


def test_public_api_names():
    for name in ("soft_mask_lambda", "soft_mask_embeddings", "SoftMask", "load_pretrained"):
        assert hasattr(smkit, name)
