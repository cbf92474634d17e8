"""`smkit train --config RECIPE --dry-run`: check a training recipe on a CPU, offline, in about a minute.

What it does, in order (any failure is an error naming the field):
1. validates every field of the config (unknown fields, types, values) and the batch against the number of
   processes the recipe is meant for (`processes`);
2. counts the parameters of the full-size model, built on the meta device with the config's vocabulary;
3. checks the tokenizer and corpus where this machine can (a local folder or file is loaded; a hub id that is
   not in the local cache is reported as not checked, never downloaded);
4. trains `steps` updates of the same architecture (the full-size model, real weights) on CPU through the same
   data path (streamed when the recipe streams) with a tiny local sample (documents from the built-in
   Shakespeare corpus) and a byte-level BPE trained on it, one block per update, then evaluates, writes its
   checkpoint and final model into a temporary folder, checks both and deletes the folder. A task corpus
   ("task:NAME") is generated here, so it trains on its own examples and its own character tokenizer.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..core.config import ConfigError, check
from ..io.data import (BUILTIN_CORPORA, TOKENIZER_KINDS, DataError, load_corpus, load_pretrained_tokenizer,
                   load_tokenizer)
from .distributed import launched_world_size
from ..tasks.registry import is_task_corpus
from ..tasks.training import task_of
from .train import TrainConfig

SAMPLE_DOCS = 30
SAMPLE_DOC_CHARS = 4000
SAMPLE_VOCAB = 512
SAMPLE_VAL_DOCS = 4


@dataclass
class DryRunReport:
    parameters: int                       # the full-size model (config vocabulary), SM scalars included
    sample_vocab: int                     # ids of the tokenizer trained on the sample
    updates: int
    soft_mask_updates: int
    losses: list[float]
    val_bound: float
    val_bound_sm: float
    notes: list[str] = field(default_factory=list)  # what this machine could not check

    def summary(self) -> str:
        lines = [f"dry run passed: full-size model {self.parameters:,} parameters",
                 f"{self.updates} updates on the local sample ({self.soft_mask_updates} soft-masked), sample "
                 f"tokenizer {self.sample_vocab} ids, losses {', '.join(f'{x:.3f}' for x in self.losses)}; "
                 f"validation bound {self.val_bound:.3f} (binary), {self.val_bound_sm:.3f} (SM); checkpoint and "
                 f"model written, checked and removed"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def count_parameters(cfg: TrainConfig) -> int:
    """Parameters of the model `cfg` describes, at its configured vocabulary, without allocating them."""
    from ..models.denoiser import DiffusionLM

    vocab = len(task_of(cfg).tokenizer()) if is_task_corpus(cfg.corpus) else None  # a task: its own tokenizer
    with torch.device("meta"):
        model = DiffusionLM(cfg.model_config(vocab))
    return sum(p.numel() for p in model.parameters())


def _check_sources(cfg: TrainConfig) -> list[str]:
    """Load the tokenizer and open the corpus where they are on this machine; notes for what is not."""
    notes = []
    if cfg.tokenizer not in TOKENIZER_KINDS:
        if Path(cfg.tokenizer).expanduser().is_dir():
            load_pretrained_tokenizer(cfg.tokenizer, cfg.vocab_size)
        elif cfg.tokenizer.startswith((".", "/", "~")):
            notes.append(f"tokenizer={cfg.tokenizer!r} not checked: no such folder on this machine")
        else:
            try:
                load_pretrained_tokenizer(cfg.tokenizer, cfg.vocab_size)
            except DataError as err:
                if "could not be loaded" not in str(err):
                    raise
                notes.append(f"tokenizer={cfg.tokenizer!r} not checked: not in this machine's cache (nothing is "
                             f"downloaded)")
    if is_task_corpus(cfg.corpus):
        pass  # generated here: nothing to open
    elif Path(cfg.corpus).expanduser().exists():
        if cfg.streaming:
            from ..io.streaming import open_stream
            open_stream(cfg.corpus, cfg.text_column)
        else:
            load_corpus(cfg.corpus, cfg.text_column)
    elif cfg.corpus not in BUILTIN_CORPORA:
        notes.append(f"corpus={cfg.corpus!r} not opened: not a local file (nothing is downloaded); a local sample "
                     f"went through the same {'streaming ' if cfg.streaming else ''}data path")
    return notes


def _write_sample(folder: Path, streaming: bool) -> Path:
    """SAMPLE_DOCS documents of SAMPLE_DOC_CHARS characters from the Shakespeare corpus."""
    text = "\n\n".join(d.text for d in load_corpus("shakespeare")[:4])
    docs = [text[i * SAMPLE_DOC_CHARS:(i + 1) * SAMPLE_DOC_CHARS] for i in range(SAMPLE_DOCS)]
    if streaming:
        path = folder / "sample.jsonl"
        path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
        return path
    path = folder / "sample"
    path.mkdir()
    for i, d in enumerate(docs):
        (path / f"doc{i:02d}.txt").write_text(d, encoding="utf-8")
    return path


def dry_run(config: TrainConfig | dict, processes: int = 1, steps: int = 2) -> DryRunReport:
    """Check `config` as described in this module's docstring; returns what it found."""
    from ..io import checkpoint as ckpt
    from .train import Trainer

    cfg = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    cfg.validate()
    check(isinstance(processes, int) and processes >= 1, "processes", processes, "must be an integer >= 1")
    check(cfg.batch_size % processes == 0, "batch_size", cfg.batch_size,
          f"the global batch must divide by the number of processes ({processes})")
    if cfg.micro_batch_size is not None:
        per = cfg.batch_size // processes
        check(per % cfg.micro_batch_size == 0, "micro_batch_size", cfg.micro_batch_size,
              f"must divide each process's share of the batch ({cfg.batch_size} / {processes} processes = {per})")
    if launched_world_size() > 1:
        raise ConfigError("the dry run runs in one process: start it without accelerate launch")
    parameters = count_parameters(cfg)
    notes = _check_sources(cfg)
    with tempfile.TemporaryDirectory(prefix="smkit-dry-run-") as tmp:
        tmp = Path(tmp)
        source = {} if is_task_corpus(cfg.corpus) else dict(
            corpus=str(_write_sample(tmp, cfg.streaming)), text_column="text", tokenizer="bpe",
            vocab_size=SAMPLE_VOCAB, val_docs=SAMPLE_VAL_DOCS, shuffle_buffer=min(cfg.shuffle_buffer, 8))
        tiny = replace(cfg, **source, batch_size=1, micro_batch_size=None, steps=steps, forward_budget=None,
                       eval_every=0, eval_blocks=1, checkpoint_every=0, log_every=1, out_dir=str(tmp / "run"), device="cpu", resume=False,
                       progress=False, threads=cfg.threads or 1)
        result = Trainer(tiny).run()
        meta = ckpt.read_manifest(tmp / "run" / "last")
        if meta["trainer"]["step"] != steps:
            raise ckpt.CheckpointError(f"dry run: the checkpoint holds step {meta['trainer']['step']}, not {steps}")
        final = ckpt.read_manifest(tmp / "run" / "model")  # every file present, checksums match
        if final["soft_mask"] != result.model.soft_mask.values():
            raise ckpt.CheckpointError("dry run: the final model's SM scalars differ from the trained model's")
        h = result.history
        return DryRunReport(parameters=parameters, sample_vocab=len(load_tokenizer(tmp / "run" / "model")),
                            updates=int(h.step.iloc[-1]),
                            soft_mask_updates=int(h.soft_mask.sum()), losses=[float(x) for x in h.loss],
                            val_bound=float(h.val_bound.iloc[-1]), val_bound_sm=float(h.val_bound_sm.iloc[-1]),
                            notes=notes)
