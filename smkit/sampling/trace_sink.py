"""Where `generate`'s step records go: a compact `Trace` in memory (`trace=True`), or a trace file written as
the steps arrive (`trace="run.trace"` or `trace=TraceFile(path, overwrite=..., precision=...)`): memory stays
at one step, and a decode that stops early (an error, Ctrl-C) leaves a file that opens with the steps done."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError
from ..core.trace import FORMAT, Trace, _Memory, layout_of, model_fingerprint, tokenizer_head
from ..core.trace_codec import PRECISIONS, StepEncoder
from ..core.trace_file import TraceWriter


@dataclass(frozen=True)
class TraceFile:
    """A trace file for `generate(..., trace=TraceFile("run.trace"))`: `overwrite` replaces an existing file
    (never done otherwise); `precision` of the statistics, float16 (the default) or float32 (exact)."""
    path: str | os.PathLike
    overwrite: bool = False
    precision: str = "float16"

    def __post_init__(self):
        if not isinstance(self.path, (str, os.PathLike)) or str(self.path) == "":
            raise ConfigError(f"TraceFile(path={self.path!r}): give a file path")
        if not isinstance(self.overwrite, bool):
            raise ConfigError(f"TraceFile(overwrite={self.overwrite!r}): must be True or False")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"TraceFile(precision={self.precision!r}): choose one of {PRECISIONS}")


def trace_target(trace) -> bool | TraceFile:
    """`generate`'s trace= as False, True (in memory) or a TraceFile; anything else is a ConfigError."""
    if isinstance(trace, bool):
        return trace
    if isinstance(trace, TraceFile):
        return trace
    if isinstance(trace, (str, os.PathLike)):
        return TraceFile(trace)
    raise ConfigError(f"trace={trace!r}: give True (a Trace in memory), False (none), a file path (the trace is "
                      f"written there while decoding) or smkit.TraceFile(path, overwrite=..., precision=...)")


class TraceSink:
    """Receives a run's records one by one. Opened before the first forward pass (a file that cannot be
    written fails here); `finish()` gives the Trace, `abort(err)` closes a file marked as stopped early."""

    def __init__(self, target: bool | TraceFile, plan, model, meta: dict):
        self.plan, self.vocab = plan, int(model.config.vocab_size)
        self.head = {"format": FORMAT, "meta": meta, "model": model_fingerprint(model)}
        self.tokenizer = getattr(model, "tokenizer", None)
        self.writer = None
        self.store = self.encoder = None
        self.precision = "float32"
        if isinstance(target, TraceFile):
            self.precision = target.precision
            self.writer = TraceWriter(target.path, overwrite=target.overwrite)

    def add(self, rec) -> None:
        if self.writer is not None:
            if not self.writer.started:
                self._start(rec)
            self.writer.add(rec)
        else:
            if self.encoder is None:
                self._start(rec)
            self.store.frames.append(self.encoder.encode(rec))

    def _start(self, rec) -> None:
        B, L = rec.tokens.shape
        layout = layout_of(rec, self.vocab, self.precision, init=self.plan.init.expand(B, L))
        if self.writer is not None:
            self.writer.start(layout, {**self.head, **tokenizer_head(self.tokenizer)})
        else:
            self.store = _Memory(layout, dict(self.head))
            self.encoder = StepEncoder(layout)

    def finish(self) -> Trace | None:
        """The trace (None when no step ran): in memory, or the file opened lazily."""
        if self.writer is not None:
            path = self.writer.close()
            return None if path is None else Trace.open(path)
        if self.store is None:
            return None
        return Trace(self.store, self.tokenizer)

    def abort(self, err: BaseException) -> Path | None:
        """Close a file after an error or an interrupt: the index says the decode stopped early, and why."""
        if self.writer is None:
            return None
        return self.writer.close(complete=False, stopped=f"{type(err).__name__}: {err}".strip().rstrip(":"))
