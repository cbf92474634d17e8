"""The unmasking / remasking rules as pure functions, on hand-made step views, plus the registry."""
import dataclasses

import pytest
import torch

import smkit
from smkit.core.strategies import STRATEGIES, StepView, get_strategy, register, top_n
from conftest_sampling import trained_lm  # noqa: F401  (fixture)

NAMES = ["ancestral", "random", "confidence", "margin", "entropy", "threshold", "remdm-cap", "remdm-rescale",
         "remdm-conf", "remdm-loop"]


def view(B=2, L=6, **kw):
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(B, L, 3, generator=gen).sort(-1, descending=True).values
    probs = probs / probs.sum(-1, keepdim=True) * 0.9
    cand = torch.ones(B, L, dtype=torch.bool)
    base = dict(top_probs=probs, entropy=torch.rand(B, L, generator=gen) * 3, candidates=cand,
                editable=torch.zeros_like(cand), n_reveal=torch.full((B,), 2), t=1.0, s=0.75, alpha_t=0.001,
                alpha_s=0.25, last=False, uniform=torch.rand(B, L, generator=gen, dtype=torch.float64),
                conf=torch.full((B, L), float("-inf"), dtype=torch.float64))
    base.update(kw)
    return StepView(**base)


def test_registry_holds_every_rule():
    assert sorted(STRATEGIES) == sorted(NAMES)
    assert smkit.STRATEGIES is STRATEGIES
    assert {n for n in NAMES if STRATEGIES[n].remasks} == {"remdm-cap", "remdm-rescale", "remdm-conf", "remdm-loop"}


def test_unknown_rule_lists_the_allowed_names():
    with pytest.raises(ValueError) as err:
        get_strategy("greedy")
    assert "greedy" in str(err.value) and all(n in str(err.value) for n in NAMES)


@pytest.mark.parametrize("name,score", [
    ("confidence", lambda v: v.top_probs[..., 0]),
    ("margin", lambda v: v.top_probs[..., 0] - v.top_probs[..., 1]),
    ("entropy", lambda v: -v.entropy),
    ("random", lambda v: v.uniform),
])
def test_top_n_rules_reveal_the_n_best_candidates(name, score):
    cand = torch.tensor([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0]], dtype=torch.bool)
    v = view(candidates=cand, n_reveal=torch.tensor([3, 1]))
    reveal, remask = STRATEGIES[name](v)
    assert not remask.any()
    assert reveal.sum(-1).tolist() == [3, 1] and not (reveal & ~cand).any()
    s = score(v).masked_fill(~cand, float("-inf"))
    for b in range(2):
        chosen, rest = s[b][reveal[b]], s[b][cand[b] & ~reveal[b]]
        assert rest.numel() == 0 or chosen.min() >= rest.max()


def test_top_n_ties_pick_the_lower_position():
    out = top_n(torch.zeros(1, 5), torch.ones(1, 5, dtype=torch.bool), torch.tensor([2]))
    assert out.tolist() == [[True, True, False, False, False]]


def test_threshold_reveals_all_confident_and_at_least_one():
    probs = torch.tensor([[[0.95, 0.05, 0.0], [0.5, 0.3, 0.2], [0.92, 0.05, 0.03], [0.4, 0.3, 0.3]],
                          [[0.3, 0.3, 0.4], [0.6, 0.2, 0.2], [0.5, 0.4, 0.1], [0.2, 0.2, 0.2]]])
    v = view(B=2, L=4, top_probs=probs, threshold=0.9, n_reveal=torch.tensor([1, 1]))
    reveal, _ = STRATEGIES["threshold"](v)
    assert reveal.tolist() == [[True, False, True, False], [False, True, False, False]]
    reveal, _ = STRATEGIES["threshold"](dataclasses.replace(v, last=True))
    assert reveal.all()


