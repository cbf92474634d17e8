"""Any Hugging Face denoiser: load a local model (or take a built one), give it a mask id, check that it can
serve as a denoiser for soft-masking, and wrap it in `DiffusionLM` (where SUBS, the loss and SM live).

A denoiser here is any module whose `forward(inputs_embeds=...)` returns logits over its input embedding
rows: masked LMs (BERT, RoBERTa, ModernBERT, ...) and decoder-style diffusion LMs with bidirectional attention,
whose logits may be shifted right by one position (Dream). LLaDA and Dream folders are built natively
(`smkit.io.native_hf`); code shipped with any other model runs only with an explicit `trust_remote_code=True`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..core.config import is_int
from ..core.soft_mask_params import SoftMaskParams
from ..core.tokens import MASK_TOKEN
from .hf_load import DenoiserError, has_tokenizer, input_embedding, load_backbone
from .native_hf import load_native, native_format_of, native_tokenizer
from ..models.denoiser import DiffusionLM, ModelConfig, backbone_logits


def from_hf(model, tokenizer=None, *, mask_id: int | None = None, add_mask_token: bool = False,
            shift_logits: bool | None = None, bidirectional: bool = False, trust_remote_code: bool = False,
            seq_len: int | None = None, dtype=None, sm=None, schedule: str = "loglinear") -> DiffusionLM:
    """Wrap a Hugging Face model as a `DiffusionLM` usable by `loss`, `smkit.generate` and `smkit.finetune`.

    model: a local directory (config.json + weights; a masked LM, or any model whose forward takes
    `inputs_embeds` and returns logits) or an already built `nn.Module`. A LLaDA or Dream folder (model_type
    llada / Dream) is built natively (`smkit.io.native_hf`): transformers' Llama / Qwen2 decoder attending both
    ways, the mask id from its config.json, Dream's logits shifted; none of its code runs, whatever
    trust_remote_code says (its tokenizer may also be given as a local folder). tokenizer: a tokenizer object;
    default: the one in the directory. mask_id: the [MASK] id; default: the tokenizer's mask token, else the
    first embedding row the tokenizer does not use. add_mask_token: add "[MASK]" to the tokenizer (and one
    embedding row, set to the mean row, when no unused row is left) when it has no mask token.
    shift_logits: logits for position i come from the output at i - 1 (Dream); None: as a native folder's
    format says, else False. bidirectional: set
    `config.is_causal = False` (transformers decoders such as Llama and Qwen2 then attend both ways).
    trust_remote_code: run code shipped in the directory; passed to transformers only when True.
    seq_len: longest sequence (default: the config's max_position_embeddings). dtype: load weights in this
    dtype. sm: the SoftMask's initial values (a dict with some of k, scale, centre, steepness, or a
    `SoftMaskParams`; the rest default); schedule: the noise schedule.
    """
    for name, value in (("add_mask_token", add_mask_token), ("shift_logits", shift_logits),
                        ("bidirectional", bidirectional), ("trust_remote_code", trust_remote_code)):
        if not isinstance(value, bool) and not (name == "shift_logits" and value is None):
            raise DenoiserError(f"{name}={value!r}: must be True or False" +
                                (" (or None: as the model's format says)" if name == "shift_logits" else ""))
    source = {"path": None, "add_mask_token": add_mask_token, "bidirectional": bidirectional,
              "trust_remote_code": trust_remote_code}
    if isinstance(model, (str, Path)):
        path = Path(model).expanduser()
        fmt = native_format_of(path)
        if fmt is not None:
            if shift_logits is not None and shift_logits != fmt.shift_logits:
                raise DenoiserError(f"shift_logits={shift_logits}: a {fmt.name} model's output at position i "
                                    f"predicts token {'i + 1' if fmt.shift_logits else 'i'}; leave shift_logits=None")
            native = load_native(path, mask_id, dtype)
            backbone, mask_id, shift_logits, bidirectional = native.backbone, native.mask_id, fmt.shift_logits, True
            if tokenizer is None or isinstance(tokenizer, (str, Path)):
                tokenizer = native_tokenizer(path if tokenizer is None else tokenizer, mask_id,
                                             required=tokenizer is not None)
            source.update(native=fmt.model_type, bidirectional=True, trust_remote_code=False)
        else:
            backbone, tokenizer = _load_dir(path, tokenizer, trust_remote_code, dtype)
        source["path"] = str(path.resolve())
    elif isinstance(model, nn.Module):
        backbone = model
    else:
        raise DenoiserError(f"model={model!r}: give a local model directory or a torch nn.Module")

    embedding = input_embedding(backbone)
    if add_mask_token:
        _add_mask_token(backbone, tokenizer)
        embedding = input_embedding(backbone)
    rows = embedding.weight.shape[0]
    if tokenizer is not None and len(tokenizer) > rows:
        raise DenoiserError(f"the tokenizer has {len(tokenizer)} ids but the model's input embedding matrix has "
                            f"only {rows} rows: they do not belong together")
    mask_id = resolve_mask_id(tokenizer, rows, mask_id)
    n_tokens = len(tokenizer) if tokenizer is not None and len(tokenizer) < rows else None
    seq_len = _seq_len(backbone, seq_len)
    config = getattr(backbone, "config", None)
    if bidirectional:
        if config is None:
            raise DenoiserError("bidirectional=True: the model has no `config` whose is_causal could be turned off")
        config.is_causal = False
    _probe(backbone, embedding, rows, bidirectional)
    cfg = ModelConfig(vocab_size=rows, seq_len=seq_len, backbone=None, sm=SoftMaskParams.from_value(sm),
                      schedule=schedule, mask_id=mask_id, n_tokens=n_tokens, shift_logits=bool(shift_logits))
    wrapped = DiffusionLM(cfg, backbone, tokenizer)
    source.update(base_identity(backbone))
    wrapped.hf_source = source
    return wrapped


# ---------------------------------------------------------------- loading a directory

def _load_dir(path: Path, tokenizer, trust_remote_code: bool, dtype):
    import transformers

    backbone = load_backbone(path, trust_remote_code, dtype)
    if tokenizer is None:
        if not has_tokenizer(path):
            raise DenoiserError(f"model={str(path)!r} holds no tokenizer files; pass tokenizer=")
        remote = {"trust_remote_code": True} if trust_remote_code else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **remote)
    return backbone, tokenizer


# ---------------------------------------------------------------- checks and choices

def resolve_mask_id(tokenizer, rows: int, mask_id: int | None = None) -> int:
    """The [MASK] id: the given one, else the tokenizer's mask token, else the first unused embedding row."""
    if mask_id is not None:
        if not is_int(mask_id) or not 0 <= mask_id < rows:
            raise DenoiserError(f"mask_id={mask_id!r}: must be an id in [0, {rows}) (the input embedding rows)")
        return mask_id
    if tokenizer is None:
        raise DenoiserError("mask_id=None and no tokenizer: pass mask_id= (or a tokenizer with a mask token)")
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    if len(tokenizer) < rows:
        return len(tokenizer)
    raise DenoiserError(f"the vocabulary has no room for a mask id: the tokenizer has {len(tokenizer)} tokens, none "
                        f"of them a mask token, and the input embedding matrix has {rows} rows, none unused. "
                        f"Pass add_mask_token=True to add {MASK_TOKEN!r} (one new embedding row, to be fine-tuned), "
                        f"or mask_id=<id> to reuse a token the data never contains")


