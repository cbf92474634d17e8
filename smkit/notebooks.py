"""Run a parameterised notebook headless: `smkit run NOTEBOOK -p name value ...` (papermill underneath).

    smkit run notebooks/quickstart.ipynb -p steps 16
    smkit run notebooks/train.ipynb -p steps 200 -p soft_mask true --out runs/

writes `runs/<name>/<name>.ipynb` (the executed notebook, parameters recorded in its metadata) and
`runs/<name>/<name>.html` (a page whose plotly figures stay interactive without a kernel or a network: notebook
and page load plotly.js from one `plotly.min.js` in the run folder; `--self-contained` inlines it in both). The run
uses the `python3` kernel, sets SMKIT_PLAIN_PROGRESS=1 (a notebook progress bar saved headless freezes at
0%), does not store widget state (one plotly FigureWidget would add ~5 MB) and sets SMKIT_RUN_DIR to the
run folder, where the shipped notebooks write their files by default. A failing cell stops the run: the
cell's error is printed, the command exits 1, and the failed notebook and its HTML are written beside the last
good run as `<name>.failed.ipynb` / `.html`; `<name>.ipynb` and `<name>.html` stay those of the last good run
(a later good run replaces them and removes the failed copy).

Needs the `notebooks` extra: pip install "smkit[notebooks]". Plain `papermill` works on the notebooks too.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import ParameterError, SmkitError
from .io.outputs import writable_folder
from .notebook_plotly import embed_plotly_js, share_plotly_js

KERNEL = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookError(SmkitError, RuntimeError):
    """A cell of the notebook raised; `cell` is its execution count, `ename`/`evalue` the error, `traceback`
    its text. The message is one line when the cell raised one of smkit's own errors (a bad parameter: the
    message says it all); any other error's message carries the traceback."""

    def __init__(self, message: str, result: "RunResult", ename: str = "", evalue: str = "", cell=None,
                 traceback: str = ""):
        super().__init__(message)
        self.result, self.ename, self.evalue, self.cell, self.traceback = result, ename, evalue, cell, traceback


@dataclass
class RunResult:
    notebook: Path              # the executed notebook
    html: Path | None           # its standalone HTML export (None when html=False)
    parameters: dict = field(default_factory=dict)
    ok: bool = True


def check_parameter(cond: bool, name: str, value, allowed: str) -> None:
    """For a notebook's validation cell: stop the run with a message naming the parameter."""
    if not cond:
        raise ParameterError(f"parameter {name}={value!r}: {allowed}")


