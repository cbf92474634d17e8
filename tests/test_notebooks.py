"""The shipped notebooks: stored clean, run headless with tiny parameters (papermill), validated by nbval
(lax mode, sanitised), bad parameters stop the run with a message naming them, `smkit run` writes .ipynb+.html.

Every notebook is executed once per test session: nbval runs the papermill-prepared copies of all of them
(tiny parameters injected), and `smkit run` executes the quickstart. Kept tiny: a 1-layer char model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("nbval")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SANITIZE = Path(__file__).parent / "nbval" / "sanitize.ini"
BIN = Path(sys.executable).parent


def tiny_parameters(ckpt: Path, corpus: Path, out: Path, task_ckpt: Path | None = None) -> dict:
    """CI-sized parameters per notebook (relative path under notebooks/). `task_ckpt`: a tiny sudoku solver
    trained with SM (the workshop's sudoku notebook); the workshop notebooks never load a shipped model here."""
    task_ckpt = task_ckpt or ckpt
    return {
        "quickstart.ipynb": dict(model=str(ckpt), length=24, steps=3, num_samples=1, out_dir=str(out / "quickstart")),
        "decode.ipynb": dict(model=str(ckpt), prompt="", infill="To be, [MASK][MASK] not", length=24, steps=4,
                             num_samples=2, strategy="margin", lambda_schedule="linear", out_dir=str(out / "decode")),
        "train.ipynb": dict(corpus=str(corpus), tokenizer="char", seq_len=32, hidden_size=32, num_layers=1,
                            num_heads=2, intermediate_size=64, batch_size=4, steps=4, warmup_steps=1, eval_every=2,
                            eval_blocks=4, out_dir=str(out / "train")),
        "nfe_sweep.ipynb": dict(model=str(ckpt), corpus=str(corpus), eval_blocks=4, length=16, budget_divisors=[4, 1],
                                strategies=["confidence"], num_samples=2, mauve_references=6,
                                out_dir=str(out / "nfe_sweep")),
        "tasks.ipynb": dict(task="sort", task_params={"length": 3}, models=[], train_steps=30, cells_per_step=[1, 3],
                            strategies=["random", "margin"], n=8, out_dir=str(out / "tasks")),
        "paper_checkpoint.ipynb": dict(checkpoint=str(ROOT / "tests" / "fixtures" / "paper_formats" / "sm.ckpt"),
                                       length=32, steps=8, num_samples=2, out_dir=str(out / "paper_checkpoint")),
        "workshop/01-forward-process.ipynb": dict(model=str(ckpt), blocks=4, n_times=3),
        "workshop/02-train-tiny-mdlm.ipynb": dict(corpus=str(corpus), steps=4, seq_len=16, hidden_size=16, num_layers=1,
                                                  batch_size=4, eval_every=2, eval_blocks=8,
                                                  out_dir=str(out / "workshop2")),
        "workshop/03-soft-masking.ipynb": dict(model=str(ckpt), prompt="", num_samples=2, tokens_per_step=8,
                                               live_widget=False),
        "workshop/04-samplers.ipynb": dict(model=str(ckpt), length=16, steps=4, budgets=[2, 16], num_samples=2),
        "workshop/05-sudoku.ipynb": dict(train_givens=70, givens=75, train_steps=2, hidden_size=16, num_layers=1,
                                         batch_size=4, n_trained=4, n=4, sm_model=str(task_ckpt),
                                         binary_model=str(task_ckpt), cells_per_step=[3],
                                         out_dir=str(out / "workshop5"), live_widget=False),
    }


def shipped_notebooks() -> list[Path]:
    return sorted(p for p in NB_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.fixture(scope="session")
def nb_env(tmp_path_factory):
    """Environment for kernels: offline, plain progress bars, no user-level kernelspec shadowing python3."""
    home = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               SMKIT_PLAIN_PROGRESS="1", JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_CONFIG_DIR=str(home / "config"),
               IPYTHONDIR=str(home / "ipython"), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SMKIT_RUN_DIR", None)
    return env


@pytest.fixture(scope="session")
def tiny_checkpoint(hamlet_file, tmp_path_factory):
    """A 1-layer char-level checkpoint trained for 3 updates (seconds)."""
    import smkit
    out = tmp_path_factory.mktemp("tiny_ckpt")
    smkit.train(corpus=str(hamlet_file), tokenizer="char", seq_len=32, hidden_size=32, num_layers=1, num_heads=2,
                intermediate_size=64, batch_size=8, warmup_steps=2, eval_every=0, eval_blocks=8, log_every=1,
                checkpoint_every=0, val_fraction=0.25, progress=False, steps=3, out_dir=str(out), threads=1)
    return out / "model"


@pytest.fixture(scope="session")
def tiny_sudoku_checkpoint(tmp_path_factory):
    """A 1-layer sudoku solver (75 givens) trained with SM for 2 updates (seconds): for the workshop's sudoku
    notebook, which must not depend on the shipped sudoku models."""
    import smkit
    out = tmp_path_factory.mktemp("tiny_sudoku")
    smkit.train(corpus="task:sudoku", task_params={"givens": 75}, hidden_size=16, num_layers=1, num_heads=2,
                intermediate_size=32, batch_size=4, warmup_steps=1, eval_every=0, eval_blocks=4, log_every=1,
                checkpoint_every=0, progress=False, steps=2, soft_mask=True, out_dir=str(out), threads=1)
    return out / "model"


def test_every_notebook_has_tiny_parameters(tmp_path):
    names = {str(p.relative_to(NB_DIR)) for p in shipped_notebooks()}
    assert names, "no notebooks shipped"
    assert names == set(tiny_parameters(tmp_path, tmp_path, tmp_path)), "give each notebook CI-sized parameters"


@pytest.mark.parametrize("path", shipped_notebooks(), ids=lambda p: str(p.relative_to(NB_DIR)))
def test_notebook_is_stored_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell["outputs"], f"{path.name} cell {i} was committed with outputs: run nbstripout"
            assert cell["execution_count"] is None, f"{path.name} cell {i} has an execution count: run nbstripout"
    tagged = [i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    following = "".join(nb["cells"][tagged[0] + 1]["source"])
    assert "check_parameter" in following, f"{path.name}: validate parameters in the cell after the parameters cell"


def test_nbstripout_verify():
    paths = [str(p) for p in shipped_notebooks()]
    r = subprocess.run([str(BIN / "nbstripout"), "--verify", *paths], capture_output=True, text=True)
    assert r.returncode == 0, f"notebooks committed with outputs:\n{r.stdout}{r.stderr}"


def test_parameters_are_documented():
    from smkit.notebooks import notebook_parameters
    for path in shipped_notebooks():
        params = notebook_parameters(path)
        assert params, path
        for name, line in params.items():
            assert ":" in line.split("=")[0] and "#" in line, f"{path.name}: annotate and comment {name!r}"


def test_parse_and_collect_parameters(tmp_path):
    from smkit.notebooks import collect_parameters, parse_value
    assert [parse_value(v) for v in ("true", "False", "none", "3", "0.5", "abc")] == [True, False, None, 3, 0.5, "abc"]
    assert parse_value("[confidence, random]") == ["confidence", "random"] and parse_value("[8, 4]") == [8, 4]
    f = tmp_path / "p.yaml"
    f.write_text("steps: 8\nprompt: hi\n")
    got = collect_parameters([("steps", "16"), ("soft_mask", "true")], [("seed", "7")], [f])
    assert got == {"steps": 16, "prompt": "hi", "soft_mask": True, "seed": "7"}


def test_all_notebooks_run_under_nbval(tiny_checkpoint, tiny_sudoku_checkpoint, hamlet_file, nb_env, tmp_path):
    """papermill --prepare-only injects tiny parameters; nbval (lax, sanitised) runs every cell of each."""
    import papermill as pm
    prepared = tmp_path / "prepared"
    params = tiny_parameters(tiny_checkpoint, hamlet_file, tmp_path / "outputs", tiny_sudoku_checkpoint)
    for path in shipped_notebooks():
        rel = path.relative_to(NB_DIR)
        target = prepared / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(path), str(target), parameters=params[str(rel)], prepare_only=True,
                            kernel_name="python3", progress_bar=False)
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
                        f"--nbval-sanitize-with={SANITIZE}", "-p", "no:cacheprovider", "-q", "--rootdir", str(prepared),
                        "-c", os.devnull, str(prepared)],
                       capture_output=True, text=True, env=nb_env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
    out = tmp_path / "outputs"
    for name in ("decode.trace", "decode_texts.jsonl", "decode_trace.csv", "decode_heatmaps.html",
                 "decode_reveal_order.html", "decode_explorer.html", "plotly.min.js"):
        assert (out / "decode" / name).is_file(), name
    import smkit
    trace = smkit.Trace.open(out / "decode" / "decode.trace")
    assert (trace.num_samples, trace.length) == (2, 24) and len(trace) in (4, 5)  # 4 steps (+ noise removal)
    assert not trace[len(trace) - 1].masked.any()  # the decode ended with every position filled
    for name in ("model/model.safetensors", "metrics.csv", "train_loss.html", "train_sm_scalars.html"):
        assert (out / "train" / name).is_file(), name
    import pandas as pd
    hist = pd.read_csv(out / "train" / "metrics.csv")
    sweep = pd.read_csv(out / "nfe_sweep" / "nfe_sweep.csv")
    assert len(sweep) == 4 and set(sweep.decoding) == {"binary", "SM"} and sorted(set(sweep.steps)) == [4, 16]
    assert {"gen_ppl", "entropy", "repetition", "mauve"} <= set(sweep.columns)
    assert (sweep.gen_ppl > 1).all() and sweep.mauve.between(0, 1).all()
    assert (out / "nfe_sweep" / "nfe_sweep.html").is_file()
    assert hist.step.max() == 4 and hist.val_bound.notna().any() and {"scale", "steepness", "centre"} <= set(hist.columns)
    tasks_sweep = pd.read_csv(out / "tasks" / "tasks_sweep.csv")
    assert len(tasks_sweep) == 2 * 2 and sorted(set(tasks_sweep.steps)) == [1, 3] and (tasks_sweep.n == 8).all()
    assert ((tasks_sweep.ci_low <= tasks_sweep.accuracy) & (tasks_sweep.accuracy <= tasks_sweep.ci_high)).all()


def _smkit(args, env, cwd, monkeypatch=None, capsys=None):
    """`smkit ARGS` in this process (saves a Python + torch start-up per call) with `env` applied."""
    from types import SimpleNamespace

    from smkit.cli import main
    for key in set(os.environ) - set(env):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    rc = main(args)
    out = capsys.readouterr()
    return SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)


