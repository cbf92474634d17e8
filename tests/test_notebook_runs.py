"""What a headless run prints and keeps: `smkit run` on a tiny notebook (no kernel warning, a bad parameter
as one line) and progress bars that redraw every few percent where every redraw is kept."""
from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill")
BIN = Path(sys.executable).parent

# Each time tqdm looks at its clock a second has passed: a slow loop's redraw pattern, without the wait.
SLOW_CLOCK = "import itertools, tqdm.std\n_clock = itertools.count()\ntqdm.std.time = lambda: float(next(_clock))\n"


def _tiny_notebook(path: Path) -> Path:
    import nbformat
    params = nbformat.v4.new_code_cell("n: int = 3  # at least 1\nupdates: int = 600  # progress updates\n")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[
        params,
        nbformat.v4.new_code_cell("from smkit.notebooks import check_parameter\n"
                                  "check_parameter(n >= 1, 'n', n, 'must be >= 1')"),
        nbformat.v4.new_code_cell(SLOW_CLOCK + "from smkit.core.progress import progress_bar\n"
                                  "bar = progress_bar(total=updates, desc='work')\n"
                                  "for _ in range(updates):\n    bar.update(1)\nbar.close()"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _jupyter_env(tmp_path) -> dict:
    """No user-level kernelspec shadowing the venv's python3; the venv's tools first on PATH."""
    home = tmp_path / "jupyter"
    for sub in ("data", "config", "ipython"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return dict(JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_CONFIG_DIR=str(home / "config"),
                IPYTHONDIR=str(home / "ipython"), OMP_NUM_THREADS="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")


def _smkit_run(tmp_path, *args):
    env = dict(os.environ, **_jupyter_env(tmp_path))
    env.pop("SMKIT_PLAIN_PROGRESS", None)  # `smkit run` sets it for the kernel itself
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    return subprocess.run([str(BIN / "smkit"), "run", str(nb), "--out", str(tmp_path / "runs"), "--no-html", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def _redraws(text: str, desc: str) -> int:
    return text.count(f"{desc}:")


def test_smkit_run_prints_no_kernel_warning_and_keeps_few_progress_redraws(tmp_path):
    r = _smkit_run(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr.lower(), r.stderr
    nb = json.loads((tmp_path / "runs" / "tiny" / "tiny.ipynb").read_text())
    kept = "".join("".join(o.get("text", "")) for o in nb["cells"][-1]["outputs"] if o["output_type"] == "stream")
    assert "600/600" in kept, kept[-300:]
    assert 2 <= _redraws(kept, "work") <= 10, f"{_redraws(kept, 'work')} redraws kept for 600 updates"


def test_a_bad_parameter_prints_one_line_not_a_traceback(tmp_path):
    r = _smkit_run(tmp_path, "-p", "n", "0")
    assert r.returncode == 1
    # A kernel slow to stop (a loaded machine) logs its shutdown interrupt; that line is the kernel's, not ours.
    lines = [x for x in r.stderr.strip().splitlines() if "KeyboardInterrupt caught in kernel" not in x]
    assert re.fullmatch(r"smkit run: error: tiny\.ipynb: cell \[\d+\] raised ParameterError: parameter n=0: "
                        r"must be >= 1", lines[0]), lines[0]
    assert lines[1].startswith("smkit run: the executed notebook is") and len(lines) == 2, r.stderr
    assert "Traceback" not in r.stderr and "warning" not in r.stderr.lower()


def test_another_error_keeps_its_traceback(tmp_path, monkeypatch):
    from smkit.notebooks import NotebookError, run_notebook
    for key, value in _jupyter_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    with pytest.raises(NotebookError) as err:
        run_notebook(nb, {"updates": "many"}, out=tmp_path / "runs", html=False)
    assert "raised TypeError" in str(err.value) and "Traceback" in str(err.value)
    assert err.value.traceback and err.value.ename == "TypeError"


def test_training_for_many_updates_keeps_few_progress_redraws(tiny_train_kwargs, tmp_path, monkeypatch, capsys):
    import tqdm.std

    import smkit
    clock = itertools.count()
    monkeypatch.setattr(tqdm.std, "time", lambda: float(next(clock)))
    # log_every=1: the loss goes to the bar's postfix on every update, which must not redraw it each time
    smkit.train(**dict(tiny_train_kwargs, progress=True, log_every=1), steps=100, out_dir=str(tmp_path), threads=1)
    err = capsys.readouterr().err
    assert "100/100" in err
    assert 2 <= _redraws(err, "train") <= 10, f"{_redraws(err, 'train')} redraws for 100 updates"


def test_a_terminal_bar_is_left_alone(monkeypatch):
    from smkit.core.progress import progress_bar

    class Tty:
        def isatty(self):
            return True

        def write(self, s):
            pass

        def flush(self):
            pass

    bar = progress_bar(total=1000, file=Tty())
    assert bar.dynamic_miniters and bar.maxinterval == 10
    bar.close()


def test_listing_parameters_into_a_closed_pipe_is_quiet(tmp_path):
    """`smkit run NB --list-parameters | head` where head has already gone: no BrokenPipeError traceback."""
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before we write a byte: every write fails with EPIPE
    try:
        r = subprocess.run([str(BIN / "smkit"), "run", str(nb), "--list-parameters"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    assert r.returncode == 141, (r.returncode, r.stderr)


def _failing_notebook(path: Path) -> Path:
    """A notebook whose second cell fails when `fail` is true and writes a marker of its run otherwise."""
    import nbformat
    params = nbformat.v4.new_code_cell("fail: bool = False  # stop with an error\nmark: str = 'good'  # printed\n")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(
        "print('run', mark)\nif fail:\n    raise RuntimeError('asked to fail')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_a_failed_run_keeps_the_last_good_one(tmp_path, monkeypatch):
    """A good run, then a failing one into the same run folder: the good notebook and its HTML stay as they were;
    the failed run is written beside them and named in the error. A later good run removes the failed copy."""
    from smkit.notebooks import NotebookError, run_notebook
    for key, value in _jupyter_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    nb = _failing_notebook(tmp_path / "job.ipynb")
    good = run_notebook(nb, {"mark": "first"}, out=tmp_path / "runs")
    assert good.ok and good.notebook == tmp_path / "runs" / "job" / "job.ipynb"
    kept = {p: p.read_bytes() for p in (good.notebook, good.html)}
    assert b"run first" in kept[good.notebook]
    with pytest.raises(NotebookError) as err:
        run_notebook(nb, {"mark": "second", "fail": True}, out=tmp_path / "runs")
    assert {p: p.read_bytes() for p in kept} == kept  # the good run is untouched
    failed = err.value.result
    assert not failed.ok and failed.notebook != good.notebook and failed.notebook.parent == good.notebook.parent
    assert b"run second" in failed.notebook.read_bytes() and b"asked to fail" in failed.notebook.read_bytes()
    assert failed.html is not None and failed.html.is_file() and failed.html != good.html
    again = run_notebook(nb, {"mark": "third"}, out=tmp_path / "runs")
    assert b"run third" in again.notebook.read_bytes() and not failed.notebook.exists() and not failed.html.exists()
