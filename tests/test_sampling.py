"""The sampler's invariants (issue 3), each on a real tiny model."""
import json
import warnings

import numpy as np
import pytest
import torch

import smkit
from smkit import hooks as smhooks
from smkit.sampling.loop import gumbel_argmax, truncate
from conftest_sampling import ForwardCounter, counter, lm, trained_lm  # noqa: F401  (fixtures)

ALL = sorted(smkit.STRATEGIES)
REMASKING = ["remdm-cap", "remdm-rescale", "remdm-conf", "remdm-loop"]
NON_REMASKING = [s for s in ALL if s not in REMASKING]
STRONG_ETA = {"remdm-cap": 0.5, "remdm-rescale": 0.5, "remdm-conf": 0.0, "remdm-loop": 0.1}


def _gen(model, **kw):
    kw.setdefault("length", 24)
    kw.setdefault("steps", 8)
    return smkit.generate(model, **kw)


# ---------------------------------------------------------------- SM reduces to MDLM

@pytest.mark.parametrize("strategy", ALL)
def test_sm_off_equals_sm_on_with_zero_scale(trained_lm, strategy):
    kw = dict(strategy=strategy, num_samples=3, seed=7, prompt="to be", steps=10)
    off = _gen(trained_lm, soft_mask=False, **kw)
    zero = _gen(trained_lm, soft_mask=True, sm={"scale": 0.0}, **kw)
    assert torch.equal(off.tokens, zero.tokens)
    assert off.nfe == zero.nfe


def test_sm_on_changes_the_input(trained_lm):
    calls = []
    g = _gen(trained_lm, soft_mask=True, num_samples=2, seed=1, hooks={"mixture": lambda e, s: calls.append(s.step)})
    assert calls and 0 not in calls  # the first step is plain, the later ones take SM inputs
    off = _gen(trained_lm, soft_mask=False, num_samples=2, seed=1)
    assert not torch.equal(g.tokens, off.tokens)


@pytest.mark.parametrize("k", [None, 1])
def test_sm_input_is_built_from_the_previous_pass_at_still_masked_positions(trained_lm, k):
    seen = {}

    def keep(kind):
        def hook(value, state):
            seen[(kind, state.step)] = value.clone()
        return hook
    hooks = {"logits": keep("logp"), "mixture": keep("mix")}
    it = smkit.iter_steps(trained_lm, length=24, steps=6, num_samples=2, seed=3, hooks=hooks, sm=None if k is None else {"k": k}, device="cpu")
    records = list(it)
    for step in range(1, len(records)):
        expected = trained_lm.soft_embeddings(records[step - 1].tokens, seen[("logp", step - 1)], k=k)
        torch.testing.assert_close(seen[("mix", step)], expected, rtol=1e-5, atol=1e-6)


def test_sm_uses_k_and_w_overrides(trained_lm):
    base = _gen(trained_lm, seed=2, k_trace=3)
    lam_model = base.trace.lam
    over = _gen(trained_lm, seed=2, k_trace=3, sm={"scale": 0.25})
    masked = over.trace.masked[0]
    ratio = over.trace.lam[0][masked] / lam_model[0][masked]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.5), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- tokens: never change, remasks marked

def _steps_ok(trace, remasking: bool):
    prev = trace[0].tokens.new_full(trace[0].tokens.shape, 0)
    mask_id = trace.meta["mask_id"]
    for i, rec in enumerate(trace):
        before = trace[i - 1].tokens if i else None
        masked_after = rec.tokens == mask_id
        assert torch.equal(rec.revealed, rec.masked_before & ~masked_after)
        if before is not None:
            assert torch.equal(rec.masked_before, before == mask_id)
            went_back = (before != mask_id) & masked_after
            assert torch.equal(rec.remasked, went_back)
            decoded = before != mask_id
            if not remasking:
                assert torch.equal(rec.tokens[decoded], before[decoded])
            else:  # a decoded token either stays or goes back to [MASK]
                kept = decoded & ~rec.remasked
                assert torch.equal(rec.tokens[kept], before[kept])
        prev = rec.tokens
    return prev


@pytest.mark.parametrize("strategy", NON_REMASKING)
@pytest.mark.parametrize("soft_mask", [False, True])
def test_without_remasking_revealed_tokens_never_change(trained_lm, strategy, soft_mask):
    g = _gen(trained_lm, strategy=strategy, soft_mask=soft_mask, num_samples=3, seed=4)
    _steps_ok(g.trace, remasking=False)
    assert not g.trace.remasked.any()


