"""The model files of the soft-masking paper's code and of MDLM's Hugging Face release, opened as smkit models.

Two formats, both holding the same DiT (`smkit.models.dit`):
- a Lightning `.ckpt` written by the paper's training (MDLM-SM, or a binary MDLM): a torch pickle, read with
  `smkit.io.safe_pickle` (nothing in it runs). `state_dict` holds `backbone.*` and, for MDLM-SM, `tran_head.*`, the
  soft-masking head's raw scalars, which are smkit's `SoftMask` parameters under other names (the same
  parameterisation: scale = sigmoid(raw), centre = -softplus(raw) - 1e-6, steepness = softplus(raw) + 1e-6).
  `ema.shadow_params` holds the averaged backbone weights as a list in the order of the backbone's parameters(), which
  is the order of the `backbone.*` parameters in `state_dict` (the rotary buffer is not a parameter). The
  paper evaluates with them; the head is never averaged. The architecture comes from the run's config
  (`hyper_parameters.config`), else from the tensors' shapes; k from `algo.tran_head.mixinputs_k`, else 3.
- a folder in the layout of MDLM's Hugging Face release: `config.json` (model_type "mdlm") and `model.safetensors`
  with `backbone.*` keys; its code (`auto_map`) is never run. One set of weights, no head.
A binary model gets smkit's default soft-masking values, so SM can be switched on or trained further.
The mask is the last id (GPT-2's 50257 ids + 1 for the paper's models).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..core.errors import CheckpointError, DataError
from ..core.soft_mask_params import SoftMaskParams
from ..core.tokens import MASK_TOKEN, check_tokenizer
from ..models.backbones import dit_backbone_config
from ..models.config import ModelConfig
from ..models.denoiser import DiffusionLM
from ..models.dit import DiT, DiTConfig, rotary_inv_freq
from . import safe_pickle

LIGHTNING = "lightning-ckpt"
MDLM_HF = "mdlm-hf"
_HEAD_KEYS = {"raw_scale": "raw_scale", "raw_centre_neg": "raw_centre", "raw_steep": "raw_steepness"}
_HEAD_UNUSED = {"raw_temperature"}      # the paper's head keeps it for an ablation; top-k mixing ignores it
_ROTARY = "rotary_emb.inv_freq"
_EMBEDDING = ("vocab_embed.embedding", "vocab_embed.weight")   # (theirs, ours)
_DEFAULT_LENGTH = 1024                  # MDLM's L when a file does not say


@dataclass
class ForeignModel:
    """What a reader found: the DiT's shape, its weights under smkit's names, the head (raw scalars, or None for a
    binary model), k, and where it all came from (`source`, saved with the model)."""
    dit: DiTConfig
    weights: dict
    head: dict | None
    k: int
    source: dict = field(default_factory=dict)


def paper_format(path) -> str | None:
    """LIGHTNING for a file that is a zip archive (as torch.save writes), MDLM_HF for a folder whose config.json
    says model_type "mdlm", else None."""
    path = Path(path).expanduser()
    if path.is_file():
        return LIGHTNING if path.suffix == ".ckpt" or _is_zip(path) else None
    config = path / "config.json"
    if path.is_dir() and config.is_file():
        try:
            return MDLM_HF if json.loads(config.read_text()).get("model_type") == "mdlm" else None
        except (json.JSONDecodeError, AttributeError):
            return None
    return None


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_paper_model(path, *, ema: bool | None = None, tokenizer=None) -> DiffusionLM:
    """The model in a paper-format file or folder (`paper_format`), in eval mode, its `source` saying which weights
    it holds. `ema`: None takes the EMA weights when the file has them, True requires them, False takes the raw
    ones. `tokenizer`: a tokenizer object or a local folder (see `paper_tokenizer`), or None (ids only)."""
    path = Path(path).expanduser()
    kind = paper_format(path)
    if kind == LIGHTNING:
        found = read_lightning_checkpoint(path, ema=ema)
    elif kind == MDLM_HF:
        found = read_mdlm_folder(path, ema=ema)
    else:
        found_type = ""
        if (path / "config.json").is_file():
            try:
                found_type = f" (its config.json says model_type {json.loads((path / 'config.json').read_text()).get('model_type')!r})"
            except (OSError, json.JSONDecodeError, AttributeError):
                found_type = " (its config.json cannot be read)"
        raise CheckpointError(f"path={str(path)!r} is neither a Lightning .ckpt nor a folder in MDLM's Hugging Face "
                              f"layout (config.json with model_type 'mdlm'){found_type}")
    tok = None if tokenizer is None else paper_tokenizer(tokenizer, found.dit.vocab_size)
    return build_model(found, tok)


def build_model(found: ForeignModel, tokenizer=None) -> DiffusionLM:
    """A DiffusionLM holding the weights a reader found (eval mode)."""
    dit = found.dit
    sm = replace(SoftMaskParams(), k=found.k)
    config = ModelConfig(vocab_size=dit.vocab_size, seq_len=dit.max_seq_len, backbone=dit_backbone_config(dit),
                         sm=sm)
    backbone = DiT(dit)
    backbone.load_state_dict(found.weights, strict=True)
    model = DiffusionLM(config, backbone, tokenizer)
    if found.head is not None:
        with torch.no_grad():
            for name, value in found.head.items():
                getattr(model.soft_mask, name).copy_(value)
    model.source = dict(found.source)
    return model.eval()


# ---------------------------------------------------------------- the Lightning checkpoint


def read_lightning_checkpoint(path, ema: bool | None = None) -> ForeignModel:
    """Weights, shape and head of a Lightning checkpoint of the paper's (or MDLM's) code; see the module docstring."""
    path = Path(path).expanduser()
    _check_ema_arg(ema)
    loaded = safe_pickle.load(path)
    top = loaded.data
    if not isinstance(top, dict) or not isinstance(top.get("state_dict"), dict):
        keys = sorted(map(str, top))[:8] if isinstance(top, dict) else type(top).__name__
        raise CheckpointError(f"{path} is a torch archive but not a Lightning checkpoint: it has no 'state_dict' "
                              f"(found {keys})")
    state = top["state_dict"]
    extra = sorted(k for k in state if not str(k).startswith(("backbone.", "tran_head.", "noise.")))
    if extra:
        raise CheckpointError(f"{path}: state_dict has keys that belong to no part smkit reads: {extra[:6]} "
                              f"(expected backbone.*, tran_head.*)")
    theirs = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    if not theirs:
        raise CheckpointError(f"{path}: state_dict has no backbone.* weights")
    config = _run_config(top, path)
    dit = _dit_shape(theirs, config, path)
    _check_keys(theirs, dit, path)
    averaged = top.get("ema")
    has_ema = isinstance(averaged, dict) and isinstance(averaged.get("shadow_params"), list)
    if ema and not has_ema:
        raise CheckpointError(f"ema=True but {path} holds no EMA weights (no ema.shadow_params); pass ema=False or "
                              f"ema=None for its raw weights")
    use_ema = has_ema if ema is None else bool(ema)
    if use_ema:
        theirs = _with_ema(theirs, averaged["shadow_params"], path)
    head, k = _head(state, config, path)
    source = {"format": LIGHTNING, "path": str(path), "weights": "ema" if use_ema else "raw", "ema_available": has_ema,
              "soft_mask": "checkpoint" if head is not None else "smkit default (binary model)",
              "config": "checkpoint" if config else "inferred from tensor shapes",
              "placeholders": [f"{where}: {cls}" for where, cls in loaded.placeholders],
              "global_step": top.get("global_step") if isinstance(top.get("global_step"), int) else None}
    tokenizer_name = _tokenizer_name(top)
    if tokenizer_name:
        source["trained_tokenizer"] = tokenizer_name
    return ForeignModel(dit, _to_smkit_names(theirs, dit, path), head, k, source)


def _run_config(top: dict, path: Path) -> dict:
    hp = top.get("hyper_parameters")
    config = hp.get("config") if isinstance(hp, dict) else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: hyper_parameters.config is {type(config).__name__}, not a config")
    algo = config.get("algo") or {}
    if algo.get("causal_attention") is True:
        raise CheckpointError(f"{path}: the run's DiT uses causal attention (algo.causal_attention: true), an "
                              f"autoregressive model; smkit reads masked-diffusion (MDLM) checkpoints")
    if algo.get("parameterization", "subs") != "subs":
        raise CheckpointError(f"{path}: algo.parameterization is {algo.get('parameterization')!r}; smkit reads "
                              f"MDLM's 'subs' parameterisation only")
    if algo.get("backbone", "dit") != "dit":
        raise CheckpointError(f"{path}: algo.backbone is {algo.get('backbone')!r}; smkit reads the DiT backbone only")
    return config


def _tokenizer_name(top: dict) -> str | None:
    hp = top.get("hyper_parameters")
    tok = hp.get("tokenizer") if isinstance(hp, dict) else None
    if isinstance(tok, safe_pickle.Placeholder):
        state = tok.state if isinstance(tok.state, dict) else {}
        name = state.get("name_or_path")
        return f"{tok._smkit_name}" + (f" ({name})" if isinstance(name, str) else "")
    return None


def _with_ema(theirs: dict, shadow: list, path: Path) -> dict:
    """The backbone's parameters replaced, in order, by the EMA list (the rotary buffer is not a parameter)."""
    names = [n for n in theirs if n != _ROTARY]
    if len(shadow) != len(names):
        raise CheckpointError(f"{path}: ema.shadow_params has {len(shadow)} tensors, the backbone has {len(names)} "
                              f"parameters; the EMA does not belong to this backbone")
    out = dict(theirs)
    for name, value in zip(names, shadow):
        if not isinstance(value, safe_pickle.LazyTensor) or value.shape != theirs[name].shape:
            got = getattr(value, "shape", type(value).__name__)
            raise CheckpointError(f"{path}: ema.shadow_params entry for backbone.{name} has shape {got}, the "
                                  f"weight has {theirs[name].shape}; the EMA does not belong to this backbone")
        out[name] = value
    return out


