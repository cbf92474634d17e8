"""The shipped models: they load offline, fit the size cap, carry their training records and beat chance."""
import json
import math

import pandas as pd
import pytest

import smkit
from smkit import tasks
from smkit.io.data import load_corpus, pack_blocks, split_documents
from smkit.io.model_files import DEFAULT_PRETRAINED, PRETRAINED, PRETRAINED_DIR

TWINS = [("python-sm", "python-binary"), ("shakespeare-sm", "shakespeare-binary")]


def _meta(name):
    return json.loads((PRETRAINED_DIR / name / "smkit.json").read_text())


def test_default_is_a_shipped_sm_model():
    m = smkit.load_pretrained()
    assert DEFAULT_PRETRAINED in PRETRAINED and DEFAULT_PRETRAINED.endswith("-sm")
    assert m.tokenizer is not None and m.mask_id == m.tokenizer.mask_token_id == m.config.vocab_size - 1
    meta = _meta(DEFAULT_PRETRAINED)
    assert meta["train_config"]["soft_mask"] is True and "smkit train --config" in meta["reproduce"]


def test_shipped_models_fit_the_size_cap_and_carry_records():
    total = 0
    for name in PRETRAINED:
        folder = PRETRAINED_DIR / name
        names = {f.name for f in folder.iterdir()}
        assert {"smkit.json", "model.safetensors", "tokenizer.json", "metrics.csv", "train_config.yaml",
                "base_config.yaml", "base_metrics.csv"} <= names, name
        size = sum(f.stat().st_size for f in folder.iterdir())
        assert size < (5 if name.startswith("sudoku") else 12) * 2**20, name
        total += size
    assert total < 50 * 2**20
    assert sorted(p.name for p in PRETRAINED_DIR.iterdir() if p.is_dir()) == sorted(PRETRAINED)  # nothing stale


@pytest.mark.parametrize("sm, binary", TWINS)
def test_twins_continue_one_base_for_the_same_updates(sm, binary):
    a, b = _meta(sm), _meta(binary)
    assert a["train_config"]["soft_mask"] and not b["train_config"]["soft_mask"]
    for key in ("corpus", "steps", "seq_len", "hidden_size", "num_layers", "seed", "lr"):
        assert a["train_config"][key] == b["train_config"][key], key
    assert a["base"] == b["base"] and len(a["base"]["sha256"]) == 64   # one base ...
    assert [s["updates"] for s in a["stages"]] == [s["updates"] for s in b["stages"]]  # ... the same updates since
    for meta, name in ((a, sm), (b, binary)):
        curve = pd.read_csv(PRETRAINED_DIR / name / "metrics.csv")
        assert curve.step.is_monotonic_increasing and curve.step.iloc[-1] == sum(s["updates"] for s in meta["stages"])
        files = {f.name for f in (PRETRAINED_DIR / name).iterdir()}
        assert {f"continue_config_{i}.yaml" for i in range(1, len(meta["stages"]))} <= files


@pytest.mark.parametrize("name", [n for pair in TWINS for n in pair])
def test_shipped_text_models_beat_the_uniform_bound(name):
    m = smkit.load_pretrained(name)
    _, held_out = split_documents(load_corpus(m.train_config["corpus"]))
    val = pack_blocks(held_out[:8], m.tokenizer, m.config.seq_len)[:32]  # documents training never saw
    bound = m.validation_bound(val, soft_mask=name.endswith("-sm"))
    assert bound < math.log(m.config.vocab_size - 1) - 1.5  # well over a nat per token better than chance


@pytest.mark.parametrize("name", ["sudoku-sm", "sudoku-binary"])
def test_shipped_sudoku_solvers_solve_easy_puzzles(name):
    m = smkit.load_pretrained(name)
    assert tasks.for_model(m).spec == {"name": "sudoku", "params": {"givens": 72}}
    easy = tasks.evaluate(m, tasks.get("sudoku", givens=76), n=32, strategy="confidence",
                          soft_mask=name.endswith("-sm"), seed=0)
    assert easy.ci_low > 0.2  # most 5-blank puzzles solved; an untrained model solves none
