"""The widgets in a real browser: JupyterLab + Debian's chromium driven by Playwright.

One JupyterLab server for the module (127.0.0.1, a free port, a random token, temporary JUPYTER_* folders),
always stopped at the end. The first test opens a notebook that builds a tiny model, decodes with
smkit.generate, saves the trace and shows a TraceExplorer; it moves the step slider with the keyboard and
checks that the token strip shows the saved trace's labels and colours of that step and that the heatmap's
step marker sits on that row. The second shows a sudoku decode on the explorer's 9x9 board
(layout="auto"): 81 cells, a slider step changes exactly the cells the trace revealed, and a masked
cell's tooltip holds the trace's top candidate. A third opens an exported HTML page (no kernel), moves its
slider and checks the strip and the mixture bars against the trace. Every page is checked for what a reader
would miss: the explorer opens at the first step where something is soft (its slider reads the same step as its
title), the lambda colour bar runs from 0 to the gate's w_s, no plot title sits under plotly's toolbar or outside
its figure, no button label is cut, and the tasks sweep page fits a narrow window and draws offline. Screenshots
go to each test's tmp folder. Chromium comes from Debian (`make install-browser`, which `make test` and .ci/run
run); without it the tests skip, saying so. No test installs anything.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]

TEXT = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and "
        "arrows of outrageous fortune, or to take arms against a sea of troubles. ") * 3

# An untrained model's entropy is near log(V) ~ 3.3 nats: a centre of -3.25 puts lambda(H) at half of the scale
# there, so soft positions are visible in the page. scale = 0.2, as on the shipped models: lambda never passes it.
# A "lambda" hook shuts the gate for steps 0-2, so the first step with a soft position is step 3.
W_S, FIRST_SOFT = 0.2, 3
NOTEBOOK_CELLS = [
    f"import os, sys\nos.environ['HF_HUB_OFFLINE'] = '1'\nsys.path.insert(0, {str(TESTS)!r})\nimport smkit\n"
    "from tiny_model import tiny_char_model\n"
    f"model = tiny_char_model({TEXT!r}, 32, sm_centre=-3.25, sm_scale={W_S})\n"
    f"shut_early = {{'lambda': lambda lam, s: lam * 0 if s.step < {FIRST_SOFT} else None}}\n"
    "g = smkit.generate(model, num_samples=2, length=32, steps=16, soft_mask=True, seed=0, hooks=shut_early)\n"
    "g.trace.save('explorer.trace')\nprint(g.trace.tokens.shape)",
    "from smkit.widgets import TraceExplorer\nex = TraceExplorer(g.trace, model=model)\nex",
    "from smkit.widgets import LiveDecoder\nlive = LiveDecoder(model, length=32, steps=16, seed=3)\nlive",
    "from smkit.widgets import compare\nbinary = smkit.generate(model, num_samples=1, length=32, steps=16, "
    "soft_mask=False, seed=0)\ncompare(binary.trace, g.trace, model=model, names=('binary', 'SM'))",
]


def _chromium_or_skip() -> str:
    """/usr/bin/chromium, or a skip that says how to install it (tests never install anything themselves)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"SKIPPED browser test: {CHROMIUM} is not installed; `make install-browser` (or "
                    f"`apt-get install -y chromium` as root) installs it")
    return CHROMIUM


