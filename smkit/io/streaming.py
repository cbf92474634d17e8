"""Corpora read as a stream (`streaming: true`): a `datasets` IterableDataset -> tokenise -> pack on the fly.

The same code reads a hub dataset (e.g. OpenWebText) and a local data file (.jsonl/.json/.txt/.parquet/.csv),
both through `datasets.load_dataset(..., streaming=True)`; the paper recipe's dry run relies on that.

Layout of a stream, all deterministic given the seed:
- the first `val_docs` documents are the validation split (packed once, held in memory);
- a tokenizer trained here learns from up to TOKENIZER_DOCS documents that follow them;
- training reads every document after the validation split, shuffled with a seeded buffer of
  `shuffle_buffer` documents (reshuffled each epoch), each data-parallel process reading its own
  share (`datasets.distributed.split_dataset_by_node`); blocks never cross processes.
A resumed run replays its process's stream up to the blocks already consumed, so it continues exactly
(at the cost of re-reading them).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch

from .data import DataError, iter_blocks, offline_from_env

TOKENIZER_DOCS = 10_000
DATA_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".txt": "text", ".parquet": "parquet", ".csv": "csv"}


def open_stream(corpus: str, text_column: str = "text"):
    """An IterableDataset of documents: a local data file (by suffix) or a `datasets` hub name."""
    import datasets

    path = Path(corpus).expanduser()
    if path.exists() or corpus.startswith((".", "/", "~")):
        if not path.is_file() or path.suffix not in DATA_FILE_BUILDERS:
            raise DataError(f"corpus={corpus!r}: streaming reads a datasets name or one local data file with suffix "
                            f"{sorted(DATA_FILE_BUILDERS)}" + ("" if path.exists() else " (no such file)"))
        args, kwargs = (DATA_FILE_BUILDERS[path.suffix],), {"data_files": str(path)}
    else:
        args, kwargs = (corpus,), {}
    try:
        with offline_from_env():
            ds = datasets.load_dataset(*args, split="train", streaming=True, **kwargs)
    except Exception as err:  # offline, unknown name: one clear message
        raise DataError(f"corpus={corpus!r} could not be opened as a stream with datasets.load_dataset (offline runs "
                        f"need a local data file or a cached dataset): {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}") from None
    if ds.column_names is not None and text_column not in ds.column_names:
        raise DataError(f"text_column={text_column!r} is not a column of {corpus!r}; columns: {ds.column_names}")
    return ds


def _texts(ds, text_column: str):
    for row in ds:
        text = row[text_column]
        if text and text.strip():
            yield text


class StreamingCorpus:
    """A stream split into validation documents, tokenizer documents and a shuffled training stream."""

    def __init__(self, corpus: str, text_column: str, val_docs: int, seed: int, shuffle_buffer: int):
        self.corpus, self.text_column = corpus, text_column
        self.val_docs, self.seed, self.shuffle_buffer = val_docs, seed, shuffle_buffer
        self.dataset = open_stream(corpus, text_column)

    def validation_texts(self):
        """The first `val_docs` documents (an iterator: only what validation packs is read)."""
        return itertools.islice(_texts(self.dataset, self.text_column), self.val_docs)

    def tokenizer_texts(self) -> list[str]:
        rest = _texts(self.dataset, self.text_column)
        return list(itertools.islice(rest, self.val_docs, self.val_docs + TOKENIZER_DOCS))

    def validation_blocks(self, tokenizer, seq_len: int, max_blocks: int) -> torch.Tensor:
        blocks = list(itertools.islice(iter_blocks(self.validation_texts(), tokenizer, seq_len), max_blocks))
        if not blocks:
            raise DataError(f"val_docs={self.val_docs}: the first {self.val_docs} documents of {self.corpus!r} hold "
                            f"no block of seq_len={seq_len} tokens; raise val_docs")
        return torch.stack(blocks)

    def training_blocks(self, tokenizer, seq_len: int, rank: int = 0, world_size: int = 1) -> "BlockStream":
        return BlockStream(self, tokenizer, seq_len, rank, world_size)


class BlockStream:
    """Endless training blocks of one process: epoch after epoch of its share of the shuffled stream."""

    def __init__(self, corpus: StreamingCorpus, tokenizer, seq_len: int, rank: int, world_size: int):
        self.corpus, self.tokenizer, self.seq_len = corpus, tokenizer, seq_len
        self.rank, self.world_size = rank, world_size
        self.consumed = 0
        self._blocks = iter_blocks(self._all_epochs(), tokenizer, seq_len)

    def _epoch(self, epoch: int):
        from datasets.distributed import split_dataset_by_node

        c = self.corpus
        ds = c.dataset.skip(c.val_docs)
        if c.shuffle_buffer > 1:
            ds = ds.shuffle(seed=c.seed, buffer_size=c.shuffle_buffer)
            ds.set_epoch(epoch)
        if self.world_size > 1:
            ds = split_dataset_by_node(ds, rank=self.rank, world_size=self.world_size)
        return _texts(ds, c.text_column)

    def _all_epochs(self):
        for epoch in itertools.count():
            empty = True
            for text in self._epoch(epoch):
                empty = False
                yield text
            if empty:
                raise DataError(f"corpus={self.corpus.corpus!r} holds no training document after its first "
                                f"val_docs={self.corpus.val_docs} (the validation split)")

    def take(self, n: int) -> torch.Tensor:
        """The next `n` blocks [n, seq_len]."""
        blocks = list(itertools.islice(self._blocks, n))
        self.consumed += n
        return torch.stack(blocks)

    def skip(self, n: int) -> None:
        """Consume `n` blocks (a resumed run replays what it had read)."""
        for _ in itertools.islice(self._blocks, n):
            pass
        self.consumed += n
