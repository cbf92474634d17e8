"""study/solver_eval.py (the sudoku solver's report card) and the solver's training configs: candidate counts
agree with a cell-by-cell count, the board reader inverts the task's text, the twins differ only in SM, and the
gate and table commands run on the shipped SM solver."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from smkit import tasks
from smkit.io.checkpoint import read_manifest
from smkit.io.model_files import PRETRAINED_DIR
from smkit.tasks.base import encode
from smkit.tasks.sudoku import random_grid
from smkit.training.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def load_study():
    spec = importlib.util.spec_from_file_location("study_solver_eval", ROOT / "study" / "solver_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def counted(grid, cell):
    """Digits absent from the row, column and box of `cell` in a 9x9 list (0 = blank), one cell at a time."""
    r, c = divmod(cell, 9)
    seen = {grid[r * 9 + j] for j in range(9)} | {grid[i * 9 + c] for i in range(9)}
    br, bc = r // 3 * 3, c // 3 * 3
    seen |= {grid[(br + i) * 9 + bc + j] for i in range(3) for j in range(3)}
    return len(set(range(1, 10)) - seen)


def test_candidates_match_a_cell_by_cell_count():
    ev = load_study()
    rng = np.random.default_rng(3)
    boards = []
    for blanks in (1, 9, 40, 81):
        grid = random_grid(rng)
        for cell in rng.choice(81, size=blanks, replace=False):
            grid[int(cell)] = 0
        boards.append(grid)
    got = ev.candidates(np.array(boards))
    for b, grid in enumerate(boards):
        for cell in range(81):
            if grid[cell] == 0:
                assert got[b, cell] == counted(grid, cell), (b, cell)
    one_blank = boards[0]
    assert got[0, one_blank.index(0)] == 1          # a full grid less one cell: the rules force it
    assert (got[3] == 9).all()                      # an empty board: every digit is a candidate


def test_board_digits_reads_the_task_text_back():
    ev = load_study()
    task = tasks.get("sudoku", givens=72)
    example = task.generate(2, seed=5)[0]
    tokenizer = task.tokenizer()
    mask_id = tokenizer.convert_tokens_to_ids("[MASK]")
    digits = ev.board_digits(encode(task, [example.answer]).numpy(), tokenizer, mask_id)[0]
    assert "".join(map(str, digits)) == example.answer.replace("\n", "")


def valid_solver_configs(*names) -> dict:
    """configs/tasks/sudoku-NAME.yaml as dicts, each checked to be a valid TrainConfig."""
    configs = {n: yaml.safe_load((ROOT / "configs" / "tasks" / f"sudoku-{n}.yaml").read_text()) for n in names}
    for values in configs.values():
        TrainConfig.from_dict(dict(values)).validate()
    return configs


def test_the_twins_are_valid_configs_that_differ_only_in_soft_mask():
    configs = valid_solver_configs("base", "sm-twin", "binary-twin")
    sm, binary = configs["sm-twin"], configs["binary-twin"]
    assert {k for k in sm if sm[k] != binary[k]} == {"soft_mask", "out_dir"}
    assert sm["soft_mask"] and not binary["soft_mask"] and not configs["base"]["soft_mask"]
    assert sm["init_from"] == configs["base"]["out_dir"] + "/model"


def test_the_shipped_round_two_twins_differ_only_in_soft_mask_and_start_from_the_first_binary_twin():
    configs = valid_solver_configs("sm-round2", "binary-round2", "binary-twin")
    sm, binary = configs["sm-round2"], configs["binary-round2"]
    assert {k for k in sm if sm[k] != binary[k]} == {"soft_mask", "sm", "out_dir"}
    assert sm["soft_mask"] and not binary["soft_mask"]
    assert sm["sm"]["scale"] == 0.5 and binary["sm"]["scale"] == 0.0067      # the SM twin's gate starts open
    assert sm["init_from"] == binary["init_from"] == configs["binary-twin"]["out_dir"] + "/model"
    shipped = read_manifest(PRETRAINED_DIR / "sudoku-sm")
    assert [s["config"] for s in shipped["stages"]] == ["configs/tasks/sudoku-binary-twin.yaml",
                                                                 "configs/tasks/sudoku-sm-round2.yaml"]


def test_gate_and_table_run_on_the_shipped_sm_solver(tmp_path):
    ev = load_study()
    ev.main(["gate", "sudoku-sm", "--n", "3", "--out", str(tmp_path / "gate.json")])
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate["blanks_seen"] == sum(v["count"] for v in gate["by_candidates"].values()) > 0
    ev.main(["table", "sudoku-sm", "--n", "3", "--cells", "4", "--strategies", "margin",
             "--out", str(tmp_path / "table.json")])
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert [(r["soft_mask"], r["steps"], r["n"]) for r in rows] == [(True, 3, 3), (False, 3, 3)]
    assert all(0 <= r["ci_low"] <= r["share"] <= r["ci_high"] <= 1 for r in rows)


def test_results_solver_table_is_what_its_command_writes():
    """docs/results.md's 50-givens table is rendered from the committed table file (a hand edit fails here)."""
    ev = load_study()
    data = json.loads((ROOT / "docs" / "results" / "solver" / "table-50.json").read_text())
    text = (ROOT / "docs" / "results.md").read_text()
    block = text.split("<!-- table:solver-givens-50 -->\n", 1)[1].split("\n<!-- /table:solver-givens-50 -->", 1)[0]
    assert block == ev.markdown_table(data), "run python -m study.solver_eval markdown ... --write docs/results.md"
    assert "| `sudoku-sm` | SM on | 0.664 [0.634, 0.693] |" in block


def test_markdown_table_puts_each_setting_in_its_column():
    ev = load_study()
    rows = [{"model": m, "strategy": rule, "cells_per_step": c, "soft_mask": sm, "n": 10, "share": share,
             "ci_low": share - 0.1, "ci_high": share + 0.1}
            for m, sm, rule, c, share in [("b", False, "margin", 1, 0.9), ("b", False, "random", 4, 0.2),
                                          ("s", True, "random", 4, 0.4), ("s", False, "margin", 1, 0.8)]]
    lines = ev.markdown_table({"givens": 50, "rows": rows}).splitlines()
    assert lines[2] == "| solver | decoding | margin, 1 cell | random, 4 cells |"
    assert lines[4] == "| `b` | binary | 0.900 [0.800, 1.000] | 0.200 [0.100, 0.300] |"
    assert lines[5] == "| `s` | SM on |  | 0.400 [0.300, 0.500] |"
    assert lines[6] == "| `s` | SM off | 0.800 [0.700, 0.900] |  |"
