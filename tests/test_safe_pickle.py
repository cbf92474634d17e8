"""The restricted unpickler: checkpoints of the paper's code open, code named in a pickle never runs."""
from __future__ import annotations

import collections
import importlib
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from smkit.core.errors import CheckpointError, SmkitError
from smkit.io import safe_pickle
from smkit.io.safe_pickle import LazyTensor, Placeholder, UnsafePickleError

FIXTURE = Path(__file__).parent / "fixtures" / "paper_formats"
PWNED = "pwned-by-checkpoint"


def test_evil_checkpoint_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePickleError, match=r"posix\.system\('touch pwned-by-checkpoint'\)|system"):
        safe_pickle.load(FIXTURE / "evil.ckpt")
    assert not (tmp_path / PWNED).exists()
    assert os.listdir(tmp_path) == []


def test_evil_checkpoint_would_run_its_command_without_restrictions(tmp_path):
    """The refusal above means something: an unrestricted load of the same file does run the command."""
    code = "import torch, sys; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run([sys.executable, "-c", code, str(FIXTURE / "evil.ckpt")], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / PWNED).exists()


def test_paper_checkpoint_opens_with_its_tokenizer_as_a_placeholder():
    with pytest.raises(Exception):   # why the restricted reader exists
        torch.load(FIXTURE / "sm.ckpt", weights_only=True)
    loaded = safe_pickle.load(FIXTURE / "sm.ckpt")
    data = loaded.data
    assert {"state_dict", "ema", "hyper_parameters", "optimizer_states"} <= set(data)
    config = data["hyper_parameters"]["config"]
    assert type(config) is dict and config["model"]["hidden_size"] == 96 and config["algo"]["name"] == "mdlm_sm"
    assert config["algo"]["time_conditioning"] is False
    tokenizer = data["hyper_parameters"]["tokenizer"]
    assert isinstance(tokenizer, Placeholder) and tokenizer.qualified_name.endswith("GPT2TokenizerFast")
    assert loaded.placeholders == [("hyper_parameters.tokenizer",
                                    "transformers.models.gpt2.tokenization_gpt2_fast.GPT2TokenizerFast")]
    emb = data["state_dict"]["backbone.vocab_embed.embedding"]
    assert isinstance(emb, LazyTensor) and emb.shape == (300, 96) and emb.dtype == torch.float32
    assert emb.load().shape == (300, 96)
    assert len(data["ema"]["shadow_params"]) == 30


def test_a_torch_save_tree_reads_back_equal(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tree = {"view": base[1:, 1:3], "bf16": torch.ones(5, dtype=torch.bfloat16) * 3, "ints": torch.arange(4),
            "param": torch.nn.Parameter(torch.full((2,), 0.5)), "bytes": b"\x00\xffab", "size": torch.Size([2, 3]),
            "dtype": torch.float16, "ordered": collections.OrderedDict(b=1, a=[1.5, None, True]), "set": {1, 2},
            "empty": torch.zeros(0, 3)}
    torch.save(tree, tmp_path / "t.pt")
    back = safe_pickle.materialize(safe_pickle.load(tmp_path / "t.pt").data)
    for key in ("view", "bf16", "ints", "param", "empty"):
        assert back[key].dtype == tree[key].dtype and torch.equal(back[key], tree[key].detach()), key
    assert back["bytes"] == tree["bytes"] and back["size"] == (2, 3) and back["dtype"] is torch.float16
    assert back["ordered"] == tree["ordered"] and back["set"] == {1, 2}


class _Calls:
    """Pickles as a call of `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Unknown:
    def __init__(self):
        self.weights = [1, 2]


def _archive(tmp_path, obj) -> Path:
    path = tmp_path / "x.ckpt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("x/byteorder", "little")
    return path


@pytest.mark.parametrize("func, args", [(eval, ("1 + 1",)), (getattr, ("", "join")), (importlib.import_module, ("os",)), (os.system, ("true",)),
                                        (subprocess.call, (["true"],)), (type, ("X", (), {}))])
def test_calls_off_the_allow_list_stop_the_load(tmp_path, func, args):
    with pytest.raises(UnsafePickleError, match="not on smkit's allow-list"):
        safe_pickle.load(_archive(tmp_path, {"x": _Calls(func, *args)}))


def test_an_unknown_class_becomes_an_inert_placeholder(tmp_path):
    loaded = safe_pickle.load(_archive(tmp_path, {"a": [Unknown()]}))
    obj = loaded.data["a"][0]
    assert isinstance(obj, Placeholder) and not isinstance(obj, Unknown) and obj.state == {"weights": [1, 2]}
    assert loaded.placeholders == [("a.0", f"{__name__}.Unknown")]


def test_broken_files_are_clear_errors(tmp_path):
    not_zip = tmp_path / "plain.ckpt"
    not_zip.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        safe_pickle.load(not_zip)
    other_zip = tmp_path / "other.ckpt"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="not one written by torch.save"):
        safe_pickle.load(other_zip)
    data = (FIXTURE / "sm.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        safe_pickle.materialize(safe_pickle.load(truncated).data)
    with pytest.raises(CheckpointError):
        safe_pickle.load(tmp_path / "missing.ckpt")
    assert issubclass(UnsafePickleError, SmkitError)


def test_a_storage_shorter_than_its_tensors_is_caught(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(8)}, path)
    short = tmp_path / "short.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(short, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, body[:8] if "/data/" in info.filename else body)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        safe_pickle.materialize(safe_pickle.load(short).data)
