"""The library's layers: every module of smkit/ imports; a module imports only from its own layer or the ones below
(imports at the top and inside functions both count); nothing imports, directly or through others, a module that
imports it back. widgets/ has its own test."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SMKIT = Path(__file__).resolve().parent.parent / "smkit"
# Lowest first. A module may import its own layer and any layer of a lower rank; two layers of one rank (sampling,
# io) never import each other. The top-level modules (smkit itself, cli, notebooks, demo) are the front ends.
RANK = {"core": 0, "models": 1, "sampling": 2, "io": 2, "tasks": 3, "training": 4, "evaluation": 4, "front": 5}
# The one allowed upward import: `DiffusionLM.save_pretrained` / `.load_pretrained` keep Hugging Face's spelling and
# hand over to io inside the method.
ALLOWED_UP = {("smkit.models.denoiser", "smkit.io.formats")}


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
    """A cycle among `modules` (following imports between them only, the run-time hand-overs of ALLOWED_UP
    excepted), as a path that ends where it starts."""
    modules = set(modules)
    graph = {m: sorted(d for d in imports_of(m) & modules if (m, d) not in ALLOWED_UP) for m in modules}
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


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else "front"


def layer_violations(modules=None) -> list[str]:
    """Every import from a module to a higher layer, or across two layers of one rank, not in ALLOWED_UP."""
    out = []
    for m in sorted(modules or MODULES):
        for dep in sorted(imports_of(m)):
            a, b = layer(m), layer(dep)
            if (m, dep) not in ALLOWED_UP and (RANK[b] > RANK[a] or (RANK[b] == RANK[a] and a != b)):
                out.append(f"{m} ({a}) imports {dep} ({b})")
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_every_module_sits_in_a_known_layer():
    assert all(layer(m) in RANK for m in MODULES), sorted(m for m in MODULES if layer(m) not in RANK)


def test_the_resolver_sees_relative_package_and_function_imports():
    assert {"smkit.models.config", "smkit.core.softmask"} <= imports_of("smkit.models.denoiser")
    assert "smkit.io.formats" in imports_of("smkit.models.denoiser")   # inside a function
    assert "smkit.io.checkpoint" in imports_of("smkit.tasks.registry")  # `from ..io.checkpoint import`
    assert "smkit.core.hooks" in imports_of("smkit")                  # `from .core import hooks`


def test_no_layer_imports_a_higher_one():
    assert layer_violations() == []


def test_the_layer_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The check above can fail: a core module importing the sampler is reported."""
    bad = tmp_path / "smkit" / "core" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ..sampling.loop import generate\n")
    monkeypatch.setitem(MODULES, "smkit.core.bad", bad)
    assert layer_violations(["smkit.core.bad"]) == ["smkit.core.bad (core) imports smkit.sampling.loop (sampling)"]


def test_the_model_knows_no_files():
    assert imports_of("smkit.models.denoiser") & {m for m in MODULES if layer(m) == "io"} == {"smkit.io.formats"}
    assert not any(layer(d) == "io" for m in MODULES if layer(m) == "models" and m != "smkit.models.denoiser"
                   for d in imports_of(m))


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(MODULES)
    assert cycle is None, "import cycle in smkit/: " + " -> ".join(cycle)
