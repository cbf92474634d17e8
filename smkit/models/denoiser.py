"""The denoiser: a Hugging Face model wrapped with a mask id, SUBS, SoftMask and the MDLM loss.

The backbone is either built here from a `BackboneConfig` (our own small encoders, mask = last id) or any
Hugging Face module that takes `inputs_embeds` and returns logits (`config.backbone=None`; see
`smkit.io.hf.from_hf`), with its own mask id, ids the tokenizer does not know never predicted, and optionally
logits shifted right by one position (Dream-style decoders). Files are `smkit.io`'s business.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .backbones import build_from_hf_config, hf_config
from .config import ModelConfig
from ..core.schedules import EPS, get_schedule, sample_t
from ..core.softmask import SoftMask
from ..core.tokens import check_tokenizer
from ..core.errors import ConfigError, DenoiserError

class DiffusionLM(nn.Module):
    """`logits = model(x_t)` gives SUBS log-probabilities [B, L, V]: the mask token never predicted, unmasked
    positions copy their input. `model(x_t, inputs_embeds=e)` runs the backbone on given input embeddings."""

    def __init__(self, config: ModelConfig, backbone: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.config = config.validate()
        if backbone is None and config.backbone is None:
            raise ConfigError("backbone=None with config.backbone=None: pass the Hugging Face module to wrap "
                             "(or use smkit.from_hf)")
        self.backbone = backbone if backbone is not None else build_from_hf_config(
            hf_config(config.backbone, config.vocab_size, config.seq_len).to_dict())
        self.soft_mask = SoftMask(**config.sm.to_dict())
        self.mask_id = config.vocab_size - 1 if config.mask_id is None else config.mask_id
        self.tokenizer = tokenizer
        self.adapter: dict | None = None   # the PEFT adapter spec once `smkit.io.adapters.add_adapter` added one
        self.hf_source: dict | None = None  # how `smkit.from_hf` built this model (to rebuild its base)
        self.train_config: dict | None = None  # the TrainConfig (as a dict) `smkit.train` trained it with, saved along
        self.source: dict | None = None   # the file a converted model came from and which of its weights (smkit.io.paper_formats)
        if tokenizer is not None and config.backbone is not None:
            check_tokenizer(tokenizer, config.vocab_size, self.mask_id)

    @property
    def device(self) -> torch.device:
        return self.soft_mask.raw_scale.device

    @property
    def embedding_weight(self) -> torch.Tensor:
        return self.backbone.get_input_embeddings().weight

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.backbone.get_input_embeddings()(input_ids)

    def forward(self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids)
        logits = backbone_logits(self.backbone(inputs_embeds=inputs_embeds)).float()
        if self.config.shift_logits:
            logits = shift_right(logits)
        return subs(logits, input_ids, self.mask_id, self.config.n_tokens, inplace=True)

    def soft_embeddings(self, input_ids, logits, k: int | None = None) -> torch.Tensor:
        return self.soft_mask(input_ids, logits, self.embedding_weight, self.mask_id, k)

    def noise(self, input_ids, t=None, generator=None, t_min: float = EPS, t_max: float = 1.0, antithetic=True,
              fixed=None):
        """(x_t, masked, weight) for clean `input_ids`; randomness drawn on the CPU so a seed fixes it anywhere.
        `t`: a scalar (one t for the whole batch) or one per row. `fixed` [B, L] bool: positions never masked
        (prompts)."""
        B, L = input_ids.shape
        if t is None:
            t = sample_t(B, generator, t_min, t_max, antithetic)
        t = torch.as_tensor(t, dtype=torch.float32).expand(B).cpu()
        alpha, weight = get_schedule(self.config.schedule)(t)
        masked = (torch.rand(B, L, generator=generator) < (1 - alpha)[:, None]).to(input_ids.device)
        if fixed is not None:
            masked &= ~_check_fixed(fixed, input_ids)
        x_t = torch.where(masked, torch.full_like(input_ids, self.mask_id), input_ids)
        return x_t, masked, weight.to(input_ids.device)

    def loss(self, input_ids, soft_mask: bool = False, t=None, generator=None, t_min: float = EPS,
             t_max: float = 1.0, antithetic: bool = True, fixed=None, noised=None) -> torch.Tensor:
        """Continuous-time MDLM bound (nats per token). soft_mask=True: the two-pass estimate, pass 1 under
        no_grad on the same x_t gives the distribution the SM input of pass 2 is built from. `fixed` [B, L]
        bool marks positions (prompts) that are never masked and not scored: the bound is then per free token.
        `noised=(x_t, masked, weight)` from `noise()` replaces the draw (a data-parallel process's rows)."""
        if fixed is not None:
            fixed = _check_fixed(fixed, input_ids)
        if noised is None:
            noised = self.noise(input_ids, t, generator, t_min, t_max, antithetic, fixed)
        x_t, masked, weight = noised
        if soft_mask:
            with torch.no_grad():
                first = self(x_t)
            embeds = self.soft_embeddings(x_t, first)
        else:
            embeds = self.embed(x_t)
        logp = self(x_t, inputs_embeds=embeds)
        nll = -logp.gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)
        nll = torch.where(masked, nll, torch.zeros_like(nll))
        n = input_ids.numel() if fixed is None else (~fixed).sum().clamp(min=1)
        return (weight[:, None] * nll).sum() / n

    @torch.no_grad()
    def validation_bound(self, blocks: torch.Tensor, soft_mask: bool = False, batch_size: int = 32,
                         seed: int = 0, repeats: int = 1, fixed: torch.Tensor | None = None) -> float:
        """Upper bound on NLL (nats/token) over `blocks`, fixed noise for a given seed; exp() is the PPL bound.
        `fixed` [N, L] bool: positions never masked nor scored (the bound is then per free token)."""
        was_training = self.training
        self.eval()
        gen = torch.Generator().manual_seed(seed)
        total, n = 0.0, 0
        for _ in range(repeats):
            for i in range(0, len(blocks), batch_size):
                b = blocks[i:i + batch_size].to(self.device)
                f = None if fixed is None else fixed[i:i + batch_size].to(self.device)
                count = b.numel() if f is None else int((~f).sum())
                total += float(self.loss(b, soft_mask=soft_mask, generator=gen, fixed=f)) * count
                n += count
        self.train(was_training)
        return total / n

    # Files are smkit.io's business. These two methods keep Hugging Face's spelling (`model.save_pretrained`) and
    # hand over at once; the layer test allows exactly these two imports of io from the model.
    def save_pretrained(self, path, dtype: torch.dtype = torch.float32, extra: dict | None = None,
                        extra_files=None) -> Path:
        """Write config, weights (safetensors) and tokenizer atomically; a model carrying a PEFT adapter saves the
        adapter, the SM scalars and a note of its base. See `smkit.io.formats.save_pretrained`."""
        from ..io.formats import save_pretrained
        return save_pretrained(self, path, dtype=dtype, extra=extra, extra_files=extra_files)

    @classmethod
    def load_pretrained(cls, path, **options) -> "DiffusionLM":
        """The model at `path`, in any format `smkit.load_pretrained` reads."""
        from ..io.formats import load_pretrained
        return load_pretrained(path, **options)


