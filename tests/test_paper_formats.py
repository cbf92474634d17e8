"""The paper's model files (fixtures/paper_formats, made by the paper's own code): exact parity of the DiT and the
soft-masking head with the reference outputs, EMA choice, conversion to an smkit folder, tokenizers, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import smkit
from smkit.core.errors import CheckpointError, DataError, SmkitError
from smkit.io import safe_pickle
from smkit.io.paper_formats import load_paper_model, paper_tokenizer, read_lightning_checkpoint
from smkit.models.dit import DiT

FIXTURE = Path(__file__).parent / "fixtures" / "paper_formats"
CKPT, HF = FIXTURE / "sm.ckpt", FIXTURE / "mdlm-hf"
EXPECTED = load_file(str(FIXTURE / "expected.safetensors"))
HEAD = json.loads((FIXTURE / "expected.json").read_text())
TOL, FLOOR = 1e-4, -1e5       # the reference writes -1e6 where smkit writes -inf: compare above the floor


def gap(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest |difference| where either side is above FLOOR (a position only one side rules out counts fully)."""
    keep = (ours > FLOOR) | (ref > FLOOR)
    assert keep.any()
    return (ours[keep] - ref[keep]).abs().max().item()


def passes(model, xt):
    with torch.no_grad():
        first = model(xt)
        return first, model(xt, inputs_embeds=model.soft_embeddings(xt, first))


@pytest.mark.parametrize("ema, name", [(False, "raw"), (True, "ema"), (None, "ema")])
def test_lightning_checkpoint_matches_the_papers_outputs(ema, name):
    model = smkit.load_pretrained(CKPT, ema=ema)
    assert isinstance(model.backbone, DiT) and model.source["weights"] == name
    first, second = passes(model, EXPECTED["xt"])
    assert gap(first, EXPECTED[f"{name}_first"]) < TOL
    assert gap(second, EXPECTED[f"{name}_second"]) < TOL


def test_soft_mask_values_are_the_checkpoints():
    model = load_paper_model(CKPT)
    values = model.soft_mask.values()
    assert values["k"] == HEAD["soft_mask"]["k"] == 3 and model.mask_id == HEAD["mask_id"]
    for key in ("scale", "centre", "steepness"):
        assert abs(values[key] - HEAD["soft_mask"][key]) < 1e-6, key


def test_mdlm_hf_folder_matches_the_raw_weights():
    model = smkit.load_pretrained(HF)
    assert model.source["format"] == "mdlm-hf" and model.source["soft_mask"].startswith("smkit default")
    first, _ = passes(model, EXPECTED["xt"])
    assert gap(first, EXPECTED["raw_first"]) < TOL
    # the folder holds no head: with the checkpoint's head the soft-masked pass is the reference's too
    model.soft_mask.load_state_dict(load_paper_model(CKPT).soft_mask.state_dict())
    _, second = passes(model, EXPECTED["xt"])
    assert gap(second, EXPECTED["raw_second"]) < TOL


def test_converted_model_loads_the_same_and_says_where_it_came_from(tmp_path):
    model = smkit.load_pretrained(CKPT)
    smkit.save_pretrained(model, tmp_path / "converted")
    back = smkit.load_pretrained(tmp_path / "converted")
    assert back.source["weights"] == "ema" and back.source["path"] == str(CKPT)
    first, second = passes(back, EXPECTED["xt"])
    assert gap(first, EXPECTED["ema_first"]) < TOL and gap(second, EXPECTED["ema_second"]) < TOL


def test_the_source_names_what_was_not_loaded():
    source = load_paper_model(CKPT, ema=False).source
    assert source["ema_available"] and source["weights"] == "raw" and source["global_step"] == 1234
    assert source["placeholders"] == ["hyper_parameters.tokenizer: "
                                      "transformers.models.gpt2.tokenization_gpt2_fast.GPT2TokenizerFast"]
    assert source["trained_tokenizer"] == "GPT2TokenizerFast (gpt2)"


