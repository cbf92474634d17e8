"""PEFT adapters on wrapped denoisers: LoRA and DoRA train beside the SM scalars, the base stays frozen, and an
adapter checkpoint (adapter + SM scalars + tokenizer + a note of the base) loads back into `generate`."""
import json

import pytest
import torch

import smkit
from smkit.io.adapters import AdapterError, adapter_parameters
from smkit.io.checkpoint import CheckpointError
from smkit.io.hf import from_hf

from hf_tiny import batch, build, char_tokenizer, save_dir

torch.set_num_threads(1)
PAIRS = [("to be, or ", "not to be"), ("that is the ", "question"), ("whether tis ", "nobler in the mind")]


def _wrapped(tmp_path, kind="bert", **kw):
    tok = char_tokenizer()
    extra = dict(tokenizer=tok, shift_logits=True, bidirectional=True) if kind == "qwen2" else {}
    return from_hf(save_dir(tmp_path / kind, kind, tok), seq_len=32, **extra, **kw)


def _masked(model, n=2):
    x = batch(model.tokenizer, n)
    x[:, 2::3] = model.mask_id
    return x


@pytest.mark.parametrize("kind, method", [("bert", "lora"), ("bert", "dora"), ("qwen2", "dora")])
def test_adapter_trains_with_sm_and_round_trips(kind, method, tmp_path):
    model = _wrapped(tmp_path, kind).eval()
    x = _masked(model)
    base_out = model(x)
    base = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    smkit.add_adapter(model, method=method, r=4, alpha=8)
    torch.testing.assert_close(model(x), base_out)        # a fresh adapter changes nothing yet
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n or n.startswith("soft_mask.") for n in trainable)
    assert any("lora_magnitude_vector" in n for n in trainable) == (method == "dora")
    assert {"soft_mask.raw_scale", "soft_mask.raw_centre", "soft_mask.raw_steepness"} <= trainable

    sm_before = model.soft_mask.values()
    result = smkit.finetune(model, PAIRS, steps=2, batch_size=3, lr=1e-2, p_sm=1.0, seed=1)
    assert len(result.history) == 2 and result.history["soft_mask"].all()
    assert model.soft_mask.values() != sm_before, "the SM scalars trained beside the adapter"
    for n, p in model.backbone.named_parameters():
        if ".lora_" not in n:
            assert torch.equal(p, base[n.replace(".base_layer", "")]), f"{n} is frozen"
    tuned_out = model(x)
    assert not torch.equal(tuned_out, base_out)

    path = model.save_pretrained(tmp_path / "adapter")
    meta = json.loads((path / "smkit.json").read_text())
    assert meta["adapter"]["method"] == method and meta["base"]["path"] == str((tmp_path / kind).resolve())
    from safetensors.torch import load_file
    keys = load_file(str(path / "adapter.safetensors")).keys()
    assert all(".lora_" in k or k.startswith("soft_mask.") for k in keys), "no base weight is stored"

    for loaded in (smkit.load_pretrained(path), smkit.load_adapter(path)):
        assert torch.equal(loaded(x), tuned_out)
        assert loaded.soft_mask.values() == model.soft_mask.values() and loaded.adapter == model.adapter
        a = smkit.generate(model, prompt="to be", length=16, steps=4, soft_mask=True, seed=2)
        b = smkit.generate(loaded, prompt="to be", length=16, steps=4, soft_mask=True, seed=2)
        assert torch.equal(a.tokens, b.tokens) and b.texts[0].startswith("to be")


@pytest.mark.parametrize("kind, targets", [
    ("bert", ["attention.output.dense", "key", "query", "value"]),
    ("modernbert", ["attn.Wqkv", "attn.Wo"]),
    ("qwen2", ["q_proj", "k_proj", "v_proj", "o_proj"]),
])
def test_default_targets_are_the_attention_projections(kind, targets, tmp_path):
    model = smkit.add_adapter(_wrapped(tmp_path, kind))
    assert sorted(model.adapter["target_modules"]) == sorted(targets)
    assert model.adapter | {"target_modules": None} == {"method": "dora", "r": 16, "alpha": 32, "dropout": 0.0,
                                                          "target_modules": None}


