"""One base for smkit's own errors: `except smkit.SmkitError` catches each, `except ValueError` still does."""
import importlib
import inspect
import pkgutil

import pytest

import smkit
from smkit import SmkitError


def _modules():
    names = [m.name for m in pkgutil.walk_packages(smkit.__path__, "smkit.") if m.name != "smkit.widgets"]
    return [importlib.import_module(n) for n in names] + [importlib.import_module("smkit.widgets")]


def public_error_classes():
    found = set()
    for module in _modules():
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception) and name.endswith("Error")
                    and not name.startswith("_") and obj.__module__.startswith("smkit")):
                found.add(obj)
    return sorted(found, key=lambda c: c.__qualname__)


def test_the_known_error_classes_are_found():
    names = {c.__name__ for c in public_error_classes()}
    assert {"ConfigError", "CheckpointError", "DataError", "AdapterError", "DenoiserError", "JudgeError",
            "NotebookError", "ParameterError"} <= names


@pytest.mark.parametrize("cls", public_error_classes(), ids=lambda c: c.__name__)
def test_every_public_error_is_a_smkit_error_and_a_value_error(cls):
    assert issubclass(cls, SmkitError) and issubclass(cls, ValueError)


def test_smkit_error_is_exported():
    assert "SmkitError" in smkit.__all__ and issubclass(SmkitError, ValueError)


def test_real_bad_inputs_raise_smkit_errors(tmp_path):
    from smkit.io.data import load_corpus
    from smkit.evaluation.judge import judge_dir
    from smkit.notebooks import run_notebook
    bad = [
        (lambda: smkit.TrainConfig(p_sm=1.5).validate(), "p_sm=1.5"),
        (lambda: load_corpus(str(tmp_path / "missing.txt")), "no such file"),
        (lambda: smkit.load_pretrained(str(tmp_path)), "not an smkit checkpoint"),
        (lambda: judge_dir(str(tmp_path / "no-judge")), "no-judge"),
        (lambda: run_notebook(tmp_path / "missing.ipynb"), "does not exist"),
    ]
    for call, words in bad:
        with pytest.raises(SmkitError, match=words):
            call()


def test_the_cli_reports_a_smkit_error_in_one_line(tmp_path, capsys):
    from smkit.cli import main
    assert main(["train", "--p-sm", "1.5", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smkit train: error: p_sm=1.5") and "Traceback" not in err


def test_every_error_class_is_exported_from_smkit():
    from smkit.notebooks import NotebookError
    missing = [c.__name__ for c in public_error_classes() if c is not NotebookError and getattr(smkit, c.__name__, None) is not c]
    assert missing == [] and NotebookError.__mro__[1] is SmkitError


@pytest.mark.parametrize("call", [
    lambda: smkit.ModelConfig(vocab_size=2).validate(),
    lambda: smkit.SoftMask(k=0),
    lambda: smkit.hooks.HookSet({"nope": print}),
    lambda: __import__("smkit.core.schedules", fromlist=["x"]).get_schedule("x"),
    lambda: __import__("smkit.core.strategies", fromlist=["x"]).get_strategy("x"),
], ids=["model-config", "softmask-k", "hook-point", "schedule", "strategy"])
def test_bad_input_raises_a_smkit_error(call):
    with pytest.raises(SmkitError):
        call()


def _bare_value_or_type_errors(root):
    """`raise ValueError(...)` / `raise TypeError(...)` in the library's source, except lines marked `# internal`."""
    import ast
    from pathlib import Path
    found = []
    for path in sorted(Path(root).rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in ("ValueError", "TypeError") \
                        and "# internal" not in lines[node.lineno - 1]:
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_bare_value_or_type_error_on_user_input():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    assert _bare_value_or_type_errors(root / "smkit") + _bare_value_or_type_errors(root / "widgets") == []


def test_the_error_rule_catches_a_bare_value_error(tmp_path):
    (tmp_path / "bad.py").write_text("def f(x):\n    if x < 0:\n        raise ValueError('x: must be >= 0')\n")
    assert _bare_value_or_type_errors(tmp_path) == ["bad.py:3"]
