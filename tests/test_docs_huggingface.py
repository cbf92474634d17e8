"""docs/huggingface.md runs: its ```python blocks execute in order in a fresh folder (```py blocks, which
need real weights, are shown only)."""
import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "huggingface.md"


def test_huggingface_doc_code_runs(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
    model, loaded = namespace["model"], namespace["loaded"]
    assert model.adapter["method"] == "dora" and loaded.adapter == model.adapter
    assert len(namespace["result"].history) == 4
    assert (tmp_path / "tiny-bert-sm-dora" / "adapter.safetensors").is_file()