@pytest.fixture(scope="module")
def chromium():
    path = _chromium_or_skip()
    pytest.importorskip("playwright.sync_api", reason="the dev extra (playwright) is not installed")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server of our own: temp config/data/settings/workspaces/runtime, a free port, a token."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        dirs = {name: home / name.lower() for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                                                       "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                                                       "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        notes = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
        notes.mkdir(parents=True)
        (notes / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        self.env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        self.log = open(home / "jupyterlab.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
             "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def _wait_ready(self, timeout: float = 90) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """Shut down kernels and server through the API, then make sure the process group we started is gone."""
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(self.url("api/shutdown"), method="POST", data=b"")
                urllib.request.urlopen(req, timeout=5).close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)  # the session started with the server: its kernels too
            except ProcessLookupError:
                break
            time.sleep(1)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self.log.close()


def _notebook(path: Path, cells: list[str]) -> None:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


STRIP_STATE = """() => {
  const strip = document.querySelector('.smkit-strip');
  const toks = [...strip.querySelectorAll('.smkit-tok')];
  return {title: strip.querySelector('.smkit-strip-head').textContent,
          labels: toks.map((t) => t.textContent), colours: toks.map((t) => t.style.background),
          states: toks.map((t) => t.dataset.state)};
}"""

# the heatmap figure is the plotly plot with two heatmap traces
HEATMAP_GD = """[...document.querySelectorAll('.js-plotly-plot')].find(
  (p) => p.data && p.data.length === 2 && p.data.every((t) => t.type === 'heatmap'))"""

# in the notebook the step marker is the first box of the overlay drawn on that plot (widgets/overlay.py)
OVERLAY_MARKER_STATE = f"""() => {{
  const gd = {HEATMAP_GD};
  const box = gd && gd.querySelector('.smkit-plot-markers > div');
  return box && box.style.display !== 'none' ? box.style.top : null;
}}"""

# in exported HTML the marker is a real plotly shape (shape 0)
SHAPE_MARKER_STATE = f"""() => {{
  const gd = {HEATMAP_GD};
  if (!gd) return null;
  const path = gd.querySelector('.shapelayer path');
  return {{y0: gd.layout.shapes[0].y0, y1: gd.layout.shapes[0].y1, d: path ? path.getAttribute('d') : null}};
}}"""


# every plotly figure of an explorer: its toolbar's box, its titles' boxes (figure title, subplot titles) and
# its drawing's box, in page pixels; and the colour bars' labels
PLOT_GEOMETRY = """(root) => [...(root || document).querySelectorAll('.js-plotly-plot')].map((gd) => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const bar = gd.querySelector('.modebar');
  return {toolbar: bar ? box(bar) : null, svg: box(gd.querySelector('.main-svg')),
          titles: [...gd.querySelectorAll('.gtitle, .annotation-text-g')].filter((t) => t.textContent).map(
            (t) => ({text: t.textContent, box: box(t)})),
          colorbar: [...gd.querySelectorAll('.colorbar .cbaxis text, .colorbar .cbtitle text')].map((t) => t.textContent)};
})"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def assert_nothing_covered_or_clipped(figures: list[dict], right_edge: float) -> None:
    """No title under a toolbar or outside its figure; no figure past `right_edge` (the output area's)."""
    assert figures
    for fig in figures:
        svg = fig["svg"]
        assert svg[2] <= right_edge + 1, f"a figure ends at {svg[2]:.0f} px, past the output area's {right_edge:.0f}"
        for t in fig["titles"]:
            inside = svg[0] - 1 <= t["box"][0] and t["box"][2] <= svg[2] + 1 and svg[1] - 1 <= t["box"][1]
            assert inside, f"title {t['text']!r} at {t['box']} is cut by its figure {svg}"
            assert fig["toolbar"] is None or not _overlap(t["box"], fig["toolbar"]), \
                f"title {t['text']!r} at {t['box']} sits under the toolbar {fig['toolbar']}"


def marker_box(page, step: int):
    """(top, height) of the overlay's step marker and the top the plot's y axis gives row `step`, in px."""
    return page.evaluate(f"""() => {{
      const gd = {HEATMAP_GD};
      const box = gd && gd.querySelector('.smkit-plot-markers > div');
      if (!box || box.style.display === 'none') return null;
      const r = box.getBoundingClientRect(), g = gd.querySelector('.svg-container').getBoundingClientRect();
      const ya = gd._fullLayout.yaxis;
      return [r.top - g.top, r.height, ya._offset + Math.min(ya.l2p({step} - 0.5), ya.l2p({step} + 0.5))];
    }}""")


# the notebook's session has a kernel that is connected and idle (not only the toolbar's indicator)
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


def _wait_for_output(page, selector: str, timeout_s: float) -> None:
    """Wait for `selector`; accept a "Select Kernel" dialog if JupyterLab raises one meanwhile."""
    end = time.time() + timeout_s
    while time.time() < end:
        if page.locator(selector).count():
            return
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        page.wait_for_timeout(250)
    raise TimeoutError(f"{selector!r} did not appear within {timeout_s}s")


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory):
    """One JupyterLab server for the module's notebooks; stopped (kernels too) when the module is done."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    server = JupyterLab(root, base / "jupyter")
    try:
        yield server
    finally:
        server.stop()
    assert server.proc.poll() is not None


def open_page(chromium, width: int, height: int):
    """A new page whose Playwright calls wait 60 s at most; returns (page, errors), where the page's uncaught
    errors collect."""
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)  # no Playwright call may wait for ever
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@contextlib.contextmanager
def checked(page, errors: list[str], tmp_path: Path, server_log: str | None = None):
    """The checks of a test on `page`, which must also raise no page errors; on a failure a full-page
    screenshot goes to tmp_path / failure.png and where to look is printed. The page is closed either way."""
    try:
        yield
        assert not errors, errors
    except BaseException:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"page errors: {errors}; failure screenshot: {tmp_path / 'failure.png'}"
              + (f"; server log: {server_log}" if server_log else ""))
        raise
    finally:
        page.close()


def run_notebook(chromium, lab, name: str, cells: list[str], wait_for: str):
    """Open a new notebook of `cells` in JupyterLab, run all and wait for `wait_for`; returns (page, errors)."""
    _notebook(lab.root / name, cells)
    page, errors = open_page(chromium, 1400, 1600)
    # a workspace of its own: the server's default one would reopen (and focus) the notebooks opened before
    page.goto(lab.url(f"lab/workspaces/{Path(name).stem}/tree/{name}"), timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == name
    page.click(".jp-Notebook")
    # start "run all" without awaiting its promise (a dialog would hold it for ever)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    _wait_for_output(page, wait_for, timeout_s=180)
    return page, errors


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def assert_screenshot_of(locator, path: Path) -> None:
    """Screenshot `locator` to `path`: a PNG of exactly the element's size."""
    locator.screenshot(path=str(path))
    box = locator.bounding_box()
    w, h = png_size(path)
    assert abs(w - box["width"]) <= 1 and abs(h - box["height"]) <= 1, ((w, h), box)