@pytest.mark.parametrize("strategy", REMASKING)
def test_with_remasking_the_trace_marks_every_remask(trained_lm, strategy):
    total = 0
    for seed in range(3):
        g = _gen(trained_lm, strategy=strategy, eta=STRONG_ETA[strategy] if strategy != "remdm-conf" else None,
                 num_samples=3, seed=seed, steps=16)
        _steps_ok(g.trace, remasking=True)
        total += int(g.trace.remasked.sum())
    assert total > 0, "the test needs remasking to happen"


# ---------------------------------------------------------------- end state, prompt, infill

@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("block_length", [None, 6])
def test_no_mask_left_at_the_end(trained_lm, strategy, block_length):
    g = _gen(trained_lm, strategy=strategy, num_samples=2, seed=5, block_length=block_length, steps=8)
    assert not (g.tokens == trained_lm.mask_id).any()
    assert g.trace[-1].masked.sum() == 0


def test_noise_removal_fills_what_a_hook_kept_masked(trained_lm, counter):
    def forbid(d, s):  # never reveal position 20 during the steps
        d.reveal[:, 20] = False
        return d
    g = _gen(trained_lm, strategy="confidence", hooks={"reveal": lambda d, s: forbid(d, s) if s.block >= 0 else None})
    assert not (g.tokens == trained_lm.mask_id).any()
    last = g.trace[-1]
    assert last.block == -1 and last.revealed[:, 20].all() and last.revealed.sum() == 1
    assert g.nfe <= 8 + 1 and g.nfe == counter.count


def test_no_noise_removal_leaves_masks(trained_lm):
    def forbid(d, s):
        d.reveal[:, 20] = False
    g = _gen(trained_lm, noise_removal=False, hooks={"reveal": forbid})
    assert (g.tokens[:, 20] == trained_lm.mask_id).all()


@pytest.mark.parametrize("strategy", ALL)
def test_prompt_and_infill_tokens_never_change(trained_lm, strategy):
    tok = trained_lm.tokenizer
    prompt, infill = "to be", "or [MASK]ot[MASK]to"
    g = _gen(trained_lm, strategy=strategy, prompt=prompt, infill=infill, num_samples=2, seed=6,
             eta=STRONG_ETA.get(strategy) or None)
    init = tok(prompt + infill, add_special_tokens=False)["input_ids"]
    fixed = torch.tensor([i != trained_lm.mask_id for i in init])
    assert fixed.sum() == len(init) - 2
    for rec in g.trace:
        assert torch.equal(rec.fixed[:, :len(init)], fixed.expand(2, -1))
        assert torch.equal(rec.tokens[:, :len(init)][:, fixed], torch.tensor(init)[fixed].expand(2, -1).to(torch.int32))
    assert g.texts[0].startswith("to beor ")
    assert g.completions[0] == tok.decode(g.tokens[0, 5:].tolist())


def test_prompt_as_token_ids(trained_lm):
    ids = trained_lm.tokenizer("to be", add_special_tokens=False)["input_ids"]
    a = _gen(trained_lm, prompt="to be", seed=1)
    b = _gen(trained_lm, prompt=ids, seed=1)
    assert torch.equal(a.tokens, b.tokens) and a.prompt_length == len(ids)


def test_blocks_are_semi_autoregressive(trained_lm):
    g = _gen(trained_lm, prompt="to ", length=27, block_length=8, steps=6, strategy="ancestral", num_samples=2)
    assert [b for b in g.trace.meta["blocks"]] == [[3, 11, 2], [11, 19, 2], [19, 27, 2]]
    for rec in g.trace:
        if rec.block < 0:
            continue
        start, end, _ = g.trace.meta["blocks"][rec.block]
        assert rec.masked[:, end:].all()                 # later blocks untouched
        assert not rec.revealed[:, :start].any() and not rec.revealed[:, end:].any()
        if rec.step % 2 == 1:                              # a block is complete after its last step
            assert not rec.masked[:, start:end].any()


# ---------------------------------------------------------------- NFE

