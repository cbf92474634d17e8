"""Exact-answer evaluation: decode held-out puzzles with smkit's sampler and count the valid answers.

`evaluate(model, task, n, steps, strategy, soft_mask, seed, **decode_options)` draws `n` puzzles of the task's
`test` split (never in a training stream: `smkit.tasks.base`), decodes them in batches with `smkit.generate`
(each puzzle is the infill template of its sample: the `[MASK]` cells are generated, every given character
kept), and checks every text with `task.check`. Sample i is decoded with seed (seed, i) whatever the batch.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch

from ..core.config import is_int
from .base import Task, TaskError, encode

Z95 = 1.959963984540054   # the standard normal's 97.5% quantile
_RESERVED = ("prompt", "infill", "num_samples", "length", "first_sample", "trace", "progress")


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% with the default z)."""
    if not is_int(n) or n < 1:
        raise TaskError(f"n={n!r}: the Wilson interval needs at least one trial")
    if not is_int(successes) or not 0 <= successes <= n:
        raise TaskError(f"successes={successes!r}: must be an integer in [0, n={n}]")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class TaskEval:
    """What `evaluate` returns; `to_dict()` for JSON and tables."""
    task: dict                 # {"name": ..., "params": {...}}
    n: int                     # puzzles decoded
    accuracy: float            # share of valid answers (task.check)
    ci_low: float              # Wilson 95% score interval of the accuracy
    ci_high: float
    nfe: float                 # mean forward passes per example (the passes of the batch it was decoded in)
    cell_accuracy: float       # share of masked cells equal to the reference's (several valid answers: agreement)
    steps: int                 # decoding steps for the masked cells
    strategy: str
    soft_mask: bool
    seed: int
    correct: list = field(default_factory=list)    # per example: valid or not
    texts: list = field(default_factory=list)      # decoded texts
    puzzles: list = field(default_factory=list)    # the templates decoded
    answers: list = field(default_factory=list)    # one reference answer per puzzle
    decode_options: dict = field(default_factory=dict)
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"TaskEval({self.task['name']} {self.task['params']}: accuracy {self.accuracy:.3f} "
                f"[{self.ci_low:.3f}, {self.ci_high:.3f}] over n={self.n}, nfe {self.nfe:.1f}, steps {self.steps}, "
                f"{self.strategy}, soft_mask={self.soft_mask})")


def _check_model(model, task: Task) -> None:
    tok = getattr(model, "tokenizer", None)
    if tok is None or tok.get_vocab() != task.tokenizer().get_vocab():
        raise TaskError(f"model: its tokenizer is not the character tokenizer of task {task!r}; evaluate a model "
                        f"trained on this task (smkit train --corpus task:{task.NAME})")
    if model.config.seq_len < task.length:
        raise TaskError(f"model: its context (seq_len={model.config.seq_len}) is shorter than the task's texts "
                        f"({task.length} characters)")


def evaluate(model, task: Task | str | None = None, n: int = 256, steps: int | None = None,
             strategy: str = "confidence", soft_mask: bool = True, seed: int = 0, batch_size: int = 128,
             progress: bool = False, **decode_options) -> TaskEval:
    """Decode `n` held-out puzzles of `task` (a Task, a name with default parameters, or None: the task the
    model was trained on, `for_model`) and check every answer exactly.

    steps: decoding steps for the masked cells (default: one cell per step, `task.masked`); cells revealed
    per step = masked cells / steps. strategy, soft_mask and `decode_options` (temperature, k, threshold,
    lambda_schedule, ...) go to `smkit.generate`. batch_size: puzzles per generate call."""
    from ..sampling.loop import generate
    from .registry import for_model, get

    task = for_model(model) if task is None else get(task) if isinstance(task, str) else task
    if not isinstance(task, Task):
        raise TaskError(f"task={task!r}: give a Task (smkit.tasks.get), a task name, or None (the model's task)")
    reserved = sorted(set(decode_options) & set(_RESERVED))
    if reserved:
        raise TaskError(f"decode option(s) {reserved} are set by evaluate (each puzzle is its sample's template)")
    if not is_int(n) or n < 1:
        raise TaskError(f"n={n!r}: must be an integer >= 1 (puzzles to decode)")
    if not is_int(batch_size) or batch_size < 1:
        raise TaskError(f"batch_size={batch_size!r}: must be an integer >= 1")
    steps = task.masked if steps is None else steps
    if not is_int(steps) or steps < 1:
        raise TaskError(f"steps={steps!r}: must be an integer >= 1 (the task masks {task.masked} cells)")
    _check_model(model, task)
    examples = task.generate(n, seed, split="test")
    texts, tokens, passes = [], [], 0
    t0 = time.perf_counter()
    bar = None
    if progress:
        from ..core.progress import progress_bar
        bar = progress_bar(total=n, desc=f"evaluate {task.NAME}", unit="puzzle")
    for start in range(0, n, batch_size):
        chunk = examples[start:start + batch_size]
        g = generate(model, infill=[e.puzzle for e in chunk], num_samples=len(chunk), length=task.length,
                     steps=steps, strategy=strategy, soft_mask=soft_mask, seed=seed, first_sample=start,
                     trace=False, **decode_options)
        texts.extend(g.texts)
        tokens.append(g.tokens)
        passes += g.nfe * len(chunk)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    correct = [bool(task.check(e, t)) for e, t in zip(examples, texts)]
    decoded = torch.cat(tokens)[:, :task.length]
    reference = encode(task, [e.answer for e in examples])
    free = ~torch.tensor([e.fixed for e in examples])
    cell_accuracy = float((decoded == reference)[free].float().mean())
    low, high = wilson_interval(sum(correct), n)
    return TaskEval(task=task.spec, n=n, accuracy=sum(correct) / n, ci_low=low, ci_high=high, nfe=passes / n,
                    cell_accuracy=cell_accuracy, steps=steps, strategy=strategy, soft_mask=soft_mask, seed=seed,
                    correct=correct, texts=texts, puzzles=[e.puzzle for e in examples],
                    answers=[e.answer for e in examples], decode_options=dict(decode_options),
                    wall_time=time.perf_counter() - t0)
