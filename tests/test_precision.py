"""bf16 asked for on a CPU where it is slower than fp32 (avx512_bf16 without AMX tiles) runs as asked and says
so once, with the project's measured numbers; the automatic choice and the fast cases stay silent."""
from __future__ import annotations

import warnings

import pytest
import torch

import smkit
from smkit.core.precision import AVX512_MEASURED, cpu_bf16_kind, resolve_bf16

CPU = torch.device("cpu")


def _said(requested, flags) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        resolve_bf16(requested, CPU, frozenset(flags))
    return [str(w.message) for w in seen if issubclass(w.category, smkit.TrainingWarning)]


def test_bf16_where_it_is_slower_says_why_with_the_measurement():
    (message,) = _said(True, {"avx512_bf16"})
    assert "bf16=True" in message and "slower than fp32" in message and "without AMX" in message
    assert AVX512_MEASURED in message and "tokens/s" in message and "GFLOP/s" in message


@pytest.mark.parametrize("requested, flags", [(None, {"avx512_bf16"}), (False, {"avx512_bf16"}),
                                              (True, {"amx_bf16", "avx512_bf16"}), (None, {"amx_bf16"})])
def test_the_automatic_choice_and_fast_bf16_are_silent(requested, flags):
    assert _said(requested, flags) == []


def test_a_bf16_training_run_says_it_once(tiny_train_kwargs, tmp_path):
    """The real path on this machine: smkit.train(bf16=True) for 3 updates, one warning pointing at the caller."""
    if cpu_bf16_kind() != "avx512":
        pytest.skip(f"this CPU's bf16 kind is {cpu_bf16_kind()!r}; the warning is for avx512_bf16 without AMX")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        smkit.train(**dict(tiny_train_kwargs, steps=3, bf16=True, out_dir=str(tmp_path)))
    ours = [w for w in seen if issubclass(w.category, smkit.TrainingWarning) and "bf16" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__, [(w.filename, str(w.message)) for w in ours]