def expected_strip(trace, step: int, sample: int = 0) -> dict:
    """Labels and colours (as the browser reports them) of the strip after `step`, from the trace's records."""
    from widget_expect import expected_colours, expected_labels, gate_top, hex_to_css_rgb
    rec, mask_id = trace[step], trace.meta["mask_id"]
    return {"labels": expected_labels(rec, sample, mask_id, trace.tokenizer),
            "colours": [hex_to_css_rgb(c) for c in expected_colours(rec, sample, mask_id, gate_top(trace))]}


def first_soft_step(trace, sample: int = 0) -> int:
    from widget_expect import expected_states
    return next(s for s in range(len(trace)) if "soft" in expected_states(trace[s], sample, trace.meta["mask_id"]))


def test_trace_explorer_in_jupyterlab(chromium, lab, tmp_path):
    from smkit import Trace
    page, errors = run_notebook(chromium, lab, "explorer.ipynb", NOTEBOOK_CELLS, ".smkit-tok")
    with checked(page, errors, tmp_path, server_log=lab.log.name):
        trace = Trace.load(lab.root / "explorer.trace")  # the trace the kernel decoded and shows
        assert first_soft_step(trace) == FIRST_SOFT  # the hook shut the gate for the steps before
        page.wait_for_function(f"({OVERLAY_MARKER_STATE})() !== null", timeout=60_000)
        page.wait_for_timeout(500)
        # it opens where soft-masking first shows, and the slider reads the step its title names
        before_strip, before_marker = page.evaluate(STRIP_STATE), marker_box(page, FIRST_SOFT)
        assert before_strip["title"].startswith(f"sample 0 \u00b7 step {FIRST_SOFT} of 0\u201315"), before_strip["title"]
        explorer = page.locator(".smkit-trace-explorer").first
        assert explorer.locator(".widget-slider .widget-readout").first.text_content().strip() == str(FIRST_SOFT)
        assert "soft" in before_strip["states"]
        assert {k: before_strip[k] for k in ("labels", "colours")} == expected_strip(trace, FIRST_SOFT)
        assert abs(before_marker[0] - before_marker[2]) < 1.5 and before_marker[1] > 2, before_marker
        # the lambda colour bar runs from 0 to the gate's w_s, and says so
        zmax = page.evaluate(f"() => {HEATMAP_GD}.data[0].zmax")
        assert abs(zmax - W_S) < 1e-6 and abs(zmax - trace.meta["sm"]["scale"]) < 1e-6, zmax
        figures = page.evaluate(PLOT_GEOMETRY, explorer.element_handle())
        assert {"0", f"scale {W_S:g}"} <= set(figures[0]["colorbar"]), figures[0]["colorbar"]
        output = page.evaluate("(el) => el.closest('.jp-OutputArea-output').getBoundingClientRect().right",
                               explorer.element_handle())
        assert_nothing_covered_or_clipped(figures, output)
        page.locator(".widget-slider .noUi-handle").first.click()
        for _ in range(9 - FIRST_SOFT):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('.smkit-strip-head').textContent.includes('step 9 of 0\u201315')",
                               timeout=30_000)
        page.wait_for_function(f"""() => {{ const gd = {HEATMAP_GD};
            const box = gd.querySelector('.smkit-plot-markers > div');
            return Math.abs(parseFloat(box.style.top) - {before_marker[0]}) > 1; }}""", timeout=30_000)
        page.wait_for_timeout(300)
        after_strip, after_marker = page.evaluate(STRIP_STATE), marker_box(page, 9)
        assert {k: after_strip[k] for k in ("labels", "colours")} == expected_strip(trace, 9)
        assert after_marker[0] > before_marker[0] + 5, (before_marker, after_marker)  # it moved down ...
        assert abs(after_marker[0] - after_marker[2]) < 1.5, after_marker  # ... onto row 9 of the plot's axis
        # select a still-masked position: the strip marks it and the bar chart shows its mixture
        pos = after_strip["states"].index("soft") if "soft" in after_strip["states"] else 0
        page.locator(f".smkit-tok[data-pos='{pos}']").first.click()
        page.wait_for_selector(f".smkit-tok.smkit-selected[data-pos='{pos}']", timeout=30_000)
        page.wait_for_function(
            f"[...document.querySelectorAll('.js-plotly-plot')].some((gd) => gd.layout.title && "
            f"String(gd.layout.title.text || '').startsWith('pos {pos}, step 9'))", timeout=30_000)
        page.locator(f".smkit-tok[data-pos='{pos}']").first.hover()
        page.wait_for_timeout(800)
        shot = tmp_path / "trace_explorer.png"
        assert_screenshot_of(page.locator(".smkit-trace-explorer").first, shot)
        # LiveDecoder: Run decodes in a kernel thread; the page follows the steps as they arrive
        live = page.locator(".smkit-live-decoder").first
        live.locator("button", has_text="Run").click()
        page.wait_for_function("[...document.querySelectorAll('.smkit-live-decoder .widget-html')].some("
                               "(e) => e.textContent.includes('done: 16 steps'))", timeout=120_000)
        live_title = live.locator(".smkit-strip-head").text_content()
        assert "step 15 of 0\u201315" in live_title, live_title
        assert live.locator(".smkit-tok[data-state='masked'], .smkit-tok[data-state='soft']").count() == 0
        live.screenshot(path=str(tmp_path / "live_decoder.png"))
        # compare: its lambda / entropy toggle's labels are whole, not cut to "entr..."
        cmp = page.locator(".smkit-compare").first
        buttons = cmp.locator(".widget-toggle-button")
        assert buttons.count() == 2
        cut = page.evaluate("(el) => [...el.querySelectorAll('.widget-toggle-button')].filter("
                            "(b) => b.scrollWidth > b.clientWidth + 1).map((b) => b.textContent)", cmp.element_handle())
        assert cut == [], f"button labels cut short: {cut}"
        assert_nothing_covered_or_clipped(page.evaluate(PLOT_GEOMETRY, cmp.element_handle()), output)
        page.screenshot(path=str(tmp_path / "jupyterlab_page.png"), full_page=True)
        print(f"screenshot: {shot}")


