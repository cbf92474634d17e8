"""Widget state without a browser: moving the step or the selected position sets the widgets' models to the
trace's own numbers (colours, heatmap marker, bar heights, curves). The traces come from the real sampler
on a tiny model; the expected values are computed here from the trace's StepRecords, not by the widgets."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

import smkit

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

from smkit.widgets import Compare, LiveDecoder, TraceExplorer, compare  # noqa: E402
from tiny_model import tiny_char_model  # noqa: E402
from widget_expect import _np, expected_colours, expected_states, gate_top  # noqa: E402

TEXT = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and "
        "arrows of outrageous fortune, or to take arms against a sea of troubles. ") * 4
L, S = 32, 16


@pytest.fixture(scope="module")
def model():
    return tiny_char_model(TEXT, L, sm_centre=-3.25)


@pytest.fixture(scope="module")
def gen(model):
    return smkit.generate(model, num_samples=2, length=L, steps=S, soft_mask=True, seed=0)


def _grid(heatmap, steps: int, length: int) -> np.ndarray:
    """A heatmap trace's cells [steps, length] (sent as columns x, y, z), NaN where blank."""
    out = np.full((steps, length), np.nan)
    out[np.asarray(heatmap.y), np.asarray(heatmap.x)] = np.asarray(heatmap.z)
    return out


def _rec(trace, step):
    return trace[step]


def test_step_sets_strip_colours_labels_and_marker(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=0)
    seen_soft = False
    for step in (0, 3, 7, S - 1):
        ex.slider.value = step  # what the browser's slider does
        rec = _rec(gen.trace, step)
        state = ex.strip.get_state()
        assert state["colours"] == expected_colours(rec, 0, model.mask_id, gate_top(gen.trace))
        seen_soft |= "soft" in state["states"]
        tokens = _np(rec.tokens)[0]
        for p, lab in enumerate(state["labels"]):
            if tokens[p] != model.mask_id:
                assert lab == ex.view.labels[tokens[p]]
        shapes = ex.views.heat_marks.get_state()["shapes"]  # the marker overlay on the heatmaps
        assert (shapes[0]["y0"], shapes[0]["y1"]) == (step - 0.5, step + 0.5)  # step marker, lambda panel
        assert (shapes[1]["y0"], shapes[1]["y1"]) == (step - 0.5, step + 0.5)  # and entropy panel
        assert (shapes[0]["yref"], shapes[1]["yref"]) == ("y", "y2")
        assert ex.views.traj_marks.shapes[0]["x0"] == step
        assert f"step {step} of 0\u2013{S - 1}" in state["title"]
    assert seen_soft, "with scale = 0.9 some masked positions must be soft"


def test_the_explorer_opens_at_the_first_soft_step_and_ends_on_the_decoded_text(model, gen):
    """Opening at the last step would show nothing masked; it opens where soft-masking first shows."""
    first_soft = next(s for s in range(S) if "soft" in expected_states(_rec(gen.trace, s), 0, model.mask_id))
    ex = TraceExplorer(gen.trace, model=model)
    assert ex.step == first_soft and ex.slider.value == first_soft and "soft" in ex.strip.states
    assert f"step {first_soft} of 0\u2013{S - 1}" in ex.strip.title  # one numbering: the slider's value is the title's
    binary = smkit.generate(model, num_samples=1, length=L, steps=S, soft_mask=False, seed=0)
    assert TraceExplorer(binary.trace, model=model).step == 0  # nothing ever soft: the first step
    ex.step = S - 1
    final = _np(gen.tokens)[0]
    assert [ex.view.labels[t] for t in final] == ex.strip.labels


