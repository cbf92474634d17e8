"""smkit.evaluation.evidence: the intervals are the textbook ones and the sentence follows the interval."""
from __future__ import annotations

import math

import pytest

from smkit.core.errors import ConfigError
from smkit.evaluation.evidence import (Estimate, mean_difference, overlap_sentence, paired_difference,
                                       paired_share_difference, share_difference, t975)
from smkit.tasks import wilson_interval


def test_estimate_uses_the_sample_standard_deviation():
    e = Estimate.of([1.0, 2.0, 3.0, 4.0])
    assert e.value == 2.5 and e.se == pytest.approx(math.sqrt(5 / 3) / 2) and e.n == 4
    with pytest.raises(ConfigError):
        Estimate.of([1.0])


def test_t_quantiles():
    assert t975(3) == 3.182 and t975(None) == pytest.approx(1.96, abs=1e-3)
    assert t975(60) == pytest.approx(2.000, abs=2e-3) and t975(120) == pytest.approx(1.980, abs=2e-3)


def test_mean_difference_sentence_follows_the_interval():
    v = mean_difference(Estimate(2.97, 1.24), Estimate(4.60, 0.12), "linear", "loglinear", "nats/token")
    assert v.sign == 0 and v.low < 0 < v.high and v.text.startswith("no difference shown between linear and loglinear")
    v = mean_difference(Estimate(5.0, 0.1), Estimate(4.0, 0.1), "A", "B")
    assert v.sign == 1 and v.text.startswith("A is higher than B") and "7.1 standard errors" in v.text
    v = mean_difference(Estimate(4.0, 0.1, 4), Estimate(5.0, 0.1, 4), "A", "B", smaller="is better than")
    assert v.sign == -1 and v.text.startswith("A is better than B")
    assert v.high - v.low == pytest.approx(2 * 3.182 * math.hypot(0.1, 0.1))    # t with 3 degrees of freedom


def test_paired_differences():
    v = paired_difference([1.0, 2.0, 3.0, 4.0], [0.5, 1.6, 2.4, 3.5], "A", "B")
    d = Estimate.of([0.5, 0.4, 0.6, 0.5])
    assert v.difference == pytest.approx(0.5) and v.high - v.low == pytest.approx(2 * 3.182 * d.se)
    assert v.sign == 1
    assert paired_difference([1, 2], [1, 2]).text.startswith("A and B do not differ at all")
    with pytest.raises(ConfigError, match="pair the same items"):
        paired_difference([1, 2, 3], [1, 2])


def test_paired_shares_count_only_the_discordant_puzzles():
    a = [1, 1, 0, 0] * 25
    b = [1, 0, 0, 0] * 25
    v = paired_share_difference(a, b, "SM on", "SM off")
    assert v.difference == pytest.approx(0.25)
    sd = math.sqrt((25 * 0.75 ** 2 + 75 * 0.25 ** 2) / 99)               # per-puzzle differences 1 (25x), 0 (75x)
    assert v.high - v.low == pytest.approx(2 * t975(99) * sd / 10)
    assert "25 solved by SM on only, 0 by SM off only" in v.text and v.text.startswith("SM on solves more puzzles")
    assert "3 restored by x only" in paired_share_difference([1, 1, 1, 0], [0, 0, 0, 0], "x", "y", items="blanks",
                                                             done="restored").text


def test_independent_shares_use_newcombe():
    v = share_difference(387, 1024, 286, 1024, "margin", "random")
    la, ua = wilson_interval(387, 1024)
    lb, ub = wilson_interval(286, 1024)
    d = (387 - 286) / 1024
    assert v.low == pytest.approx(d - math.hypot(387 / 1024 - la, ub - 286 / 1024))
    assert v.high == pytest.approx(d + math.hypot(ua - 387 / 1024, 286 / 1024 - lb))
    assert v.sign == 1
    assert share_difference(0, 10, 0, 10).sign == 0                        # defined at 0 successes


def test_overlap_sentence_does_not_overclaim():
    assert "do not overlap: the two differ" in overlap_sentence("a", 0.1, 0.2, "b", 0.3, 0.4)
    assert "does not show they are equal" in overlap_sentence("a", 0.25, 0.31, "b", 0.3, 0.4)
