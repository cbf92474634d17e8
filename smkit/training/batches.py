"""What a training run reads: its tokenizer, validation blocks and this process's training batches.

In memory (`streaming: false`) every process holds all blocks and draws the indices of the whole global
batch from the update's generator, then keeps its rows: the updates do not depend on the number of
processes. A stream (`streaming: true`) gives each process the next blocks of its own share of the stream.
A tokenizer trained here is trained by rank 0 only and handed to the others as tokenizer.json text.
A task corpus ("task:NAME") is generated afresh for every update (`smkit.tasks.training`).

`take()` returns (blocks, fixed): `fixed` [rows, L] bool marks positions never masked (a task's givens under
`task_condition`), None when every position can be masked.
"""
from __future__ import annotations

import torch

from ..io.data import (TOKENIZER_KINDS, Document, load_corpus, load_pretrained_tokenizer, pack_blocks, split_documents,
                   tokenizer_from_json, tokenizer_to_json, train_tokenizer)
from .distributed import Runtime
from ..io.streaming import BlockStream, StreamingCorpus
from ..tasks.registry import is_task_corpus
from ..tasks.training import task_data


class MemoryBatches:
    """Blocks in memory; an update's global batch is `batch_size` indices drawn from its generator."""

    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks

    def take(self, generator: torch.Generator, batch_size: int, rows: slice) -> torch.Tensor:
        idx = torch.randint(len(self.blocks), (batch_size,), generator=generator)
        return self.blocks[idx[rows]], None

    def skip_updates(self, updates: int, per_process: int) -> None:
        pass  # nothing to replay: indices come from the (seed, step) generator


class StreamBatches:
    """This process's share of a stream; its generator draws nothing for the batch."""

    def __init__(self, stream: BlockStream):
        self.stream = stream

    def take(self, generator: torch.Generator, batch_size: int, rows: slice) -> torch.Tensor:
        return self.stream.take(rows.stop - rows.start), None

    def skip_updates(self, updates: int, per_process: int) -> None:
        self.stream.skip(updates * per_process)


def _shared_trained_tokenizer(runtime: Runtime, train):
    """Rank 0 trains (`train()`); the others rebuild the same tokenizer from its tokenizer.json text."""
    tokenizer = train() if runtime.is_main else None
    if not runtime.distributed:
        return tokenizer
    text = runtime.broadcast_text(tokenizer_to_json(tokenizer) if runtime.is_main else None)
    return tokenizer if runtime.is_main else tokenizer_from_json(text)


def prepare_data(cfg, runtime: Runtime, tokenizer=None):
    """(tokenizer, training batches, validation blocks [<= eval_blocks, seq_len], their fixed positions or None)
    for TrainConfig `cfg`. `tokenizer` (a resumed run's) is used as given."""
    if is_task_corpus(cfg.corpus):
        return task_data(cfg, tokenizer)
    if tokenizer is None and cfg.tokenizer not in TOKENIZER_KINDS:
        tokenizer = load_pretrained_tokenizer(cfg.tokenizer, cfg.vocab_size)
    if cfg.streaming:
        corpus = StreamingCorpus(cfg.corpus, cfg.text_column, cfg.val_docs, cfg.seed, cfg.shuffle_buffer)
        if tokenizer is None:
            tokenizer = _shared_trained_tokenizer(runtime, lambda: train_tokenizer(
                [Document(str(i), t) for i, t in enumerate(corpus.tokenizer_texts())], cfg.tokenizer, cfg.vocab_size))
        val = corpus.validation_blocks(tokenizer, cfg.seq_len, cfg.eval_blocks)
        batches = StreamBatches(corpus.training_blocks(tokenizer, cfg.seq_len, runtime.rank, runtime.world_size))
        return tokenizer, batches, val, None
    train_docs, val_docs = split_documents(load_corpus(cfg.corpus, text_column=cfg.text_column), cfg.val_fraction)
    if tokenizer is None:
        tokenizer = _shared_trained_tokenizer(runtime, lambda: train_tokenizer(train_docs, cfg.tokenizer,
                                                                               cfg.vocab_size))
    train, val = pack_blocks(train_docs, tokenizer, cfg.seq_len), pack_blocks(val_docs, tokenizer, cfg.seq_len)
    return tokenizer, MemoryBatches(train), val[: cfg.eval_blocks], None
