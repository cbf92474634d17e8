"""`smkit train --dry-run`: every shipped recipe passes it offline on CPU; a rotted recipe fails clearly."""
import tempfile
from pathlib import Path

import pytest
import yaml

from smkit.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PAPER = CONFIGS / "paper-owt.yaml"


@pytest.fixture
def private_tmp(tmp_path_factory, monkeypatch) -> Path:
    """A temp folder of the test's own, so a dry run elsewhere on the machine cannot look like its leftover."""
    folder = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_pass_the_dry_run(config, tmp_path, private_tmp, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a run would write runs/... here
    processes = ["--dry-run-processes", "8"] if config == PAPER else []
    assert main(["train", "--config", str(config), "--dry-run", *processes]) == 0
    out = capsys.readouterr().out
    assert "dry run passed" in out and "2 updates on the local sample" in out
    assert list(tmp_path.iterdir()) == [] and list(private_tmp.iterdir()) == []  # nothing permanent written
    if config == PAPER:
        # the full-size model, counted at the GPT-2 vocabulary + [MASK]; every update of p_sm=0.8 drawn for seed 0
        assert "full-size model 169,627,221 parameters" in out  # the paper's DiT (169M) + 3 SM scalars
        assert "(2 soft-masked)" in out  # the two-pass SM path ran on the full-size model
        assert "Skylion007/openwebtext" in out and "same streaming data path" in out


@pytest.mark.parametrize("change, words", [
    ({"learning_rate": 3.0e-4}, "unknown config field(s) ['learning_rate']"),
    ({"p_sm": 1.5}, "p_sm=1.5: must lie in [0, 1]"),
    ({"lr": "3e-4"}, "lr='3e-4': must be a number (YAML reads 3e-4 as text"),
    ({"streaming": "yes"}, "streaming='yes': must be bool"),
    ({"num_heads": 7}, "hidden_size=768 must be divisible by num_heads=7"),
    ({"micro_batch_size": 48}, "micro_batch_size=48: must divide each process's share of the batch (512 / 8"),
    ({"batch_size": 500}, "batch_size=500: the global batch must divide by the number of processes (8)"),
    ({"tokenizer": ""}, "tokenizer='': choose one of"),
    ({"sm": {"k": 0}}, "sm.k=0"),
    ({"k": 0}, "give the soft-masking values in sm only"),
])
def test_rotted_recipe_fails_before_compute(change, words, tmp_path, private_tmp, capsys):
    recipe = {**yaml.safe_load(PAPER.read_text()), **change}
    (tmp_path / "rotted.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(tmp_path / "rotted.yaml"), "--dry-run", "--dry-run-processes", "8"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("config", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_recipe_uses_the_current_keys(config):
    """No recipe under configs/ (the sudoku twins had `k:` and `init_sm:`) needs the deprecated-key upgrade."""
    from smkit.training.train import upgrade_keys
    d = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert upgrade_keys(d) == d, f"{config.name} uses deprecated keys: write them as {upgrade_keys(d).get('sm')}"