# ---------------------------------------------------------------- variants of the checkpoint, written here


def checkpoint_parts() -> dict:
    data = safe_pickle.load(CKPT).data
    return {"state_dict": safe_pickle.materialize(data["state_dict"]),
            "ema": safe_pickle.materialize(data["ema"]),
            "hyper_parameters": {"config": data["hyper_parameters"]["config"]}, "global_step": 7}


def write(tmp_path, parts, name="v.ckpt") -> Path:
    torch.save(parts, tmp_path / name)
    return tmp_path / name


def test_binary_checkpoint_gets_the_default_soft_mask(tmp_path):
    parts = checkpoint_parts()
    parts["state_dict"] = {k: v for k, v in parts["state_dict"].items() if not k.startswith("tran_head.")}
    model = load_paper_model(write(tmp_path, parts))
    assert model.soft_mask.values() == smkit.DiffusionLM(model.config, DiT(model.backbone.config)).soft_mask.values()
    assert model.source["soft_mask"].startswith("smkit default")
    first, _ = passes(model, EXPECTED["xt"])
    assert gap(first, EXPECTED["ema_first"]) < TOL


def test_k_comes_from_the_runs_config(tmp_path):
    parts = checkpoint_parts()
    parts["hyper_parameters"]["config"]["algo"]["tran_head"] = {"mixinputs_k": 1}
    assert load_paper_model(write(tmp_path, parts)).soft_mask.k == 1


def test_without_a_config_the_shape_comes_from_the_tensors(tmp_path):
    parts = checkpoint_parts()
    del parts["hyper_parameters"]
    model = load_paper_model(write(tmp_path, parts))
    assert model.source["config"] == "inferred from tensor shapes" and model.backbone.config.num_heads == 4
    first, second = passes(model, EXPECTED["xt"])
    assert gap(first, EXPECTED["ema_first"]) < TOL and gap(second, EXPECTED["ema_second"]) < TOL


# ---------------------------------------------------------------- bad input: clear errors, before any compute


def test_not_a_lightning_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint.*state_dict"):
        load_paper_model(write(tmp_path, {"weights": torch.ones(2)}))
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        smkit.load_pretrained(text)


def test_truncated_checkpoint(tmp_path):
    data = CKPT.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(CheckpointError, match="truncated"):
        smkit.load_pretrained(tmp_path / "cut.ckpt")