def test_position_sets_bars_to_the_fed_back_mixture(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=4)
    rec = _rec(gen.trace, 4)
    tokens, lam = _np(rec.tokens)[0], _np(rec.lam)[0]
    ids, probs = _np(rec.topk_ids)[0], _np(rec.topk_probs)[0]
    k = model.soft_mask.k
    masked = [p for p in range(L) if tokens[p] == model.mask_id]
    decoded = [p for p in range(L) if tokens[p] != model.mask_id]
    assert masked and decoded
    for p in masked[:3]:
        ex.strip.selected = p  # what a click in the strip does
        assert ex.position == p
        bars = ex.views.mixture.data[0]
        pi = probs[p, :k] / probs[p, :k].sum()
        np.testing.assert_allclose(bars.y, [1 - lam[p], *(lam[p] * pi)], rtol=1e-6, atol=1e-7)
        assert bars.x[0] == "[MASK]" and [x.split(": ", 1)[1] for x in bars.x[1:]] == [ex.view.labels[i] for i in ids[p, :k]]
        assert abs(sum(bars.y) - 1) < 1e-6
        shapes = ex.views.heat_marks.shapes
        assert (shapes[2]["x0"], shapes[2]["x1"], shapes[2]["visible"]) == (p - 0.5, p + 0.5, True)  # position
        assert ex.strip.get_state()["selected"] == p
    ex.position = decoded[0]
    assert list(ex.views.mixture.data[0].y) == [1.0]
    assert list(ex.views.mixture.data[0].x) == [ex.view.labels[tokens[decoded[0]]]]


def test_trajectory_and_lambda_curve_show_the_trace_numbers(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=2)
    rec = _rec(gen.trace, 2)
    tokens, lam, ent = _np(rec.tokens)[0], _np(rec.lam)[0], _np(rec.entropy)[0]
    masked = np.flatnonzero(tokens == model.mask_id)
    ex.position = int(masked[0])
    pts, sel = ex.views.lam_marks.get_state()["shapes"]  # the points overlay on the lambda(H) plot
    np.testing.assert_allclose(pts["x"], ent[masked], atol=1e-4)
    np.testing.assert_allclose(pts["y"], lam[masked], atol=1e-5)
    assert [int(t.split(":")[0].split()[1]) for t in pts["text"]] == masked.tolist()
    np.testing.assert_allclose([sel["x"][0], sel["y"][0]], [ent[masked[0]], lam[masked[0]]], atol=1e-5)
    assert sel["ring"] and (sel["xref"], sel["yref"]) == ("x", "y")
    # the curve is smkit.soft_mask_lambda of the model's w, and the trace's points lie on it
    w = model.soft_mask.values()
    curve = ex.views.lambda_h.data[0]
    expect = smkit.soft_mask_lambda(None, w["scale"], w["centre"], w["steepness"],
                                    entropy=torch.tensor(curve.x, dtype=torch.float64))
    np.testing.assert_allclose(curve.y, expect.numpy(), rtol=1e-6)
    on_curve = smkit.soft_mask_lambda(None, w["scale"], w["centre"], w["steepness"],
                                      entropy=torch.tensor(ent[masked], dtype=torch.float64))
    np.testing.assert_allclose(lam[masked], on_curve.numpy(), rtol=1e-3, atol=1e-5)
    traj = ex.views.trajectory.data
    p = int(masked[0])
    all_lam = np.stack([_np(gen.trace[s].lam)[0, p] for s in range(S)])
    np.testing.assert_allclose(traj[0].y, all_lam, atol=1e-4)


def test_heatmaps_are_drawn_once_with_the_trace_values(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=0)
    z_lam = _grid(ex.views.heatmaps.data[0], S, L)
    for s in (0, 5):
        rec = _rec(gen.trace, s)
        tokens, lam = _np(rec.tokens)[0], _np(rec.lam)[0]
        for p in range(L):
            if tokens[p] == model.mask_id:
                assert abs(z_lam[s][p] - lam[p]) < 1e-4
            else:
                assert np.isnan(z_lam[s][p])  # blank: NaN travels as binary, plotly leaves the cell empty
    # drawn once: moving the step or the position sends nothing to the heatmap or trajectory figures
    sent = []
    for fig in (ex.views.heatmaps, ex.views.trajectory):
        for name in ("_send_relayout_msg", "_send_update_msg", "_send_restyle_msg"):
            setattr(fig, name, lambda *a, _n=name, **k: sent.append(_n))
    for s in (9, 10, 3):
        ex.step = s
    assert sent == [] and not ex.views.heatmaps.layout.shapes
    ex.position = 4
    assert sent == ["_send_update_msg"]  # only the trajectory's curves, once, for the new position


