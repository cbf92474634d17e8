"""Continued pretraining: start a run from a trained model's backbone and tokenizer (arXiv 2510.17206,
section 5: the paper's SM results continue a trained binary MDLM with SM).

`TrainConfig.init_from` names the base: a shipped model, a checkpoint folder, or one of the paper's model files (a
Lightning .ckpt or an MDLM Hugging Face folder, `smkit.io.paper_formats`; its EMA weights when it has them). The run gets the base's
backbone weights and tokenizer, a fresh optimizer and schedule, and the base's SM values (k and the three
scalars) unless `TrainConfig.sm` names some: those are set, the rest kept, and the run says which in one line and
records it. Every mismatch between the config and the base is an error before any compute.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..io import checkpoint as ckpt
from ..core.config import ConfigError
from ..io.data import TOKENIZER_KINDS, tokenizer_to_json
from ..tasks.registry import is_task_corpus
from ..io.model_files import PRETRAINED, PRETRAINED_DIR, train_config_of
from ..io.paper_formats import load_paper_model, paper_format
from ..core.soft_mask_params import FIELDS as SM_FIELDS

# TrainConfig field -> where the base records it (its ModelConfig / BackboneConfig)
_SHAPE_FIELDS = ("backbone", "hidden_size", "num_layers", "num_heads", "intermediate_size", "cond_dim")


@dataclass
class Base:
    """A loaded base model and its identity as recorded in the continuing run."""
    model: "object"         # DiffusionLM
    name_or_path: str
    sha256: str             # checksum of the base's weights file (from its manifest)

    sm_set: dict | None = None   # the SM values the run set instead of the base's (None until `start`)

    def record(self) -> dict:
        """What the run took from the base, as its checkpoints record it."""
        kept = [name for name in SM_FIELDS if name not in (self.sm_set or {})]
        return {"name_or_path": self.name_or_path, "sha256": self.sha256, "sm_kept": kept,
                "sm_set": dict(self.sm_set or {})}

    def start(self, model, sm_overrides: dict | None) -> str:
        """Copy the base's backbone into the freshly built `model` (whose SM values the config already took from
        the base, with `sm_overrides` replaced); keep the base's SM scalars bit for bit where none was set.
        Returns, and prints, the one line that says what was kept and what was set."""
        self.sm_set = dict(sm_overrides or {})
        with torch.no_grad():
            model.backbone.load_state_dict(self.model.backbone.state_dict(), strict=True)
            for name in ("scale", "centre", "steepness"):
                if name not in self.sm_set:
                    getattr(model.soft_mask, f"raw_{name}").copy_(getattr(self.model.soft_mask, f"raw_{name}"))
        live = model.soft_mask.values()
        kept = ", ".join(f"{n}={_fmt(live[n])}" for n in SM_FIELDS if n not in self.sm_set) or "nothing"
        set_ = ", ".join(f"{n}={_fmt(live[n])}" for n in SM_FIELDS if n in self.sm_set)
        line = f"init_from {self.name_or_path}: backbone and tokenizer from the base; SM kept: {kept}" + \
               (f"; SM set by the config: {set_}" if set_ else "")
        print(line)
        return line


def _resolve(name_or_path) -> Path:
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return PRETRAINED_DIR / name_or_path
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ConfigError(f"init_from={str(name_or_path)!r}: neither a shipped model {PRETRAINED} nor an existing "
                          f"checkpoint folder")
    return path


def load_base(cfg) -> Base:
    """The base named by `cfg.init_from`, checked against `cfg` (a TrainConfig); raises ConfigError or
    CheckpointError naming what differs."""
    from ..models.denoiser import DiffusionLM
    path = _resolve(cfg.init_from)
    if paper_format(path) is not None:
        return _paper_base(cfg, path)
    meta = ckpt.read_manifest(path)  # a folder that is not a checkpoint, or a corrupted one, fails here
    if "adapter" in meta or meta.get("model", {}).get("backbone") is None:
        raise ConfigError(f"init_from={cfg.init_from!r}: continued pretraining needs a whole smkit model with its "
                          f"own backbone (not an adapter or a wrapped Hugging Face model)")
    model = DiffusionLM.load_pretrained(path)
    check_compatible(cfg, model, meta)
    return Base(model, str(cfg.init_from), meta["files"]["model.safetensors"])


def _paper_base(cfg, path: Path) -> Base:
    """A base in one of the paper's formats (a Lightning .ckpt, an MDLM Hugging Face folder): its EMA weights when it
    has them, and the config's tokenizer, which must fit it (the file carries none smkit can use)."""
    from ..io.data import load_pretrained_tokenizer
    if cfg.tokenizer in TOKENIZER_KINDS:
        raise ConfigError(f"init_from={cfg.init_from!r} is a paper-format model, which carries no tokenizer smkit can "
                          f"use; set tokenizer: the one it was trained with (a local folder with GPT-2's "
                          f"tokenizer.json, or a hub id in the local cache)")
    model = load_paper_model(path, tokenizer=load_pretrained_tokenizer(cfg.tokenizer, cfg.vocab_size))
    check_compatible(cfg, model, {}, tokenizer_given=True)
    weights = path if path.is_file() else next(f for f in (path / "model.safetensors", path / "pytorch_model.bin")
                                                if f.is_file())
    return Base(model, str(cfg.init_from), ckpt._sha256(weights))


