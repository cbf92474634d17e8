"""What every exact-answer task shares: examples as infill templates, parameters, the train/test split.

An `Example` is a fixed-length text (`answer`) and the same text with `[MASK]` at every character to fill
(`puzzle`). A task's texts all have the same length in characters, and each character is one token of the
task's character tokenizer, so a puzzle is directly an infill template for `smkit.generate`.

The split. Every puzzle belongs to exactly one of two splits, decided by a hash of its text: `test` holds the
puzzles whose BLAKE2b digest is 0 modulo TEST_EVERY (one in eight), `train` all the others. `generate(n, seed,
split)` draws examples from a generator seeded by (the split's tag, seed) and keeps those of the split, so
training streams and evaluation sets never share a puzzle, however small the task's puzzle space, and their
seeds live in separate SeedSequence spaces as well.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..core.config import is_int
from ..core.errors import ConfigError, TaskError

MASK = "[MASK]"
SPLITS = ("train", "test")
TEST_EVERY = 8                       # one puzzle in TEST_EVERY is held out for evaluation
_SPLIT_TAGS = {"train": 0x7241494E, "test": 0x54455354}   # SeedSequence entropy of each split's seeds
_TRIES_PER_EXAMPLE = 200             # draws allowed per example kept before the split is declared empty


def template(puzzle: str) -> list:
    """The puzzle as one entry per character: the fixed character, or None where `[MASK]` stands."""
    cells: list = []
    for i, piece in enumerate(puzzle.split(MASK)):
        if i:
            cells.append(None)
        cells.extend(piece)
    return cells


_VISIBLE = {"\n": "\u21b5", " ": "\u2423", "\t": "\u21e5", "\r": "\u240d"}


def shown_answer(puzzle: str, text: str) -> str:
    """A decoded `text` laid out as its `puzzle`: each given character as it is, each filled cell as one visible
    character, so a newline or space the model wrote into a cell shows as \u21b5 or \u2423 instead of splitting
    a row. A text that does not have one character per cell of the puzzle comes back unchanged."""
    cells = template(puzzle)
    if len(text) != len(cells):
        return text
    return "".join(ch if given is not None else _VISIBLE.get(ch, ch) for given, ch in zip(cells, text))


@dataclass(frozen=True)
class Example:
    """`puzzle`: the text with `[MASK]` at every character to fill; `answer`: one valid full text (the puzzle
    with each marker replaced by exactly one character)."""
    puzzle: str
    answer: str

    @property
    def fixed(self) -> list[bool]:
        """Per character of the answer: True where the puzzle gives it."""
        return [c is not None for c in template(self.puzzle)]

    @property
    def masked(self) -> int:
        """How many characters the puzzle leaves to fill."""
        return self.puzzle.count(MASK)


def split_of(puzzle: str) -> str:
    """`test` or `train`: the split a puzzle belongs to, from a hash of its text (stable across runs)."""
    digest = hashlib.blake2b(puzzle.encode("utf-8"), digest_size=8, person=b"smkit-split").digest()
    return "test" if int.from_bytes(digest, "big") % TEST_EVERY == 0 else "train"


def mask_cells(answer: str, hidden) -> str:
    """The puzzle of `answer` with the characters at positions `hidden` replaced by `[MASK]`."""
    hidden = set(int(i) for i in hidden)
    return "".join(MASK if i in hidden else c for i, c in enumerate(answer))


def check_int(task: str, name: str, value, low: int, high: int) -> int:
    if not is_int(value) or not low <= value <= high:
        raise TaskError(f"task {task!r}: {name}={value!r}: must be an integer in [{low}, {high}]")
    return int(value)


class Task(ABC):
    """An exact-answer task. Subclasses set NAME, PARAMS ({name: default}), ALPHABET (every character a text may
    hold), and implement `_validate_params`, `length`, `masked`, `_draw(rng)` and `_valid(example, text)`."""
    NAME = ""
    PARAMS: dict = {}
    ALPHABET = ""

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            raise TaskError(f"task {self.NAME!r} has no parameter(s) {unknown}; allowed: "
                            + ", ".join(f"{k} (default {v!r})" for k, v in self.PARAMS.items()))
        self.params = {**self.PARAMS, **params}
        self._validate_params()
        self._tokenizer = None
        self._test_sets: dict[int, list[Example]] = {}   # seed -> the longest test list drawn (sweeps reuse it)

    # -- to implement
    @abstractmethod
    def _validate_params(self) -> None:
        """Raise TaskError naming a bad parameter in self.params."""

    @property
    @abstractmethod
    def length(self) -> int:
        """Characters (= tokens) of every text of this task."""

    @property
    @abstractmethod
    def masked(self) -> int:
        """Characters every puzzle leaves to fill."""

    @abstractmethod
    def _draw(self, rng: np.random.Generator) -> Example:
        """One random example (of either split)."""

    @abstractmethod
    def _valid(self, example: Example, text: str) -> bool:
        """True when `text` (right length, givens unchanged, characters of the alphabet) solves the puzzle."""

    # -- shared
    @property
    def spec(self) -> dict:
        """{"name": ..., "params": {...}}: everything `smkit.tasks.get` needs to rebuild this task."""
        return {"name": self.NAME, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Task) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash((self.NAME, tuple(sorted(self.params.items()))))

    def generate(self, n: int, seed: int = 0, split: str = "test") -> list[Example]:
        """`n` examples of `split` (default `test`: held out from every training stream), the same for the
        same (n, seed, split). Example i does not depend on n."""
        if not is_int(n) or n < 0:
            raise TaskError(f"n={n!r}: must be an integer >= 0 (examples to generate)")
        if not is_int(seed) or seed < 0:
            raise TaskError(f"seed={seed!r}: must be an integer >= 0")
        if split not in SPLITS:
            raise TaskError(f"split={split!r}: choose one of {SPLITS}")
        cached = self._test_sets.get(int(seed), []) if split == "test" else []
        if len(cached) >= n:  # example i does not depend on n: a prefix of a longer draw is the same draw
            return cached[:n]
        out = self._draw_split(n, int(seed), split)
        if split == "test":  # evaluation sets are few and reused; training streams are not cached
            self._test_sets[int(seed)] = out
        return list(out)

    def _draw_split(self, n: int, seed: int, split: str) -> list[Example]:
        rng = np.random.default_rng(np.random.SeedSequence([_SPLIT_TAGS[split], seed]))
        out: list[Example] = []
        tries = 0
        while len(out) < n:
            example = self._draw(rng)
            tries += 1
            if split_of(example.puzzle) == split:
                out.append(example)
            elif tries > _TRIES_PER_EXAMPLE * (len(out) + 1):
                raise TaskError(f"task {self!r} has too few distinct puzzles to hold out a {split!r} split (one "
                                f"puzzle in {TEST_EVERY} is held out for testing); make it larger")
        return out

    def check(self, example: Example, text: str) -> bool:
        """Exact validity: `text` has the puzzle's length, every given character unchanged, only characters of
        the task's alphabet, and solves the puzzle (any valid completion counts)."""
        if not isinstance(text, str) or len(text) != len(example.answer):
            return False
        for c, given in zip(text, template(example.puzzle)):
            if (given is not None and c != given) or c not in self.ALPHABET:
                return False
        return self._valid(example, text)

    def tokenizer(self):
        """The task's character tokenizer (`[UNK]` first, the alphabet in sorted order, `[MASK]` last), built
        by smkit's own char tokenizer builder from the fixed alphabet: identical in every run."""
        if self._tokenizer is None:
            from ..io.data import Document, train_tokenizer
            self._tokenizer = train_tokenizer([Document(self.NAME, self.ALPHABET)], "char")
        return self._tokenizer


def encode(task: Task, texts: list[str]):
    """Token ids [N, task.length] of full texts (or puzzles) of `task` with its character tokenizer."""
    import torch

    ids = task.tokenizer()(list(texts), add_special_tokens=False)["input_ids"]
    bad = [i for i, row in enumerate(ids) if len(row) != task.length]
    if bad:
        raise TaskError(f"text {texts[bad[0]]!r} is {len(ids[bad[0]])} tokens, not the task's {task.length}")
    return torch.tensor(ids, dtype=torch.long)