def test_sample_selector_and_hover_text(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=S - 1)
    ex.sample_select.value = 1
    assert ex.strip.labels == [ex.view.labels[t] for t in _np(gen.tokens)[1]]
    ex.step = 3
    rec = _rec(gen.trace, 3)
    ids, probs = _np(rec.topk_ids)[1], _np(rec.topk_probs)[1]
    tip = ex.strip.tips[5]
    assert tip.startswith("pos 5 |")
    for i, q in zip(ids[5], probs[5]):
        if q > 0:  # impossible candidates (probability 0) are left out
            assert f"{ex.view.labels[i]} {q:.2f}" in tip


def test_repr_is_deterministic(model, gen):
    ex = TraceExplorer(gen.trace, model=model, step=3, position=4)
    assert repr(ex) == "TraceExplorer(samples=2, steps=16, length=32, sample=0, step=3, position=4)"
    assert repr(ex.strip) == "TokenStrip(positions=32, selected=4)"  # no 0x addresses: nbval can compare it


def page_data(path) -> dict:
    """The JSON a written page embeds for its JavaScript (the `smkit-data` script element)."""
    text = open(path, encoding="utf-8").read()
    head = '<script type="application/json" id="smkit-data">'
    start = text.index(head) + len(head)
    return json.loads(text[start:text.index("</script>", start)].replace("<\\/", "</"))


def test_to_html_is_a_standalone_page(model, gen, tmp_path):
    import plotly.offline
    from smkit.core.softmask import mixture_weights
    ex = TraceExplorer(gen.trace, model=model, step=3)
    path = ex.to_html(tmp_path / "page.html")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in text
    assert f"<script>{plotly.offline.get_plotlyjs()}</script>" in text  # plotly.js inline: works offline
    assert '<script src="https://cdn.plot.ly' not in text
    small = open(ex.to_html(tmp_path / "cdn.html", include_plotlyjs="cdn"), encoding="utf-8").read()
    cdn = f'<script src="https://cdn.plot.ly/plotly-{plotly.offline.get_plotlyjs_version()}.min.js"></script>'
    assert cdn in small and plotly.offline.get_plotlyjs() not in small
    assert ex.to_html(tmp_path / "again.html") and open(tmp_path / "again.html").read() == text  # deterministic
    # the page shows the SM mixture weights Python computes (smkit.core.softmask.mixture_weights), one per
    # (step, position) still masked after the step, null elsewhere; its JavaScript recomputes nothing
    page = page_data(path)["views"][0]
    k = model.soft_mask.k
    for s in range(S):
        rec = _rec(gen.trace, s)
        tokens, lam, probs = _np(rec.tokens)[0], _np(rec.lam)[0], _np(rec.topk_probs)[0]
        for p in range(L):
            shown = page["mixture"][s][p]
            if tokens[p] != model.mask_id:
                assert shown is None
                continue
            expect = mixture_weights(torch.tensor(lam[p], dtype=torch.float64),
                                     torch.tensor(probs[p, :k], dtype=torch.float64).log())
            np.testing.assert_allclose(shown, expect.numpy(), atol=1e-6)
            assert len(shown) == k + 1


def test_compare_shares_the_step_axis(model, gen, tmp_path):
    short = smkit.generate(model, num_samples=1, length=L, steps=8, soft_mask=False, seed=0)
    cmp = compare(short.trace, gen.trace, model=model, names=("binary", "SM"), step=0)
    assert isinstance(cmp, Compare) and cmp.num_steps == S
    cmp.slider.value = 12
    assert cmp.steps_shown() == [7, 12]
    shapes = cmp.heat_marks.shapes
    assert (shapes[0]["y0"], shapes[1]["y0"]) == (6.5, 11.5)
    assert cmp.strips[0].colours == expected_colours(_rec(short.trace, 7), 0, model.mask_id, gate_top(short.trace))
    assert cmp.strips[1].colours == expected_colours(_rec(gen.trace, 12), 0, model.mask_id, gate_top(gen.trace))
    assert cmp.progress_marks.shapes[0]["x0"] == 12
    # binary decoding feeds back no lambda: its lambda heatmap is zero wherever it is drawn
    z = np.asarray(cmp.heatmaps.data[0].z)
    assert (np.isnan(z) | (z == 0)).all()
    cmp.strips[0].selected = 5
    assert cmp.strips[1].selected == 5 and cmp.heat_marks.shapes[2]["x0"] == 4.5
    cmp.field = "entropy"
    ent = _np(_rec(gen.trace, 12).entropy)[0]
    mb = _np(_rec(gen.trace, 12).masked_before)[0]
    row = _grid(cmp.heatmaps.data[1], S, L)[12]
    for p in range(L):
        assert np.isnan(row[p]) if not mb[p] else abs(row[p] - ent[p]) < 1e-3
    assert repr(cmp) == "Compare(names=('binary', 'SM'), steps=[8, 16], length=[32, 32], sample=0, step=12, field='entropy')"
    page = page_data(cmp.to_html(tmp_path / "cmp.html", include_plotlyjs=False))
    assert (page["steps"], page["step"], page["strips"]) == (S, 12, [0, 1])
    for shown, trace in zip(page["views"], (short.trace, gen.trace)):
        assert shown["tokens"] == _np(trace.tokens)[:, 0].tolist()  # each view holds its own trace's steps
    assert [v["titles"][12].split(" \u00b7 ")[:2] for v in page["views"]] == [["binary", "step 7 of 0\u20137"],
                                                                             ["SM", "step 12 of 0\u201315"]]


