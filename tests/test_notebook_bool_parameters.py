"""Papermill's own CLI passes `-p soft_mask true` as the text "true" (only `True`/`False` become bools): every
shipped notebook's bool parameter accepts the words true/false in any case, as bools, and refuses other words
with a message naming the parameter. Each notebook is prepared by the `papermill` command itself
(--prepare-only, no kernel); its parameter, injected and checking cells then run here."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill")
NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
BIN = Path(sys.executable).parent


def _bool_parameters(path: Path) -> list[str]:
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return re.findall(r"^(\w+)\s*:\s*bool\s*=", cell.source, flags=re.M)


CASES = [(p, name) for p in sorted(NB_DIR.glob("*.ipynb")) + sorted((NB_DIR / "workshop").glob("*.ipynb"))
         for name in _bool_parameters(p)]


def test_the_shipped_notebooks_have_bool_parameters():
    assert {p.name for p, _ in CASES} >= {"decode.ipynb", "train.ipynb", "quickstart.ipynb", "04-samplers.ipynb"}


def _checked(path: Path, name: str, word: str, tmp_path: Path, monkeypatch) -> dict:
    """Prepare `path` with `papermill -p NAME WORD`, then run its parameters, injected and checking cells."""
    import nbformat
    prepared = tmp_path / path.name
    r = subprocess.run([str(BIN / "papermill"), str(path), str(prepared), "--prepare-only", "-k", "python3",
                        "-p", name, word], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cells = nbformat.read(str(prepared), as_version=4).cells
    injected = next(i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", []))
    if word.lower() == "true" and word != "True":
        assert f'{name} = "{word}"' in cells[injected].source  # papermill injected the text, not a bool
    check = next(c for c in cells[injected + 1:] if c.cell_type == "code")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMKIT_RUN_DIR", raising=False)
    ns: dict = {}
    for cell in (cells[injected - 1], cells[injected], check):
        exec(compile(cell.source, f"{path.name} cell", "exec"), ns)
    return ns


@pytest.mark.parametrize("path, name", CASES, ids=lambda x: x.name if isinstance(x, Path) else x)
def test_papermill_word_true_is_a_bool(path, name, tmp_path, monkeypatch):
    assert _checked(path, name, "true", tmp_path, monkeypatch)[name] is True


@pytest.mark.parametrize("path, name", CASES[:1], ids=lambda x: x.name if isinstance(x, Path) else x)
def test_any_case_and_papermills_own_bools_and_another_word_refused(path, name, tmp_path, monkeypatch):
    from smkit.notebooks import ParameterError
    assert _checked(path, name, "FALSE", tmp_path, monkeypatch)[name] is False
    assert _checked(path, name, "True", tmp_path, monkeypatch)[name] is True  # papermill's bool itself
    with pytest.raises(ParameterError, match=rf"parameter {name}='maybe': must be true or false"):
        _checked(path, name, "maybe", tmp_path, monkeypatch)