SUDOKU_START = 4  # the board opens at step 4 of 0-14; one slider step moves it to step 5
SUDOKU_CELLS = [
    f"import os, sys\nos.environ['HF_HUB_OFFLINE'] = '1'\nsys.path.insert(0, {str(TESTS)!r})\n"
    "from sudoku_trace import sudoku_decode, sudoku_model\n"
    "model = sudoku_model()\ng = sudoku_decode(model, num_samples=1, steps=15)\n"
    "g.trace.save('sudoku.trace')\nprint(g.texts[0])",
    f"from smkit.widgets import TraceExplorer\nex = TraceExplorer(g.trace, model=model, layout='auto', "
    f"step={SUDOKU_START})\nex",
]

BOARD_STATE = """() => [...document.querySelectorAll('.smkit-cell')].map((d) => ({
  pos: +d.dataset.pos, row: +d.dataset.row, col: +d.dataset.col, state: d.dataset.state,
  shade: parseFloat(d.dataset.shade), label: d.textContent, title: d.title}))"""

SHOWN = ("fixed", "decoded", "revealed")  # states in which a cell shows its digit


def test_sudoku_board_in_jupyterlab(chromium, lab, tmp_path):
    from smkit import Trace
    from sudoku_trace import board_positions
    page, errors = run_notebook(chromium, lab, "sudoku.ipynb", SUDOKU_CELLS, ".smkit-cell")
    with checked(page, errors, tmp_path, server_log=lab.log.name):
        trace = Trace.load(lab.root / "sudoku.trace")
        tok, mask_id = trace.tokenizer, trace.meta["mask_id"]
        final = trace.texts_at(-1)[0]
        page.wait_for_function("document.querySelectorAll('.smkit-cell').length === 81")
        page.wait_for_timeout(300)
        before = {c["pos"]: c for c in page.evaluate(BOARD_STATE)}
        assert len(before) == 81
        assert {p: (c["row"], c["col"]) for p, c in before.items()} == board_positions(final)
        head = page.locator(".smkit-grid-head").text_content()
        assert f"step {SUDOKU_START} of 0\u201314" in head, head
        page.locator(".widget-slider .noUi-handle").first.click()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.querySelector('.smkit-grid-head').textContent.includes("
                               f"'step {SUDOKU_START + 1} of 0\u201314')", timeout=30_000)
        page.wait_for_timeout(300)
        after = {c["pos"]: c for c in page.evaluate(BOARD_STATE)}
        step = SUDOKU_START + 1
        revealed = set(np.flatnonzero(trace.revealed[step, 0].numpy()).tolist())
        assert revealed and {p for p, c in after.items() if c["state"] == "revealed"} == revealed
        # exactly the revealed cells turned from masked to a digit: the trace's tokens of this step
        newly = {p for p in after if after[p]["state"] in SHOWN and before[p]["state"] not in SHOWN}
        assert newly == revealed
        tokens = trace.tokens[step, 0].tolist()
        assert all(after[p]["label"] == tok.decode([tokens[p]]) for p in revealed)
        assert all(after[p]["label"] == before[p]["label"] for p in before if before[p]["state"] in SHOWN)
        # a still-masked cell: shaded by the trace's lambda; its tooltip and hover line name the top candidate
        lam, ids, probs = trace.lam[step, 0], trace.topk_ids[step, 0], trace.topk_probs[step, 0]
        masked = [p for p in after if tokens[p] == mask_id]
        # the saved trace keeps lambda in float16 (relative error at most 2**-11, smkit/core/trace_codec.py)
        assert masked and all(abs(after[p]["shade"] - float(lam[p])) <= 2 ** -11 * float(lam[p]) + 1e-7 for p in masked)
        p = masked[0]
        top = f"{tok.decode([int(ids[p, 0])])} {float(probs[p, 0]):.2f}"
        assert f"top-5: {top}" in after[p]["title"], after[p]["title"]
        page.locator(f".smkit-cell[data-pos='{p}']").hover()
        page.wait_for_function(f"document.querySelector('.smkit-grid-tip').textContent.includes({top!r})")
        # a soft cell's guess does not look like a decoded digit: smaller, dashed, a "?" after it
        soft = [q for q in masked if after[q]["state"] == "soft"]
        shown = next(q for q in after if after[q]["state"] in ("decoded", "revealed", "fixed"))
        look = page.evaluate("""([s, d]) => { const css = (p, pseudo) => getComputedStyle(
            document.querySelector(`.smkit-cell[data-pos='${p}']`), pseudo);
            return {after: css(s, '::after').content, border: css(s).borderTopStyle,
                    size: parseFloat(css(s).fontSize), digit: parseFloat(css(d).fontSize)}; }""", [soft[0], shown])
        assert look["after"] == '"?"' and look["border"] == "dashed" and look["size"] < 0.8 * look["digit"], look
        shot = tmp_path / "sudoku_board.png"
        assert_screenshot_of(page.locator(".smkit-trace-explorer").first, shot)
        print(f"screenshot: {shot}")