def test_compare_opens_at_the_first_soft_step_as_the_explorer_does(model, gen):
    """Opening at the last step would show both decodes finished, nothing masked: without step= the comparison
    opens where the explorer opens, the first step where either trace has a soft position."""
    binary = smkit.generate(model, num_samples=1, length=L, steps=8, soft_mask=False, seed=0)
    first_soft = next(s for s in range(S) if "soft" in expected_states(_rec(gen.trace, s), 0, model.mask_id))
    assert first_soft < S - 1
    for pair in ((binary.trace, gen.trace), (gen.trace, binary.trace)):
        cmp = compare(*pair, model=model)
        assert cmp.step == cmp.slider.value == first_soft == TraceExplorer(gen.trace, model=model).step
        strip = cmp.strips[[t is gen.trace for t in pair].index(True)]
        assert "soft" in strip.states and f"step {first_soft} of 0\u2013{S - 1}" in strip.title
    assert compare(binary.trace, binary.trace, model=model).step == 0  # nothing ever soft: the first step


def test_live_decoder_consumes_the_step_iterator(model, gen, tmp_path):
    live = LiveDecoder(model, length=L, steps=S, seed=0)
    shown = []
    records = live.run(on_step=lambda d, rec: shown.append(d.views.step))
    assert len(records) == S and shown == list(range(S))  # the views follow each arriving step
    single = smkit.generate(model, num_samples=1, length=L, steps=S, soft_mask=True, seed=0)
    assert live.views.strip.labels == [live.views.view.labels[t] for t in _np(single.tokens)[0]]
    assert "done: 16 steps" in live.status.value and live.slider.max == S - 1
    live.slider.value = 3  # scrub back after the decode
    assert live.views.step == 3
    assert live.views.strip.colours == expected_colours(_rec(single.trace, 3), 0, model.mask_id, gate_top(single.trace))
    assert repr(live) == "LiveDecoder(length=32, steps=16, strategy='confidence', k=3, soft_mask=True, received=16)"
    page = page_data(live.to_html(tmp_path / "live.html", include_plotlyjs=False))["views"][0]
    assert page["S"] == S and page["tokens"] == _np(single.trace.tokens)[:, 0].tolist()


def test_live_decoder_stop_and_thread(model):
    live = LiveDecoder(model, length=L, steps=S, seed=1)
    records = live.run(on_step=lambda d, rec: d.stop() if len(d.records) == 3 else None)
    assert len(records) == 3 and "stopped: 3 steps" in live.status.value
    live.start()
    live.wait(60)
    assert not live.running and len(live.records) == S and live.error is None


def test_live_decoder_lambda_override(model):
    live = LiveDecoder(model, length=L, steps=8, seed=0, lam_override=0.3)
    recs = live.run()
    for rec in recs:
        tokens, lam = _np(rec.tokens)[0], _np(rec.lam)[0]
        masked = tokens == model.mask_id
        np.testing.assert_allclose(lam[masked], 0.3, rtol=1e-6)
        assert (lam[~masked] == 0).all()
    live.soft.value = False  # SM off: nothing fed back
    for rec in live.run():
        assert (_np(rec.lam) == 0).all()


