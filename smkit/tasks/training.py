"""A task as a training corpus: `smkit train --corpus task:sudoku --task-param givens=35`.

Training reads a fresh stream of examples: the global batch of update u is `task.generate(batch_size, s,
split="train")` with s drawn from the update's generator, which `smkit.train` seeds by (seed, u). So a run is
reproducible and resumes exactly, and its puzzles all come from the `train` split: evaluation
(`smkit.tasks.evaluate`) and the validation bound use the `test` split, which no training stream reaches
(`smkit.tasks.base`: the split is a hash of the puzzle, and the two splits also seed from separate spaces).

Every block is one whole example (seq_len = the task's length, set by TrainConfig.validate), tokenised with
the task's character tokenizer. With `task_condition` (the default) the given characters are never masked
and not scored, as `smkit.finetune` treats prompts: the model learns p(answer | givens), which is how
evaluation decodes. Without it every position can be masked (unconditional training).
"""
from __future__ import annotations

import torch

from .base import Task, encode
from .registry import from_corpus


class TaskBatches:
    """An endless stream of `train`-split examples; each update's global batch comes from its generator."""

    def __init__(self, task: Task, condition: bool):
        self.task, self.condition = task, condition

    def examples(self, generator: torch.Generator, batch_size: int):
        seed = int(torch.randint(2**62, (1,), generator=generator))
        return self.task.generate(batch_size, seed, split="train")

    def take(self, generator: torch.Generator, batch_size: int, rows: slice):
        """(ids [rows, L], fixed [rows, L] bool or None): this process's rows of the update's global batch."""
        examples = self.examples(generator, batch_size)
        ids = encode(self.task, [e.answer for e in examples])[rows]
        fixed = torch.tensor([e.fixed for e in examples])[rows] if self.condition else None
        return ids, fixed

    def skip_updates(self, updates: int, per_process: int) -> None:
        pass  # nothing to replay: each batch comes from its update's generator


def task_of(cfg) -> Task:
    """The task a TrainConfig with corpus "task:NAME" trains on."""
    return from_corpus(cfg.corpus, cfg.task_params)


def task_data(cfg, tokenizer=None):
    """(tokenizer, training batches, validation blocks [eval_blocks, L], their fixed mask or None) for a task
    corpus. Validation examples are `test`-split puzzles (seeded by cfg.seed), never trained on."""
    task = task_of(cfg)
    tokenizer = tokenizer if tokenizer is not None else task.tokenizer()
    val = task.generate(cfg.eval_blocks, cfg.seed, split="test")
    val_ids = encode(task, [e.answer for e in val])
    val_fixed = torch.tensor([e.fixed for e in val]) if cfg.task_condition else None
    return tokenizer, TaskBatches(task, cfg.task_condition), val_ids, val_fixed
