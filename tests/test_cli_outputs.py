"""`smkit sample` and `smkit train` check where they will write before they load, decode or train anything: a
read-only folder, a folder given as the file, a file given as the folder, or (train) a folder holding an earlier
run stop the command at once with one line naming the option and the user's path, and nothing is written."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest_sampling import build_model


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody can create files in: mode 0555 for a normal user; for root, who ignores modes, the
    immutable flag (chattr +i). Skips where neither holds."""
    folder = tmp_path / "locked"
    folder.mkdir()
    undo = None
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)  # noqa: E731
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)  # noqa: E731
    try:
        try:
            (folder / "probe").write_text("x")
            pytest.skip("cannot make a read-only folder here (root without chattr +i)")
        except OSError:
            pass
        yield folder
    finally:
        if undo is not None:
            undo()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_model().save_pretrained(tmp_path_factory.mktemp("cli_outputs") / "model")


def _sample(model_dir, capsys, *args):
    from smkit.cli import main
    rc = main(["sample", "--model", str(model_dir), "--steps", "4", "--length", "16", *args])
    return rc, capsys.readouterr()


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line and no progress bar (nothing decoded):\n{err}"
    return lines[0]


def test_out_in_a_read_only_folder_stops_before_decoding(model_dir, read_only_dir, capsys):
    out = read_only_dir / "samples.jsonl"
    rc, cap = _sample(model_dir, capsys, "--out", str(out))
    line = _one_error_line(cap.err)
    assert rc == 2 and line.startswith("smkit sample: error: --out=") and str(out) in line, line
    assert "cannot write" in line and cap.out == ""


def test_trace_file_in_a_read_only_folder_stops_before_anything_is_written(model_dir, read_only_dir, tmp_path,
                                                                            capsys):
    out, trace = tmp_path / "samples.jsonl", read_only_dir / "run.trace"
    rc, cap = _sample(model_dir, capsys, "--out", str(out), "--trace-file", str(trace))
    line = _one_error_line(cap.err)
    assert rc == 2 and line.startswith("smkit sample: error: --trace-file=") and str(trace) in line, line
    assert ".tmp" not in line and not out.exists(), "the samples must not be written when the trace cannot be"


def test_a_file_where_the_folder_should_be_and_a_folder_as_the_file(model_dir, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    rc, cap = _sample(model_dir, capsys, "--out", str(blocker / "samples.jsonl"))
    line = _one_error_line(cap.err)
    assert rc == 2 and str(blocker) in line and "is a file, not a folder" in line, line
    rc, cap = _sample(model_dir, capsys, "--out", str(tmp_path))
    line = _one_error_line(cap.err)
    assert rc == 2 and f"--out={str(tmp_path)!r}: that is a folder" in line, line
    rc, cap = _sample(model_dir, capsys, "--out", str(tmp_path / "s.jsonl"), "--trace-file", str(tmp_path / "s.jsonl"))
    assert rc == 2 and "is the --out file too" in _one_error_line(cap.err)


def test_a_writable_place_still_gets_both_files(model_dir, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "samples.jsonl"
    rc, cap = _sample(model_dir, capsys, "--out", str(out))
    assert rc == 0, cap.err
    assert out.is_file() and (tmp_path / "new" / "folder" / "samples.trace").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".smkit-write-check")]


def test_the_default_trace_file_has_the_documented_extension(model_dir, tmp_path, capsys):
    """`smkit sample` names its trace <out stem> + the suffix docs/traces.md gives trace files (`.trace`), and
    its --help says the same; the file opens as a trace."""
    import smkit
    from smkit.cli import build_parser
    from smkit.core.trace_file import SUFFIX

    docs = (Path(__file__).resolve().parent.parent / "docs" / "traces.md").read_text()
    assert SUFFIX == ".trace" and f"Trace files end in `{SUFFIX}`" in docs and "`s.trace`" in docs
    out = tmp_path / "s.jsonl"
    rc, cap = _sample(model_dir, capsys, "--out", str(out))
    assert rc == 0, cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.trace"]
    assert smkit.Trace.open(tmp_path / "s.trace").num_samples >= 1
    sample = build_parser()._subparsers._group_actions[0].choices["sample"]
    assert "default <out>.trace;" in sample._option_string_actions["--trace-file"].help


# ---------------------------------------------------------------- smkit train --out-dir

TINY_TRAIN = ["--corpus", "task:add", "--task-param", "digits=2", "--steps", "2", "--hidden-size", "16",
              "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "32", "--batch-size", "4",
              "--eval-blocks", "4", "--progress", "false", "--warmup-steps", "0"]


def _train(capsys, out_dir, *args):
    """`smkit train` on a tiny task into `out_dir`, starting from a base that does not exist: a check of the
    output that runs first fails naming --out-dir; reaching the base (the first thing read) fails naming it."""
    from smkit.cli import main
    rc = main(["train", *TINY_TRAIN, "--out-dir", str(out_dir), *args])
    return rc, capsys.readouterr()


def test_train_out_dir_under_a_file_stops_before_anything_is_read(tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    rc, cap = _train(capsys, blocker / "run", "--init-from", str(tmp_path / "no_such_base"))
    line = _one_error_line(cap.err)
    assert rc == 2 and line.startswith("smkit train: error: --out-dir=") and str(blocker / "run") in line, line
    assert "is a file, not a folder" in line and "no_such_base" not in line


def test_train_out_dir_in_a_read_only_folder_stops_before_anything_is_read(read_only_dir, tmp_path, capsys):
    rc, cap = _train(capsys, read_only_dir / "run", "--init-from", str(tmp_path / "no_such_base"))
    line = _one_error_line(cap.err)
    assert rc == 2 and f"--out-dir={str(read_only_dir / 'run')!r}" in line and "cannot write" in line, line


def test_train_refuses_to_replace_an_earlier_run_unless_asked(tmp_path, capsys):
    run = tmp_path / "run"
    rc, cap = _train(capsys, run)
    assert rc == 0, cap.err
    before = (run / "metrics.csv").read_bytes()
    rc, cap = _train(capsys, run, "--init-from", str(tmp_path / "no_such_base"))
    line = _one_error_line(cap.err)
    assert rc == 2 and f"--out-dir={str(run)!r} already holds a training run" in line, line
    assert "--resume true" in line and "--overwrite" in line and (run / "metrics.csv").read_bytes() == before
    rc, cap = _train(capsys, run, "--overwrite", "--seed", "1")
    assert rc == 0, cap.err
    assert (run / "model" / "smkit.json").is_file()


def test_python_train_checks_out_dir_before_the_base(tmp_path):
    import smkit
    from smkit.core.errors import ConfigError

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="out_dir=.*not_a_folder.*is a file, not a folder"):
        smkit.train(corpus="task:add", task_params={"digits": 2}, steps=2, warmup_steps=0, out_dir=str(blocker / "run"),
                    init_from=str(tmp_path / "no_such_base"), progress=False)
