"""Trace format 2: a step is stored as what it changed; every step comes back exactly (float32) or within the
stated float16 precision; files are written while decoding, opened lazily, and bad files, paths and
requests are clear TraceErrors. Tiny untrained models (tests/tiny_model.py)."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import smkit
from smkit import TraceError, TraceFile, TraceStepError
from smkit.core.trace import Trace
from tiny_model import tiny_char_model

TEXT = "the cat sat on the mat, the dog sat on the log. " * 3
FIXTURE = Path(__file__).parent / "fixtures" / "trace_v1" / "remdm.trace.safetensors"
FIELDS = ("t", "tokens", "masked_before", "revealed", "remasked", "fixed", "lam", "entropy", "topk_ids", "topk_probs")


@pytest.fixture(scope="module")
def model():
    return tiny_char_model(TEXT, 40, sm_centre=-2.5)


def _same(rec_a, rec_b, exact=True):
    for name in FIELDS:
        a, b = getattr(rec_a, name), getattr(rec_b, name)
        if name in ("lam", "entropy", "topk_probs", "t"):
            a, b = a.float(), b.float()
            assert torch.allclose(a, b, atol=0 if exact else 4e-3, rtol=0), name
        else:
            assert torch.equal(a.long() if a.dtype != torch.bool else a, b.long() if b.dtype != torch.bool else b), name
    for name in ("step", "block", "nfe"):                     # wall_time differs from run to run
        assert getattr(rec_a, name) == getattr(rec_b, name), name


SETTINGS = [dict(steps=40, strategy="confidence"),                                   # > one keyframe span
            dict(steps=12, strategy="remdm-loop", t_on=0.8, t_off=0.2, eta=0.1),    # remasks
            dict(steps=10, prompt="the c", block_length=7, soft_mask=False),        # fixed prompt, blocks
            dict(steps=8, infill="the [MASK][MASK][MASK] sat", length=24)]          # infill template


@pytest.mark.parametrize("kw", SETTINGS, ids=["keyframes", "remdm", "prompt-blocks", "infill"])
def test_every_step_comes_back_exactly(model, kw):
    recs = [r.cpu() for r in smkit.iter_steps(model, num_samples=3, seed=1, k_trace=3, **kw)]
    g = smkit.generate(model, num_samples=3, seed=1, k_trace=3, **kw)
    assert len(g.trace) == len(recs)
    for s in [*range(len(recs)), 5, 0, len(recs) - 1, 2]:        # in order, then jumping around
        _same(g.trace[s], recs[s])
    assert torch.equal(g.trace[-1].tokens, g.tokens)
    same_run = Trace.from_records(recs)
    assert [r.wall_time for r in same_run] == [r.wall_time for r in recs]
    if kw.get("strategy") == "remdm-loop":
        assert sum(int(r.remasked.sum()) for r in recs) > 0


def test_stats_kept_only_where_masked(model):
    g = smkit.generate(model, num_samples=2, length=40, steps=40, seed=0, k_trace=3)
    rows = sum(int(((r.tokens == r.mask_id) | r.masked_before).sum()) for r in g.trace)
    assert rows < 0.6 * 2 * 40 * 40            # about half of steps x positions, not all of them
    frames = [g.trace._store.frame(s)[0] for s in range(len(g.trace))]
    assert sum(len(f["lam"]) for f in frames) == rows
    assert all(f["topk_ids"].dtype == np.uint8 and f["ev_pos"].dtype == np.uint8 for f in frames)   # 40 ids, 80 slots
    assert sum(len(f["ev_pos"]) for f in frames) == 2 * 40                                            # one event a reveal


def test_streamed_file_equals_memory_and_decoding_is_unchanged(model, tmp_path):
    kw = dict(num_samples=2, length=40, steps=20, seed=4, k_trace=3, strategy="remdm-loop", t_on=0.8, t_off=0.2)
    mem = smkit.generate(model, **kw)
    plain = smkit.generate(model, trace=False, **kw)
    streamed = smkit.generate(model, trace=tmp_path / "run.trace", **kw)
    exact = smkit.generate(model, trace=TraceFile(tmp_path / "exact.trace", precision="float32"), **kw)
    assert torch.equal(mem.tokens, plain.tokens) and torch.equal(mem.tokens, streamed.tokens)
    assert streamed.trace.path == tmp_path / "run.trace" and streamed.trace.complete
    assert streamed.trace.precision == "float16" and exact.trace.precision == "float32"
    for s in range(len(mem.trace)):
        _same(streamed.trace[s], mem.trace[s], exact=False)
        a, b = exact.trace[s], mem.trace[s]
        for name in FIELDS:
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert streamed.trace.texts_at(-1) == mem.texts


def test_open_reads_only_the_steps_asked(model, tmp_path):
    g = smkit.generate(model, num_samples=2, length=40, steps=40, seed=2, k_trace=3, trace=tmp_path / "a.trace")
    tr = Trace.open(tmp_path / "a.trace")
    read = []
    frame = tr._store.frame
    tr._decoder.frame = lambda s: (read.append(s), frame(s))[1]
    tr.at(37)
    assert set(read) <= set(range(32, 38)) and 37 in read        # the keyframe at 32, then events to 37
    read.clear()
    tr.at(38)
    assert set(read) == {38}                                     # one step forward: one frame
    read.clear()
    df = tr.to_pandas(steps=[5], samples=[1], positions=range(10, 20))
    assert set(read) <= set(range(0, 6)) and len(df) == 10
    full = g.trace.to_pandas()
    want = full[(full["step"] == 5) & (full["sample"] == 1) & full["position"].between(10, 19)]
    assert df["token"].tolist() == want["token"].tolist()
    assert np.allclose(df["lam"], want["lam"], atol=2.5e-4) and df["revealed"].tolist() == want["revealed"].tolist()


@pytest.mark.parametrize("kw", [dict(steps=16), dict(steps=40, strategy="remdm-loop", t_on=0.8, t_off=0.2, eta=0.1,
                                                     prompt="the c")], ids=["confidence", "remdm-prompt"])
def test_sample_maps_match_the_steps(model, kw):
    g = smkit.generate(model, num_samples=3, length=40, seed=5, k_trace=3, **kw)
    maps = g.trace.sample_maps(2)
    for s in range(len(g.trace)):
        rec = g.trace[s]
        assert np.array_equal(maps["tokens"][s], rec.tokens[2].numpy())
        assert np.array_equal(maps["lam"][s], rec.lam[2].numpy())
        assert np.array_equal(maps["entropy"][s], rec.entropy[2].numpy())
        assert np.array_equal(maps["top1"][s], rec.topk_probs[2, :, 0].numpy())
        for name in ("masked_before", "revealed", "remasked", "fixed"):
            assert np.array_equal(maps[name][s], getattr(rec, name)[2].numpy()), name
        assert maps["t"][s] == rec.t[2] and maps["nfe"][s] == rec.nfe


def test_an_interrupted_decode_leaves_a_readable_trace(model, tmp_path):
    def stop_at_5(rec, state):
        if rec.step == 5:
            raise KeyboardInterrupt
    path = tmp_path / "cut.trace"
    with pytest.raises(KeyboardInterrupt):
        smkit.generate(model, length=40, steps=20, seed=0, trace=path, hooks={"step": stop_at_5})
    tr = Trace.open(path)
    assert len(tr) == 5 and not tr.complete and "KeyboardInterrupt" in tr.stopped and "stopped early" in repr(tr)
    full = smkit.generate(model, length=40, steps=20, seed=0)
    for s in range(5):
        _same(tr[s], full.trace[s], exact=False)


def test_a_killed_decode_opens_with_partial(model, tmp_path):
    path = tmp_path / "killed.trace"
    g = smkit.generate(model, num_samples=2, length=40, steps=10, seed=0, trace=path)
    frames = g.trace._store.file.offsets
    raw = path.read_bytes()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(raw[:frames[7] + 50])                   # steps 0..6 whole, step 7 cut inside
    with pytest.raises(TraceError, match=r"cut\.trace.*no index: it holds 7 whole steps.*partial=True"):
        Trace.open(cut)
    tr = Trace.open(cut, partial=True)
    assert len(tr) == 7 and not tr.complete
    for s in range(7):
        _same(tr[s], g.trace[s])


def test_format_1_files_still_load():
    from safetensors import safe_open
    tr = Trace.load(FIXTURE)
    with safe_open(str(FIXTURE), framework="pt") as f:
        raw = {k: f.get_tensor(k) for k in f.keys()}
    assert len(tr) == raw["step"].shape[0] == 6 and tr.num_samples == 2 and tr.length == 16
    for name in ("tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "topk_ids", "topk_probs", "t",
                 "fixed", "nfe", "wall_time"):
        assert torch.equal(getattr(tr, name).to(raw[name].dtype), raw[name]), name
    assert int(raw["remasked"].sum()) == 1
    assert tr.texts_at(0, mask_text="_").startswith("the") if isinstance(tr.texts_at(0), str) else \
        all(t.startswith("the") for t in tr.texts_at(0, mask_text="_"))
    assert Trace.open(FIXTURE).texts_at(-1) == tr.texts_at(-1)


# ------------------------------------------------------------------ bad input

def test_bad_files_are_trace_errors_naming_the_file(model, tmp_path):
    g = smkit.generate(model, length=40, steps=6, seed=0)
    good = g.trace.save(tmp_path / "good.trace")
    raw = good.read_bytes()
    cases = {"empty.trace": (b"", "too short"),
             "head.trace": (raw[:40], "ends inside its head"),
             "newer.trace": (raw[:12] + struct.pack("<I", 3) + raw[16:], "format 3.*newer smkit"),
             "text.trace": (b"hello, this is not a trace file at all", "not an smkit trace file"),
             "v1cut.trace": (FIXTURE.read_bytes()[:300], "cut short or damaged"),
             "v1empty.trace": (FIXTURE.read_bytes()[:5], "not an smkit trace file|too short")}
    for name, (data, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for read in (Trace.open, Trace.load):
            with pytest.raises(TraceError, match=f"{name}.*({words})|({words}).*{name}"):
                read(path)
    with pytest.raises(TraceError, match="missing.trace"):
        Trace.open(tmp_path / "missing.trace")


def test_step_and_sample_out_of_range(model):
    tr = smkit.generate(model, num_samples=2, length=40, steps=6, seed=0).trace
    n = len(tr)
    for bad in (n, -n - 1, 100):
        with pytest.raises(TraceStepError, match=f"step {bad} out of range for a trace of {n} steps"):
            tr[bad]
        with pytest.raises(IndexError):
            tr.at(bad)
    with pytest.raises(TraceError, match="sample 2: this trace holds samples 0..1"):
        tr.sample_maps(2)
    with pytest.raises(TraceError, match="position 40"):
        tr.to_pandas(steps=0, positions=[40])
    with pytest.raises(TraceError, match="integer step"):
        tr["last"]


class _Forwards:
    """Counts the model's forward passes (a torch forward pre-hook)."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.register_forward_pre_hook(lambda *a: setattr(self, "n", self.n + 1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_trace_paths_are_checked_before_any_forward_pass(model, tmp_path):
    existing = tmp_path / "kept.trace"
    existing.write_bytes(b"precious")
    bad = {existing: "a file is already there; pass overwrite=True",
           tmp_path / "no" / "such" / "run.trace": "the folder .* does not exist",
           tmp_path: "is a folder",
           Path("/proc/smkit-cannot-write.trace"): "cannot write the trace file '/proc/smkit-cannot-write.trace'"}
    for path, words in bad.items():
        with _Forwards(model) as fw, pytest.raises(TraceError, match=words):
            smkit.generate(model, length=40, steps=4, trace=path)
        assert fw.n == 0, path
    assert existing.read_bytes() == b"precious"
    g = smkit.generate(model, length=40, steps=4, trace=TraceFile(existing, overwrite=True))
    assert Trace.open(existing).texts_at(-1) == g.texts
    with pytest.raises(smkit.ConfigError, match="trace=3"):
        smkit.generate(model, length=40, steps=4, trace=3)
    with pytest.raises(smkit.ConfigError, match="precision='float8'"):
        TraceFile(tmp_path / "x.trace", precision="float8")


def test_save_never_overwrites_unless_asked_and_names_the_path(model, tmp_path):
    tr = smkit.generate(model, length=40, steps=4, seed=0).trace
    path = tr.save(tmp_path / "a.trace")
    before = path.read_bytes()
    with pytest.raises(TraceError, match="a.trace.*already there"):
        tr.save(path)
    assert path.read_bytes() == before
    tr.save(path, overwrite=True, precision="float32")
    assert Trace.open(path).precision == "float32"
    for target in (Path("/proc/smkit.trace"), tmp_path / "gone" / "a.trace"):
        with pytest.raises(TraceError, match=str(target).replace(".", r"\.")):
            tr.save(target)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_trace_of_another_model(model, tmp_path):
    tr = smkit.generate(model, length=40, steps=4, seed=0, trace=tmp_path / "a.trace").trace
    tr.check_model(model)
    other = tiny_char_model("abcdefgh " * 10, 40, sm_centre=-2.0)
    with pytest.raises(TraceError, match="another model.*(vocabulary|MASK|tokenizer)"):
        tr.check_model(other)
