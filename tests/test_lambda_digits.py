"""Lambda is bounded by w_s (0.07-0.21 on the shipped models, 0.0067 at the paper's init): printed with two
decimals a small gate reads "0.00". No notebook, widget or library message formats a lambda or w_s with a fixed
number of decimals below three; three significant digits (`:.3g`) or an explicit "the gate stayed shut" instead."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("notebooks/*.py"), *ROOT.glob("notebooks/workshop/*.py"), *ROOT.glob("widgets/*.py"),
                  *ROOT.glob("smkit/**/*.py")])
# an f-string field whose expression names lambda (lam, lambda, w_s, a gate's scale) with :.0f, :.1f or :.2f
FEW_DECIMALS = re.compile(r"\{[^{}]*(?<![a-z])(lam|w_s|scale)[^{}]*:\.[0-2]f\}")


def test_no_lambda_is_printed_with_two_decimals_or_fewer():
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in SOURCES
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if FEW_DECIMALS.search(line)]
    assert found == [], "\n".join(found)


def test_the_pattern_finds_what_it_looks_for():
    assert FEW_DECIMALS.search('f"mixture up to lambda = {float(step_lam.max()):.2f} (step {peak})"')
    assert not FEW_DECIMALS.search('f"mixture up to lambda = {top:.3g}"')