def test_smkit_run_writes_notebook_and_html(tiny_checkpoint, nb_env, tmp_path, monkeypatch, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(f"model: {tiny_checkpoint}\nlength: 24\n")
    r = _smkit(["run", str(NB_DIR / "quickstart.ipynb"), "-f", str(params), "-p", "steps", "3",
                "-p", "num_samples", "1", "-r", "prompt", "KING.", "--out", str(tmp_path / "runs")], nb_env, tmp_path, monkeypatch, capsys)
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = tmp_path / "runs" / "quickstart"
    nb_path, html_path = run_dir / "quickstart.ipynb", run_dir / "quickstart.html"
    assert nb_path.is_file() and html_path.is_file()
    assert str(html_path) in r.stdout
    nb = json.loads(nb_path.read_text())
    assert nb["metadata"]["papermill"]["parameters"]["steps"] == 3
    assert nb["metadata"]["papermill"]["parameters"]["prompt"] == "KING."
    assert "widgets" not in nb["metadata"], "widget state must not be stored"
    assert (run_dir / "quickstart_texts.jsonl").is_file(), "notebook files go to the run folder by default"
    page = html_path.read_text()
    assert page.count("Plotly.newPlot") >= 3, "the HTML must carry interactive plotly figures"
    assert "binary" in page and "soft-masked" in page
    _check_plots_render_offline(html_path, expected=4)


def _check_plots_render_offline(html_path: Path, expected: int) -> None:
    """Open the page in headless chromium (when installed, as in CI): the plotly figures draw, no JS errors."""
    if not os.path.exists("/usr/bin/chromium"):
        print("chromium not installed: HTML checked as text only")
        return
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        try:
            page, errors = browser.new_page(), []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("http*://**", lambda route: route.abort())  # offline: nothing may come from a network
            page.goto(html_path.as_uri())
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                                   timeout=30_000)
            assert not errors, errors
        finally:
            browser.close()