def bool_parameter(value, name: str) -> bool:
    """For a notebook's checking cell: a bool parameter as a bool. Papermill's own `-p soft_mask true` passes the
    text "true" (only `True`/`False` become bools), so the words true and false in any case count too; anything
    else stops the run with a message naming the parameter."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParameterError(f"parameter {name}={value!r}: must be true or false")


def output_dir(out_dir=None, default: str = "runs/notebook") -> Path:
    """Where a notebook writes its files: `out_dir` if given, else the `smkit run` folder (SMKIT_RUN_DIR),
    else `default`. Created if missing."""
    path = Path(out_dir or os.environ.get("SMKIT_RUN_DIR") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_value(text: str):
    """A command-line value: true/false, none/null, int, float, a YAML list/mapping ([a, b] / {a: 1}), else
    the string itself."""
    low = text.strip().lower()
    if low[:1] in ("[", "{"):
        import yaml
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def collect_parameters(params=(), raw=(), files=()) -> dict:
    """Parameters from YAML/JSON files (in order), then `-p name value` (parsed), then `-r name value` (raw)."""
    import yaml
    out: dict = {}
    for f in files or ():
        data = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ParameterError(f"parameters file {str(f)!r} must hold a mapping of name: value, got {type(data).__name__}")
        out.update(data)
    for name, value in params or ():
        out[name] = parse_value(value) if isinstance(value, str) else value
    for name, value in raw or ():
        out[name] = value
    return out


def notebook_parameters(path) -> dict:
    """The names and default source lines of the cell tagged `parameters`."""
    import nbformat
    if not Path(path).is_file():
        raise SmkitError(f"notebook {str(path)!r} does not exist")
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            names = {}
            for line in cell.source.splitlines():
                m = re.match(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=", line)
                if m:
                    names[m.group(1)] = line
            return names
    return {}


def export_html(notebook, html_path=None, self_contained: bool = False) -> Path:
    """Write an HTML page of an executed notebook (nbconvert's lab template). Its plotly figures load plotly.js
    from `plotly.min.js` beside the page (written there unless it exists); `self_contained=True`: from a copy
    inline (4.8 MB), the page then needs no other file."""
    import nbformat
    from nbconvert import HTMLExporter
    notebook = Path(notebook)
    html_path = Path(html_path) if html_path else notebook.with_suffix(".html")
    nb = nbformat.read(str(notebook), as_version=4)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    if self_contained:
        embed_plotly_js(nb)
    else:
        share_plotly_js(nb, html_path.parent)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html_path)
    return html_path


def _share_plotly_js_in(notebook: Path) -> None:
    """Rewrite an executed notebook to load plotly.js from `plotly.min.js` beside it instead of a copy inline."""
    import nbformat
    nb = nbformat.read(str(notebook), as_version=4)
    if share_plotly_js(nb, notebook.parent):
        tmp = notebook.with_name(f".{notebook.name}.tmp")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, notebook)


def _smkit_error_names() -> set[str]:
    """Names of SmkitError and its subclasses; a cell's error arrives as a name only."""
    try:
        import smkit  # noqa: F401  (defines the error classes; only needed once a cell has failed)
        import smkit.evaluation.judge  # noqa: F401
    except Exception:  # a broken install still reports the cell's error, with its traceback
        pass
    names, todo = set(), [SmkitError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _error_of(nb) -> tuple[str, str, object, str]:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
                return out.get("ename", ""), out.get("evalue", ""), cell.get("execution_count"), tb
    return "", "", None, ""


def _kernel_config():
    """Encrypt the kernel's local TCP channels (CurveZMQ) where pyzmq and the kernelspec support it, as the
    kernel's own "running over TCP without encryption" warning, printed at every start, asks."""
    import zmq
    from jupyter_client import KernelManager
    from traitlets.config import Config
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def run_notebook(notebook, parameters: dict | None = None, *, out="runs", name: str | None = None,
                 html: bool = True, kernel: str = KERNEL, cwd=None, timeout: int | None = None,
                 progress: bool = False, log_output: bool = False, self_contained: bool = False) -> RunResult:
    """Execute `notebook` with `parameters` into `<out>/<name>/<name>.ipynb` (+ `.html`). Both load plotly.js
    from one `plotly.min.js` in the run folder; `self_contained=True` keeps a copy inline in each instead.

    Unknown parameter names and a run folder that cannot be written raise before anything runs. A failing cell
    raises `NotebookError` after the failed notebook (and its HTML) are written to `<name>.failed.ipynb` (`.html`),
    beside the last good run, which stays (`err.result.notebook` is the failed copy)."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    if not notebook.is_file():
        raise SmkitError(f"notebook {str(notebook)!r} does not exist")
    parameters = dict(parameters or {})
    known = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown} for {notebook.name}; it takes {sorted(known)}")
    name = name or notebook.stem
    run_dir = Path(out) / name
    writable_folder(run_dir, "out")
    out_nb, failed_nb = run_dir / f"{name}.ipynb", run_dir / f"{name}.failed.ipynb"
    running = run_dir / f".{name}.running.ipynb"  # a run writes here; only a good run replaces out_nb
    saved = {k: os.environ.get(k) for k in ("SMKIT_PLAIN_PROGRESS", "SMKIT_RUN_DIR")}
    os.environ["SMKIT_PLAIN_PROGRESS"] = "1"
    os.environ["SMKIT_RUN_DIR"] = str(run_dir.resolve())
    failure, completed = None, False
    try:
        pm.execute_notebook(str(notebook), str(running), parameters=parameters, kernel_name=kernel,
                            progress_bar=progress, log_output=log_output, cwd=cwd, store_widget_state=False,
                            execution_timeout=timeout, config=_kernel_config())
        completed = True
    except PapermillExecutionError as err:
        failure = err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if running.exists():  # a good run replaces the last one; a failed or interrupted one goes beside it
            os.replace(running, out_nb if completed else failed_nb)
    kept = out_nb if failure is None else failed_nb
    if kept.exists() and not self_contained:
        _share_plotly_js_in(kept)
    html_path = None
    if html and kept.exists():
        html_path = export_html(kept, kept.with_suffix(".html"), self_contained)
    if failure is None:  # a failed run from before would now be older than the good one: drop it
        for stale in (failed_nb, failed_nb.with_suffix(".html")):
            stale.unlink(missing_ok=True)
    result = RunResult(kept, html_path, parameters, ok=failure is None)
    if failure is not None:
        ename, evalue, count, tb = _error_of(nbformat.read(str(kept), as_version=4))
        ename, evalue = ename or failure.ename, evalue or failure.evalue
        line = f"{notebook.name}: cell [{count if count is not None else failure.exec_count}] raised {ename}: {evalue}"
        message = line if ename in _smkit_error_names() else f"{line}\n{tb}".rstrip()
        raise NotebookError(message, result, ename, evalue, count, tb)
    return result


def _cmd_run(args) -> int:
    if args.list_parameters:
        params = notebook_parameters(args.notebook)
        if not params:
            print(f"{args.notebook}: no cell tagged 'parameters'")
        for line in params.values():
            print(line)
        return 0
    try:
        params = collect_parameters(args.param, args.raw, args.file)
        result = run_notebook(args.notebook, params, out=args.out, name=args.name, html=not args.no_html,
                              timeout=args.timeout, progress=args.progress, log_output=args.log_output,
                              self_contained=args.self_contained)
    except NotebookError as err:
        print(f"smkit run: error: {err}", file=sys.stderr)
        print(f"smkit run: the executed notebook is {err.result.notebook}"
              + (f", its HTML {err.result.html}" if err.result.html else ""), file=sys.stderr)
        return 1
    print(f"executed notebook: {result.notebook}")
    if result.html:
        print(f"HTML (open in a browser, no kernel needed): {result.html}")
    return 0


def register(sub) -> None:
    """Add `smkit run` to the CLI's subparsers."""
    p = sub.add_parser("run", help="run a parameterised notebook headless (papermill) into runs/<name>/",
                       description=__doc__.split("\n\n")[0] + " Writes the executed notebook and an HTML page.")
    p.add_argument("notebook", help="the .ipynb to run")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   default=[], help="set a parameter; true/false/none/numbers are parsed")
    p.add_argument("-r", "--raw", dest="raw", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="set a parameter to the raw string VALUE")
    p.add_argument("-f", "--parameters-file", dest="file", action="append", default=[],
                   help="YAML/JSON file of parameters (flags win)")
    p.add_argument("--out", default="runs", help="parent folder of the run folder (default: runs)")
    p.add_argument("--name", default=None, help="run folder and file name (default: the notebook's stem)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.add_argument("--self-contained", action="store_true",
                   help="keep plotly.js (4.8 MB) inline in the notebook and the HTML page instead of one shared "
                        "plotly.min.js in the run folder")
    p.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: no limit)")
    p.add_argument("--list-parameters", action="store_true",
                   help="print the notebook's parameters (name: type = default  # help) and exit")
    p.add_argument("--progress", action="store_true", help="show papermill's cell progress bar")
    p.add_argument("--log-output", action="store_true", help="echo the cells' output while they run")
    p.set_defaults(func=_cmd_run)
