"""The JavaScript both position views (`token_strip.ESM`, `cell_grid.ESM`) start with, and the CSS of what it draws.

`FRAME_JS` defines `ink(background)` (white or black text, by luminance), `frame(model, el, kind, body,
hint, legendNames)`, which draws the view's frame into `el` and returns `{head, body, tip}`: a title line
(class `<kind>-head`), the body the view fills (`<kind>-<body>`), a hover line (`<kind>-tip`, showing
`hint` at first) and a legend of one chip per state of the model's `palette` (`<kind>-legend`), and
`redrawOn(model, names, draw)`: draw now and on every change of `names`; it returns the clean-up function
anywidget's `render` returns. Each view's ESM is `FRAME_JS` followed by its own `render`: an anywidget ESM
is one module loaded from a string, so the views compose the text instead of importing each other.
"""

FRAME_JS = r"""
function luminance(hex) {
  const h = (hex || "#ffffff").replace("#", "");
  const c = [0, 2, 4].map((i) => parseInt(h.substr(i, 2), 16) / 255);
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

function ink(background) {
  return luminance(background) < 0.5 ? "#fff" : "#111";
}

function frame(model, el, kind, body, hint, legendNames) {
  const part = (cls) => { const d = document.createElement("div"); d.className = cls; return d; };
  const root = part(kind), head = part(kind + "-head"), main = part(kind + "-" + body);
  const tip = part(kind + "-tip"), legend = part(kind + "-legend");
  tip.textContent = hint;
  const palette = model.get("palette") || {};
  const names = Object.assign({ soft: "soft (shade: \u03bb from 0 to the gate\u2019s scale)" }, legendNames);
  for (const name of Object.keys(palette)) {
    const chip = document.createElement("span");
    chip.className = "smkit-chip";
    chip.style.background = palette[name];
    chip.style.color = ink(palette[name]);
    chip.textContent = names[name] || name;
    legend.appendChild(chip);
  }
  root.append(head, main, tip, legend);
  el.appendChild(root);
  return { head, body: main, tip };
}

function redrawOn(model, names, draw) {
  for (const n of names) model.on("change:" + n, draw);
  draw();
  return () => { for (const n of names) model.off("change:" + n, draw); };
}
"""

FRAME_CSS = """
.smkit-chip { padding: 0 5px; border-radius: 3px; }
"""
