"""Is a difference real? Sentences computed from measured numbers and their uncertainty, so that what a notebook
says agrees with what it measured on any seed or machine.

Every comparison is a 95% interval for a difference A - B; the verdict reads off whether it excludes 0:

    mean_difference(Estimate.of(a_values), Estimate.of(b_values), "binary", "SM")    # independent means
    paired_difference(a_values, b_values, "binary", "SM")                             # the same items measured twice
    share_difference(k_a, n_a, k_b, n_b, "margin", "random")                          # independent shares
    paired_share_difference(solved_a, solved_b, "SM on", "SM off")                    # the same puzzles

Two intervals that do not overlap always mean a real difference, but two that overlap may still hide one: the
interval of the difference is the test. When both settings see the same items, pair them: what they share
(an easy puzzle, an easy block) cancels and the interval narrows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import ConfigError
from ..tasks.evaluate import Z95, wilson_interval


# Student's t, 97.5% quantile, for 1..30 degrees of freedom: a mean of a few values needs a wider interval than
# the normal one (with 4 samples, 3.18 standard errors instead of 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int | None) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (None or 0: the normal one)."""
    if not df or df < 1:
        return Z95
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


@dataclass(frozen=True)
class Estimate:
    """A measured mean and its standard error."""
    value: float
    se: float
    n: int = 0

    @classmethod
    def of(cls, values) -> "Estimate":
        """The mean of `values` (numbers, a list or a tensor) and its standard error: the sample standard deviation
        (n - 1 in the denominator) over sqrt(n)."""
        xs = [float(v) for v in (values.flatten().tolist() if hasattr(values, "flatten") else values)]
        if len(xs) < 2:
            raise ConfigError(f"values: a standard error needs at least 2 values, got {len(xs)}")
        mean = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        return cls(mean, sd / math.sqrt(len(xs)), len(xs))

    def text(self, digits: int = 3) -> str:
        return f"{_fmt(self.value, digits)} +- {_fmt(self.se, digits)}"

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Verdict:
    """A difference A - B with its 95% interval, and the sentence that says what it shows. `sign`: +1 when the
    interval lies above 0 (A larger), -1 below (A smaller), 0 when it contains 0 (no difference shown)."""
    difference: float
    low: float
    high: float
    sign: int
    text: str

    @property
    def real(self) -> bool:
        return self.sign != 0

    def __str__(self) -> str:
        return self.text


def _sign(low: float, high: float) -> int:
    return 1 if low > 0 else -1 if high < 0 else 0


def _sentence(name_a: str, name_b: str, d: float, low: float, high: float, unit: str, digits: int,
              larger: str, smaller: str, detail: str = "") -> Verdict:
    sign = _sign(low, high)
    u = f" {unit}" if unit else ""
    core = (f"{name_a} - {name_b} = {d:+.{digits}f}{u}, 95% interval [{low:+.{digits}f}, {high:+.{digits}f}]"
            + (f" ({detail})" if detail else ""))
    if sign > 0:
        verdict = f"{name_a} {larger} {name_b} (the interval lies above 0)"
    elif sign < 0:
        verdict = f"{name_a} {smaller} {name_b} (the interval lies below 0)"
    elif low == high == 0:
        verdict = f"{name_a} and {name_b} do not differ at all here"
    else:
        verdict = f"no difference shown between {name_a} and {name_b} at this sample size (the interval contains 0)"
    return Verdict(d, low, high, sign, f"{verdict}: {core}")


def mean_difference(a: Estimate, b: Estimate, name_a: str = "A", name_b: str = "B", unit: str = "",
                    digits: int = 3, larger: str = "is higher than", smaller: str = "is lower than") -> Verdict:
    """Two independent estimates: A - B with standard error sqrt(se_a^2 + se_b^2); when both say how many values
    they average, Student's t with the smaller count - 1 degrees of freedom (conservative), else the normal."""
    d, se = a.value - b.value, math.hypot(a.se, b.se)
    q = t975(min(a.n, b.n) - 1 if a.n and b.n else None)
    detail = f"{abs(d) / se:.1f} standard errors" if se > 0 else "no noise"
    return _sentence(name_a, name_b, d, d - q * se, d + q * se, unit, digits, larger, smaller, detail)