def _head(state: dict, config: dict, path: Path) -> tuple[dict | None, int]:
    spec = (config.get("algo") or {}).get("tran_head") or {}
    k = spec.get("mixinputs_k", SoftMaskParams().k)
    if type(k) is not int or k < 1:
        raise CheckpointError(f"{path}: algo.tran_head.mixinputs_k is {k!r}, not an integer >= 1")
    alg = spec.get("transparency_alg", "mixinputs_with_topk")
    if alg != "mixinputs_with_topk":
        raise CheckpointError(f"{path}: algo.tran_head.transparency_alg is {alg!r}; smkit's soft-masking is the "
                              f"top-k mixture ('mixinputs_with_topk') only")
    raw = {k_[len("tran_head."):]: v for k_, v in state.items() if k_.startswith("tran_head.")}
    if not raw:
        return None, k
    unknown = sorted(set(raw) - set(_HEAD_KEYS) - _HEAD_UNUSED)
    missing = sorted(set(_HEAD_KEYS) - set(raw))
    if unknown or missing:
        raise CheckpointError(f"{path}: the soft-masking head (tran_head.*) has missing keys {missing} and "
                              f"unexpected keys {unknown}; expected {sorted(_HEAD_KEYS)}")
    head = {}
    for theirs, ours in _HEAD_KEYS.items():
        value = _tensor(raw[theirs], f"tran_head.{theirs}", path)
        if value.numel() != 1 or not value.is_floating_point():
            raise CheckpointError(f"{path}: tran_head.{theirs} has shape {tuple(value.shape)}; a head scalar is one "
                                  f"float")
        head[ours] = value.reshape(()).float()
    return head, k