@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("soft_mask", [False, True])
def test_nfe_matches_counted_forward_passes(trained_lm, counter, strategy, soft_mask):
    g = _gen(trained_lm, strategy=strategy, soft_mask=soft_mask, num_samples=2, steps=10)
    assert g.nfe == counter.count
    extra = 1 if g.trace[-1].block == -1 else 0
    assert 1 <= g.nfe <= 10 + extra
    assert int(g.trace.nfe[-1]) == g.nfe


def test_ancestral_cache_spends_no_pass_on_unchanged_steps(trained_lm, counter):
    g = _gen(trained_lm, strategy="ancestral", soft_mask=False, length=12, steps=64, num_samples=1)
    unchanged = sum(1 for r in g.trace if not (r.revealed.any() or r.remasked.any()))
    assert unchanged > 0
    assert g.nfe == counter.count < 64
    steps_with_pass = int((g.trace.nfe.diff() > 0).sum()) + 1
    assert steps_with_pass == g.nfe


def test_threshold_can_finish_early(trained_lm, counter):
    g = _gen(trained_lm, strategy="threshold", threshold=0.05, steps=20)
    assert g.steps < 20 and g.nfe == counter.count <= g.steps


# ---------------------------------------------------------------- reproducibility and batches

@pytest.mark.parametrize("strategy", ["ancestral", "random", "confidence", "remdm-conf", "remdm-loop"])
def test_same_seed_same_result(trained_lm, strategy):
    kw = dict(strategy=strategy, num_samples=2, seed=11, temperature=0.9, top_p=0.95)
    a, b = _gen(trained_lm, **kw), _gen(trained_lm, **kw)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.trace.lam, b.trace.lam) and torch.equal(a.trace.topk_ids, b.trace.topk_ids)
    c = _gen(trained_lm, **{**kw, "seed": 12})
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize("strategy,kw", [("ancestral", {}), ("confidence", {}), ("random", {}),
                                         ("threshold", {"threshold": 0.3, "block_length": 8}),
                                         ("ancestral", {"block_length": 12, "steps": 30}),
                                         ("remdm-conf", {}), ("remdm-cap", {"eta": 0.3}),
                                         ("remdm-loop", {"eta": 0.1})])
def test_sample_does_not_depend_on_its_batch(trained_lm, strategy, kw):
    kw = {"steps": 12, **kw}
    batch = _gen(trained_lm, strategy=strategy, num_samples=4, seed=9, **kw)
    for i in range(4):
        alone = _gen(trained_lm, strategy=strategy, num_samples=1, seed=9, first_sample=i, **kw)
        assert torch.equal(alone.tokens[0], batch.tokens[i]), f"sample {i}"
    assert not torch.equal(batch.tokens[0], batch.tokens[1])


# ---------------------------------------------------------------- lambda

@pytest.mark.parametrize("schedule", ["none", "linear", "stepwise"])
def test_lambda_is_zero_at_unmasked_positions_and_never_above_w_s(trained_lm, schedule):
    w_s = 0.8
    g = _gen(trained_lm, sm={"scale": w_s}, lambda_schedule=schedule, num_samples=2, steps=12, prompt="to")
    lam, masked = g.trace.lam, g.trace.masked
    assert (lam[~masked] == 0).all()
    assert (lam <= w_s + 1e-6).all() and (lam >= 0).all()
    assert (lam[masked] > 0).any()
    frac = (masked & ~g.trace.fixed).sum(-1) / (~g.trace.fixed).sum(-1)   # [S, B]
    if schedule == "linear":
        assert (lam <= w_s * frac[..., None] + 1e-6).all()
    if schedule == "stepwise":
        assert (lam[frac <= 0.5] == 0).all() and (lam[frac > 0.5] > 0).any()


def test_lambda_with_the_model_w_s(trained_lm):
    g = _gen(trained_lm, num_samples=2)
    w_s = trained_lm.soft_mask.values()["scale"]
    assert (g.trace.lam <= w_s + 1e-6).all() and (g.trace.lam[~g.trace.masked] == 0).all()


# ---------------------------------------------------------------- sampling details