def test_bad_parameter_stops_with_a_clear_message(tiny_checkpoint, nb_env, tmp_path, monkeypatch, capsys):
    r = _smkit(["run", str(NB_DIR / "quickstart.ipynb"), "-p", "model", str(tiny_checkpoint), "-p", "steps", "0",
                "--out", str(tmp_path), "--no-html"], nb_env, tmp_path, monkeypatch, capsys)
    assert r.returncode == 1
    assert "parameter steps=0" in r.stderr and "ParameterError" in r.stderr
    assert (tmp_path / "quickstart" / "quickstart.failed.ipynb").is_file(), "the failed notebook is kept for inspection"
    assert not (tmp_path / "quickstart" / "quickstart.ipynb").exists(), "only a good run is <name>.ipynb"


def test_bad_training_parameter_names_the_field(hamlet_file, nb_env, tmp_path, monkeypatch, capsys):
    r = _smkit(["run", str(NB_DIR / "train.ipynb"), "-p", "corpus", str(hamlet_file), "-p", "p_sm", "1.5",
                "--out", str(tmp_path), "--no-html"], nb_env, tmp_path, monkeypatch, capsys)
    assert r.returncode == 1
    assert "parameter p_sm=1.5" in r.stderr
    assert not (tmp_path / "train" / "metrics.csv").exists(), "must stop before training"