# ---------------------------------------------------------------- the MDLM Hugging Face folder


def read_mdlm_folder(path, ema: bool | None = None) -> ForeignModel:
    """Weights and shape of a folder in MDLM's Hugging Face layout (config.json + model.safetensors, or a
    pytorch_model.bin read safely). Its code is never run. It holds one set of weights: `ema=True` is an error."""
    path = Path(path).expanduser()
    _check_ema_arg(ema)
    if ema:
        raise CheckpointError(f"ema=True but {path} (MDLM's Hugging Face layout) holds one set of weights and no "
                              f"EMA; pass ema=None or ema=False")
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path / 'config.json'} cannot be read: {err}") from None
    if cfg.get("model_type") != "mdlm":
        raise CheckpointError(f"{path}: config.json says model_type {cfg.get('model_type')!r}; this reader opens "
                              f"MDLM's layout (model_type 'mdlm')")
    need = ("hidden_dim", "cond_dim", "n_blocks", "n_heads", "vocab_size")
    missing = [n for n in need if not isinstance(cfg.get(n), int) or isinstance(cfg.get(n), bool)]
    if missing:
        raise CheckpointError(f"{path / 'config.json'}: {missing} missing or not integers (MDLM's config has "
                              f"{list(need)}, model_length, time_conditioning)")
    state = _folder_weights(path)
    theirs = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    extra = sorted(k for k in state if not k.startswith("backbone."))
    if extra or not theirs:
        raise CheckpointError(f"{path}: weights outside backbone.* {extra[:6]}" if extra else
                              f"{path}: no backbone.* weights")
    length = cfg.get("model_length", _DEFAULT_LENGTH)
    dit = _validated(DiTConfig, path, vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_dim"],
                     num_layers=cfg["n_blocks"], num_heads=cfg["n_heads"], cond_dim=cfg["cond_dim"],
                     max_seq_len=length, mlp_ratio=_mlp_ratio(theirs, cfg["hidden_dim"], path),
                     time_conditioning=bool(cfg.get("time_conditioning", False)))
    _check_keys(theirs, dit, path)
    source = {"format": MDLM_HF, "path": str(path), "weights": "stored", "ema_available": False,
              "soft_mask": "smkit default (binary model)", "config": "config.json"}
    return ForeignModel(dit, _to_smkit_names(theirs, dit, path), None, SoftMaskParams().k, source)


