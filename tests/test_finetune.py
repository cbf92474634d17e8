"""Fine-tuning with SM: prompts never masked and never scored, one t per batch from the narrowed range, two
optimizer groups (adapter / SM scalars) with their own learning rates, settings checked before compute."""
import pytest
import torch

import smkit
from smkit.core.config import ConfigError
from smkit.training.finetune import encode_examples, make_optimizer, FinetuneConfig
from smkit.io.hf import from_hf

from hf_tiny import build, char_tokenizer

torch.set_num_threads(1)
PAIRS = [("to be, or ", "not to be"), ("that is the ", "question"), ("whether tis ", "nobler in the mind")]


@pytest.fixture
def model():
    tok = char_tokenizer()
    return from_hf(build("bert", len(tok)), tok, seq_len=32)


def test_pairs_are_encoded_with_fixed_prompts_and_eos_padding(model):
    tok = model.tokenizer
    ids, fixed = encode_examples(PAIRS + [{"prompt": "to", "response": " be"}], tok)
    assert ids.shape == fixed.shape == (4, len("whether tis nobler in the mind"))
    for row, (p, r) in enumerate(PAIRS + [("to", " be")]):
        assert fixed[row].sum() == len(p) and fixed[row, :len(p)].all()
        assert tok.decode(ids[row, :len(p) + len(r)]) == p + r
        assert (ids[row, len(p) + len(r):] == tok.eos_token_id).all()
    blocks = torch.randint(6, len(tok), (3, 10))
    same, none = encode_examples(blocks)
    assert torch.equal(same, blocks) and not none.any()


@pytest.mark.parametrize("examples, kwargs, match", [
    ([("to be, or not", "x")], dict(seq_len=5), r"examples\[0\]: the prompt has 13 tokens, seq_len=5"),
    ([("to", "")], {}, r"examples\[0\]: the response is empty"),
    ([{"prompt": "a"}], {}, r"examples\[0\]: a dict needs exactly the keys 'prompt' and 'response'"),
    ([([1, 2], [3]), ([1], [2])], dict(tokenizer=None), "pad_id=None"),
    ([], {}, "examples: give a non-empty list"),
])
def test_bad_examples(model, examples, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        encode_examples(examples, kwargs.pop("tokenizer", model.tokenizer), **kwargs)


def test_long_responses_are_cut_with_a_warning(model):
    with pytest.warns(UserWarning, match="1 of 3 responses were cut to fit seq_len=20"):
        ids, fixed = encode_examples(PAIRS, model.tokenizer, seq_len=20)
    assert ids.shape == (3, 20)


def test_prompts_are_never_masked_and_not_scored(model):
    ids, fixed = encode_examples(PAIRS, model.tokenizer)
    t = torch.full((3,), 0.999)
    x_t, masked, weight = model.noise(ids, t=t, generator=torch.Generator().manual_seed(0), fixed=fixed)
    assert not masked[fixed].any() and masked[~fixed].float().mean() > 0.9
    assert torch.equal(x_t[fixed], ids[fixed])
    model.eval()
    loss = model.loss(ids, t=t, generator=torch.Generator().manual_seed(0), fixed=fixed)
    nll = -model(x_t).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    want = (weight[:, None] * nll * masked).sum() / (~fixed).sum()   # per response token
    torch.testing.assert_close(loss, want)
    with pytest.raises(ValueError, match="fixed: must be a bool tensor shaped like input_ids"):
        model.loss(ids, fixed=fixed[:, :3])


def test_one_t_per_batch_in_the_narrowed_range_and_two_learning_rates(model):
    smkit.add_adapter(model, method="lora", r=2)
    opt = make_optimizer(model, FinetuneConfig(lr=1e-5, sm_lr=1e-2))
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in opt.param_groups] == [
        ("backbone", 1e-5, 0.0), ("soft_mask", 1e-2, 0.0)]
    assert all(".lora_" in n for n, p in model.backbone.named_parameters()
               if any(p is q for q in opt.param_groups[0]["params"]))

    seen = []
    handle = model.backbone.register_forward_pre_hook(
        lambda m, args, kw: seen.append(kw["inputs_embeds"].shape), with_kwargs=True)
    hist = smkit.finetune(model, PAIRS, steps=6, batch_size=2, p_sm=0.5, seed=4).history
    handle.remove()
    assert hist["t"].between(0.2, 0.8).all() and hist["t"].nunique() == 6
    assert 0 < hist["soft_mask"].sum() < 6, "some updates took the two-pass SM estimate, some not"
    assert len(seen) == 6 + hist["soft_mask"].sum(), "an SM update spends two forward passes"
    again = smkit.finetune(from_hf(build("bert", len(model.tokenizer)), model.tokenizer, seq_len=32).eval(),
                           PAIRS, steps=6, batch_size=2, p_sm=0.5, seed=4).history
    assert again["t"].tolist() == hist["t"].tolist(), "a seed fixes t, the batch and the SM draws"


def test_full_fine_tuning_without_an_adapter(model):
    before = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    smkit.finetune(model, PAIRS, steps=1, batch_size=2, lr=1e-2, soft_mask=False)
    assert any(not torch.equal(p, before[n]) for n, p in model.backbone.named_parameters())


@pytest.mark.parametrize("kwargs, match", [
    (dict(t_min=0.9, t_max=0.8), r"t_min=0.9: must not exceed t_max=0.8"),
    (dict(p_sm=1.5), r"p_sm=1.5: must lie in \[0, 1\]"),
    (dict(steps=0), "steps=0: must be an integer >= 1"),
    (dict(lr_backbone=1e-5), r"unknown fine-tuning option\(s\) \['lr_backbone'\]"),
])
def test_bad_settings_fail_before_compute(model, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        smkit.finetune(model, PAIRS, **kwargs)


def test_examples_must_fit_the_model(model):
    with pytest.raises(ConfigError, match=f"other than the mask id {model.mask_id}"):
        smkit.finetune(model, [([1, 2], [model.mask_id, 3])], steps=1)
    with pytest.raises(ConfigError, match="the model takes at most 32"):
        smkit.finetune(model, torch.ones(2, 40, dtype=torch.long), steps=1)


def test_the_update_is_pretrainings_micro_batches_and_warmup(model):
    """Fine-tuning takes `smkit.training.update.sm_update`: micro-batches accumulate to the one-pass update; warmup and
    the learning-rate schedule are pretraining's."""
    import copy

    from smkit.training.update import lr_factor
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0  # dropout draws differ between one pass and two: compare without it
    one, micro = copy.deepcopy(model), copy.deepcopy(model)
    a = smkit.finetune(one, PAIRS, steps=2, batch_size=4, seed=1, p_sm=0.5).history
    b = smkit.finetune(micro, PAIRS, steps=2, batch_size=4, seed=1, p_sm=0.5, micro_batch_size=2).history
    torch.testing.assert_close(torch.tensor(a["loss"].values), torch.tensor(b["loss"].values))
    for (name, p), q in zip(one.named_parameters(), micro.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert [lr_factor(s, 10, 4) for s in (0, 3, 9)] == [0.25, 1.0, 1.0]
    assert lr_factor(9, 10, 0, "cosine") < 0.05
    for kwargs, match in ((dict(micro_batch_size=3), r"micro_batch_size=3: must divide batch_size=4"),
                          (dict(lr_schedule="linear"), "lr_schedule='linear': constant or cosine"),
                          (dict(warmup_steps=-1), "warmup_steps=-1: must be an integer >= 0")):
        with pytest.raises(ConfigError, match=match):
            smkit.finetune(model, PAIRS, batch_size=4, **kwargs)
