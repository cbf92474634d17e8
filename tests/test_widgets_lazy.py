"""The widgets on a lazy trace (Trace.open): the same views as from memory, each slider move reading one step
of the file, and a model that did not make the trace refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import smkit
from smkit import Trace, TraceError

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

from smkit.widgets import TraceExplorer, compare  # noqa: E402
from tiny_model import tiny_char_model  # noqa: E402

TEXT = "a lazy trace is read one step at a time, the explorer never holds it whole. " * 3
L, S = 48, 40


@pytest.fixture(scope="module")
def model():
    return tiny_char_model(TEXT, L, sm_centre=-3.0)


@pytest.fixture(scope="module")
def streamed(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("lazy") / "run.trace"
    g = smkit.generate(model, num_samples=2, length=L, steps=S, seed=0, trace=path)
    return g, path


def _reads(trace) -> list:
    """Record the steps whose frame the trace reads from now on."""
    seen, frame = [], trace._store.frame
    trace._decoder.frame = lambda s: (seen.append(s), frame(s))[1]
    return seen


def test_an_opened_file_shows_what_memory_shows(model, streamed):
    g, path = streamed
    mem = smkit.generate(model, num_samples=2, length=L, steps=S, seed=0, trace=smkit.TraceFile(
        path.with_name("exact.trace"), precision="float32"))
    lazy = TraceExplorer(Trace.open(path.with_name("exact.trace")), model=model, sample=1, step=0)
    held = TraceExplorer(Trace.load(path.with_name("exact.trace")), model=model, sample=1, step=0)
    for s in (0, 7, 33, S - 1, 3):
        lazy.step = held.step = s
        for name in ("labels", "colours", "states", "tips", "title"):
            assert getattr(lazy.strip, name) == getattr(held.strip, name), (s, name)
    assert np.array_equal(np.asarray(lazy.views.heatmaps.data[0].z), np.asarray(held.views.heatmaps.data[0].z),
                          equal_nan=True)
    assert mem.trace.texts_at(-1) == g.trace.texts_at(-1)


def test_building_and_scrubbing_read_one_step_at_a_time(model, streamed):
    _, path = streamed
    tr = Trace.open(path)
    seen = _reads(tr)
    ex = TraceExplorer(tr, model=model, step=10)
    assert max(seen.count(s) for s in set(seen)) <= 3      # the sample's maps: each frame once, plus the step shown
    seen.clear()
    ex.step = 11
    assert set(seen) <= {11}                                # one step forward: that step's frame only
    seen.clear()
    ex.position = 5
    assert seen == []                                       # a position: the maps already read
    seen.clear()
    ex.sample = 1                                           # another sample: its own maps, once
    assert max(seen.count(s) for s in set(seen)) <= 3


def test_compare_takes_two_opened_files(model, streamed, tmp_path):
    _, path = streamed
    other = smkit.generate(model, num_samples=1, length=L, steps=12, seed=1, soft_mask=False,
                           trace=tmp_path / "binary.trace").trace
    cmp = compare(other, Trace.open(path), model=model, names=("binary", "SM"), step=20)
    assert cmp.steps_shown() == [11, 20]


def test_a_trace_of_another_model_is_refused(model, streamed):
    _, path = streamed
    other = tiny_char_model("xyz, the other model's letters " * 3, L, sm_centre=-3.0)
    with pytest.raises(TraceError, match="model=: the trace comes from another model"):
        TraceExplorer(Trace.open(path), model=other)
    TraceExplorer(Trace.open(path))                         # no model: the trace carries what it needs
