"""Output locations, checked before any compute: a run that cannot write its results fails at once, naming the
option and the path the user gave, instead of after the work with an error about an internal file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..core.errors import ConfigError


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_folder(folder: Path, where: str, create: bool = True) -> None:
    """Create `folder` if missing and write and remove a file in it: that also catches read-only mounts and
    flags that permission bits do not show. `where` starts the message. With `create` False nothing is left
    behind: the probe goes into the nearest folder that exists, where the missing ones would be made."""
    base = _first_existing(folder.absolute())
    if not base.is_dir():
        raise ConfigError(f"{where}: {str(base)!r} is a file, not a folder")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder if create else base, prefix=".smkit-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"{where}: cannot write there ({err.strerror or err}); choose a folder you can "
                          f"write to") from None


def writable_folder(folder, option: str) -> Path:
    """`folder`, created if missing, once a file could be written in it; else ConfigError naming `option` and
    the folder."""
    folder = Path(folder)
    _check_folder(folder, f"{option}={str(folder)!r}")
    return folder


def writable_file(path, option: str) -> Path:
    """`path`, once it is known to be writable as a file: not a folder, not a read-only file, in a folder (created
    if missing) where a file could be written; else ConfigError naming `option` and the path."""
    path = Path(path)
    where = f"{option}={str(path)!r}"
    if path.is_dir():
        raise ConfigError(f"{where}: that is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{where}: the file exists and is read-only; choose another file")
    _check_folder(path.parent, where if path.parent == Path(".") else f"{where}: its folder {str(path.parent)!r}")
    return path


RUN_FILES = ("last", "model", "metrics.csv")   # what a training run leaves in its out_dir


def run_folder(folder, option: str, resume: bool = False, overwrite: bool = True) -> Path:
    """A training run's output folder, checked before any compute and left as it was (a missing one is made
    when the run starts): it, or the folder it would be made in, can be written; unless `resume` or
    `overwrite`, it holds no earlier run (`RUN_FILES`) that the new one would replace. Errors name `option` and
    the folder."""
    folder = Path(folder)
    _check_folder(folder, f"{option}={str(folder)!r}", create=False)
    held = [name for name in RUN_FILES if (folder / name).exists()]
    if held and not (resume or overwrite):
        raise ConfigError(f"{option}={str(folder)!r} already holds a training run ({', '.join(held)}), which this "
                          f"run would replace; continue it with --resume true, replace it with --overwrite, or "
                          f"choose another {option}")
    return folder