def subs(logits: torch.Tensor, input_ids: torch.Tensor, mask_id: int, n_tokens: int | None = None,
         inplace: bool = False) -> torch.Tensor:
    """SUBS parameterisation: log-probs with the mask token (and ids >= n_tokens, which no token uses) at
    -inf; unmasked positions copy their input (log-prob 0 there, -inf elsewhere). `inplace=True` lets it overwrite
    `logits` (a caller that owns them, as `DiffusionLM.forward` does, saves a [B, L, V] copy).

    Costs about one log-softmax: the excluded columns are filled in place, and only the rows of unmasked
    positions are rewritten (without gradient in place; with gradient by one masked_fill)."""
    if not inplace:
        logits = logits.clone()
    logits[..., mask_id] = float("-inf")
    if n_tokens is not None:
        logits[..., n_tokens:] = float("-inf")
    logp = torch.log_softmax(logits, dim=-1)
    keep = input_ids != mask_id
    if logp.requires_grad:
        logp = logp.masked_fill(keep.unsqueeze(-1), float("-inf"))
        logp[keep, input_ids[keep]] = 0.0
        return logp
    if not logp.is_contiguous():
        logp[keep] = float("-inf")
        logp[keep, input_ids[keep]] = 0.0
        return logp
    flat = logp.view(-1, logp.shape[-1])
    rows = keep.reshape(-1).nonzero().squeeze(1)
    flat.index_fill_(0, rows, float("-inf"))
    flat[rows, input_ids.reshape(-1)[rows]] = 0.0
    return logp


def shift_right(logits: torch.Tensor) -> torch.Tensor:
    """Logits for position i from the output at i - 1; the first position keeps its own (Dream-style)."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


def backbone_logits(out) -> torch.Tensor:
    """The logits of a backbone's output: `.logits`, else a plain tensor, else the first element of a tuple."""
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, torch.Tensor):
        logits = out
    if logits is None and isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        logits = out[0]
    if logits is None:
        raise DenoiserError(f"the backbone returned {type(out).__name__} without logits; smkit needs a model whose "
                        f"forward(inputs_embeds=...) returns logits (`.logits` or a tensor [B, L, V])")
    return logits


def _check_fixed(fixed, input_ids) -> torch.Tensor:
    if not isinstance(fixed, torch.Tensor) or fixed.dtype != torch.bool or fixed.shape != input_ids.shape:
        what = f"{fixed.dtype} {tuple(fixed.shape)}" if isinstance(fixed, torch.Tensor) else type(fixed).__name__
        raise ConfigError(f"fixed: must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}; got {what}")
    return fixed.to(input_ids.device)

