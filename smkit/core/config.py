"""Validated dataclass configs: every bad value fails before compute, naming the field and what is allowed."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError, SmkitError


def is_int(value) -> bool:
    """An integer, Python's or NumPy's; a bool is not one."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite real number, integer or float, Python's or NumPy's; a bool is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return is_int(value) or math.isfinite(value)   # an int is finite (and may be too big for a float)


def check(cond: bool, field: str, value, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"{field}={value!r}: {allowed}")


def from_mapping(cls, mapping: dict):
    """Build dataclass `cls` from a dict, rejecting unknown keys by name."""
    _check_names(cls, mapping, "config field")
    return cls(**mapping)


def with_overrides(config, cls, overrides: dict, what: str = "option"):
    """A `cls` (a dataclass config) made from `config` (an instance, a dict of its fields, or None for the
    defaults) with the fields named in `overrides` set. An unknown name fails with "unknown {what}(s) [...]"
    and the allowed names. A given instance is not changed: with overrides, an updated copy comes back."""
    _check_names(cls, overrides, what)
    if config is None:
        return cls(**overrides)
    if isinstance(config, dict):
        return from_mapping(cls, {**config, **overrides})
    if not isinstance(config, cls):
        raise ConfigError(f"config: expected a {cls.__name__}, a dict of its fields or None; got "
                          f"{type(config).__name__}")
    return dataclasses.replace(config, **overrides) if overrides else config


def _check_names(cls, given, what: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ConfigError(f"unknown {what}(s) {unknown}; allowed: {sorted(names)}")


def load_file(path) -> dict:
    """A YAML or JSON config file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config={str(path)!r}: no such file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml
        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"config={str(path)!r}: must hold a mapping of field: value")
    return data
