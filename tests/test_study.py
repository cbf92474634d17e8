"""The reproduction study's plan and drivers cannot rot: every planned model is a valid training config, every
planned decode a valid sweep, and the report can refresh every table block of docs/results.md."""
import importlib.util
from pathlib import Path

import pytest
import yaml

import smkit
from smkit.training.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    """A module of the study package (the repository root is on pytest's path: pyproject's `pythonpath`)."""
    return importlib.import_module(f"study.{name}")


@pytest.fixture(scope="module")
def plan():
    return yaml.safe_load((ROOT / "study" / "plan.yaml").read_text())


def test_every_planned_model_is_a_valid_training_config(plan, tmp_path):
    jobs = load("run_train").jobs(plan, tmp_path, None)
    assert len(jobs) == sum(len(s) for s in plan["seeds"].values())
    assert {"binary", "sm", "sm-iso-update"} <= set(plan["variants"])
    for name, cfg in jobs:
        config = TrainConfig.from_dict(cfg).validate()
        assert config.out_dir.endswith(name)
    main = [cfg for name, cfg in jobs if name.rsplit("-s", 1)[0] in ("binary", "sm", "sm-iso-update")]
    assert len(main) >= 9  # three seeds each


def test_every_planned_decode_is_a_valid_sweep(plan, tmp_path):
    runs = list(load("run_decode").jobs(plan, tmp_path, tmp_path / "decode", 8))
    assert runs
    for name, setting, model, out, params in runs:
        assert set(params["strategies"]) <= set(smkit.STRATEGIES)
        assert set(params["decodings"]) <= {"binary", "SM"}
        assert all(isinstance(d, int) and d >= 1 for d in params["budget_divisors"])
        assert params.get("lambda_schedule", "none") in ("none", "linear", "stepwise")
    settings = {(name.rsplit("-s", 1)[0], setting) for name, setting, *_ in runs}
    assert {("binary", "remdm"), ("sm", "remdm"), ("sm", "lambda-linear"), ("sm", "lambda-stepwise")} <= settings


def test_report_refreshes_only_marked_blocks(tmp_path):
    report = load("report")
    doc = tmp_path / "r.md"
    doc.write_text("intro\n<!-- table:a -->\nold\n<!-- /table:a -->\nprose stays\n")
    report.refresh(doc, {"a": "| new |"})
    assert doc.read_text() == "intro\n<!-- table:a -->\n| new |\n<!-- /table:a -->\nprose stays\n"
    with pytest.raises(SystemExit, match="table:b"):
        report.refresh(doc, {"b": "x"})


def test_results_page_has_every_table_block():
    text = (ROOT / "docs" / "results.md").read_text()
    for name in ("references", "noise", "training", "main", "ablations", "decode_ablations"):
        assert f"<!-- table:{name} -->" in text and f"<!-- /table:{name} -->" in text