MIXTURE_BARS = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
  (g) => g.data && g.data.length === 1 && g.data[0].type === 'bar');
  return {x: gd.data[0].x, y: gd.data[0].y, title: gd.layout.title.text}; }"""


def test_exported_html_in_browser(chromium, tmp_path):
    """The static page works without a kernel: its slider re-colours the strip to the trace's step and moves
    the marker onto that row; a click shows the position's mixture, with the weights Python computed."""
    import smkit
    from smkit.core.softmask import mixture_weights
    from smkit.widgets import TraceExplorer
    from tiny_model import tiny_char_model

    model = tiny_char_model(TEXT, 32, sm_centre=-3.25)
    g = smkit.generate(model, num_samples=1, length=32, steps=16, seed=0)
    path = TraceExplorer(g.trace, model=model, step=0).to_html(tmp_path / "explorer.html")
    page, errors = open_page(chromium, 1300, 1100)
    with checked(page, errors, tmp_path):
        page.goto(Path(path).as_uri())
        page.wait_for_selector(".smkit-tok")
        page.wait_for_function(f"({SHAPE_MARKER_STATE})() !== null")
        assert_nothing_covered_or_clipped(page.evaluate(PLOT_GEOMETRY), page.viewport_size["width"])
        before_strip = page.evaluate(STRIP_STATE)
        assert {k: before_strip[k] for k in ("labels", "colours")} == expected_strip(g.trace, 0)
        page.eval_on_selector("#smkit-step", "el => { el.value = 9; el.dispatchEvent(new Event('input')); }")
        page.wait_for_function(f"({SHAPE_MARKER_STATE})().y0 === 8.5")
        after_strip = page.evaluate(STRIP_STATE)
        assert {k: after_strip[k] for k in ("labels", "colours")} == expected_strip(g.trace, 9)
        # the marker's drawn box covers row 9 of the heatmap's own y axis
        rows = page.evaluate(f"""() => {{ const gd = {HEATMAP_GD}, ya = gd._fullLayout.yaxis;
            const b = gd.querySelector('.shapelayer path').getBBox();
            return [b.y, b.y + b.height, ya._offset + ya.l2p(8.5), ya._offset + ya.l2p(9.5)]; }}""")
        assert abs(rows[0] - min(rows[2:])) < 2 and abs(rows[1] - max(rows[2:])) < 2, rows
        rec = g.trace[9]
        pos = int(np.flatnonzero(rec.tokens[0].numpy() == model.mask_id)[0])
        page.locator(f".smkit-tok[data-pos='{pos}']").click()
        page.wait_for_function(f"window.smkitPage.position === {pos}")
        bars = page.evaluate(MIXTURE_BARS)
        k = model.soft_mask.k
        expect = mixture_weights(rec.lam[0, pos].double(), rec.topk_probs[0, pos, :k].double().log())
        assert bars["title"].startswith(f"pos {pos}, step 9: fed back")
        np.testing.assert_allclose(bars["y"], expect.numpy(), atol=1e-6)
        page.screenshot(path=str(tmp_path / "explorer_html.png"), full_page=True)


