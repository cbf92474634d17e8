"""Any Hugging Face denoiser: tiny BERT, RoBERTa, ModernBERT masked LMs, a Qwen2 decoder run bidirectionally
with shifted logits, and a model that ships its own code (Dream-like), wrapped with `smkit.from_hf`; they
train a step, decode with SM, and round-trip through files. Bad input fails with a clear error."""
import warnings

import pytest
import torch
from torch import nn

import smkit
from smkit.io.checkpoint import CheckpointError
from smkit.io.hf import DenoiserError, from_hf
from smkit.models.denoiser import subs

from hf_tiny import KINDS, SMALL, batch, build, char_tokenizer, remote_code_dir, save_dir

torch.set_num_threads(1)


def _one_step(model, x, fixed=None):
    """One SM update (scale opened so the scalars get a gradient); returns the loss and the parameters' change."""
    model.soft_mask = smkit.SoftMask(k=2, scale=0.5, centre=-3.0, steepness=1.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    loss = model.loss(x, soft_mask=True, generator=torch.Generator().manual_seed(0), fixed=fixed)
    loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return float(loss.detach()), changed


def _check_generation(model, tokenizer):
    prompt = "to be, or"
    g = smkit.generate(model, prompt=prompt, length=20, steps=6, soft_mask=True, sm={"scale": 0.9}, seed=3)
    P = g.prompt_length
    assert P == len(prompt) and g.texts[0].startswith(prompt)
    assert (g.tokens[0, :P] == torch.tensor(tokenizer(prompt, add_special_tokens=False)["input_ids"])).all()
    assert not (g.tokens == model.mask_id).any()
    assert (g.tokens < (model.config.n_tokens or model.config.vocab_size)).all()
    lam = g.trace.to_pandas().query("masked and step > 0")["lam"]
    assert (lam > 0).any(), "soft-masking fed mixtures back at masked positions"
    return g


@pytest.mark.parametrize("kind", KINDS)
def test_masked_lm_trains_decodes_and_round_trips(kind, tmp_path):
    tok = char_tokenizer()
    model = from_hf(save_dir(tmp_path / kind, kind, tok), seq_len=32)
    assert type(model.backbone).__name__.endswith("ForMaskedLM")
    assert model.mask_id == tok.mask_token_id == 4 and model.config.n_tokens is None
    x = batch(model.tokenizer)
    loss, changed = _one_step(model, x)
    assert loss > 0 and {"soft_mask.raw_scale", "soft_mask.raw_centre", "soft_mask.raw_steepness"} <= changed
    assert any(n.startswith("backbone.") for n in changed)
    g = _check_generation(model, model.tokenizer)

    path = model.save_pretrained(tmp_path / "saved")
    loaded = smkit.load_pretrained(path)
    xm = x.clone()
    xm[:, 3::2] = model.mask_id
    assert torch.equal(loaded(xm), model.eval()(xm))
    assert loaded.mask_id == model.mask_id and loaded.soft_mask.values() == model.soft_mask.values()
    again = smkit.generate(loaded, prompt="to be, or", length=20, steps=6, soft_mask=True, sm={"scale": 0.9}, seed=3)
    assert torch.equal(again.tokens, g.tokens)


def test_decoder_runs_bidirectionally_with_shifted_logits(tmp_path):
    tok = char_tokenizer()
    folder = save_dir(tmp_path / "qwen2", "qwen2", tok, extra_rows=3)   # 3 embedding rows no token uses
    with pytest.warns(UserWarning, match="attends causally"):
        from_hf(folder, tokenizer=tok, seq_len=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = from_hf(folder, tokenizer=tok, seq_len=32, shift_logits=True, bidirectional=True)
    assert model.config.n_tokens == len(tok) and model.config.vocab_size == len(tok) + 3
    x = batch(tok, 2)
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % len(tok)
    raw = lambda ids: model.backbone(inputs_embeds=model.embed(ids)).logits
    assert not torch.equal(raw(x)[:, 0], raw(y)[:, 0]), "position 0 sees the last token"

    logp = model(torch.full_like(x, model.mask_id))
    assert torch.isneginf(logp[..., len(tok):]).all(), "ids no token uses are never predicted"
    loss, changed = _one_step(model, x)
    assert loss > 0 and any(n.startswith("backbone.") for n in changed)
    _check_generation(model, tok)
    loaded = smkit.load_pretrained(model.save_pretrained(tmp_path / "saved"))
    xm = x.clone()
    xm[:, ::3] = model.mask_id
    assert torch.equal(loaded(xm), model.eval()(xm)), "shift and bidirectional attention survive the round trip"


def test_shift_logits_takes_each_position_from_the_one_before(tmp_path):
    tok = char_tokenizer()
    backbone = build("qwen2", len(tok))
    backbone.config.is_causal = False
    plain = from_hf(backbone, tok, seq_len=32)
    shifted = from_hf(backbone, tok, seq_len=32, shift_logits=True)
    x = torch.full((2, 12), plain.mask_id)
    a, b = plain(x), shifted(x)
    assert torch.equal(b[:, 1:], a[:, :-1]) and torch.equal(b[:, 0], a[:, 0])
    # SUBS applies after the shift: an unmasked position still copies its own input token
    x[:, 5] = 7
    assert shifted(x)[:, 5].argmax(-1).eq(7).all()


def test_model_shipping_its_own_code_runs_only_when_trusted(tmp_path, monkeypatch):
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = remote_code_dir(tmp_path / "tiny-dlm")
    marker = tmp_path / "ran.txt"
    monkeypatch.setenv("SMKIT_TEST_REMOTE_MARKER", str(marker))
    with pytest.raises(DenoiserError, match="trust_remote_code=True"):
        from_hf(folder, shift_logits=True)
    assert not marker.exists(), "the shipped code never ran"

    model = from_hf(folder, shift_logits=True, trust_remote_code=True)
    assert marker.exists() and type(model.backbone).__name__ == "TinyDLMModel"
    assert model.mask_id == 4 and model.config.seq_len == 64
    loss, changed = _one_step(model, batch(model.tokenizer))
    assert loss > 0 and any(n.startswith("backbone.") for n in changed)
    _check_generation(model, model.tokenizer)

    path = model.save_pretrained(tmp_path / "saved")
    with pytest.raises(CheckpointError, match="code shipped with the model.*pass trust_remote_code=True"):
        smkit.load_pretrained(path)
    loaded = smkit.load_pretrained(path, trust_remote_code=True)
    x = batch(model.tokenizer, 2)
    x[:, ::2] = model.mask_id
    assert torch.equal(loaded(x), model.eval()(x))


def test_mask_id_from_an_unused_row_or_given(tmp_path):
    tok = char_tokenizer(mask=False)
    model = from_hf(build("bert", len(tok) + 2), tok, seq_len=32)
    assert model.mask_id == len(tok) == model.config.n_tokens
    assert from_hf(build("bert", len(tok)), tok, seq_len=32, mask_id=1).mask_id == 1


def test_add_mask_token_grows_the_embeddings_by_one_deterministic_row():
    tok = char_tokenizer(mask=False)
    n = len(tok)
    backbone = build("bert", n)
    old_mean = backbone.get_input_embeddings().weight.detach().mean(0)
    model = from_hf(backbone, tok, seq_len=32, add_mask_token=True)
    assert model.mask_id == n == tok.mask_token_id and tok.mask_token == "[MASK]"
    assert model.embedding_weight.shape[0] == n + 1
    torch.testing.assert_close(model.embedding_weight[n], old_mean)
    assert model.loss(batch(tok), soft_mask=True).isfinite()


# ------------------------------------------------------------------ bad input

class _NoEmbeddings(nn.Module):
    def forward(self, inputs_embeds):
        return inputs_embeds


def test_model_without_input_embedding_matrix():
    with pytest.raises(DenoiserError, match="no input embedding matrix"):
        from_hf(_NoEmbeddings(), char_tokenizer(), seq_len=32)


def test_vocabulary_without_room_for_a_mask_id():
    tok = char_tokenizer(mask=False)
    with pytest.raises(DenoiserError, match="no room for a mask id.*add_mask_token=True"):
        from_hf(build("bert", len(tok)), tok, seq_len=32)


def test_model_returning_no_logits():
    from transformers import BertConfig, BertModel

    tok = char_tokenizer()
    with pytest.raises(DenoiserError, match="without logits"):
        from_hf(BertModel(BertConfig(vocab_size=len(tok), **SMALL)), tok)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask_id=999), r"mask_id=999: must be an id in \[0, "),
    (dict(shift_logits="yes"), "shift_logits='yes': must be True or False"),
    (dict(seq_len=1), "seq_len=1: must be an integer >= 2"),
])
def test_bad_options_name_the_parameter(kwargs, match):
    tok = char_tokenizer()
    with pytest.raises(DenoiserError, match=match):
        from_hf(build("bert", len(tok)), tok, **kwargs)