def test_truncation_touches_sampling_only(trained_lm):
    a = _gen(trained_lm, seed=3, top_p=0.05)
    b = _gen(trained_lm, seed=3)
    for name in ("lam", "entropy", "topk_ids", "topk_probs"):
        assert torch.equal(getattr(a.trace, name)[0], getattr(b.trace, name)[0]), name
    c = _gen(trained_lm, seed=3, top_k=1, temperature=5.0)
    for rec in c.trace:  # top_k = 1 is greedy whatever the temperature
        assert torch.equal(rec.tokens[rec.revealed], rec.topk_ids[..., 0][rec.revealed])


def test_truncate_and_gumbel():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = truncate(logits, 1.0, None, 0.7).exp()
    torch.testing.assert_close(kept, torch.tensor([[0.625, 0.375, 0.0, 0.0]], dtype=torch.float64))
    assert truncate(logits, 1.0, 2, None).exp()[0, 2:].eq(0).all()
    assert truncate(logits, 1.0, None, 0.5).exp()[0, 0] == 1.0
    assert truncate(logits, 2.0, None, None).dtype == torch.float64
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(20000, 4, generator=gen, dtype=torch.float64)
    draws = gumbel_argmax(logits.expand(20000, 4), u)
    freq = torch.bincount(draws, minlength=4) / 20000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015, rtol=0)
    assert not gumbel_argmax(torch.tensor([[0.0, float("-inf")]]).expand(100, 2),
                             torch.rand(100, 2, generator=gen, dtype=torch.float64)).any()


def test_iter_steps_by_hand(trained_lm):
    it = smkit.iter_steps(trained_lm, length=24, steps=8, num_samples=2)
    first = next(it)
    assert first.step == 0 and it.nfe == 1 and (it.tokens == trained_lm.mask_id).any()
    rest = list(it)
    assert it.done and len(rest) == 7 and not (it.tokens == trained_lm.mask_id).any()
    assert torch.is_grad_enabled()


def test_iter_steps_without_trace_has_no_statistics(trained_lm):
    recs = list(smkit.iter_steps(trained_lm, length=24, steps=4, trace=False))
    assert all(r.entropy is None and r.topk_ids is None and r.lam is None for r in recs)
    g = _gen(trained_lm, trace=False)
    assert g.trace is None and g.nfe >= 1


def test_train_mode_is_restored(lm):
    lm.train()
    _gen(lm)
    assert lm.training


# ---------------------------------------------------------------- hooks

def test_lambda_hook_clamps(trained_lm):
    g = _gen(trained_lm, sm={"scale": 0.9}, hooks={"lambda": lambda lam, s: lam.clamp(max=0.1)})
    assert (g.trace.lam <= 0.1).all() and (g.trace.lam > 0).any()


def test_logits_hook_forbids_a_token(trained_lm):
    banned = trained_lm.tokenizer.convert_tokens_to_ids("e")

    def ban(logp, state):
        return logp.index_fill(-1, torch.tensor([banned]), float("-inf")).log_softmax(-1)
    g = _gen(trained_lm, num_samples=3, hooks={"logits": ban})
    assert not (g.tokens == banned).any()


def test_reveal_hook_forces_a_token(trained_lm):
    forced = trained_lm.tokenizer.convert_tokens_to_ids("q")

    def force(d, state):
        if state.step == 0:
            d.reveal[:, 10] = True
            d.tokens[:, 10] = forced
        return d
    g = _gen(trained_lm, num_samples=2, hooks={"reveal": force})
    assert (g.tokens[:, 10] == forced).all() and g.trace[0].revealed[:, 10].all()


def test_reveal_hook_cannot_touch_fixed_positions(trained_lm):
    def bad(d, state):
        d.remask[:, 0] = True
        return d
    with pytest.raises(ValueError, match="reveal hook"):
        _gen(trained_lm, prompt="to", strategy="remdm-cap", hooks={"reveal": bad})


@pytest.mark.parametrize("how", ["return", "raise"])
def test_step_hook_stops_early(trained_lm, counter, how):
    def stop(rec, state):
        if rec.step == 1:
            if how == "raise":
                raise smhooks.StopSampling
            return smhooks.STOP
    g = _gen(trained_lm, steps=8, hooks={"step": stop})
    assert [r.block for r in g.trace] == [0, 0, -1]          # two steps, then noise removal
    assert not (g.tokens == trained_lm.mask_id).any() and g.nfe == counter.count == 3


