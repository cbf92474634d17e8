"""The library's import graph: every module of smkit/ imports, and no module imports, directly or through others,
one that imports it back (imports at the top and inside functions both count; widgets/ has its own test)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SMKIT = Path(__file__).resolve().parent.parent / "smkit"
# The model and everything that reads or writes its checkpoints: the cycle this test was written against.
CHECKPOINT_MODULES = ("smkit.model", "smkit.model_config", "smkit.saving", "smkit.checkpoint", "smkit.hf",
                      "smkit.hf_load", "smkit.adapters")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SMKIT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SMKIT.rglob("*.py")) if "__pycache__" not in p.parts}


def _owner(name: str) -> str | None:
    """The smkit module that `name` (a module or a name inside one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The smkit modules `module` imports: `from .x import y`, `from . import x`, `from ..x import y`,
    `import smkit.x`, `from smkit.x import y`, at the top or inside functions."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out.update(owner for owner in map(_owner, names) if owner is not None and owner != module)
    return out


def find_cycle(modules) -> list[str] | None:
    """A cycle among `modules` (following imports between them only), as a path that ends where it starts."""
    modules = set(modules)
    graph = {m: sorted(imports_of(m) & modules) for m in modules}
    state: dict[str, str] = {}

    def visit(m, path):
        if state.get(m) == "done":
            return None
        if state.get(m) == "open":
            return path[path.index(m):] + [m]
        state[m] = "open"
        for dep in graph[m]:
            cycle = visit(dep, path + [m])
            if cycle:
                return cycle
        state[m] = "done"
        return None

    for m in sorted(modules):
        cycle = visit(m, [])
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_the_resolver_sees_relative_package_and_function_imports():
    assert {"smkit.saving", "smkit.model_config", "smkit.softmask"} <= imports_of("smkit.model")
    assert "smkit.model" in imports_of("smkit.continued")      # inside a function
    assert "smkit.checkpoint" in imports_of("smkit.tasks.registry")  # `from ..checkpoint import`
    assert "smkit.hooks" in imports_of("smkit")                 # `from . import hooks`


def test_checkpoint_io_has_no_import_cycle():
    assert find_cycle(CHECKPOINT_MODULES) is None, " -> ".join(find_cycle(CHECKPOINT_MODULES))
    assert "smkit.adapters" not in imports_of("smkit.saving") and "smkit.hf" not in imports_of("smkit.saving")
    assert not imports_of("smkit.model_config") & {"smkit.model", "smkit.saving"}


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(MODULES)
    assert cycle is None, "import cycle in smkit/: " + " -> ".join(cycle)
