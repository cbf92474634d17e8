"""Streamed corpora: validation head, seeded shuffle, per-process shares, epochs, replay; training on a stream."""
import re

import pandas as pd
import pytest
import torch

import smkit
from smkit.io.data import DataError, Document, train_tokenizer
from smkit.io.streaming import StreamingCorpus, open_stream
from smkit.training.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def char_tok(hamlet_jsonl):
    corpus = StreamingCorpus(str(hamlet_jsonl), "text", 20, 0, 50)
    return train_tokenizer([Document(str(i), t) for i, t in enumerate(corpus.tokenizer_texts())], "char")


def _docs_in(blocks, tok) -> set:
    return {int(m) for b in blocks for m in re.findall(r"doc(\d+):", tok.decode(b.tolist()))}


def test_validation_is_the_head_and_training_never_sees_it(hamlet_jsonl, char_tok):
    corpus = StreamingCorpus(str(hamlet_jsonl), "text", 20, 0, 50)
    assert [t.split(":")[0] for t in list(corpus.validation_texts())] == [f"doc{i}" for i in range(20)]
    assert _docs_in(corpus.validation_blocks(char_tok, 64, 1000), char_tok) <= set(range(20))
    seen = _docs_in(corpus.training_blocks(char_tok, 64).take(400), char_tok)
    assert min(seen) >= 20 and len(seen) > 100


def test_stream_is_deterministic_given_the_seed(hamlet_jsonl, char_tok):
    def blocks(seed):
        return StreamingCorpus(str(hamlet_jsonl), "text", 20, seed, 50).training_blocks(char_tok, 32).take(20)
    assert torch.equal(blocks(0), blocks(0))
    assert not torch.equal(blocks(0), blocks(1))


def test_processes_read_disjoint_shares(hamlet_jsonl, char_tok):
    corpus = StreamingCorpus(str(hamlet_jsonl), "text", 20, 0, 50)
    shares = [_docs_in(corpus.training_blocks(char_tok, 64, rank, 2).take(150), char_tok) for rank in (0, 1)]
    assert shares[0] and shares[1] and not shares[0] & shares[1]


def test_epochs_continue_and_skip_replays(hamlet_jsonl, char_tok):
    corpus = StreamingCorpus(str(hamlet_jsonl), "text", 20, 0, 50)
    many = corpus.training_blocks(char_tok, 32).take(2000)  # ~64k characters: more than one pass over 40k
    assert many.shape == (2000, 32)
    stream = corpus.training_blocks(char_tok, 32)
    stream.skip(1500)
    assert torch.equal(stream.take(500), many[1500:]) and stream.consumed == 2000


def test_bad_streams_fail_clearly(hamlet_jsonl, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_stream(str(tmp_path / "missing.jsonl"))
    (tmp_path / "notes.md").write_text("# hi")
    with pytest.raises(DataError, match=r"suffix"):
        open_stream(str(tmp_path / "notes.md"))
    with pytest.raises(DataError, match="text_column='body'"):
        open_stream(str(hamlet_jsonl), "body")
    with pytest.raises(DataError, match="some-user/not-cached"):
        open_stream("some-user/not-cached")
    with pytest.raises(DataError, match="val_docs=3"):
        StreamingCorpus(str(hamlet_jsonl), "text", 3, 0, 50).validation_blocks(
            train_tokenizer([Document("d", "abcdefgh")], "char"), 4096, 1)


def _stream_cfg(hamlet_jsonl, out, **more):
    return TrainConfig(**{**dict(corpus=str(hamlet_jsonl), streaming=True, val_docs=20, shuffle_buffer=50,
                                 tokenizer="bpe", vocab_size=300, seq_len=32, hidden_size=32, num_layers=1,
                                 num_heads=2, intermediate_size=64, batch_size=4, warmup_steps=1, eval_every=0,
                                 eval_blocks=4, log_every=1, checkpoint_every=0, progress=False, threads=1,
                                 p_sm=0.5, out_dir=str(out)), **more})


def test_training_on_a_stream_resumes_exactly(hamlet_jsonl, tmp_path):
    full = smkit.train(_stream_cfg(hamlet_jsonl, tmp_path / "full", steps=4))
    assert full.history.soft_mask.any() and len(full.model.tokenizer) == 300
    smkit.train(_stream_cfg(hamlet_jsonl, tmp_path / "cut", steps=2))
    resumed = smkit.train(_stream_cfg(hamlet_jsonl, tmp_path / "cut", steps=4, resume=True))
    cols = ["step", "forward_passes", "loss", "soft_mask", "scale"]
    pd.testing.assert_frame_equal(resumed.history[cols], full.history[cols])
    with pytest.raises(ValueError, match="shuffle_buffer"):
        Trainer(_stream_cfg(hamlet_jsonl, tmp_path / "cut", steps=6, resume=True, shuffle_buffer=10))
