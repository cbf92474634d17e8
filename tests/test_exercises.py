"""smkit.exercises: a check names its cases, says where and by how much a wrong answer is off, prints the hint
of a known wrong answer, says "not done yet" for an empty exercise, and refuses an answer that calls a listed
library function under any name."""
from __future__ import annotations

import math

import pytest
import torch

from smkit.core import schedules
from smkit.exercises import Case, Hint, attempt, call_forbidding, check, check_answer, describe_difference


def test_equal_answers_have_no_difference():
    assert describe_difference(1.0, 1.0 + 1e-7) is None
    assert describe_difference(torch.tensor([1, 2]), [1, 2]) is None
    assert describe_difference("sm", "sm") is None
    assert describe_difference(torch.tensor([True, False]), torch.tensor([True, False])) is None


def test_a_number_says_by_how_much_and_what_factor():
    text = describe_difference(1.75, 1.75 * math.log(2))
    assert "got 1.7500, expected 1.2130" in text and "1.443 times the expected" in text


def test_an_array_names_the_entries_and_a_common_factor():
    got, expected = torch.tensor([[2.0, 4.0], [6.0, 8.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    text = describe_difference(got, expected)
    assert text.startswith("4 of 4 entries differ: at [0, 0] got 2.0000, expected 1.0000")
    assert "every entry is 2 times the expected one" in text
    text = describe_difference(torch.tensor([1.5, 2.5, 3.5]), torch.tensor([1.0, 2.0, 3.0]))
    assert "every entry is off by the same +0.5" in text


def test_bool_masks_and_shapes():
    text = describe_difference(torch.tensor([True, True, False]), torch.tensor([True, False, True]))
    assert "2 of 3 entries differ" in text and "at [1] yours is True, expected False" in text
    assert describe_difference(torch.zeros(3), torch.zeros(4)) == "got shape (3,), expected shape (4,)"
    assert describe_difference(torch.zeros(3), 0.0) == "got shape (3,), expected a single number"
    assert "expected 'sm'" in describe_difference("binary", "sm")


def test_check_verdicts(capsys):
    cases = [Case("one", (1.0,), 2.0), Case("two", (2.0,), 4.0)]
    assert check("double", lambda x: 2 * x, cases) is True
    assert "[double] correct: all 2 cases (one; two)" in capsys.readouterr().out

    def unfinished(x):
        raise NotImplementedError

    assert check("double", unfinished, cases) is False
    assert "not done yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"\[double\] not yet right: 1 of 2 case\(s\) wrong \(two\)"):
        check("double", lambda x: 2.0 if x == 1.0 else 5.0, cases)
    out = capsys.readouterr().out
    assert "case 'one': right" in out and "case 'two': WRONG: got 5.0000, expected 4.0000" in out


def test_a_hint_is_printed_when_the_answer_is_the_known_wrong_one(capsys):
    cases = [Case("x = 3", (3.0,), 9.0)]
    hints = [Hint("you added instead of multiplying", lambda x: x + x), Hint("never shown", lambda x: -1.0)]
    with pytest.raises(AssertionError):
        check("square", lambda x: x + x, cases, hints=hints)
    out = capsys.readouterr().out
    assert "hint: you added instead of multiplying" in out and "never shown" not in out
    with pytest.raises(AssertionError):
        check("square", lambda x: 7.0, cases, hints=hints)
    assert "hint:" not in capsys.readouterr().out


def test_calling_the_library_is_refused_under_any_name(capsys):
    from smkit.core.schedules import alpha as renamed
    cases = [Case("t = 0.5", (torch.tensor([0.5]),), schedules.alpha("loglinear", torch.tensor([0.5])))]
    with pytest.raises(AssertionError, match="calls smkit.core.schedules.alpha"):
        check("alpha", lambda t: renamed("loglinear", t), cases, forbid=[schedules.alpha])
    assert "the function this exercise asks you to write" in capsys.readouterr().out
    assert check("alpha", lambda t: 1 - (1 - schedules.EPS) * t, cases, forbid=[schedules.alpha]) is True
    # the profiler is removed again, and a function that calls nothing listed runs normally
    assert call_forbidding([schedules.alpha], lambda: 3) == 3


def test_check_answer_and_attempt(capsys):
    assert check_answer("one", lambda: [1.0, 2.0], [1.0, 2.0 + 1e-7]) is True
    with pytest.raises(AssertionError, match="not yet right"):
        check_answer("two", lambda: "binary", "sm")

    def empty():
        raise NotImplementedError

    assert attempt(empty) is None and attempt(lambda x: x + 1, 1) == 2