def test_ancestral_reveals_with_the_posterior_probability():
    L = 20000
    u = torch.rand(1, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    v = view(B=1, L=L, uniform=u, top_probs=torch.ones(1, L, 2), entropy=torch.zeros(1, L),
             alpha_t=0.2, alpha_s=0.6)
    reveal, remask = STRATEGIES["ancestral"](v)
    p = (0.6 - 0.2) / (1 - 0.2)
    assert torch.equal(reveal, u < p) and not remask.any()
    assert abs(reveal.float().mean().item() - p) < 0.01
    reveal, _ = STRATEGIES["ancestral"](dataclasses.replace(v, last=True, alpha_s=1.0))
    assert reveal.all()


def _remdm_view(L=8, t=0.5, s=0.25, alpha_t=0.5, alpha_s=0.75, **kw):
    masked = torch.tensor([[True, False] * (L // 2)])
    u = torch.linspace(0, 0.999, L, dtype=torch.float64)[None]
    return view(B=1, L=L, candidates=masked, editable=~masked, uniform=u, t=t, s=s, alpha_t=alpha_t,
                alpha_s=alpha_s, top_probs=torch.ones(1, L, 2), entropy=torch.zeros(1, L), **kw), masked, u


def test_remdm_cap_and_rescale_sigma():
    v, masked, u = _remdm_view(eta=0.4)
    cap = min(0.4, (1 - 0.75) / 0.5)
    reveal, remask = STRATEGIES["remdm-cap"](v)
    assert torch.equal(remask, ~masked & (u < cap))
    assert torch.equal(reveal, masked & (u < (0.75 - (1 - cap) * 0.5) / 0.5))
    resc = 0.4 * min(1.0, 0.25 / 0.5)
    reveal, remask = STRATEGIES["remdm-rescale"](v)
    assert torch.equal(remask, ~masked & (u < resc))
    assert torch.equal(reveal, masked & (u < (0.75 - (1 - resc) * 0.5) / 0.5))
    reveal, remask = STRATEGIES["remdm-cap"](dataclasses.replace(v, last=True, alpha_s=1.0))
    assert torch.equal(reveal, masked) and not remask.any()


def test_remdm_conf_remasks_the_least_confident():
    v, masked, _ = _remdm_view(L=4)
    conf = torch.tensor([[float("-inf"), -0.9, float("-inf"), -0.1]], dtype=torch.float64)  # p = 0.9 and 0.1
    u = torch.tensor([[0.9, 0.2, 0.9, 0.2]], dtype=torch.float64)
    v = dataclasses.replace(v, conf=conf, uniform=u)
    _, remask = STRATEGIES["remdm-conf"](v)
    w = torch.softmax(torch.tensor([-0.9, -0.1]), 0) * min(1.0, 0.25 / 0.5)  # sigma of positions 1 and 3
    assert w[1] > 0.2 > w[0]
    assert remask.tolist() == [[False, False, False, True]]


def test_remdm_loop_phases():
    on, off, a_on, eta = 0.55, 0.05, 0.9, 0.05
    kw = dict(t_on=on, t_off=off, alpha_on=a_on, eta=eta)
    v, masked, u = _remdm_view(L=200, t=0.9, s=0.8, **kw)       # phase 1: MDLM, no remasking
    reveal, remask = STRATEGIES["remdm-loop"](v)
    a_t, a_s = (1 - 0.9) * a_on / (1 - on), (1 - 0.8) * a_on / (1 - on)
    assert not remask.any() and torch.equal(reveal, masked & (u < (a_s - a_t) / (1 - a_t)))
    v, masked, u = _remdm_view(L=200, t=0.3, s=0.25, **kw)      # phase 2: constant alpha, sigma = eta
    reveal, remask = STRATEGIES["remdm-loop"](v)
    assert torch.equal(remask, ~masked & (u < eta))
    assert torch.equal(reveal, masked & (u < eta * a_on / (1 - a_on)))
    v, masked, u = _remdm_view(L=200, t=0.04, s=0.02, **kw)     # phase 3: MDLM from alpha_on to 1
    reveal, remask = STRATEGIES["remdm-loop"](v)
    a_t, a_s = 1 - 0.04 * (1 - a_on) / off, 1 - 0.02 * (1 - a_on) / off
    assert not remask.any() and torch.equal(reveal, masked & (u < (a_s - a_t) / (1 - a_t)))


@pytest.mark.parametrize("name", NAMES)
def test_rules_stay_inside_candidates_and_editable(name):
    gen = torch.Generator().manual_seed(2)
    cand = torch.rand(3, 10, generator=gen) < 0.5
    edit = ~cand & (torch.rand(3, 10, generator=gen) < 0.7)
    v = view(B=3, L=10, candidates=cand, editable=edit, n_reveal=torch.tensor([2, 2, 2]), eta=0.9,
             conf=torch.where(edit, -torch.rand(3, 10, generator=gen, dtype=torch.float64), float("-inf")),
             t=0.3, s=0.2, alpha_t=0.7, alpha_s=0.8)
    reveal, remask = STRATEGIES[name](v)
    assert reveal.dtype == remask.dtype == torch.bool
    assert not (reveal & ~cand).any() and not (remask & ~edit).any()


def test_rules_are_pure():
    v = view()
    before = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
    before = {k: x.clone() if isinstance(x, torch.Tensor) else x for k, x in before.items()}
    for name in NAMES:
        a, b = STRATEGIES[name](v), STRATEGIES[name](v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for k, x in before.items():
        y = getattr(v, k)
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y


def test_register_a_custom_rule(trained_lm):
    @register("leftmost")
    def leftmost(v):
        """Reveal the leftmost candidates."""
        pos = torch.arange(v.candidates.shape[-1], dtype=torch.float64, device=v.candidates.device)
        return top_n(-pos.expand(v.candidates.shape), v.candidates, v.n_reveal), torch.zeros_like(v.candidates)
    try:
        g = smkit.generate(trained_lm, strategy="leftmost", length=16, steps=4)
        first = g.trace[0].revealed[0]
        assert first.tolist() == [True] * 4 + [False] * 12
    finally:
        del STRATEGIES["leftmost"]


def test_built_in_rules_ask_only_for_what_they_read():
    asks = {n: (STRATEGIES[n].top_probs_read, STRATEGIES[n].reads_entropy) for n in NAMES}
    assert asks == {"confidence": (1, False), "margin": (2, False), "threshold": (1, False), "entropy": (0, True),
                    **{n: (0, False) for n in ("ancestral", "random", "remdm-cap", "remdm-rescale", "remdm-conf",
                                               "remdm-loop")}}


def test_a_custom_rule_reads_top_probs_and_entropy_with_sm_trace_and_hooks_off(trained_lm):
    """A rule registered without saying what it reads gets both statistics, even when nothing else in the
    decode (soft-masking, the trace, hooks) needs them; they are the model's, as a traced decode sees them."""
    seen = []

    @register("least-entropy")
    def least_entropy(v):
        """Reveal the candidates of lowest entropy, keeping what the view held."""
        seen.append((v.top_probs, v.entropy))
        return top_n(-v.entropy, v.candidates, v.n_reveal), torch.zeros_like(v.candidates)
    try:
        plain = smkit.generate(trained_lm, strategy="least-entropy", length=16, steps=4, soft_mask=False,
                               trace=False)
        plain_seen = seen[:]
        seen.clear()
        traced = smkit.generate(trained_lm, strategy="least-entropy", length=16, steps=4, soft_mask=False)
    finally:
        del STRATEGIES["least-entropy"]
    assert len(plain_seen) == len(seen) == 4
    top, ent = plain_seen[0]
    assert top.shape == (1, 16, 2) and ent.shape == (1, 16)
    with torch.no_grad():  # the first step's pass: every position masked
        log_probs = trained_lm(torch.full((1, 16), trained_lm.mask_id)).double()
    expect_ent = -(log_probs.exp() * log_probs.clamp(min=-1e30)).sum(-1)  # [MASK]'s -inf adds 0
    torch.testing.assert_close(ent.double(), expect_ent, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(top.double(), log_probs.exp().topk(2, -1).values, rtol=1e-5, atol=1e-5)
    for (top, ent), (top_traced, ent_traced) in zip(plain_seen, seen):
        torch.testing.assert_close(top, top_traced[..., :2])
        torch.testing.assert_close(ent, ent_traced)
    assert torch.equal(plain.tokens, traced.tokens)