def _folder_weights(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if (path / "model.safetensors").is_file():
        try:
            return load_file(str(path / "model.safetensors"))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path / 'model.safetensors'} cannot be read as safetensors: {err}") from None
    if (path / "pytorch_model.bin").is_file():
        data = safe_pickle.load(path / "pytorch_model.bin").data
        if not isinstance(data, dict):
            raise CheckpointError(f"{path / 'pytorch_model.bin'} holds {type(data).__name__}, not a state dict")
        return data
    raise CheckpointError(f"{path}: no model.safetensors (nor pytorch_model.bin) beside config.json")


# ---------------------------------------------------------------- shapes, names, checks


def _dit_shape(theirs: dict, config: dict, path: Path) -> DiTConfig:
    """The DiT's shape: from the run's config where it says, each value checked against the tensors."""
    model = config.get("model") or {}
    algo = config.get("algo") or {}
    emb = theirs.get(_EMBEDDING[0])
    if emb is None or len(emb.shape) != 2:
        raise CheckpointError(f"{path}: backbone.{_EMBEDDING[0]} (the input embedding [V, D]) is missing")
    vocab, hidden = emb.shape
    blocks = {int(m.group(1)) for m in (re.match(r"blocks\.(\d+)\.", n) for n in theirs) if m}
    rotary = theirs.get(_ROTARY)
    heads_from_shape = hidden // (2 * rotary.shape[0]) if rotary is not None and rotary.shape[0] else None
    cond = theirs.get("sigma_map.mlp.0.weight")
    said = {"hidden_size": model.get("hidden_size"), "num_layers": model.get("n_blocks"),
            "num_heads": model.get("n_heads"), "cond_dim": model.get("cond_dim")}
    seen = {"hidden_size": hidden, "num_layers": len(blocks), "num_heads": heads_from_shape,
            "cond_dim": cond.shape[0] if cond is not None else None}
    for name, value in said.items():
        if value is not None and seen[name] is not None and value != seen[name]:
            raise CheckpointError(f"{path}: the run's config says {name}={value}, the weights have {seen[name]} "
                                  f"(shapes disagree with the config)")
    shape = {n: said[n] if said[n] is not None else seen[n] for n in said}
    if shape["num_heads"] is None:
        raise CheckpointError(f"{path}: the number of attention heads is neither in the config nor derivable "
                              f"(no backbone.{_ROTARY})")
    if shape["cond_dim"] is None:
        raise CheckpointError(f"{path}: backbone.sigma_map.mlp.0.weight is missing; the conditioning width is unknown")
    return _validated(DiTConfig, path, vocab_size=vocab, max_seq_len=model.get("length", _DEFAULT_LENGTH),
                      mlp_ratio=_mlp_ratio(theirs, hidden, path),
                      time_conditioning=bool(algo.get("time_conditioning", False)), **shape)


