"""Checks for the workshop's exercises: each case named, a wrong answer described (where, by how much), a hint
for the known wrong answers, "not done yet" for an exercise left unfilled, and a refusal when the answer calls
the library function it is meant to rebuild.

    check("unigram entropy", unigram_entropy,
          [Case("1/2, 1/4, 1/8, 1/8", (ids,), 1.75 * math.log(2))],
          hints=[Hint("that is in bits: use the natural log", lambda ids: 1.75)])

A case's `expected` is a value, or a zero-argument function computed before the answer runs. A hint's `wrong`
takes the case's arguments and returns the known wrong answer; when the learner's answer equals it on every
case it got wrong, the hint is printed. `forbid` lists library functions the answer must not call (found by
their code objects while the answer runs, whatever name the learner imported them under).

Verdicts: True (every case right, one line printed), False (not done yet: the answer raised
NotImplementedError or returned None; a reminder printed), or AssertionError "[name] not yet right: ..." after
printing each case's verdict.
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .core.errors import ParameterError

MAX_SHOWN = 3   # wrong entries described per case


@dataclass
class Case:
    """One named input of a check: the answer is called as answer(*args, **kwargs) and compared with
    `expected` (a value, or a function of no argument that computes it)."""
    name: str
    args: tuple = ()
    expected: Any = None
    kwargs: dict = field(default_factory=dict)
    atol: float | None = None   # this case's tolerance (default: the check's)


@dataclass
class Hint:
    """A known wrong answer: `wrong(*args, **kwargs)` computes it for a case; `message` says what to fix."""
    message: str
    wrong: Callable


class LibraryCalled(AssertionError):
    """The answer called a function it was asked to write itself."""


def _array(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.numpy()
    return np.asarray(x)


def number(x: float) -> str:
    """A number for a message: 4 decimals in the usual range, 3 significant digits outside it."""
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3g}"


def _value(x) -> str:
    a = _array(x)
    if a.dtype == bool:
        return str(bool(a))
    if a.dtype.kind in "iu":
        return str(int(a))
    if a.dtype.kind == "f":
        return number(a)
    return repr(x)


def _index(flat: int, shape) -> str:
    idx = np.unravel_index(flat, shape)
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def describe_difference(got, expected, atol: float = 1e-5) -> str | None:
    """None when `got` equals `expected` (numbers within atol, or exactly for strings and bools); otherwise one
    sentence saying how they differ: the type or shape, else which entries, by how much, and whether every entry
    is off by one common factor or offset."""
    if isinstance(expected, str) or isinstance(got, str):
        if got == expected:
            return None
        return f"got {got!r}, expected {expected!r}"
    try:
        g, e = _array(got), _array(expected)
    except Exception:  # an answer numpy cannot read as an array
        return f"got a {type(got).__name__} ({got!r}), expected {_value(expected)}"
    if g.dtype == object:
        return f"got a {type(got).__name__}, expected a number or an array like {_value(expected) if e.ndim == 0 else e.shape}"
    if g.shape != e.shape:
        what = "a single number" if g.ndim == 0 else f"shape {tuple(g.shape)}"
        want = "a single number" if e.ndim == 0 else f"shape {tuple(e.shape)}"
        return f"got {what}, expected {want}"
    if e.dtype == bool or g.dtype == bool:
        g, e = g.astype(bool), e.astype(bool)
        wrong = np.flatnonzero(g.ravel() != e.ravel())
        if not wrong.size:
            return None
        if e.ndim == 0:
            return f"got {bool(g)}, expected {bool(e)}"
        shown = "; ".join(f"at {_index(i, e.shape)} yours is {bool(g.ravel()[i])}, expected {bool(e.ravel()[i])}"
                          for i in wrong[:MAX_SHOWN])
        more = f" (and {wrong.size - MAX_SHOWN} more)" if wrong.size > MAX_SHOWN else ""
        return (f"{wrong.size} of {e.size} entries differ: {shown}{more}; yours has {int(g.sum())} True, "
                f"the expected {int(e.sum())}")
    g, e = g.astype(np.float64), e.astype(np.float64)
    close = np.isclose(g, e, atol=atol, rtol=1e-5, equal_nan=True)
    if close.all():
        return None
    if e.ndim == 0:
        text = f"got {number(g)}, expected {number(e)}: off by {float(g - e):+.4g}"
        if e != 0 and np.isfinite(g):
            text += f" (yours is {float(g / e):.4g} times the expected)"
        return text
    wrong = np.flatnonzero(~close.ravel())
    gf, ef = g.ravel(), e.ravel()
    shown = "; ".join(f"at {_index(i, e.shape)} got {number(gf[i])}, expected {number(ef[i])}" for i in wrong[:MAX_SHOWN])
    more = f" (and {wrong.size - MAX_SHOWN} more)" if wrong.size > MAX_SHOWN else ""
    worst = wrong[np.nanargmax(np.abs(gf[wrong] - ef[wrong]))] if np.isfinite(gf[wrong]).any() else wrong[0]
    text = (f"{wrong.size} of {e.size} entries differ: {shown}{more}; the largest difference is "
            f"{gf[worst] - ef[worst]:+.4g} at {_index(worst, e.shape)}")
    finite = np.isfinite(gf) & np.isfinite(ef) & (ef != 0)
    if finite.all() and e.size > 1:
        ratio = gf / ef
        if np.allclose(ratio, ratio[0], rtol=1e-4, atol=0):
            text += f"; every entry is {ratio[0]:.4g} times the expected one"
        elif np.allclose(gf - ef, gf[0] - ef[0], atol=max(atol, 1e-9)):
            text += f"; every entry is off by the same {gf[0] - ef[0]:+.4g}"
    return text


def _codes(functions) -> dict:
    codes = {}
    for fn in functions:
        target = inspect.unwrap(getattr(fn, "__func__", fn))
        code = getattr(target, "__code__", None)
        if code is None:
            raise ParameterError(f"forbid: {fn!r} is not a Python function; list the library functions the answer "
                                 f"must not call")
        codes[code] = f"{target.__module__}.{target.__qualname__}"
    return codes


def call_forbidding(forbid, fn, *args, **kwargs):
    """fn(*args, **kwargs), raising LibraryCalled if it calls (directly or not) any function in `forbid`."""
    codes = _codes(forbid)
    if not codes:
        return fn(*args, **kwargs)
    called = []
    previous = sys.getprofile()

    def watch(frame, event, arg):
        if event == "call" and frame.f_code in codes and not called:
            called.append(codes[frame.f_code])

    sys.setprofile(watch)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    if called:
        raise LibraryCalled(called[0])
    return out


def check(name: str, answer: Callable, cases, *, atol: float = 1e-5, hints=(), forbid=(),
          compare: Callable | None = None) -> bool:
    """Run `answer` on every case and print a verdict per case (see the module's docstring). `compare(got,
    expected, atol) -> str | None` replaces `describe_difference` for answers that need their own comparison
    (it returns None when right, else what differs)."""
    cases = list(cases)
    if not cases:
        raise ParameterError(f"check {name!r}: give at least one Case")
    compare = compare or describe_difference
    results = []
    for i, case in enumerate(cases):
        expected = case.expected() if callable(case.expected) else case.expected
        try:
            got = call_forbidding(forbid, answer, *case.args, **case.kwargs)
        except NotImplementedError:
            got = None
        except LibraryCalled as err:
            print(f"[{name}] case {case.name!r}: your answer calls smkit's {err}, the function this exercise asks "
                  f"you to write yourself")
            raise AssertionError(f"[{name}] not yet right: it calls {err}; write it without it") from None
        if got is None and i == 0:
            print(f"[{name}] not done yet: fill in the exercise cell above, then run this check again")
            return False
        diff = "it returned None" if got is None else compare(got, expected, case.atol if case.atol is not None else atol)
        results.append((case, got, diff))
    wrong = [r for r in results if r[2] is not None]
    if not wrong:
        names = "; ".join(c.name for c in cases)
        print(f"[{name}] correct: " + (f"all {len(cases)} cases ({names})" if len(cases) > 1 else names))
        return True
    for case, _, diff in results:
        print(f"[{name}] case {case.name!r}: " + ("right" if diff is None else f"WRONG: {diff}"))
    for hint in hints:
        if all(_matches(hint, case, got, atol, compare) for case, got, _ in wrong):
            print(f"hint: {hint.message}")
            break
    raise AssertionError(f"[{name}] not yet right: {len(wrong)} of {len(cases)} case(s) wrong "
                         f"({', '.join(c.name for c, _, _ in wrong)}); see above")


def _matches(hint: Hint, case: Case, got, atol: float, compare) -> bool:
    if got is None:
        return False
    try:
        wrong = hint.wrong(*case.args, **case.kwargs)
    except Exception:
        return False
    try:
        return compare(got, wrong, case.atol if case.atol is not None else atol) is None
    except Exception:
        return False


def check_answer(name: str, compute: Callable, expected, atol: float = 1e-5) -> bool:
    """One case: `compute()` (a zero-argument function using the learner's code) against `expected`."""
    return check(name, compute, [Case("the answer", (), expected)], atol=atol)


def attempt(answer: Callable, *args, **kwargs):
    """answer(*args, **kwargs), or None when the exercise is not done yet (NotImplementedError or None), so that
    a learner's copy runs to the end: a cell that uses an answer prints a reminder instead of crashing."""
    try:
        return answer(*args, **kwargs)
    except NotImplementedError:
        return None