def test_unknown_parameter_is_refused_before_running(tmp_path, monkeypatch, capsys):
    r = _smkit(["run", str(NB_DIR / "quickstart.ipynb"), "-p", "stepz", "3", "--out", str(tmp_path)], dict(os.environ),
               tmp_path, monkeypatch, capsys)
    assert r.returncode == 2
    assert "unknown parameter(s) ['stepz']" in r.stderr and "steps" in r.stderr
    assert not (tmp_path / "quickstart").exists()


WORKSHOP = sorted((NB_DIR / "workshop").glob("*.ipynb"))


@pytest.mark.parametrize("path", WORKSHOP, ids=lambda p: p.name)
def test_workshop_exercises_have_solutions_and_checks(path, tmp_path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
    exercises = [i for i, t in enumerate(tags) if "exercise" in t]
    assert exercises, f"{path.name}: no exercise cells"
    for i in exercises:
        assert "solution" in tags[i + 1], f"{path.name}: exercise cell {i} must be followed by its solution"
        assert "check" in "".join(nb["cells"][i + 2]["source"]), f"{path.name}: check after solution {i + 1}"
    learner = tmp_path / path.name
    learner.write_text(path.read_text(encoding="utf-8"))
    r = subprocess.run([str(BIN / "nbstripout"), "--drop-tagged-cells", "solution", str(learner)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    kept = json.loads(learner.read_text())["cells"]
    assert len(kept) == len(nb["cells"]) - len(exercises)
    assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in kept)


def learner_copy(path: Path, folder: Path) -> Path:
    """The learner's copy of a workshop notebook, made as docs/workshop.md says: the solution cells dropped."""
    learner = folder / path.name
    learner.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    r = subprocess.run([str(BIN / "nbstripout"), "--drop-tagged-cells", "solution", str(learner)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return learner


def test_learner_copies_run_to_the_end_and_say_not_done_yet(tiny_checkpoint, tiny_sudoku_checkpoint, hamlet_file,
                                                            nb_env, tmp_path):
    """Every workshop notebook without its solutions, run headless (`smkit run`) with tiny parameters: no cell fails,
    the check after every empty exercise says "not done yet" (never "correct"), and the saved notebook (plotly.js
    shared, no widget state) stays under 1 MB."""
    import yaml
    params = tiny_parameters(tiny_checkpoint, hamlet_file, tmp_path / "outputs", tiny_sudoku_checkpoint)
    (tmp_path / "learner").mkdir()
    for path in WORKSHOP:
        learner = learner_copy(path, tmp_path / "learner")
        values = tmp_path / f"{path.stem}.yaml"
        values.write_text(yaml.safe_dump(params[f"workshop/{path.name}"]))
        executed = tmp_path / "runs" / path.stem / f"{path.stem}.ipynb"
        r = subprocess.run([str(BIN / "smkit"), "run", str(learner), "-f", str(values), "--no-html", "--out",
                            str(tmp_path / "runs")], capture_output=True, text=True, env=nb_env, cwd=tmp_path,
                           timeout=600)
        assert r.returncode == 0, f"{path.name} (learner copy): {r.stderr[-3000:]}"
        cells = json.loads(executed.read_text())["cells"]
        checks = [cells[i + 1] for i, c in enumerate(cells) if "exercise" in c.get("metadata", {}).get("tags", [])]
        assert checks, path.name
        for cell in checks:
            text = "".join("".join(o.get("text", "")) for o in cell["outputs"] if o["output_type"] == "stream")
            assert "not done yet" in text and "correct" not in text, f"{path.name}: {text[-500:]}"
        assert executed.stat().st_size < 1_000_000, f"{path.name}: {executed.stat().st_size} bytes saved"


def test_list_parameters(monkeypatch, capsys, tmp_path):
    r = _smkit(["run", str(NB_DIR / "decode.ipynb"), "--list-parameters"], dict(os.environ), tmp_path, monkeypatch, capsys)
    assert r.returncode == 0
    assert "strategy: str = \"confidence\"  # unmasking rule" in r.stdout
    r = _smkit(["run", str(tmp_path / "missing.ipynb")], dict(os.environ), tmp_path, monkeypatch, capsys)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_make_demo_runs_the_quickstart_headless():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "smkit run notebooks/quickstart.ipynb" in recipe
