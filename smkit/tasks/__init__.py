"""Exact-answer tasks: sudoku, sort, add, dyck, as fixed-length infill texts, training corpora and evaluations.

```python
from smkit import tasks
task = tasks.get("sudoku", givens=35)
ex = task.generate(4, seed=0)                  # Examples: puzzle (with [MASK] cells) and one valid answer
task.check(ex[0], ex[0].answer)                # exact validity: any valid completion counts
# smkit train --corpus task:sudoku --task-param givens=35      (given cells never masked: task_condition)
res = tasks.evaluate(model, task, n=256, steps=46, strategy="margin", soft_mask=True, seed=0)
res.accuracy, res.ci_low, res.ci_high, res.nfe
tasks.for_model(model)                         # the task a model was trained on
```

Training streams and evaluations never share a puzzle: see `smkit.tasks.base` (the split) and
`smkit.tasks.training` (the stream).
"""
from .base import MASK, SPLITS, Example, Task, TaskError, shown_answer, split_of
from .evaluate import TaskEval, evaluate, wilson_interval
from .registry import TASKS, for_model, get, is_task_corpus, parse_param
from .sweep import ORDER_STRATEGIES, sweep, sweep_figure, write_sweep

__all__ = ["TASKS", "get", "for_model", "evaluate", "TaskEval", "wilson_interval", "Task", "Example", "TaskError",
           "MASK", "SPLITS", "split_of", "shown_answer", "is_task_corpus", "parse_param", "sweep", "sweep_figure", "write_sweep", "ORDER_STRATEGIES"]