def test_prompt_positions_are_fixed_and_remasking_is_shown(model):
    g = smkit.generate(model, prompt="To be", num_samples=1, length=L, steps=S, strategy="remdm-cap", eta=0.5,
                       seed=0)
    ex = TraceExplorer(g.trace, model=model, step=0)
    remasked_steps = [s for s in range(len(g.trace)) if _np(g.trace[s].remasked)[0].any()]
    assert remasked_steps, "ReMDM with eta=0.5 remasks something in 16 steps"
    for s in (0, remasked_steps[0], len(g.trace) - 1):
        ex.step = s
        assert ex.strip.colours == expected_colours(_rec(g.trace, s), 0, model.mask_id, gate_top(g.trace))
        assert ex.strip.states[:5] == ["fixed"] * 5 and "".join(ex.strip.labels[:5]) == "To\u2423be"
    ex.step = remasked_steps[0]
    assert "remasked" in ex.strip.states


def test_a_saved_trace_needs_no_model(model, gen, tmp_path):
    from smkit import Trace
    path = gen.trace.save(tmp_path / "run.trace")
    ex = TraceExplorer(Trace.load(path), step=S - 1)  # mask id, SM values and tokenizer come from the file
    assert ex.strip.labels == TraceExplorer(gen.trace, model=model, step=S - 1).strip.labels
    w = model.soft_mask.values()
    assert ex.view.soft_mask["scale"] == pytest.approx(w["scale"]) and ex.view.k == model.soft_mask.k


def test_a_trace_without_statistics_is_refused_clearly(model):
    bare = smkit.generate(model, num_samples=1, length=L, steps=4, trace=True, k_trace=0)
    with pytest.raises(ValueError, match="k_trace"):
        TraceExplorer(bare.trace, model=model)


# ------------------------------------------------------------ layouts: a sudoku decode on a 9x9 board

from smkit.widgets import layouts  # noqa: E402
from smkit.widgets.cell_grid import CellGrid  # noqa: E402
from smkit.widgets.token_strip import TokenStrip  # noqa: E402
from smkit.widgets.trace_view import sample_view  # noqa: E402
from sudoku_trace import LENGTH as SUDOKU_LENGTH, board_positions, puzzle, sudoku_decode, sudoku_model  # noqa: E402


@pytest.fixture(scope="module")
def sudoku():
    m = sudoku_model()
    return m, sudoku_decode(m, num_samples=2, steps=15)


def test_sudoku_decode_is_a_9x9_board_with_the_givens_fixed(sudoku):
    m, g = sudoku
    assert all(len(t) == SUDOKU_LENGTH and layouts.is_board(9, 9)(t) for t in g.texts)
    template = puzzle().replace("[MASK]", "?")
    fixed = _np(g.trace[0].fixed)[0]
    assert [p for p in range(SUDOKU_LENGTH) if fixed[p]] == [p for p, ch in enumerate(template) if ch != "?"]


def test_grid_layout_places_the_81_digits_and_skips_the_newlines(sudoku):
    m, g = sudoku
    view = sample_view(g.trace, 0, model=m)
    cells = layouts.LAYOUTS["sudoku"](layouts.step_fields(view, 4))
    expected = board_positions(g.texts[0])
    assert len(cells) == 81 and len(expected) == 81
    assert {c.position: (c.row, c.col) for c in cells} == expected
    assert [c.position for c in cells] == sorted(expected)  # row by row
    newlines = [p for p, ch in enumerate(g.texts[0]) if ch == "\n"]
    assert newlines == [9, 19, 29, 39, 49, 59, 69, 79] and not set(newlines) & {c.position for c in cells}
    assert {c.group for c in cells if c.row < 3 and c.col < 3} == {0}  # 3x3 boxes
    assert {c.group for c in cells if c.row >= 6 and c.col >= 6} == {8}
    # grid(rows, cols) without boxes: the same places, one group
    plain = layouts.grid(9, 9)(layouts.step_fields(view, 4))
    assert [(c.position, c.row, c.col, c.group) for c in plain] == [(c.position, c.row, c.col, 0) for c in cells]


