"""Packaging promises: pins, extras shared by pip and conda users, lazy widgets, shipped model size."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_torch_is_a_range_in_pyproject_and_pinned_by_make_install():
    from packaging.requirements import Requirement
    deps = [Requirement(d) for d in _pyproject()["project"]["dependencies"]]
    torch = next(r for r in deps if r.name == "torch")
    assert "==" not in str(torch.specifier), "an exact pin fights users' own (CUDA) torch builds"
    assert torch.specifier.contains("2.13.0") and not torch.specifier.contains("2.3.1")
    assert any(r.name == "transformers" and re.fullmatch(r"==\d+\.\d+\.\*", str(r.specifier)) for r in deps)
    recipe = (ROOT / "Makefile").read_text().split("\n$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in recipe.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert "torch==2.13.0" in installs[0], "torch goes in first, pinned (the CPU wheel)"
    assert all("torch==2.13.0" in line for line in installs if '-e ".[dev]"' in line), \
        "the editable install must resolve against the same pin"


def test_environment_yml_installs_existing_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = set(_pyproject()["project"]["optional-dependencies"])
    editable = [p for p in pip if p.startswith("-e .")]
    assert editable, "environment.yml must install smkit itself"
    named = re.search(r"\[(.*)\]", editable[0]).group(1).split(",")
    assert set(named) <= extras
    assert "torch==2.13.0" in pip


def test_widgets_folder_is_the_smkit_widgets_subpackage():
    cfg = _pyproject()["tool"]["setuptools"]
    assert cfg["package-dir"]["smkit.widgets"] == "widgets" and "widgets" not in cfg["packages"]


def test_import_smkit_does_not_import_widget_libraries():
    code = "import sys, smkit; print([m for m in ('ipywidgets', 'plotly', 'anywidget') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _build_wheel(tmp_path) -> tuple[set, str]:
    """Build the wheel offline from a copy of the sources (no build/ or egg-info left in the checkout);
    returns its file names and everything the build printed."""
    import shutil
    import zipfile
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("smkit", "widgets"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    code = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # else: a "warning" about it
    r = subprocess.run([sys.executable, "-W", "always", "-c", code, str(tmp_path / "dist")], cwd=src, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    wheel = tmp_path / "dist" / r.stdout.strip().splitlines()[-1]
    return set(zipfile.ZipFile(wheel).namelist()), r.stdout + r.stderr


def test_wheel_ships_every_model_the_widgets_and_every_subpackage_without_warnings(tmp_path):
    names, log = _build_wheel(tmp_path)
    assert "warning" not in log.lower(), log
    models = sorted(p.name for p in (ROOT / "smkit" / "pretrained").iterdir() if p.is_dir())
    assert models, "no shipped model folders"
    for model in models:
        shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "smkit/pretrained" / model).rglob("*") if p.is_file()}
        assert f"smkit/pretrained/{model}/model.safetensors" in names
        assert shipped <= names, f"{model}: missing {sorted(shipped - names)}"
    widgets = {f"smkit/widgets/{p.name}" for p in (ROOT / "widgets").glob("*.py")}
    assert widgets and widgets <= names
    assert not any(n.startswith("widgets/") for n in names), "widgets/ must install as smkit.widgets only"
    code = {p.relative_to(ROOT).as_posix() for p in (ROOT / "smkit").rglob("*.py") if "__pycache__" not in p.parts}
    assert code <= names, f"subpackages missing from [tool.setuptools] packages: {sorted(code - names)}"
