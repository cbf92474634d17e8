"""The tasks by name, `get(name, **params)`, and `for_model(model)`: the task a model was trained on.

A task model is one trained with `corpus="task:NAME"` and `task_params`; its TrainConfig is saved in the
checkpoint's smkit.json (`train_config`), kept on the in-memory model returned by `smkit.train` and on a model
loaded with `smkit.load_pretrained` (`model.train_config`), so the task is rebuilt from it.
"""
from __future__ import annotations

from pathlib import Path

from .add import Add
from .base import Task, TaskError
from .dyck import Dyck
from .sort import Sort
from .sudoku import Sudoku

_CLASSES = {cls.NAME: cls for cls in (Sudoku, Sort, Add, Dyck)}
TASKS = tuple(_CLASSES)
PREFIX = "task:"   # a TrainConfig corpus "task:NAME" trains on a task


def get(name: str, **params) -> Task:
    """The task `name` (one of TASKS) with `params` (unknown or bad ones raise TaskError listing the allowed)."""
    if name not in _CLASSES:
        raise TaskError(f"task={name!r}: unknown task; choose one of {list(TASKS)}")
    return _CLASSES[name](**params)


def is_task_corpus(corpus) -> bool:
    return isinstance(corpus, str) and corpus.startswith(PREFIX)


def from_corpus(corpus: str, params: dict | None = None) -> Task:
    """The task of a TrainConfig corpus "task:NAME" with its `task_params`."""
    if not is_task_corpus(corpus):
        raise TaskError(f"corpus={corpus!r}: a task corpus is written {PREFIX}NAME with NAME in {list(TASKS)}")
    name = corpus[len(PREFIX):]
    if name not in _CLASSES:
        raise TaskError(f"corpus={corpus!r}: unknown task {name!r}; choose one of "
                        f"{[PREFIX + t for t in TASKS]}")
    if not isinstance(params or {}, dict):
        raise TaskError(f"task_params={params!r}: must be a mapping of parameter: value")
    return get(name, **(params or {}))


def for_model(model) -> Task:
    """The task (with its parameters) a model was trained on: a model from `smkit.train`, one loaded with
    `smkit.load_pretrained(path)`, or a checkpoint folder. TaskError for a model not trained on a task."""
    if isinstance(model, (str, Path)):
        from ..io.checkpoint import read_manifest
        meta = read_manifest(model)
        config = meta.get("train_config") or meta.get("trainer", {}).get("train_config")
        where = f"checkpoint {str(model)!r}"
    else:
        config = getattr(model, "train_config", None)
        where = f"this {type(model).__name__}"
    if not config:
        raise TaskError(f"{where} has no training record (train_config): for_model needs a model trained by "
                        f"smkit.train with corpus='{PREFIX}NAME' (NAME in {list(TASKS)})")
    if not is_task_corpus(config.get("corpus")):
        raise TaskError(f"{where} was trained on corpus={config.get('corpus')!r}, not on a task "
                        f"(corpus='{PREFIX}NAME' with NAME in {list(TASKS)})")
    return from_corpus(config["corpus"], config.get("task_params") or {})


def parse_param(text: str) -> tuple[str, object]:
    """"key=value" (a --task-param flag) as (key, value): the value read as an integer, a float, true/false,
    else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise TaskError(f"task parameter {text!r}: write KEY=VALUE, e.g. givens=35")
    raw = raw.strip()
    for kind in (int, float):
        try:
            return key.strip(), kind(raw)
        except ValueError:
            pass
    low = raw.lower()
    if low in ("true", "false"):
        return key.strip(), low == "true"
    return key.strip(), raw