def test_evil_checkpoint_is_refused_by_load_pretrained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(safe_pickle.UnsafePickleError, match="allow-list"):
        smkit.load_pretrained(FIXTURE / "evil.ckpt")
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_missing_and_extra_keys_are_named(tmp_path):
    parts = checkpoint_parts()
    del parts["state_dict"]["backbone.blocks.1.mlp.2.bias"]
    parts["state_dict"]["backbone.blocks.0.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"missing \['blocks.1.mlp.2.bias'\], unexpected \['blocks.0.extra"):
        load_paper_model(write(tmp_path, parts))
    parts = checkpoint_parts()
    parts["state_dict"]["metrics.total"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="metrics.total"):
        load_paper_model(write(tmp_path, parts))
    parts = checkpoint_parts()
    del parts["state_dict"]["tran_head.raw_steep"]
    with pytest.raises(CheckpointError, match=r"missing keys \['raw_steep'\]"):
        load_paper_model(write(tmp_path, parts))


def test_shapes_that_disagree_with_the_config(tmp_path):
    parts = checkpoint_parts()
    parts["hyper_parameters"]["config"]["model"]["hidden_size"] = 128
    with pytest.raises(CheckpointError, match="hidden_size=128, the weights have 96"):
        load_paper_model(write(tmp_path, parts))
    parts = checkpoint_parts()
    parts["state_dict"]["backbone.blocks.1.mlp.0.weight"] = torch.zeros(383, 96)
    with pytest.raises(CheckpointError, match=r"blocks.1.mlp.0.weight has shape \(383, 96\)"):
        load_paper_model(write(tmp_path, parts))
    parts = checkpoint_parts()
    parts["ema"]["shadow_params"] = parts["ema"]["shadow_params"][:-1]
    with pytest.raises(CheckpointError, match="29 tensors.*30 parameters"):
        load_paper_model(write(tmp_path, parts))


def test_ema_true_without_ema(tmp_path):
    parts = checkpoint_parts()
    del parts["ema"]
    path = write(tmp_path, parts)
    with pytest.raises(CheckpointError, match="ema=True but .* holds no EMA"):
        smkit.load_pretrained(path, ema=True)
    assert smkit.load_pretrained(path).source["weights"] == "raw"
    with pytest.raises(CheckpointError, match="ema=True"):
        smkit.load_pretrained(HF, ema=True)
    with pytest.raises(CheckpointError, match="ema='yes'"):
        smkit.load_pretrained(CKPT, ema="yes")


def test_a_causal_or_non_subs_run_is_refused(tmp_path):
    parts = checkpoint_parts()
    parts["hyper_parameters"]["config"]["algo"]["causal_attention"] = True
    with pytest.raises(CheckpointError, match="causal"):
        load_paper_model(write(tmp_path, parts))


def test_hf_folder_of_another_model_type(tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(HF, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert'"):
        load_paper_model(folder)
    (folder / "config.json").write_text(json.dumps({**config, "n_heads": 3}))
    with pytest.raises(CheckpointError, match="head width"):
        load_paper_model(folder)
    (folder / "config.json").write_text(json.dumps({**config, "n_blocks": 3}))
    with pytest.raises(CheckpointError, match="missing"):
        load_paper_model(folder)


# ---------------------------------------------------------------- tokenizers


def byte_level_bpe(size: int):
    """A GPT-2-style byte-level BPE tokenizer of `size` ids, trained here (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun"] * 50
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, trainer)
    assert tok.get_vocab_size() == size
    return tok


def test_tokenizer_gets_mask_appended_and_decodes_it_as_mask(tmp_path):
    tok = byte_level_bpe(299)
    tok.save(str(tmp_path / "tokenizer.json"))
    model = smkit.load_pretrained(CKPT, tokenizer=tmp_path)
    assert len(model.tokenizer) == 300 and model.tokenizer.mask_token_id == 299
    ids = model.tokenizer("the lazy fox", add_special_tokens=False)["input_ids"]
    assert model.tokenizer.decode(ids + [299]) == "the lazy fox[MASK]"


def test_tokenizer_from_gpt2_style_files_and_objects(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok = byte_level_bpe(299)
    tok.model.save(str(tmp_path))                      # vocab.json + merges.txt, as GPT-2 ships them
    from_files = paper_tokenizer(tmp_path, 300)
    pad_last = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(299))
    pad_last.add_special_tokens({"pad_token": "[PAD]"})   # MDLM's GPT-2: 300 ids, id 299 called [PAD]
    from_object = paper_tokenizer(pad_last, 300)
    for t in (from_files, from_object):
        assert t.convert_ids_to_tokens(299) == "[MASK]" and len(t) == 300
        assert t("the lazy dog sleeps", add_special_tokens=False)["input_ids"] == tok.encode("the lazy dog sleeps").ids
        assert t.decode(t("over the dog", add_special_tokens=False)["input_ids"]) == "over the dog"


def test_tokenizer_that_does_not_fit_the_model(tmp_path):
    with pytest.raises(DataError, match="270 ids; this model's vocabulary has 300"):
        smkit.load_pretrained(CKPT, tokenizer=byte_level_bpe(270))
    with pytest.raises(DataError, match="ordinary token"):
        paper_tokenizer(byte_level_bpe(300), 300)
    with pytest.raises(DataError, match="tokenizer.json or vocab.json"):
        paper_tokenizer(tmp_path, 300)
    with pytest.raises(DataError, match="fast tokenizer"):
        paper_tokenizer(42, 300)
    assert issubclass(DataError, SmkitError)


def test_without_a_tokenizer_ids_stay_ids():
    model = load_paper_model(CKPT)
    assert model.tokenizer is None


def test_reader_reads_only_what_it_needs():
    found = read_lightning_checkpoint(CKPT, ema=True)
    assert set(found.head) == {"raw_scale", "raw_centre", "raw_steepness"}
    assert "vocab_embed.weight" in found.weights and "rotary_emb.inv_freq" not in found.weights


def test_cli_convert_writes_an_smkit_folder(tmp_path, capsys, monkeypatch):
    from smkit.cli import main

    assert main(["convert", str(CKPT), str(tmp_path / "out"), "--ema", "false"]) == 0
    assert "raw weights" in capsys.readouterr().out
    back = smkit.load_pretrained(tmp_path / "out")
    first, _ = passes(back, EXPECTED["xt"])
    assert back.source["weights"] == "raw" and gap(first, EXPECTED["raw_first"]) < TOL
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["convert", str(FIXTURE / "evil.ckpt"), str(tmp_path / "evil")]) == 2
    assert "allow-list" in capsys.readouterr().err
    assert not (tmp_path / "cwd" / "pwned-by-checkpoint").exists() and not (tmp_path / "evil").exists()


def test_a_paper_checkpoint_is_a_base_for_continued_pretraining(tmp_path):
    from transformers import PreTrainedTokenizerFast

    from smkit.training.continued import load_base
    from smkit.training.train import TrainConfig

    PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(299)).save_pretrained(str(tmp_path / "tok"))
    shape = dict(backbone="dit", hidden_size=96, num_layers=2, num_heads=4, intermediate_size=384, cond_dim=64)
    cfg = TrainConfig(init_from=str(CKPT), tokenizer=str(tmp_path / "tok"), vocab_size=300, seq_len=64, **shape)
    base = load_base(cfg.validate())
    assert base.model.source["weights"] == "ema" and base.model.tokenizer.convert_ids_to_tokens(299) == "[MASK]"
    assert abs(base.model.soft_mask.values()["scale"] - HEAD["soft_mask"]["scale"]) < 1e-6
    with pytest.raises(smkit.SmkitError, match="cond_dim=128 but the base has 64"):
        load_base(TrainConfig(init_from=str(CKPT), tokenizer=str(tmp_path / "tok"), vocab_size=300, seq_len=64,
                              **{**shape, "cond_dim": 128}).validate())
    with pytest.raises(smkit.SmkitError, match="carries no tokenizer"):
        load_base(TrainConfig(init_from=str(CKPT), vocab_size=300, seq_len=64, **shape).validate())


def test_text_without_a_tokenizer_names_the_argument():
    model = load_paper_model(CKPT)
    with pytest.raises(smkit.SmkitError, match=r"tokenizer=<a tokenizer object or a folder holding tokenizer.json>"):
        smkit.generate(model, prompt="hello", length=16, steps=2)
    g = smkit.generate(model, prompt=[5, 6], length=16, steps=2)
    assert g.texts is None and g.tokens.shape == (1, 16) and g.tokens[0, :2].tolist() == [5, 6]


def test_readme_paper_table_is_the_committed_benchmark():
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    from bench_paper_dit import docs_table

    report = json.loads((root / "benchmarks" / "paper_dit.json").read_text())
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- table:paper-dit -->\n", 1)[1].split("\n<!-- /table:paper-dit -->", 1)[0]
    assert block == docs_table(report), "rewrite the README's paper-dit table from benchmarks/paper_dit.json"
    names = {r["name"] for r in report["rows"]}
    assert {"dit_forward_b1_fp32", "dit_forward_b4_bf16", "subs_over_log_softmax", "dit_decode_over_forwards",
            "dit_traced_over_untraced"} <= names