def check_compatible(cfg, model, meta: dict, tokenizer_given: bool = False) -> None:
    """Every difference between `cfg` and the base `model` that a continuation cannot bridge, as a ConfigError.
    `tokenizer_given`: the base's tokenizer was made from `cfg.tokenizer` (a paper-format base), so it is not compared."""
    bb = model.config.backbone
    base_shape = {"backbone": bb.kind, "hidden_size": bb.hidden_size, "num_layers": bb.num_layers,
                  "num_heads": bb.num_heads, "intermediate_size": bb.intermediate_size, "cond_dim": bb.cond_dim}
    for name in _SHAPE_FIELDS:
        if name == "cond_dim" and bb.kind != "dit":
            continue
        if getattr(cfg, name) != base_shape[name]:
            raise ConfigError(f"init_from={cfg.init_from!r}: {name}={getattr(cfg, name)!r} but the base has "
                              f"{base_shape[name]!r}; the backbone shape must match the base's")
    if cfg.seq_len != model.config.seq_len:
        raise ConfigError(f"init_from={cfg.init_from!r}: seq_len={cfg.seq_len} but the base was built for "
                          f"{model.config.seq_len}")
    if model.tokenizer is None:
        raise ConfigError(f"init_from={cfg.init_from!r}: the base has no tokenizer.json to continue with")
    base_kind = (train_config_of(meta) or {}).get("tokenizer")
    if tokenizer_given:
        pass
    elif cfg.tokenizer in TOKENIZER_KINDS:
        if base_kind is not None and base_kind != cfg.tokenizer:
            raise ConfigError(f"init_from={cfg.init_from!r}: tokenizer={cfg.tokenizer!r} but the base was trained "
                              f"with a {base_kind!r} tokenizer; a continuation uses the base's tokenizer")
    else:
        from ..io.data import load_pretrained_tokenizer
        given = load_pretrained_tokenizer(cfg.tokenizer, cfg.vocab_size)
        if tokenizer_to_json(given) != tokenizer_to_json(model.tokenizer):
            raise ConfigError(f"init_from={cfg.init_from!r}: tokenizer={cfg.tokenizer!r} differs from the base's "
                              f"tokenizer; leave tokenizer at the base's kind to continue with it")
    sized_here = cfg.tokenizer == "char" or is_task_corpus(cfg.corpus)  # these tokenizers size themselves
    if not sized_here and cfg.vocab_size != model.config.vocab_size:
        raise ConfigError(f"init_from={cfg.init_from!r}: vocab_size={cfg.vocab_size} but the base's vocabulary has "
                          f"{model.config.vocab_size} ids")


def _fmt(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:.4g}"