def test_exported_board_in_browser(chromium, tmp_path):
    """An exported sudoku explorer shows its board without a kernel and moves it with the page's slider."""
    from sudoku_trace import sudoku_decode, sudoku_model
    from smkit.widgets import TraceExplorer
    model = sudoku_model()
    g = sudoku_decode(model, num_samples=1, steps=15)
    ex = TraceExplorer(g.trace, model=model, layout="auto", step=2)
    path = ex.to_html(tmp_path / "board.html")
    page, errors = open_page(chromium, 1300, 1100)
    with checked(page, errors, tmp_path):
        page.goto(Path(path).as_uri())
        page.wait_for_function("document.querySelectorAll('.smkit-cell').length === 81")
        page.eval_on_selector("#smkit-step", "el => { el.value = 7; el.dispatchEvent(new Event('input')); }")
        page.wait_for_function("document.querySelector('.smkit-grid-head').textContent.includes('step 7 of 0\u201314')")
        shown = page.evaluate(BOARD_STATE)
        ex.step = 7
        assert [(c["pos"], c["row"], c["col"], c["state"], c["label"], c["title"]) for c in shown] == [
            (c["position"], c["row"], c["col"], c["state"], c["label"], c["tip"]) for c in ex.cells.cells]


def test_tasks_sweep_page_fits_a_narrow_window_and_draws_offline(chromium, tmp_path):
    """tasks.write_sweep's page: plotly.js is inside it (no network at all here), and the four panels and the
    legend fit a window narrower than the old fixed 1160 px figure."""
    import pandas as pd

    from smkit import tasks
    rows = [{"model": m, "soft_mask": m == "sm", "strategy": s, "cells_per_step": c, "steps": 9 // c + 1,
             "accuracy": a, "ci_low": a - 0.05, "ci_high": a + 0.05}
            for m in ("binary", "sm") for s in tasks.ORDER_STRATEGIES for c, a in ((1, 0.3), (2, 0.25), (4, 0.2), (8, 0.1))]
    _, html_path = tasks.write_sweep(pd.DataFrame(rows), tmp_path, title="sudoku: puzzles solved")
    page, errors = open_page(chromium, 1000, 700)
    with checked(page, errors, tmp_path):
        requested: list[str] = []
        page.route("http*://**", lambda route: (requested.append(route.request.url), route.abort()))
        page.goto(html_path.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1", timeout=30_000)
        assert requested == []
        edges = page.evaluate("""() => { const gd = document.querySelector('.js-plotly-plot'), L = gd._fullLayout;
            const legend = gd.querySelector('.legend').getBoundingClientRect();
            return {width: L.width, page: document.documentElement.clientWidth, legend: legend.right,
                    panels: Object.keys(L).filter((k) => /^xaxis\\d*$/.test(k)).map((k) => L[k]._offset + L[k]._length),
                    scroll: document.documentElement.scrollWidth}; }""")
        assert len(edges["panels"]) == 4 and max(edges["panels"]) <= edges["page"], edges
        assert edges["legend"] <= edges["page"] and edges["scroll"] <= edges["page"], edges
        assert_nothing_covered_or_clipped(page.evaluate(PLOT_GEOMETRY), edges["page"])
        page.screenshot(path=str(tmp_path / "tasks_sweep.png"), full_page=True)