def _validated(cls, path: Path, **values):
    try:
        return cls(**values).validate()
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: the model's shape {values} is not a valid DiT: {err}") from None


def _mlp_ratio(theirs: dict, hidden: int, path: Path) -> int:
    w = theirs.get("blocks.0.mlp.0.weight")
    if w is None:
        return 4
    if w.shape[0] % hidden:
        raise CheckpointError(f"{path}: backbone.blocks.0.mlp.0.weight has shape {tuple(w.shape)}; its width is not "
                              f"a multiple of the hidden size {hidden}")
    return w.shape[0] // hidden


def _expected(dit: DiTConfig) -> dict:
    """Their names -> shapes for a DiT of this shape (the rotary buffer apart)."""
    with torch.device("meta"):
        ours = DiT(dit).state_dict()
    return {(_EMBEDDING[0] if n == _EMBEDDING[1] else n): tuple(t.shape) for n, t in ours.items()}


def _check_keys(theirs: dict, dit: DiTConfig, path: Path) -> None:
    expected = _expected(dit)
    present = set(theirs) - {_ROTARY}
    missing, extra = sorted(set(expected) - present), sorted(present - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the backbone's weights do not match a DiT of shape {_brief(dit)}: missing "
                              f"{_listed(missing)}, unexpected {_listed(extra)}")
    for name, shape in expected.items():
        got = tuple(theirs[name].shape)
        if got != shape:
            raise CheckpointError(f"{path}: backbone.{name} has shape {got}, a DiT of shape {_brief(dit)} needs "
                                  f"{shape} (shapes disagree with the config)")


def _brief(dit: DiTConfig) -> str:
    return (f"(vocab {dit.vocab_size}, hidden {dit.hidden_size}, {dit.num_layers} blocks, {dit.num_heads} heads, "
            f"cond {dit.cond_dim})")


def _listed(names: list) -> str:
    return "[]" if not names else str(names[:6])[:-1] + (f", ... {len(names) - 6} more]" if len(names) > 6 else "]")


def _to_smkit_names(theirs: dict, dit: DiTConfig, path: Path) -> dict:
    """Tensors (read now) under the DiT's own names; the rotary buffer checked, not kept (it is recomputed)."""
    out = {}
    for name, value in theirs.items():
        tensor = _tensor(value, f"backbone.{name}", path)
        if name == _ROTARY:
            want = rotary_inv_freq(dit.head_dim)
            if tensor.shape != want.shape or not torch.allclose(tensor.float(), want, rtol=1e-5, atol=0):
                raise CheckpointError(f"{path}: backbone.{_ROTARY} is not the rotary frequencies of base 10000 for "
                                      f"head width {dit.head_dim}; this DiT's positions differ from smkit's")
            continue
        out[_EMBEDDING[1] if name == _EMBEDDING[0] else name] = tensor
    return out