@pytest.mark.parametrize("step", [0, 6, 14])
def test_grid_cells_show_the_trace_at_a_step(sudoku, step):
    m, g = sudoku
    rec = g.trace[step]
    tokens, lam = _np(rec.tokens)[1], _np(rec.lam)[1]
    fixed, revealed = _np(rec.fixed)[1], _np(rec.revealed)[1]
    ids, probs = _np(rec.topk_ids)[1], _np(rec.topk_probs)[1]
    colours = expected_colours(rec, 1, m.mask_id, gate_top(g.trace))
    ex = TraceExplorer(g.trace, model=m, layout="sudoku", sample=1, step=step)
    assert isinstance(ex.cells, CellGrid) and len(ex.cells.cells) == 81
    seen = set()
    for c in ex.cells.cells:
        p = c["position"]
        if fixed[p]:
            assert c["state"] == "fixed"
        elif revealed[p]:
            assert c["state"] == "revealed"
        elif tokens[p] == m.mask_id:
            assert c["state"] == ("soft" if lam[p] >= 1e-3 else "masked")
        else:
            assert c["state"] == "decoded"
        seen.add(c["state"])
        assert c["colour"] == colours[p]
        if tokens[p] == m.mask_id:
            assert c["shade"] == pytest.approx(float(lam[p]), abs=1e-7) and c["shade"] > 0.1  # lambda as shading
        else:
            assert c["shade"] == 0.0 and c["label"] == m.tokenizer.decode([int(tokens[p])])
        for i, q in zip(ids[p], probs[p]):  # hover: the trace's top-k candidates with their probabilities
            if q > 0:
                assert f"{m.tokenizer.decode([int(i)])} {q:.2f}" in c["tip"]
        r, col = board_positions(g.texts[1])[p]
        assert c["tip"].startswith(f"row {r + 1}, col {col + 1} \u00b7 pos {p} |")
    assert int(revealed.sum()) == sum(c["state"] == "revealed" for c in ex.cells.cells) > 0
    assert "fixed" in seen and (step == 14 or "soft" in seen)


def test_grid_follows_the_slider_and_selects_a_cell(sudoku):
    m, g = sudoku
    ex = TraceExplorer(g.trace, model=m, layout="sudoku", step=2)
    ex.slider.value = 3
    revealed = _np(g.trace[3].revealed)[0]
    assert sorted(c["position"] for c in ex.cells.cells if c["state"] == "revealed") == np.flatnonzero(revealed).tolist()
    assert "step 3 of 0\u201314" in ex.cells.title
    masked = next(c["position"] for c in ex.cells.cells if c["state"] == "soft")
    ex.cells.selected = masked  # what a click on the cell does
    assert ex.position == masked
    assert repr(ex.cells) == f"CellGrid(cells=81, selected={masked})"
    lam = float(_np(g.trace[3].lam)[0, masked])
    assert ex.views.mixture.data[0].y[0] == pytest.approx(1 - lam, abs=1e-6)  # the fed-back mixture of that cell
    assert repr(ex) == f"TraceExplorer(samples=2, steps=15, length=89, sample=0, step=3, position={masked}, layout='sudoku')"


def test_auto_layout_picks_the_board_for_9x9_texts_only(model, gen, sudoku):
    m, g = sudoku
    board = TraceExplorer(g.trace, model=m, layout="auto")
    assert board.layout_name == "sudoku" and isinstance(board.cells, CellGrid)
    strip = TraceExplorer(gen.trace, model=model, layout="auto")
    assert strip.layout_name == "token_strip" and isinstance(strip.cells, TokenStrip)
    assert len(strip.strip.labels) == L
    rows = ["123456789"] * 9
    assert layouts.choose_layout(["\n".join(rows), "\n".join(rows)]) == "sudoku"
    assert layouts.choose_layout(["\n".join(rows), "\n".join(rows[:8])]) == "token_strip"  # one sample is not
    assert layouts.choose_layout(["\n".join(r[:8] for r in rows)]) == "token_strip"  # 9 lines of 8
    assert layouts.choose_layout(["\n".join(rows) + "\n"]) == "token_strip"  # a 10th (empty) line
    assert layouts.choose_layout([]) == "token_strip"