def test_tokenizer_larger_than_the_embeddings():
    tok = char_tokenizer()
    with pytest.raises(DenoiserError, match="do not belong together"):
        from_hf(build("bert", len(tok) - 3), tok, seq_len=32, mask_id=0)


def test_not_a_local_model_directory(tmp_path):
    with pytest.raises(DenoiserError, match="not a local model directory"):
        from_hf(tmp_path / "nowhere")


def test_wrapped_models_use_the_documented_loss_formula(tmp_path):
    # the loss of a wrapped model is DiffusionLM.loss: (1/t) * masked NLL / number of tokens at a fixed t
    tok = char_tokenizer()
    model = from_hf(build("bert", len(tok)), tok, seq_len=32).eval()
    x = batch(tok, 2)
    t = torch.tensor([0.5, 0.5])
    loss = model.loss(x, t=t, generator=torch.Generator().manual_seed(3))
    x_t, masked, _ = model.noise(x, t=t, generator=torch.Generator().manual_seed(3))
    logits = model.backbone(inputs_embeds=model.embed(x_t)).logits
    nll = -subs(logits, x_t, model.mask_id).gather(-1, x.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(loss, (nll * masked).sum() / x.numel() / 0.5)


def test_sampler_entropy_leaves_out_mask_and_unused_ids(tmp_path):
    # [MASK] = 4 sits mid-vocabulary and 3 rows are unused: the trace's entropy is that of the SUBS distribution
    tok = char_tokenizer()
    backbone = build("qwen2", len(tok) + 3)
    backbone.config.is_causal = False
    model = from_hf(backbone, tok, seq_len=32, shift_logits=True).eval()
    rec = next(smkit.iter_steps(model, length=12, steps=4, soft_mask=True))
    with torch.no_grad():
        want = smkit.entropy_from_logits(model(torch.full((1, 12), model.mask_id)))
    torch.testing.assert_close(rec.entropy, want)
    assert rec.entropy.isfinite().all() and (rec.entropy > 0).all()
