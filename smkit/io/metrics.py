"""Reading a training run's `metrics.csv` (`smkit.train`, `smkit.finetune` histories): the one place where older
files' column names are translated. smkit writes the SM scalars under the library's names (scale, steepness,
centre); files written by earlier versions used the paper's names w_s, w_a, w_b (docs/method.md), which read as
the same columns here."""
from __future__ import annotations

from pathlib import Path

# the paper's names of the SM scalars, as older metrics.csv files have them -> the library's names
PAPER_COLUMNS = {"w_s": "scale", "w_a": "steepness", "w_b": "centre"}


def with_library_names(frame):
    """`frame` (a pandas DataFrame of a run's history) with any paper-named SM columns renamed."""
    return frame.rename(columns={old: new for old, new in PAPER_COLUMNS.items()
                                 if old in frame.columns and new not in frame.columns})


def read_metrics(path):
    """A run's history from `path` (metrics.csv, or a run folder holding it) as a DataFrame with the library's
    column names, whichever names the file has."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    return with_library_names(pd.read_csv(path))