def test_a_layout_can_be_a_function_or_a_registered_name(sudoku):
    m, g = sudoku
    diagonal = lambda f: [layouts.cell(f, p, p, p) for p in range(0, f.length, 10)]  # noqa: E731
    ex = TraceExplorer(g.trace, model=m, layout=diagonal)
    assert [(c["row"], c["col"], c["position"]) for c in ex.cells.cells] == [(p, p, p) for p in range(0, 89, 10)]
    layouts.register_layout("first-row", layouts.grid(1, 9))
    try:
        assert [c["position"] for c in TraceExplorer(g.trace, model=m, layout="first-row").cells.cells] == list(range(9))
    finally:
        del layouts.LAYOUTS["first-row"]
    with pytest.raises(ValueError, match="layout='hexagons'"):
        TraceExplorer(g.trace, model=m, layout="hexagons")


def test_grid_page_holds_the_board_of_every_step(sudoku, tmp_path):
    m, g = sudoku
    ex = TraceExplorer(g.trace, model=m, layout="sudoku", step=5)
    page = page_data(ex.to_html(tmp_path / "board.html", include_plotlyjs=False))
    assert page["strips"] == [] and len(page["board"]["cells"]) == len(g.trace)
    for s in (0, 5, 14):
        ex.step = s
        assert page["board"]["cells"][s] == ex.cells.cells


def test_sample_view_takes_a_trace_and_names_the_way_from_one_record(sudoku):
    from smkit.core.trace import Trace
    m, g = sudoku
    with pytest.raises(ValueError, match=r"trace: give a smkit Trace .*Trace.from_records\(\[record\]\)"):
        sample_view(g.trace[2], 0, model=m)
    one = sample_view(Trace.from_records([g.trace[2]]), 0, model=m)
    full = sample_view(g.trace, 0, model=m)
    assert one.num_steps == 1 and (one.tokens[0] == full.tokens[2]).all() and (one.lam[0] == full.lam[2]).all()


def test_lambda_colours_span_the_gate_not_zero_to_one():
    """A gate with scale = 0.2 (the shipped models' range): lambda never passes 0.2, so the heatmap's colour bar runs
    0..0.2 and says so, the strongest soft position is near full violet, and lambda 0 stays grey while the smallest
    soft lambda is already violet."""
    from smkit.widgets import figures as F
    from smkit.widgets.trace_view import MASK_COLOUR, SOFT_COLOUR, SOFT_LIGHT, _rgb
    m = tiny_char_model(TEXT, L, sm_centre=-3.25, sm_scale=0.2)
    g = smkit.generate(m, num_samples=1, length=L, steps=S, soft_mask=True, seed=0)
    lam = _np(g.trace.lam)[:, 0]
    assert 0 < lam.max() <= 0.2 + 1e-6
    ex = TraceExplorer(g.trace, model=m)
    heat = ex.views.heatmaps.data[0]
    assert (heat.zmin, heat.zmax) == (0, pytest.approx(0.2))
    assert list(heat.colorbar.ticktext) == ["0", "scale 0.2"] and list(heat.colorbar.tickvals) == [0, pytest.approx(0.2)]
    scale = [tuple(c) for c in heat.colorscale]
    assert scale[0][1] == scale[1][1] == MASK_COLOUR and scale[1][0] == pytest.approx(1e-3 / 0.2)  # below 1e-3: grey
    assert scale[2] == (scale[1][0], SOFT_LIGHT) and scale[-1] == (1, SOFT_COLOUR)
    step, pos = np.unravel_index(np.argmax(lam), lam.shape)
    ex.step = int(step)
    strongest = _rgb(ex.strip.colours[pos])
    frac = float(lam[step, pos]) / 0.2
    assert np.abs(strongest - _rgb(SOFT_COLOUR)).max() <= (1 - frac) * np.abs(_rgb(SOFT_LIGHT) - _rgb(SOFT_COLOUR)).max() + 1
    assert np.abs(_rgb(SOFT_LIGHT) - _rgb(MASK_COLOUR)).max() > 40  # "a little open" is not the grey of "shut"
    assert F.lam_colour_props(ex.view)["zmax"] == pytest.approx(0.2)


def test_lambda_text_keeps_small_gates_visible():
    from smkit.widgets.titles import lambda_text
    assert [lambda_text(v) for v in (0.2068, 0.0067, 1.23e-05, 0.0)] == ["0.207", "0.0067", "1.23e-05", "0"]
