"""Progress bars that behave in a terminal, in JupyterLab and in headless papermill runs."""
from __future__ import annotations

import importlib.util
import math
import os
import sys

REDRAWS = 8               # at most this many redraws per bar where every redraw is kept (a file, a saved notebook)
UNSIZED_INTERVAL_S = 30   # a bar without a total redraws at most this often there


def _in_live_kernel() -> bool:
    """Code running in a Jupyter kernel (not merely a process that imported ipykernel, as papermill does)."""
    if "ipykernel" not in sys.modules or os.environ.get("SMKIT_PLAIN_PROGRESS"):
        return False
    from IPython import get_ipython
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config and importlib.util.find_spec("ipywidgets") is not None


def progress_bar(**kwargs):
    """tqdm's notebook widget inside an interactive kernel: one bar updating in place. Elsewhere plain tqdm.
    Headless runs set SMKIT_PLAIN_PROGRESS=1: a notebook bar saved by papermill stays frozen at 0%.

    Where the output is not a terminal (a log file, a pipe, a kernel run by papermill) nothing redraws in
    place: every update would stay in the output, so the bar redraws every few percent instead."""
    if _in_live_kernel():
        from tqdm.notebook import tqdm
        return tqdm(**kwargs)
    from tqdm import tqdm
    out = kwargs.get("file") or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        total = kwargs.get("total")
        if total:
            kwargs.setdefault("miniters", max(1, math.ceil(total / REDRAWS)))
        else:
            kwargs.setdefault("miniters", 1)
            kwargs.setdefault("mininterval", UNSIZED_INTERVAL_S)
        kwargs.setdefault("maxinterval", math.inf)  # tqdm's monitor would otherwise drop miniters back to 1
    return tqdm(**kwargs)