def test_unknown_target_module_names_what_exists():
    tok = char_tokenizer()
    model = from_hf(build("bert", len(tok)), tok, seq_len=32)
    with pytest.raises(AdapterError, match=r"\['q_proj'\] match no module of BertForMaskedLM.*'query'"):
        smkit.add_adapter(model, target_modules=["query", "q_proj"])
    with pytest.raises(AdapterError, match="matches no adaptable layer"):
        smkit.add_adapter(model, target_modules=r".*\.nothing_like_this")
    assert model.adapter is None and not any(".lora_" in n for n, _ in model.named_parameters())


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="ia3"), r"method='ia3': choose one of \['lora', 'dora'\]"),
    (dict(r=0), "r=0: the adapter rank must be an integer >= 1"),
    (dict(alpha=-1), "alpha=-1: must be a number > 0"),
    (dict(dropout=1.0), r"dropout=1.0: must lie in \[0, 1\)"),
])
def test_bad_adapter_options(kwargs, match):
    tok = char_tokenizer()
    with pytest.raises(AdapterError, match=match):
        smkit.add_adapter(from_hf(build("bert", len(tok)), tok, seq_len=32), **kwargs)


def test_adapter_on_a_base_built_in_memory_needs_base_to_load(tmp_path):
    tok = char_tokenizer()
    model = smkit.add_adapter(from_hf(build("bert", len(tok)), tok, seq_len=32), method="lora", r=2)
    with torch.no_grad():
        for n, p in model.backbone.named_parameters():
            if "lora_B" in n:
                p.normal_()
    path = smkit.save_adapter(model, tmp_path / "a")
    with pytest.raises(AdapterError, match="records no base directory.*pass base="):
        smkit.load_adapter(path)
    loaded = smkit.load_adapter(path, base=build("bert", len(tok)))
    x = _masked(model)
    assert torch.equal(loaded(x), model.eval()(x))


def test_adapter_refuses_another_base(tmp_path):
    model = smkit.add_adapter(_wrapped(tmp_path, "bert"), method="lora", r=2)
    path = model.save_pretrained(tmp_path / "a")
    other = save_dir(tmp_path / "rob", "roberta")
    with pytest.raises(AdapterError, match="trained on another base: class is 'RobertaForMaskedLM' here"):
        smkit.load_adapter(path, base=other)


def test_adapter_with_an_added_mask_token_rebuilds_the_same_embeddings(tmp_path):
    tok = char_tokenizer(mask=False)
    folder = save_dir(tmp_path / "bert", "bert", tok)
    model = from_hf(folder, seq_len=32, add_mask_token=True)
    smkit.add_adapter(model, method="lora", r=2)
    smkit.finetune(model, PAIRS, steps=1, batch_size=2, lr=1e-2)
    loaded = smkit.load_pretrained(model.save_pretrained(tmp_path / "a"))
    assert loaded.mask_id == model.mask_id == len(tok) and loaded.tokenizer.mask_token == "[MASK]"
    x = _masked(model)
    assert torch.equal(loaded(x), model(x))


def test_adapter_checkpoint_is_checked(tmp_path):
    model = smkit.add_adapter(_wrapped(tmp_path), method="lora", r=2)
    path = model.save_pretrained(tmp_path / "a")
    (path / "adapter.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="fails its checksum"):
        smkit.load_pretrained(path)
    with pytest.raises(AdapterError, match="carries no adapter"):
        smkit.save_adapter(_wrapped(tmp_path / "x"), tmp_path / "b")


def test_adapters_on_a_native_model(tmp_path):
    # our own encoders take adapters too: their base is given as a DiffusionLM at load time
    from conftest_sampling import build_model

    model = build_model()
    smkit.add_adapter(model, method="dora", r=2, target_modules=["attn.Wqkv"])
    assert adapter_parameters(model) and all(p.requires_grad for p in adapter_parameters(model))
    path = model.save_pretrained(tmp_path / "a")
    loaded = smkit.load_adapter(path, base=build_model())
    x = torch.full((1, 8), model.mask_id)
    x[0, :3] = torch.tensor([1, 2, 3])
    assert torch.equal(loaded(x), model.eval()(x))
