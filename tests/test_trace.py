"""StepRecord and Trace: names, shapes, indexing, pandas export, portable files."""
import dataclasses
import json
import struct

import numpy as np
import pytest
import torch

import smkit
from smkit.core.trace import StepRecord, Trace
from conftest_sampling import trained_lm  # noqa: F401  (fixture)

FIELDS = ["step", "block", "t", "tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "topk_ids",
          "topk_probs", "nfe", "wall_time", "fixed", "mask_id", "cached"]


@pytest.fixture(scope="module")
def gen(trained_lm):
    return smkit.generate(trained_lm, prompt="to", num_samples=3, length=20, steps=6, k_trace=4, seed=1)


def test_step_record_names_and_shapes(gen):
    assert [f.name for f in dataclasses.fields(StepRecord)] == FIELDS
    B, L, k = 3, 20, 4
    rec = gen.trace[0]
    assert rec.t.shape == (B,)
    for name in ("tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "fixed"):
        assert getattr(rec, name).shape == (B, L), name
    for name in ("masked_before", "revealed", "remasked", "fixed"):
        assert getattr(rec, name).dtype == torch.bool
    assert rec.topk_ids.shape == rec.topk_probs.shape == (B, L, k)
    assert isinstance(rec.nfe, int) and isinstance(rec.wall_time, float) and rec.step == 0
    assert (rec.topk_probs[..., :-1] >= rec.topk_probs[..., 1:]).all()
    assert torch.equal(rec.masked, rec.tokens == rec.mask_id)


def test_trace_stacks_steps(gen):
    tr = gen.trace
    S = len(tr)
    assert S == gen.steps == 6
    assert tr.tokens.shape == (S, 3, 20) and tr.topk_ids.shape == (S, 3, 20, 4) and tr.nfe.shape == (S,)
    assert tr.t.shape == (S, 3) and tr.t[0, 0] == 1.0
    assert torch.equal(tr[-1].tokens.long(), gen.tokens)
    assert torch.equal(tr[2].lam, tr.lam[2]) and tr[2].step == 2
    assert [r.step for r in tr] == list(range(S))
    assert (tr.wall_time.diff() >= 0).all() and (tr.nfe.diff() >= 0).all()
    with pytest.raises(IndexError):
        tr[S]


def test_trace_docstring_states_memory():
    assert "sum over steps of the masked positions" in smkit.core.trace.__doc__


def _stat_rows(trace) -> int:
    """Positions masked before or after a step, over the steps: where a trace keeps statistics."""
    return int(sum(((r.tokens == r.mask_id) | r.masked_before).sum() for r in trace))


def test_memory_grows_with_k_trace_at_masked_positions_only(trained_lm):
    small = smkit.generate(trained_lm, length=20, steps=4, k_trace=1).trace
    big = smkit.generate(trained_lm, length=20, steps=4, k_trace=8).trace
    ids = np.dtype(small.layout.ids).itemsize
    assert big.nbytes() - small.nbytes() == _stat_rows(big) * 7 * (ids + 4)   # float32 in memory
    assert _stat_rows(big) < 4 * 20       # fewer rows than steps x positions: only the masked ones


def test_to_pandas_rows_and_columns(gen):
    df = gen.trace.to_pandas()
    S, B, L = gen.trace.tokens.shape
    assert len(df) == S * B * L
    for col in ("sample", "step", "position", "token", "masked", "lam", "entropy", "topk_ids", "topk_probs",
                "revealed", "remasked", "t", "fixed"):
        assert col in df.columns, col
    row = df[(df["sample"] == 2) & (df["step"] == 3) & (df["position"] == 7)].iloc[0]
    tr = gen.trace
    assert row.token == tr.tokens[3, 2, 7] and row.lam == pytest.approx(float(tr.lam[3, 2, 7]))
    assert bool(row.masked) == bool(tr.tokens[3, 2, 7] == tr.meta["mask_id"])
    assert row.revealed == bool(tr.revealed[3, 2, 7]) and row.t == pytest.approx(float(tr.t[3, 2]))
    assert np.array_equal(row.topk_ids, tr.topk_ids[3, 2, 7].numpy())
    assert df.groupby(["sample", "step"]).size().eq(L).all()


def test_save_and_load_round_trip(gen, tmp_path):
    path = gen.trace.save(tmp_path / "run.trace", precision="float32")
    raw = path.read_bytes()
    assert raw.startswith(b"smkit-trace\x00") and struct.unpack("<I", raw[12:16])[0] == 2
    n = struct.unpack("<Q", raw[16:24])[0]       # the head frame: one safetensors buffer, no pickle
    h = struct.unpack("<Q", raw[24:32])[0]
    header = json.loads(raw[32:32 + h])
    assert json.loads(header["__metadata__"]["smkit"])["kind"] == "head" and n > h and b"\x80\x04" not in raw[:64]
    for back in (Trace.load(path), Trace.open(path)):
        assert len(back) == len(gen.trace) and back.meta == gen.trace.meta
        for name in ("tokens", "lam", "entropy", "topk_ids", "topk_probs", "revealed", "nfe", "wall_time", "t"):
            assert torch.equal(getattr(back, name), getattr(gen.trace, name)), name
        assert back.texts_at(-1) == gen.texts
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_float16_files_keep_what_the_module_promises(gen, tmp_path):
    back = Trace.open(gen.trace.save(tmp_path / "half.trace"))
    assert back.precision == "float16"
    for name in ("tokens", "topk_ids", "revealed", "remasked", "masked_before", "fixed", "nfe", "t"):
        assert torch.equal(getattr(back, name), getattr(gen.trace, name)), name
    assert (back.lam - gen.trace.lam).abs().max() <= 2.5e-4
    assert (back.topk_probs - gen.trace.topk_probs).abs().max() <= 2.5e-4
    H = gen.trace.entropy
    assert ((back.entropy - H).abs() <= torch.where(H < 4, 1e-3, 4e-3)).all()


def test_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an smkit trace"):
        Trace.load(tmp_path / "other.safetensors")


def test_texts_at(gen, trained_lm):
    tr = gen.trace
    first = tr.texts_at(0, mask_text="_")
    assert all(t.startswith("to") and "_" in t and len(t) == 20 for t in first)
    assert tr.texts_at(len(tr) - 1) == gen.texts
    assert "[MASK]" in tr.texts_at(0)[0]
    bare = Trace(tr._store)
    with pytest.raises(ValueError, match="tokenizer"):
        bare.texts_at(0)
    assert bare.texts_at(0, tokenizer=trained_lm.tokenizer) == tr.texts_at(0)


def test_trace_meta_records_settings(gen):
    meta = gen.trace.meta
    assert meta["config"]["strategy"] == "confidence" and meta["config"]["steps"] == 6
    assert meta["prompt_length"] == 2 and meta["sm"]["k"] == 3 and meta["sm"]["scale"] == pytest.approx(0.5)
    json.dumps(meta)
