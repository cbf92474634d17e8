"""study/lambda_sweep.py (which lambda lowers a sudoku solver's loss, by entropy) on the shipped SM solver: the
decode states mask only blanks, lambda 0 everywhere is exactly the plain masked input, and every blank lands in
one entropy bin."""
import json

import pytest
import torch

import smkit
from smkit.core.errors import ConfigError
from smkit import tasks
from study import lambda_sweep


def test_decode_states_mask_some_blanks_and_never_a_given():
    task = tasks.get("sudoku", givens=50)
    examples = task.generate(40, 3, split="test")
    answers, masked = lambda_sweep.decode_states(task, examples, seed=3)
    for example, row, m in zip(examples, answers, masked):
        given = torch.tensor(example.fixed)
        assert not (m & given).any()
        assert int(m.sum()) <= example.masked
    shares = masked.sum(-1).float() / 31
    assert shares.min() < 0.25 and shares.max() > 0.75          # states from early and late in a decode


def test_lambda_zero_everywhere_is_the_plain_masked_input():
    model = smkit.load_pretrained("sudoku-sm")
    task = tasks.get("sudoku", givens=50)
    out = lambda_sweep.sweep(model, task, n=24, seed=1, values=(0.0, 1.0), batch_size=10)
    # the same states, scored with the plain [MASK] input and no SM at all
    x, answers, masked = lambda_sweep.scored_states(task, 24, 1, model.mask_id)
    with torch.no_grad():
        nll = -model(x).gather(-1, answers.unsqueeze(-1)).squeeze(-1)
    plain = (torch.where(masked, nll, torch.zeros_like(nll)).sum(-1) / masked.sum(-1)).mean().item()
    with_zero = out["nll_learned_gate"] + out["everywhere"]["0"]["delta_nll"]
    assert abs(with_zero - plain) < 1e-5
    assert sum(e["count"] for e in out["by_entropy"].values()) == out["blanks_seen"] == int(masked.sum())
    assert all(e["best_lambda"] in (0.0, 1.0) for e in out["by_entropy"].values() if e["count"])
    json.dumps(out)                                               # the --out file is plain JSON


def test_run_and_markdown_write_the_documents_block(tmp_path):
    out = tmp_path / "sweep.json"
    lambda_sweep.main(["run", "sudoku-sm", "--label", "the shipped one", "--n", "8", "--values", "0", "0.5",
                       "--out", str(out)])
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- table:gate-study-givens-50 -->\nold\n<!-- /table:gate-study-givens-50 -->\nafter\n")
    lambda_sweep.main(["markdown", str(out), "--write", str(doc)])
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    (row,) = [line for line in text.splitlines() if line.startswith("| the shipped one |")]
    assert row.count("|") == 3 + len(lambda_sweep.EDGES)          # solver, gate, lambda, one cell per bin


def test_results_gate_study_table_is_what_its_command_writes():
    """docs/results.md's gate-study table is rendered from the committed sweep files (a hand edit fails here)."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "results.md").read_text()
    block = text.split("<!-- table:gate-study-givens-50 -->\n", 1)[1].split("\n<!-- /table:gate-study-givens-50 -->")[0]
    runs = [json.loads((root / "docs" / "results" / "solver" / f"lambda-sweep-{name}.json").read_text())
            for name in ("first-sm", "fast-gate", "sudoku-sm")]
    assert block == lambda_sweep.markdown_table(runs), \
        "run python -m study.lambda_sweep markdown docs/results/solver/lambda-sweep-*.json --write docs/results.md"


def test_a_lambda_outside_zero_one_is_refused_before_the_model_loads(tmp_path):
    with pytest.raises(ConfigError, match=r"--values.*\[0, 1\].*1\.5"):
        lambda_sweep.main(["run", str(tmp_path / "no-such-model"), "--values", "0", "1.5"])