def test_add_hooks_context_manager_always_removes(trained_lm):
    seen = []
    with smkit.add_hooks(trained_lm, {"entropy": lambda h, s: seen.append(s.step)}):
        _gen(trained_lm, steps=3)
    assert seen == [0, 1, 2]
    with pytest.raises(RuntimeError):
        with smhooks.add_hooks(trained_lm, [("topk", lambda v, s: None)]):
            raise RuntimeError("boom")
    assert len(smhooks.collect(trained_lm)._by_point) == 0
    seen.clear()
    _gen(trained_lm, steps=3)
    assert seen == []


def test_unknown_hook_point(trained_lm):
    with pytest.raises(ValueError, match="unknown hook point 'logit'.*'logits'"):
        _gen(trained_lm, hooks={"logit": lambda v, s: None})


# ---------------------------------------------------------------- bad input, before any compute

BAD = [
    (dict(steps=0), "steps=0"),
    (dict(prompt="to be", length=5), "length=5.*prompt length"),
    (dict(strategy="greedy"), r"strategy='greedy'.*ancestral.*confidence.*remdm-loop"),
    (dict(sm={"k": 0}), "sm.k=0"),
    (dict(sm={"k": 10_000}), "sm.k=10000"),
    (dict(temperature=0.0), "temperature=0.0"),
    (dict(temperature=-1), "temperature=-1"),
    (dict(top_p=0.0), r"top_p=0.0.*\(0, 1\]"),
    (dict(top_p=1.5), "top_p=1.5"),
    (dict(threshold=0.0), r"threshold=0.0.*\(0, 1\]"),
    (dict(threshold=1.2), "threshold=1.2"),
    (dict(eta=-0.1, strategy="remdm-cap"), "eta=-0.1"),
    (dict(block_length=7), "block_length=7.*divisor"),
    (dict(prompt="to be or not to be, that is the question"), "prompt=.*context"),
    (dict(infill="to be or not"), "infill=.*no mask marker"),
    (dict(length=64), "length=64"),
    (dict(lambda_schedule="cosine"), "lambda_schedule='cosine'"),
    (dict(top_k=0), "top_k=0"),
    (dict(sm={"scale": 1.5}), "sm.scale=1.5"),
    (dict(steps=2, block_length=4), "steps=2.*blocks"),
    (dict(prompt=[3, 10_000]), "prompt=.*10000"),
]


@pytest.mark.parametrize("kwargs,match", BAD, ids=[m.split("=")[0].split(".")[0] + str(i) for i, (_, m) in
                                                   enumerate(BAD)])
def test_bad_input_fails_before_any_compute(trained_lm, counter, kwargs, match):
    kw = {"length": 24, **kwargs}
    with pytest.raises(smkit.SmkitError, match=match):
        smkit.generate(trained_lm, **kw)
    with pytest.raises(smkit.SmkitError, match=match):
        smkit.iter_steps(trained_lm, **kw)
    with pytest.raises(smkit.SmkitError, match=match):
        smkit.SamplingConfig(**kw).validate(trained_lm)
    assert counter.count == 0


def test_an_old_sm_keyword_is_refused_with_the_new_spelling(trained_lm, counter):
    for call in (smkit.generate, smkit.iter_steps):
        with pytest.raises(smkit.ConfigError, match=r"unknown sampling setting.*'sm_scale'.*sm=\{"):
            call(trained_lm, length=24, sm_scale=0.5)
    assert counter.count == 0


def test_a_paced_rule_plans_only_the_steps_that_will_run_and_says_so(trained_lm):
    with pytest.warns(smkit.SamplingWarning, match=r"steps=50.*so (\d+) steps will run") as seen:
        g = smkit.generate(trained_lm, length=24, steps=50, prompt="to be")
    free = 24 - g.prompt_length
    assert f"so {free} steps will run" in str(seen[0].message) and g.steps == free
    it = smkit.iter_steps(trained_lm, length=24, steps=50, strategy="ancestral")   # not paced: 50 planned
    assert sum(n for *_, n in it.plan.blocks) == 50


def test_an_infill_template_sets_the_default_length(trained_lm):
    mask = trained_lm.tokenizer.mask_token
    g = smkit.generate(trained_lm, infill=f"to {mask}{mask} or not", steps=2)
    template = trained_lm.tokenizer(f"to {mask}{mask} or not", add_special_tokens=False)["input_ids"]
    assert g.tokens.shape == (1, len(template))
    assert smkit.iter_steps(trained_lm, steps=2).plan.length == min(128, trained_lm.config.seq_len)