def _tensor(value, name: str, path: Path) -> torch.Tensor:
    if isinstance(value, safe_pickle.LazyTensor):
        value = value.load()
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{path}: {name} is {type(value).__name__}, not a tensor")
    return value


def _check_ema_arg(ema) -> None:
    if ema not in (None, True, False):
        raise CheckpointError(f"ema={ema!r}: pass None (EMA weights when the file has them), True or False")


# ---------------------------------------------------------------- the tokenizer


def paper_tokenizer(tokenizer, vocab_size: int):
    """A tokenizer for a paper-format model of `vocab_size` ids whose last id is the mask, shown as `[MASK]`.

    `tokenizer`: a tokenizer object (a Hugging Face fast tokenizer) or a local folder holding tokenizer.json, or
    vocab.json + merges.txt (GPT-2's files). It may have vocab_size - 1 ids ([MASK] is appended, as for GPT-2's
    50257) or vocab_size ids whose last one is a special token (MDLM's GPT-2 calls id 50257 `[PAD]`; shown as
    `[MASK]` here). Nothing is downloaded."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = _backend(tokenizer)
    n = backend.get_vocab_size(with_added_tokens=True)
    mask_id = vocab_size - 1
    if n == vocab_size - 1:
        backend.add_special_tokens([MASK_TOKEN])
    elif n == vocab_size:
        spec = json.loads(backend.to_str())
        last = [t for t in spec.get("added_tokens", []) if t.get("id") == mask_id]
        if not last or not last[0].get("special", False):
            raise DataError(f"tokenizer: its id {mask_id} is an ordinary token, but this model uses id {mask_id} as "
                            f"the mask; pass the tokenizer the model was trained with (GPT-2's, {vocab_size - 1} ids)")
        last[0]["content"] = MASK_TOKEN
        backend = Tokenizer.from_str(json.dumps(spec))
    else:
        raise DataError(f"tokenizer has {n} ids; this model's vocabulary has {vocab_size} (the last, {mask_id}, "
                        f"the mask): pass a tokenizer of {vocab_size - 1} ids (GPT-2's for the paper's models)")
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, mask_token=MASK_TOKEN, clean_up_tokenization_spaces=False)
    tok.model_max_length = 10**30
    check_tokenizer(tok, vocab_size, mask_id)
    return tok


def _backend(tokenizer):
    """A copy of the `tokenizers.Tokenizer` behind a tokenizer object or in a folder."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, (str, Path)):
        folder = Path(tokenizer).expanduser()
        if (folder / "tokenizer.json").is_file():
            return Tokenizer.from_file(str(folder / "tokenizer.json"))
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return _gpt2_from_files(folder)
        raise DataError(f"tokenizer={str(tokenizer)!r}: not a folder holding tokenizer.json or vocab.json + "
                        f"merges.txt (GPT-2's tokenizer files); nothing is downloaded")
    inner = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(inner, Tokenizer):
        raise DataError(f"tokenizer={type(tokenizer).__name__}: pass a Hugging Face fast tokenizer, a "
                        f"tokenizers.Tokenizer, or a local folder holding tokenizer.json (or vocab.json + merges.txt)")
    return Tokenizer.from_str(inner.to_str())


def _gpt2_from_files(folder: Path):
    """GPT-2's byte-level BPE from its vocab.json and merges.txt (what its tokenizer.json holds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    try:
        tok = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
    except Exception as err:   # the tokenizers library says what is wrong with the files
        raise DataError(f"tokenizer={str(folder)!r}: vocab.json + merges.txt cannot be read as a BPE: {err}") from None
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    if tok.token_to_id(_GPT2_END) is not None:
        tok.add_special_tokens([_GPT2_END])     # already in the vocabulary: marked special, no new id
    return tok


_GPT2_END = "<|endoftext|>"
