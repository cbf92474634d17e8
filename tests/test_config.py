"""`with_overrides`: the one merge of a config and keyword overrides (train, finetune)."""
import dataclasses

import pytest

from smkit.core.config import ConfigError, with_overrides


@dataclasses.dataclass
class Settings:
    steps: int = 10
    lr: float = 1e-3


def test_overrides_win_and_the_given_config_is_left_alone():
    given = Settings(steps=5)
    got = with_overrides(given, Settings, {"lr": 0.5})
    assert got == Settings(steps=5, lr=0.5) and given == Settings(steps=5)
    assert with_overrides(given, Settings, {}) is given
    assert with_overrides(None, Settings, {"steps": 3}) == Settings(steps=3)
    assert with_overrides({"steps": 2, "lr": 0.1}, Settings, {"lr": 0.2}) == Settings(steps=2, lr=0.2)


def test_unknown_names_fail_listing_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown sampling setting\(s\) \['temp'\]; allowed: \['lr', 'steps'\]"):
        with_overrides(None, Settings, {"temp": 1.0}, what="sampling setting")
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['stepz'\]"):
        with_overrides({"stepz": 1}, Settings, {})
    with pytest.raises(ConfigError, match="config: expected a Settings, a dict of its fields or None; got str"):
        with_overrides("steps=3", Settings, {})