def paired_difference(a, b, name_a: str = "A", name_b: str = "B", unit: str = "", digits: int = 3,
                      larger: str = "is higher than", smaller: str = "is lower than") -> Verdict:
    """The same items measured under A and under B: the mean of the per-item differences a_i - b_i with its
    standard error (Student's t interval, n - 1 degrees of freedom)."""
    xs = [float(v) for v in (a.flatten().tolist() if hasattr(a, "flatten") else a)]
    ys = [float(v) for v in (b.flatten().tolist() if hasattr(b, "flatten") else b)]
    if len(xs) != len(ys):
        raise ConfigError(f"paired values: {len(xs)} for {name_a} but {len(ys)} for {name_b}; pair the same items")
    if len(xs) < 2:
        raise ConfigError(f"paired values: need at least 2 items, got {len(xs)}")
    diff = Estimate.of([x - y for x, y in zip(xs, ys)])
    detail = f"{len(xs)} paired items" + (f", {abs(diff.value) / diff.se:.1f} standard errors" if diff.se > 0 else "")
    q = t975(len(xs) - 1)
    return _sentence(name_a, name_b, diff.value, diff.value - q * diff.se, diff.value + q * diff.se, unit,
                     digits, larger, smaller, detail)


def share_difference(k_a: int, n_a: int, k_b: int, n_b: int, name_a: str = "A", name_b: str = "B",
                     larger: str = "is higher than", smaller: str = "is lower than", digits: int = 3) -> Verdict:
    """Two independent shares k/n: the difference with Newcombe's interval (built from the two Wilson intervals,
    so it behaves at 0 and n successes)."""
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = wilson_interval(k_a, n_a)
    lb, ub = wilson_interval(k_b, n_b)
    d = pa - pb
    low = d - math.hypot(pa - la, ub - pb)
    high = d + math.hypot(ua - pa, pb - lb)
    return _sentence(name_a, name_b, d, low, high, "", digits, larger, smaller, f"{k_a}/{n_a} vs {k_b}/{n_b}")


def paired_share_difference(solved_a, solved_b, name_a: str = "A", name_b: str = "B",
                            larger: str = "solves more puzzles than", smaller: str = "solves fewer puzzles than",
                            digits: int = 3, items: str = "puzzles", done: str = "solved") -> Verdict:
    """The same puzzles decoded two ways (per puzzle: solved or not): the difference of the solved shares with
    the t interval of the per-puzzle differences (n - 1 degrees of freedom). Only the puzzles that one way solves and the other does
    not move it; the sentence counts them (`items` and `done` name them: "blanks", "restored")."""
    a = [bool(x) for x in solved_a]
    b = [bool(x) for x in solved_b]
    if len(a) != len(b):
        raise ConfigError(f"paired results: {len(a)} {items} for {name_a} but {len(b)} for {name_b}; pair the "
                          f"same {items}")
    n = len(a)
    if n < 2:
        raise ConfigError(f"paired results: need at least 2 {items}, got {n}")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    d = (only_a - only_b) / n
    variance = max((only_a + only_b) / n - d * d, 0.0) * n / (n - 1)   # of the per-puzzle differences, in -1, 0, 1
    se = math.sqrt(variance / n)
    detail = f"{n} {items}: {only_a} {done} by {name_a} only, {only_b} by {name_b} only"
    q = t975(n - 1)
    return _sentence(name_a, name_b, d, d - q * se, d + q * se, "", digits, larger, smaller, detail)


def overlap_sentence(name_a: str, low_a: float, high_a: float, name_b: str, low_b: float, high_b: float) -> str:
    """Whether two 95% intervals overlap, and what that does and does not mean."""
    if low_a > high_b or low_b > high_a:
        return (f"the 95% intervals of {name_a} [{low_a:.3f}, {high_a:.3f}] and {name_b} [{low_b:.3f}, {high_b:.3f}] "
                f"do not overlap: the two differ")
    return (f"the 95% intervals of {name_a} [{low_a:.3f}, {high_a:.3f}] and {name_b} [{low_b:.3f}, {high_b:.3f}] "
            f"overlap: that alone does not show they are equal; the interval of their difference decides")
