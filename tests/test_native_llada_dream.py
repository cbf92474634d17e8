"""LLaDA and Dream folders open without their code: transformers' own Llama / Qwen2 decoders run both ways, the
weights mapped by name. Their log-probabilities match what the authors' modeling code computes (reference logits in
tests/fixtures, see NATIVE_LLADA_DREAM.md); everything smkit does works on them; bad folders fail before compute;
code shipped in a folder never runs."""
import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers import PreTrainedTokenizerFast

import smkit
from smkit.io.native_hf import load_native

from native_tiny import (DECODER, KINDS, MASK_ID, MASK_TEXT, TEXT, byte_bpe_tokenizer_files, char_tokenizer,
                         copy_folder, fixture, ids, reference)

torch.set_num_threads(1)
DREAM_SM = {"k": 1, "scale": 0.25, "centre": -1.0, "steepness": 5.0}   # the paper's Dream decoding settings
TOLERANCE = 1e-4


def expected_log_probs(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities from the authors' logits, written out here (not smkit's code): Dream's output at i - 1
    predicts token i, and the mask token is never predicted."""
    if kind == "dream":
        logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
    logits = logits.clone()
    logits[..., MASK_ID[kind]] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Each fixture folder with a tokenizer beside it: LLaDA's tokenizer.json without a declared mask token (as
    LLaDA ships it), Dream's a byte-level BPE (vocab.json + merges.txt, as Dream ships it)."""
    out = {}
    for kind in KINDS:
        folder = copy_folder(kind, tmp_path_factory.mktemp(kind) / kind)
        if kind == "llada":
            char_tokenizer(kind).save_pretrained(str(folder))
        else:
            byte_bpe_tokenizer_files(folder)
        out[kind] = folder
    return out


@pytest.fixture(scope="module")
def models(folders):
    return {kind: smkit.load_pretrained(folder) for kind, folder in folders.items()}


# ------------------------------------------------------------------ parity with the authors' code

@pytest.mark.parametrize("kind", KINDS)
def test_log_probs_match_the_authors_code_from_ids_and_from_embeddings(kind):
    ref = reference(kind)
    model = smkit.load_pretrained(fixture(kind))
    assert type(model.backbone).__name__ == DECODER[kind]
    assert model.mask_id == MASK_ID[kind] and model.config.shift_logits == (kind == "dream")
    x = ref["input_ids"]
    masked = x == model.mask_id
    assert masked.sum() >= 6 and not masked[:, 0].any()
    with torch.no_grad():
        from_ids = model(x)
        from_embeds = model(x, inputs_embeds=ref["inputs_embeds"])
        raw = model.backbone(inputs_embeds=ref["inputs_embeds"]).logits
    gaps = {}
    for name, got, logits in (("ids", from_ids, ref["logits_from_ids"]),
                              ("embeds", from_embeds, ref["logits_from_embeds"])):
        got, want = got[masked], expected_log_probs(kind, logits)[masked]
        assert torch.equal(torch.isneginf(got), torch.isneginf(want))   # the mask column (and nothing else)
        finite = torch.isfinite(want)
        gaps[name] = float((got[finite] - want[finite]).abs().max())
    print(f"{kind}: largest |log-prob gap| at masked positions: {gaps}")
    assert max(gaps.values()) <= TOLERANCE
    torch.testing.assert_close(raw, ref["logits_from_embeds"], atol=TOLERANCE, rtol=0)
    # the two inputs differ where it matters, so the second comparison is not the first again
    assert (ref["logits_from_ids"] - ref["logits_from_embeds"]).abs().max() > 0.1


def test_without_the_shift_dream_would_not_match(tmp_path):
    """The shift is what makes Dream match: the same weights read as LLaDA reads (unshifted) miss by far."""
    ref = reference("dream")
    model = smkit.load_pretrained(fixture("dream"))
    masked = ref["input_ids"] == model.mask_id
    with torch.no_grad():
        got = model(ref["input_ids"])
    unshifted = ref["logits_from_ids"].clone()
    unshifted[..., MASK_ID["dream"]] = float("-inf")
    gap = (got - torch.log_softmax(unshifted, -1))[masked]
    assert gap[gap.isfinite()].abs().max() > 0.1