@pytest.mark.parametrize("name,value", [("temperature", -1.0), ("steps", True), ("top_p", float("nan")),
                                        ("strategy", "greedy"), ("num_samples", 1.5)])
def test_a_bad_sampling_argument_is_a_config_error_naming_it(trained_lm, name, value):
    from smkit.core.config import ConfigError
    with pytest.raises(ConfigError) as info:
        smkit.generate(trained_lm, length=24, **{name: value})
    assert isinstance(info.value, smkit.SmkitError) and isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{name}={value!r}: ")


def test_numpy_integers_are_integers(trained_lm):
    a = _gen(trained_lm, seed=np.int64(3), steps=np.int32(8), num_samples=2)
    b = _gen(trained_lm, seed=3, steps=8, num_samples=2)
    assert torch.equal(a.tokens, b.tokens)


def test_unknown_setting(trained_lm):
    with pytest.raises(smkit.SmkitError, match="unknown sampling setting.*'temp'"):
        smkit.iter_steps(trained_lm, temp=1.0)


def test_the_public_step_loop_types(trained_lm):
    plan = smkit.SamplingConfig(length=24, steps=4, strategy="margin", k_trace=0).validate(trained_lm)
    assert isinstance(plan, smkit.Plan)
    assert plan.sm.k == trained_lm.soft_mask.k and plan.top_width == max(plan.sm.k, 2)
    it = smkit.iter_steps(trained_lm, length=24, steps=4)
    assert isinstance(it, smkit.Steps) and isinstance(it.plan, smkit.Plan)
    assert {"Steps", "Plan", "add_hooks"} <= set(smkit.__all__)


# ---------------------------------------------------------------- CLI

def test_cli_sample_writes_jsonl_and_trace(trained_lm, tmp_path, capsys):
    from smkit.cli import main
    path = trained_lm.save_pretrained(tmp_path / "model")
    out = tmp_path / "s.jsonl"
    rc = main(["sample", "--model", str(path), "--out", str(out), "--length", "20", "--steps", "5",
               "--num-samples", "2", "--prompt", "to be", "--strategy", "ancestral"])
    assert rc == 0
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [l["sample"] for l in lines] == [0, 1] and all(l["text"].startswith("to be") for l in lines)
    tr = smkit.Trace.load(tmp_path / "s.trace")
    assert tr.num_samples == 2 and tr.texts_at(-1) == [l["text"] for l in lines]
    rc = main(["sample", "--model", str(path), "--out", str(out), "--steps", "0"])
    assert rc == 2 and "steps=0" in capsys.readouterr().err


def test_the_sampler_builds_sm_inputs_and_entropy_with_the_softmask_operator(trained_lm):
    """One builder of SM inputs and one entropy for training and decoding: each step's SM input equals
    smkit.soft_mask_embeddings of the previous pass's log-probs, its entropy and lambda smkit's."""
    passes, mixtures = [], {}
    handle = trained_lm.register_forward_hook(lambda module, args, out: passes.append(out.detach().clone()))
    try:
        g = _gen(trained_lm, num_samples=2, seed=3, steps=6,
                 hooks={"mixture": lambda e, s: mixtures.update({s.step: e})})
    finally:
        handle.remove()
    sm, E, m = trained_lm.soft_mask, trained_lm.embedding_weight, trained_lm.mask_id
    assert len(passes) == len(g.trace) == g.nfe and sorted(mixtures) == list(range(1, len(g.trace)))
    for step, rec in enumerate(g.trace):    # confidence reveals at every step: one pass per step
        logp, masked_before, masked_after = passes[step], rec.masked_before, rec.masked
        torch.testing.assert_close(rec.entropy[masked_before], smkit.entropy_from_logits(logp)[masked_before])
        assert (rec.entropy[~masked_before] == 0).all()
        torch.testing.assert_close(rec.lam[masked_after], sm.lam(logp)[masked_after])
        if step + 1 in mixtures:
            expected = smkit.soft_mask_embeddings(rec.tokens.long(), logp, E, m, sm.k, sm.scale, sm.centre,
                                                  sm.steepness)
            torch.testing.assert_close(mixtures[step + 1], expected, rtol=1e-5, atol=1e-6)
