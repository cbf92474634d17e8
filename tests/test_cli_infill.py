"""`smkit sample --infill`: without --length the sample ends where the template ends."""
import json

from conftest_sampling import build_model


def _sample(tmp_path, *extra):
    from smkit.cli import main
    model_dir = build_model().save_pretrained(tmp_path / "model")
    out = tmp_path / "s.jsonl"
    rc = main(["sample", "--model", str(model_dir), "--out", str(out), "--steps", "3", "--trace-file", "none",
               "--prompt", "to be", "--infill", "or [MASK]ot[MASK]to", *extra])
    assert rc == 0
    return json.loads(out.read_text().splitlines()[0])


def test_infill_without_length_stops_at_the_template_end(tmp_path):
    row = _sample(tmp_path)
    assert len(row["tokens"]) == len("to be") + len("or _ot_to")  # a char model: one token per character
    assert row["text"].startswith("to beor ") and row["text"].endswith("to")


def test_an_explicit_length_still_extends_past_the_template(tmp_path):
    assert len(_sample(tmp_path, "--length", "24")["tokens"]) == 24