def test_one_file_and_shards_load_the_same_model(tmp_path):
    folder = copy_folder("llada", tmp_path / "sharded")
    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(weights)
    shards = {"part-1.safetensors": names[::2], "part-2.safetensors": names[1::2]}
    for file, part in shards.items():
        save_file({n: weights[n] for n in part}, str(folder / file))
    index = {"metadata": {}, "weight_map": {n: f for f, part in shards.items() for n in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    x = reference("llada")["input_ids"]
    with torch.no_grad():
        assert torch.equal(smkit.load_pretrained(folder)(x), smkit.load_pretrained(fixture("llada"))(x))


def test_a_tied_output_layer_is_the_input_embedding(tmp_path):
    """LLaDA's default weight_tying=true: no ff_out in the files, the logits come from the embedding matrix."""
    folder = copy_folder("llada", tmp_path / "tied")
    _config(folder, weight_tying=True)
    _drop_weight(folder, "model.transformer.ff_out.weight")
    tied = smkit.load_pretrained(folder)
    assert tied.backbone.lm_head.weight is tied.backbone.model.embed_tokens.weight
    untied = smkit.load_pretrained(fixture("llada"))
    with torch.no_grad():
        untied.backbone.lm_head.weight.copy_(untied.backbone.model.embed_tokens.weight)
        x = reference("llada")["input_ids"]
        assert torch.equal(tied(x), untied(x))
    shutil.copy(fixture("llada") / "model.safetensors", folder / "model.safetensors")   # ff_out back: one too many
    with pytest.raises(smkit.CheckpointError, match="not part of a LLaDA model of this config 1: "
                                                    "\\['model.transformer.ff_out.weight'\\]"):
        smkit.load_pretrained(folder)


def test_from_hf_takes_the_same_folders_and_options(tmp_path):
    model = smkit.from_hf(fixture("dream"), seq_len=32, dtype=torch.bfloat16, sm={"k": 2})
    assert model.config.seq_len == 32 and model.soft_mask.k == 2 and model.config.shift_logits
    assert model.embedding_weight.dtype == torch.bfloat16
    assert model.hf_source["native"] == "Dream" and model.hf_source["path"] == str(fixture("dream").resolve())
    with pytest.raises(smkit.DenoiserError, match="shift_logits=False.*Dream"):
        smkit.from_hf(fixture("dream"), shift_logits=False)
    with pytest.raises(smkit.DenoiserError, match="shift_logits=True.*LLaDA"):
        smkit.from_hf(fixture("llada"), shift_logits=True)


def test_a_saved_model_loads_back_the_same(models, tmp_path):
    model = models["dream"]
    loaded = smkit.load_pretrained(model.save_pretrained(tmp_path / "saved"))
    x = ids(model.tokenizer, TEXT, 16).unsqueeze(0)
    x[:, 5::3] = model.mask_id
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.mask_id == model.mask_id and loaded.config.shift_logits


# ------------------------------------------------------------------ everything smkit does

@pytest.mark.parametrize("kind", KINDS)
def test_soft_masking_with_the_users_settings(models, kind):
    model = models[kind]
    g = smkit.generate(model, prompt="to be", length=20, steps=6, soft_mask=True, sm=DREAM_SM, seed=1)
    assert g.texts[0].startswith("to be") and not (g.tokens == model.mask_id).any()
    assert (g.tokens < model.config.n_tokens).all()
    frame = g.trace.to_pandas().query("masked_before and step > 0")
    assert (frame["lam"] > 0).any() and (frame["lam"] <= DREAM_SM["scale"] + 1e-6).all()
    off = smkit.generate(model, prompt="to be", length=20, steps=6, soft_mask=False, seed=1)
    assert (off.trace.to_pandas()["lam"] == 0).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", sorted(smkit.STRATEGIES))
def test_every_unmasking_rule(models, kind, strategy):
    model = models[kind]
    g = smkit.generate(model, prompt="to be", length=16, steps=5, strategy=strategy, sm=DREAM_SM, seed=2)
    assert not (g.tokens == model.mask_id).any() and g.texts[0].startswith("to be")


@pytest.mark.parametrize("kind", KINDS)
def test_semi_autoregressive_blocks(models, kind):
    model = models[kind]
    P = len(model.tokenizer("to be", add_special_tokens=False)["input_ids"])
    g = smkit.generate(model, prompt="to be", length=P + 16, steps=8, block_length=4, sm=DREAM_SM, seed=3)
    assert g.prompt_length == P
    frame = g.trace.to_pandas()
    revealed = frame[frame["revealed"]].groupby("position")["step"].min()
    blocks = (revealed.index - P) // 4
    assert sorted(set(blocks)) == [0, 1, 2, 3]
    assert all(revealed[blocks == b].max() <= revealed[blocks == b + 1].min() for b in range(3)), \
        "each block is decoded before the next one starts"


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_and_the_trace_views(models, kind):
    from smkit.widgets.trace_view import sample_view

    model = models[kind]
    g = smkit.generate(model, prompt="to be", length=16, steps=4, sm=DREAM_SM, seed=4,
                       hooks={"lambda": lambda lam, state: torch.zeros_like(lam)})
    assert (g.trace.to_pandas()["lam"] == 0).all(), "the lambda hook silenced SM"
    g = smkit.generate(model, prompt="to be", length=16, steps=4, sm=DREAM_SM, seed=4)
    view = sample_view(g.trace, 0, model=model)
    assert view.labels[model.mask_id] == "[MASK]" and view.mask_id == MASK_ID[kind]
    early = g.trace.texts_at(0, mask_text="[MASK]")[0]
    assert early.startswith("to be") and "[MASK]" in early and MASK_TEXT[kind] not in early


@pytest.mark.parametrize("kind, method, targets, adapted", [
    ("llada", "lora", ["q_proj", "k_proj", "v_proj", "attn_out"], "self_attn.o_proj"),   # LLaDA's own names
    ("llada", "dora", ["ff_proj", "up_proj", "ff_out"], "mlp.down_proj"),
    ("dream", "dora", None, "self_attn.o_proj"),                                          # q, k, v, o by default
])
def test_finetune_with_adapters_on_their_projection_names(folders, tmp_path, kind, method, targets, adapted):
    model = smkit.load_pretrained(folders[kind])
    smkit.add_adapter(model, method=method, r=4, target_modules=targets)
    assert any(n.endswith(adapted + ".lora_A.default.weight") for n, _ in model.backbone.named_parameters())
    result = smkit.finetune(model, [("to be, or ", "not to be"), ("that is the ", "question")], steps=2,
                            batch_size=2, progress=False)
    assert len(result.history) >= 1 and result.history["loss"].notna().all()
    loaded = smkit.load_pretrained(model.save_pretrained(tmp_path / "adapter"))
    x = ids(model.tokenizer, TEXT, 16).unsqueeze(0)
    x[:, 4::2] = model.mask_id
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


# ------------------------------------------------------------------ tokenizers

def test_tokenizers_from_the_folder(models, folders):
    llada, dream = models["llada"], models["dream"]
    assert isinstance(llada.tokenizer, PreTrainedTokenizerFast)
    assert llada.tokenizer.mask_token == MASK_TEXT["llada"] and llada.tokenizer.mask_token_id == 126
    assert llada.config.n_tokens == 127 and llada.config.vocab_size == 128
    assert type(dream.tokenizer).__name__ == "Qwen2Tokenizer"
    assert dream.tokenizer.mask_token_id == 120 and dream.config.n_tokens == 122
    assert dream.tokenizer.decode(dream.tokenizer("to be, or not")["input_ids"]) == "to be, or not"
    logp = llada(torch.full((1, 8), llada.mask_id))
    assert torch.isneginf(logp[..., 126:]).all(), "neither the mask nor the unused row is ever predicted"


def test_a_given_tokenizer_wins_and_a_model_without_one_decodes_ids():
    tok = char_tokenizer("llada", declare_mask=True)
    model = smkit.from_hf(fixture("llada"), tokenizer=tok)
    assert model.tokenizer is tok
    bare = smkit.load_pretrained(fixture("llada"))
    assert bare.tokenizer is None and bare.config.n_tokens is None
    g = smkit.generate(bare, length=10, steps=3, seed=0)
    assert g.texts is None and not (g.tokens == bare.mask_id).any()


def test_a_tokenizer_whose_mask_disagrees_with_the_config(tmp_path):
    folder = copy_folder("dream", tmp_path / "dream")
    tok = char_tokenizer("dream")
    tok.mask_token = "<|endoftext|>"     # id 121, the config says 120
    tok.save_pretrained(str(folder))
    with pytest.raises(smkit.DenoiserError, match="mask token '<\\|endoftext\\|>' has id 121.*mask id is 120"):
        smkit.load_pretrained(folder)


# ------------------------------------------------------------------ bad folders: a clear error before compute

def _config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def _drop_weight(folder, name):
    weights = load_file(str(folder / "model.safetensors"))
    del weights[name]
    save_file(weights, str(folder / "model.safetensors"))


def _add_weight(folder, name):
    weights = load_file(str(folder / "model.safetensors"))
    weights[name] = torch.zeros(3)
    save_file(weights, str(folder / "model.safetensors"))


BAD = {
    "model_type": ("llada", lambda f: _config(f, model_type="llama"),
                   smkit.DenoiserError, r"model_type 'llama' is not one .*supported: \['Dream', 'llada'\]"),
    "setting": ("llada", lambda f: _config(f, block_type="sequential"),
                smkit.DenoiserError, r"block_type='sequential' \(supported: 'llama'\)"),
    "missing": ("llada", lambda f: _drop_weight(f, "model.transformer.blocks.1.up_proj.weight"),
                smkit.CheckpointError, r"missing 1: \['model.transformer.blocks.1.up_proj.weight'\]"),
    "extra": ("llada", lambda f: _add_weight(f, "model.transformer.blocks.0.q_norm.weight"),
              smkit.CheckpointError, r"not part of a LLaDA model of this config 1: "
                                     r"\['model.transformer.blocks.0.q_norm.weight'\]"),
    "layers": ("llada", lambda f: _config(f, n_layers=3),
               smkit.CheckpointError, r"missing 9: \['model.transformer.blocks.2.attn_norm.weight'"),
    "width": ("dream", lambda f: _config(f, intermediate_size=64),
              smkit.DenoiserError, r"disagree on sizes: .*model.layers.0.mlp.down_proj.weight: \(32, 48\) in the "
                                   r"weights, \(32, 64\) from config.json"),
    "shard": ("dream", lambda f: (f / "model-00002-of-00003.safetensors").unlink(),
              smkit.CheckpointError, r"names shard files that are not in .*\['model-00002-of-00003.safetensors'\]"),
    "mask": ("dream", lambda f: _config(f, mask_token_id=128),
             smkit.DenoiserError, r"mask id 128 \(config.json's mask_token_id\) is outside the vocabulary: the "
                                  r"model has 128 embedding rows"),
    "pickle": ("llada", lambda f: ((f / "model.safetensors").rename(f / "pytorch_model.bin")),
               smkit.CheckpointError, r"holds its weights as pickle \(\['pytorch_model.bin'\]\); smkit reads only "
                                      r"safetensors"),
    "heads": ("dream", lambda f: _config(f, num_attention_heads=5),
              smkit.DenoiserError, r"hidden_size=32, not divisible by num_attention_heads=5"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_folder_fails_before_any_weight_is_read(case, tmp_path, monkeypatch):
    import safetensors.torch

    kind, spoil, error, match = BAD[case]
    folder = copy_folder(kind, tmp_path / kind)
    spoil(folder)
    loads = []
    monkeypatch.setattr(safetensors.torch, "load_file", lambda *a, **k: loads.append(a) or {})
    with pytest.raises(error, match=match):
        load_native(folder)
    assert loads == [], "the error came before any weight was read"
    if case != "model_type":          # the entry points say the same
        with pytest.raises(error, match=match):
            smkit.load_pretrained(folder)


def test_a_mask_id_outside_the_vocabulary_given_by_the_user():
    with pytest.raises(smkit.DenoiserError, match=r"mask id 128 \(mask_id\) is outside the vocabulary"):
        smkit.from_hf(fixture("llada"), mask_id=128)


def test_load_pretrained_names_what_it_reads(tmp_path):
    folder = copy_folder("llada", tmp_path / "other")
    _config(folder, model_type="bert")
    with pytest.raises(smkit.CheckpointError, match=r"supported: \['Dream', 'llada'\].*smkit.from_hf"):
        smkit.load_pretrained(folder)


def test_code_shipped_in_a_folder_never_runs(tmp_path, monkeypatch):
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    marker = tmp_path / "ran.txt"
    folder = copy_folder("llada", tmp_path / "llada")
    code = f"open({str(marker)!r}, 'a').write('ran\\n')\n"
    for name in ("configuration_llada.py", "modeling_llada.py", "tokenization_llada.py", "__init__.py"):
        (folder / name).write_text(code)
    _config(folder, auto_map={"AutoConfig": "configuration_llada.LLaDAConfig",
                              "AutoModel": "modeling_llada.LLaDAModelLM",
                              "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"})
    char_tokenizer("llada").save_pretrained(str(folder))
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    tok_cfg.update(tokenizer_class="LLaDATokenizer",
                   auto_map={"AutoTokenizer": ["tokenization_llada.LLaDATokenizer", None]})
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no causal-attention warning either
        for model in (smkit.load_pretrained(folder), smkit.from_hf(folder, trust_remote_code=True)):
            assert type(model.backbone).__name__ == "LlamaForCausalLM" and model.tokenizer.mask_token_id == 126
    assert not marker.exists(), "no file of the folder was imported or executed"


# ------------------------------------------------------------------ the command line takes the same folders

def test_the_command_line_samples_and_converts_a_native_folder(tmp_path):
    from smkit.cli import main

    bare = copy_folder("dream", tmp_path / "dream")               # weights only, the tokenizer elsewhere
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    byte_bpe_tokenizer_files(tok_dir)
    out = tmp_path / "samples.jsonl"
    assert main(["sample", "--model", str(bare), "--tokenizer", str(tok_dir), "--out", str(out), "--prompt", "to be",
                 "--length", "12", "--steps", "3", "--trace-file", "none"]) == 0
    line = json.loads(out.read_text().splitlines()[0])
    assert line["text"].startswith("to be") and MASK_ID["dream"] not in line["tokens"]
    assert main(["convert", str(bare), str(tmp_path / "converted"), "--tokenizer", str(tok_dir)]) == 0
    converted = smkit.load_pretrained(tmp_path / "converted")
    x = torch.tensor([line["tokens"]])
    x[:, 4::2] = MASK_ID["dream"]
    with torch.no_grad():
        assert torch.equal(converted(x), smkit.load_pretrained(bare, tokenizer=str(tok_dir))(x))


def _stored_dtypes(folder) -> dict[str, set[str]]:
    """The dtypes a safetensors folder stores, from the headers: {"backbone": {...}, "soft_mask": {...}}."""
    import struct
    out = {"backbone": set(), "soft_mask": set()}
    for file in folder.glob("*.safetensors"):
        raw = file.read_bytes()
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        for name, info in header.items():
            if name != "__metadata__":
                out["soft_mask" if name.startswith("soft_mask.") else "backbone"].add(info["dtype"])
    return out


def _in_bf16(kind: str, dest):
    """The fixture folder with its weights stored in bf16, as LLaDA-8B and Dream-7B ship theirs."""
    folder = copy_folder(kind, dest)
    for file in folder.glob("*.safetensors"):
        save_file({k: v.to(torch.bfloat16) for k, v in load_file(str(file)).items()}, str(file))
    return folder


@pytest.mark.parametrize("kind", KINDS)
def test_convert_keeps_the_stored_dtype_unless_told(kind, tmp_path, capsys):
    """A bf16 folder converts to bf16 (not fp32, which doubles an 8B model to 30 GB) and loads back in bf16, taking
    the stored tensors as they are: the same logits as the folder itself; --dtype picks another."""
    from smkit.cli import main

    source = _in_bf16(kind, tmp_path / kind)
    assert main(["convert", str(source), str(tmp_path / "kept")]) == 0
    assert "weights in bfloat16" in capsys.readouterr().out
    assert _stored_dtypes(tmp_path / "kept") == {"backbone": {"BF16"}, "soft_mask": {"F32"}}
    kept, native = smkit.load_pretrained(tmp_path / "kept"), smkit.load_pretrained(source)
    assert {p.dtype for p in kept.backbone.parameters()} == {torch.bfloat16}
    assert not any(t.is_meta for t in [*kept.parameters(), *kept.buffers()])
    x = reference(kind)["input_ids"]
    with torch.no_grad():
        assert torch.equal(kept(x), native(x))
    for name, stored in (("float32", "F32"), ("float16", "F16"), ("bfloat16", "BF16")):
        assert main(["convert", str(fixture(kind)), str(tmp_path / name), "--dtype", name]) == 0
        assert _stored_dtypes(tmp_path / name) == {"backbone": {stored}, "soft_mask": {"F32"}}
    assert main(["convert", str(fixture(kind)), str(tmp_path / "fp32")]) == 0   # an fp32 folder stays fp32
    assert _stored_dtypes(tmp_path / "fp32")["backbone"] == {"F32"}
    with pytest.raises(SystemExit):
        main(["convert", str(fixture(kind)), str(tmp_path / "x"), "--dtype", "float64"])
    assert "invalid choice: 'float64'" in capsys.readouterr().err


def test_the_docs_show_the_committed_benchmark_figures(monkeypatch):
    root = fixture("llada").parents[2]
    monkeypatch.syspath_prepend(str(root / "benchmarks"))
    from bench_llada_dream import docs_table

    report = json.loads((root / "benchmarks" / "llada_dream.json").read_text())
    assert {r["name"].split("_ms")[0] for r in report["rows"]} >= {"llada_fp32", "llada_bf16", "dream_fp32",
                                                                   "dream_bf16"}
    assert docs_table(report) in (root / "docs" / "huggingface.md").read_text()
