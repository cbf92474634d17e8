"""notebooks/README.md says how the .ipynb/.py pairs work and how to recover when JupyterLab refuses a pair
edited outside it. Here the refusal happens for real (jupytext's contents manager, the one JupyterLab uses, on a
copy whose .ipynb was edited and is newer), and the README's own command clears it, keeping the edit."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _readme_sync_command() -> str:
    """The command the README gives for a pair JupyterLab refuses to open."""
    text = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    assert "is more recent than" in text, "the README must quote the message JupyterLab shows"
    (command,) = set(re.findall(r"^\s+(jupytext --sync notebooks/X\.ipynb)\s*$", text, flags=re.M))
    return command


def _open_in_lab(root: Path, name: str):
    from jupytext import TextFileContentsManager
    return TextFileContentsManager(root_dir=str(root)).get(f"notebooks/{name}")


def test_the_readme_command_clears_labs_refusal_and_keeps_the_edit(tmp_path):
    import nbformat
    command = _readme_sync_command()
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    for suffix in (".ipynb", ".py"):
        shutil.copy(ROOT / "notebooks" / f"tasks{suffix}", nb_dir / f"tasks{suffix}")
    nb = nbformat.read(str(nb_dir / "tasks.ipynb"), as_version=4)
    edited = next(c for c in nb.cells if c.cell_type == "code")
    edited.source = "# edited outside JupyterLab\n" + edited.source
    nbformat.write(nb, str(nb_dir / "tasks.ipynb"))
    later = time.time() + 60
    os.utime(nb_dir / "tasks.ipynb", (later, later))  # as an edit made after the last save in Lab
    with pytest.raises(Exception, match=r"tasks\.ipynb \(last modified .*\) is more recent than notebooks/tasks\.py"):
        _open_in_lab(tmp_path, "tasks.ipynb")
    args = command.replace("X.ipynb", "tasks.ipynb").split()
    r = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    opened = _open_in_lab(tmp_path, "tasks.ipynb")["content"]
    assert any(c.source.startswith("# edited outside JupyterLab\n") for c in opened.cells)
    assert "# edited outside JupyterLab" in (nb_dir / "tasks.py").read_text(encoding="utf-8")