def _add_mask_token(backbone: nn.Module, tokenizer) -> None:
    """Give the tokenizer a mask token (unless it has one) and the embeddings a row for it (unless one is free).
    A tokenizer saved after this call already holds the token: the embeddings still grow to match it."""
    if tokenizer is None:
        raise DenoiserError("add_mask_token=True needs the tokenizer the token is added to")
    if tokenizer.mask_token_id is None:
        tokenizer.add_special_tokens({"mask_token": MASK_TOKEN})
    old = input_embedding(backbone).weight.shape[0]
    if tokenizer.mask_token_id < old:
        return                                         # an unused (or existing) row takes the token
    out = backbone.get_output_embeddings() if hasattr(backbone, "get_output_embeddings") else None
    old_out = out.weight.shape[0] if out is not None else None
    backbone.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():                              # deterministic new rows, so a base can be rebuilt exactly
        w = input_embedding(backbone).weight
        w[old:] = w[:old].mean(0)
        out = backbone.get_output_embeddings() if out is not None else None
        if out is not None and out.weight is not w:
            out.weight[old_out:] = out.weight[:old_out].mean(0)
            if getattr(out, "bias", None) is not None:
                out.bias[old_out:] = 0


def _seq_len(backbone: nn.Module, seq_len: int | None) -> int:
    if seq_len is not None:
        if not is_int(seq_len) or seq_len < 2:
            raise DenoiserError(f"seq_len={seq_len!r}: must be an integer >= 2")
        return seq_len
    config = getattr(backbone, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value >= 2:
            return value
    raise DenoiserError("seq_len=None: the model's config gives no max_position_embeddings; pass seq_len=")


def _probe(backbone: nn.Module, embedding: nn.Module, rows: int, bidirectional: bool) -> None:
    """Two 3-token forwards that differ in the last token: the model takes inputs_embeds, returns logits over
    its rows, and (unless told otherwise) the first position sees the last one."""
    was_training = backbone.training
    backbone.eval()
    device = embedding.weight.device
    ids = torch.tensor([[0, 1 % rows, 2 % rows], [0, 1 % rows, 3 % rows]], device=device)
    try:
        with torch.no_grad():
            out = backbone(inputs_embeds=embedding(ids))
    except TypeError as err:
        raise DenoiserError(f"the model ({type(backbone).__name__}) cannot be called as "
                            f"forward(inputs_embeds=...): {err}") from None
    finally:
        backbone.train(was_training)
    try:
        logits = backbone_logits(out)
    except TypeError as err:
        raise DenoiserError(str(err)) from None
    if logits.dim() != 3 or logits.shape[:2] != ids.shape or logits.shape[-1] != rows:
        raise DenoiserError(f"the model returns logits shaped {tuple(logits.shape)} for {tuple(ids.shape)} inputs; "
                            f"expected [B, L, {rows}] (one logit per input embedding row)")
    if torch.equal(logits[0, 0], logits[1, 0]):
        if bidirectional:
            raise DenoiserError(f"bidirectional=True, but the model ({type(backbone).__name__}) still attends "
                                f"causally: it ignores config.is_causal=False")
        warnings.warn(f"{type(backbone).__name__} attends causally (position 0 does not see later tokens); a "
                      f"masked diffusion denoiser needs bidirectional attention: pass bidirectional=True for "
                      f"transformers decoders, or use a bidirectional model", stacklevel=3)


def base_identity(backbone: nn.Module) -> dict:
    """What an adapter checks its base against: class, model type and shape."""
    config = getattr(backbone, "config", None)
    return {"class": type(backbone).__name__, "model_type": getattr(config, "model_type", None),
            "vocab_rows": int(input_embedding(backbone).weight.shape[0]),
            "hidden_size": getattr(config, "hidden_size", None),
            "num_layers": getattr(config, "num_hidden_layers", None)}
