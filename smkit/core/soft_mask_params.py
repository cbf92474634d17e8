"""`SoftMaskParams`: the soft-masking settings, the one place for their defaults and bounds.

The paper's names: scale = w_s, centre = w_b, steepness = w_a (lambda = scale * sigmoid(steepness * (-H - centre)),
docs/method.md); k = how many top candidates are mixed in. A model holds its values (`model.config.sm`, the live
ones in `model.soft_mask`), training starts from them (`TrainConfig.sm`), and a sampling call may override some of
them (`generate(..., sm={"scale": 0.5})`). Every one of those goes through `validate` here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .config import is_int, is_number
from .errors import ConfigError

EPS = 1e-6  # keeps steepness > 0 and centre < 0 strictly, as in the authors' parameterisation


@dataclass(frozen=True)
class SoftMaskParams:
    k: int = 3                 # top-k candidates mixed into a soft-masked input
    scale: float = 0.0067      # in [0, 1]: the initial ~0 starts training with SM switched off (the paper's)
    centre: float = -0.75      # < 0: lambda is half-open at entropy -centre nats
    steepness: float = 6.66    # > 0

    def validate(self, where: str = "sm", vocab_size: int | None = None) -> "SoftMaskParams":
        """Check every value; an error names `where.<field>` and what is allowed. With `vocab_size`, k must also fit
        the vocabulary without [MASK]."""
        top = None if vocab_size is None else vocab_size - 1
        if not is_int(self.k) or self.k < 1 or (top is not None and self.k > top):
            allowed = "an integer >= 1" if top is None else f"an integer in [1, {top}] (the vocabulary without [MASK])"
            raise ConfigError(f"{where}.k={self.k!r}: the number of top-k candidates must be {allowed}")
        if not is_number(self.scale) or not 0 <= self.scale <= 1:
            raise ConfigError(f"{where}.scale={self.scale!r}: must be a number in [0, 1]")
        if not is_number(self.centre) or not self.centre < -EPS:
            raise ConfigError(f"{where}.centre={self.centre!r}: must be a number < -1e-6")
        if not is_number(self.steepness) or not self.steepness > EPS:
            raise ConfigError(f"{where}.steepness={self.steepness!r}: must be a number > 1e-6")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def overridden(self, overrides, where: str = "sm") -> "SoftMaskParams":
        """These values with some replaced: `overrides` is None, a dict of field names, or a SoftMaskParams."""
        if overrides is None:
            return self
        if isinstance(overrides, SoftMaskParams):
            return overrides
        return replace(self, **_known(overrides, where))

    @classmethod
    def from_value(cls, value, where: str = "sm") -> "SoftMaskParams":
        """A SoftMaskParams from itself, a dict of field names (the rest defaults) or None (all defaults)."""
        return cls().overridden(value, where)


def _known(overrides, where: str) -> dict:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}={overrides!r}: give a dict with some of {FIELDS} (or a SoftMaskParams)")
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown soft-masking setting(s) {unknown}; allowed: {list(FIELDS)}")
    return dict(overrides)


FIELDS = tuple(f.name for f in fields(SoftMaskParams))
