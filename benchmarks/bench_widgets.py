"""Time to move the TraceExplorer one step (and to select a position) for length 256 x 256 steps.

The trace comes from the real sampler (smkit.generate) on a tiny model; the widgets are driven in
Python as the browser would drive them (slider.value, strip.selected), so this times everything the kernel
does per step: the token strip's traitlets and the plotly updates in `batch_update()`. Target: < 100 ms.
It is kernel-side CPU work, so its rows are always device "cpu".
With --browser it also times the whole round trip in JupyterLab + chromium (the harness of
tests/test_widgets_browser.py): from an arrow key on the slider until the token strip and the heatmap
marker show the new step in the page, which adds the kernel round trip and the browser's drawing.
Usage: python benchmarks/bench_widgets.py [--length 256] [--steps 256] [--moves 100] [--browser]
                                          [--threads N] [--quick] [--json PATH]
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

import smkit
from common import Row, base_parser, command, finish, resolve
from smkit.models.backbones import BackboneConfig
from smkit.io.data import load_corpus, train_tokenizer

SCRIPT = "bench_widgets.py"
FULL = dict(length=256, steps=256, moves=100)
QUICK = dict(length=32, steps=16, moves=10)


def parser():
    ap = base_parser(__doc__, device_aware=False)
    ap.add_argument("--length", type=int, default=None, help=f"positions in the trace (default {FULL['length']})")
    ap.add_argument("--steps", type=int, default=None, help=f"decoding steps in the trace (default {FULL['steps']})")
    ap.add_argument("--moves", type=int, default=None, help=f"slider moves timed (default {FULL['moves']})")
    ap.add_argument("--browser", action="store_true", help="also time slider -> redrawn page in JupyterLab")
    return ap


def tiny_model(seq_len: int) -> smkit.DiffusionLM:
    torch.manual_seed(0)
    docs = [d for d in load_corpus("shakespeare") if d.name == "hamlet"]
    tok = train_tokenizer(docs, "char")
    cfg = smkit.ModelConfig(vocab_size=len(tok), seq_len=seq_len, sm={"scale": 0.9}, backbone=BackboneConfig(
        hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return smkit.DiffusionLM(cfg, tokenizer=tok).eval()


def collect(argv=None) -> list[Row]:
    args = resolve(parser().parse_args(argv), FULL, QUICK)
    model = tiny_model(args.length)
    t = time.perf_counter()
    g = smkit.generate(model, num_samples=1, length=args.length, steps=args.steps, seed=0)
    decode_s = time.perf_counter() - t

    from smkit.widgets import TraceExplorer
    t = time.perf_counter()
    ex = TraceExplorer(g.trace, model=model, step=0, position=args.length // 2)
    build_s = time.perf_counter() - t
    moves = []
    for i in range(args.moves):  # forward through the steps, as play / a dragged slider does
        t = time.perf_counter()
        ex.step = (i + 1) % ex.view.num_steps
        moves.append(time.perf_counter() - t)
    picks = []
    for i in range(max(5, args.moves // 5)):
        t = time.perf_counter()
        ex.position = (7 * i) % args.length
        picks.append(time.perf_counter() - t)
    med, p95 = statistics.median(moves), sorted(moves)[max(0, int(0.95 * len(moves)) - 1)]
    pick = statistics.median(picks)
    options = {k: getattr(args, k) for k in FULL}
    cmd = command(SCRIPT, None, options, args, device_aware=False)
    print(f"trace: length {args.length} x {ex.view.num_steps} steps (decoded in {decode_s:.1f} s); "
          f"explorer built in {build_s:.2f} s")
    print(f"  move the slider one step: median {med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
          f"max {max(moves) * 1e3:.1f} ms over {len(moves)} moves (target < 100 ms)")
    print(f"  select a position: median {pick * 1e3:.1f} ms over {len(picks)} picks")
    shape = f"{args.length} positions x {ex.view.num_steps} steps"
    rows = [Row("widget_step_ms", f"widget slider, one step, median ({shape}, kernel side)", med * 1e3, "ms",
                "cpu", cmd, "< 100", {"p95": p95 * 1e3, "max": max(moves) * 1e3, "moves": len(moves)}),
            Row("widget_step_p95_ms", f"widget slider, one step, p95 ({shape}, kernel side)", p95 * 1e3, "ms",
                "cpu", cmd, "< 100"),
            Row("widget_select_ms", f"widget, select a position, median ({shape}, kernel side)", pick * 1e3, "ms",
                "cpu", cmd, "< 100")]
    if args.browser:
        ms = browser_round_trip(args.length, args.steps, moves=15)
        rows.append(Row("widget_browser_round_trip_ms", f"widget slider in JupyterLab + chromium, arrow key -> "
                        f"redrawn ({shape})", ms, "ms", "cpu", cmd + " --browser"))
    print(f"  command: {cmd}")
    return rows


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    finish(collect(argv), args)
    return 0


ROUND_TRIP = """async ([steps]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    (p) => p.data && p.data.length === 2 && p.data.every((t) => t.type === 'heatmap'));
  const head = document.querySelector('.smkit-strip-head');
  const marker = () => gd.querySelector('.smkit-plot-markers > div').style.top;
  const times = [];
  for (let i = 0; i < steps; i++) {
    const m0 = marker(), h0 = head.textContent, t0 = performance.now();
    document.querySelector('.widget-slider .noUi-handle').dispatchEvent(
      new KeyboardEvent('keydown', {key: 'ArrowRight', keyCode: 39, bubbles: true}));
    while (marker() === m0 || head.textContent === h0) await new Promise((r) => requestAnimationFrame(r));
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 300));
  }
  return times;
}"""


def browser_round_trip(length: int, steps: int, moves: int) -> float:
    """Median ms from an arrow key on the slider to the strip and the heatmap marker redrawn in the page."""
    import tempfile
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_widgets_browser as T
    from playwright.sync_api import sync_playwright

    cells = [f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\nimport smkit\n"
             f"from bench_widgets import tiny_model\nm = tiny_model({length})\n"
             f"g = smkit.generate(m, length={length}, steps={steps}, seed=0)",
             f"from smkit.widgets import TraceExplorer\nTraceExplorer(g.trace, model=m, step=0, position={length // 2})"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "nb"
        root.mkdir()
        T._notebook(root / "bench.ipynb", cells)
        lab = T.JupyterLab(root, Path(tmp) / "jupyter")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=T.CHROMIUM, headless=True, args=T.CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                page.set_default_timeout(300_000)
                page.goto(lab.url("lab/tree/bench.ipynb"))
                page.wait_for_function(T.KERNEL_IDLE)
                page.click(".jp-Notebook")
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                T._wait_for_output(page, ".smkit-tok", 300)
                page.wait_for_function(f"({T.OVERLAY_MARKER_STATE})() !== null")
                page.wait_for_timeout(2000)
                times = page.evaluate(ROUND_TRIP, [moves])
                browser.close()
        finally:
            lab.stop()
    med = statistics.median(times)
    print(f"in JupyterLab + chromium, arrow key -> strip and marker redrawn: median {med:.0f} ms, "
          f"min {min(times):.0f}, max {max(times):.0f} over {len(times)} moves (kernel round trip included)")
    return med


if __name__ == "__main__":
    sys.exit(main())
