"""`ModelConfig`: the shape of a denoiser, validated, and its dict form as stored in checkpoints."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from .backbones import BackboneConfig
from ..core.schedules import get_schedule
from ..core.soft_mask_params import SoftMaskParams
from ..core.config import is_int
from ..core.errors import ConfigError


@dataclass
class ModelConfig:
    """Shape of a denoiser. `vocab_size`: rows of the input embedding matrix (= logits per position), the mask
    id included. `backbone`: the shape of an encoder built here, or None for a Hugging Face module passed in.
    `mask_id`: None means the last id. `n_tokens`: ids >= n_tokens (embedding rows no token uses) are never
    predicted; None means all ids are tokens. `shift_logits`: the logits for position i are the backbone's
    output at i - 1 (the first position keeps its own), as in decoder-style diffusion LMs such as Dream.
    `sm`: the soft-masking values the model starts from (k, scale, centre, steepness)."""
    vocab_size: int
    seq_len: int = 128
    backbone: Optional[BackboneConfig] = field(default_factory=BackboneConfig)
    sm: SoftMaskParams = field(default_factory=SoftMaskParams)
    schedule: str = "loglinear"
    mask_id: Optional[int] = None
    n_tokens: Optional[int] = None
    shift_logits: bool = False

    def validate(self) -> "ModelConfig":
        if not isinstance(self.vocab_size, int) or self.vocab_size < 3:
            raise ConfigError(f"vocab_size={self.vocab_size!r}: must be an integer >= 3 (tokens plus [MASK])")
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ConfigError(f"seq_len={self.seq_len!r}: the sequence length must be an integer >= 2")
        self.sm = SoftMaskParams.from_value(self.sm, "sm").validate("sm", self.vocab_size)
        get_schedule(self.schedule)
        if self.mask_id is not None and (not is_int(self.mask_id) or not 0 <= self.mask_id < self.vocab_size):
            raise ConfigError(f"mask_id={self.mask_id!r}: must be an id in [0, {self.vocab_size}) (the vocabulary)")
        if self.n_tokens is not None and (not is_int(self.n_tokens) or not 2 <= self.n_tokens <= self.vocab_size):
            raise ConfigError(f"n_tokens={self.n_tokens!r}: must be an integer in [2, {self.vocab_size}]")
        if not isinstance(self.shift_logits, bool):
            raise ConfigError(f"shift_logits={self.shift_logits!r}: must be True or False")
        if isinstance(self.backbone, dict):
            self.backbone = BackboneConfig(**self.backbone)
        if self.backbone is not None:
            self.backbone.validate()
        return self

    def to_dict(self) -> dict:
        """Plain values (the backbone shape as a dict), as a checkpoint's manifest stores them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """The config `to_dict` gave."""
        d = dict(d)
        old = {new: d.pop(name) for name, new in _BEFORE_SM.items() if name in d}  # files written before `sm`
        if old or isinstance(d.get("sm"), dict):
            d["sm"] = SoftMaskParams.from_value({**old, **(d.get("sm") or {})})
        if d.get("backbone") is not None:
            d["backbone"] = BackboneConfig(**d["backbone"])
        return cls(**d)


_BEFORE_SM = {"k": "k", "sm_scale": "scale", "sm_centre": "centre", "sm_steepness": "steepness"}

