"""Which floating-point path a run takes: bf16 autocast where the hardware makes it pay, fp32 elsewhere.

On a CPU, bf16 matmuls are fast only with AMX tiles (Sapphire Rapids and later). With avx512_bf16 alone
(this project's 2-core CI machine) bf16 measured slower than fp32 (`python benchmarks/bench_precision.py`:
`AVX512_MEASURED`), so the default stays fp32 there, and a run that asks for bf16 anyway says so once, with
those numbers; without any bf16 instructions autocast would emulate bf16, and asking for it is an error.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .config import ConfigError
from .notices import TrainingWarning, notify

# benchmarks/results.json (2026-12-02), 2 threads of an avx512_bf16 CPU without AMX, the shipped model's shape
AVX512_MEASURED = ("binary training ran at 3067 tokens/s with bf16 autocast against 5172 in fp32 (0.59x); "
                   "a 4096x256 @ 256x1024 matmul at 141 GFLOP/s against 155")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """This CPU's feature flags (empty where /proc/cpuinfo is not readable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_kind(flags=None) -> str | None:
    """'amx' (fast bf16 tiles), 'avx512' (bf16 instructions, no tiles) or None (no bf16 support)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512"
    return None


def resolve_bf16(requested: bool | None, device: torch.device, flags=None) -> bool:
    """bf16 autocast for a run on `device`. None picks what pays: CUDA with bf16 support, a CPU with AMX."""
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if requested and not supported:
            raise ConfigError("bf16=True: this CUDA device has no bf16 support; use bf16=false (fp32)")
        return supported if requested is None else requested
    kind = cpu_bf16_kind(flags)
    if requested is None:
        return kind == "amx"
    if requested and kind is None:
        raise ConfigError("bf16=True: this CPU has no bf16 instructions (neither amx_bf16 nor avx512_bf16), so "
                          "autocast would emulate bf16 slower than fp32; use bf16=false or leave it unset")
    if requested and kind == "avx512":
        notify("bf16=True on this CPU (avx512_bf16 without AMX tiles) is likely slower than fp32: on such a CPU "
               f"{AVX512_MEASURED} (benchmarks/bench_precision.py); running in bf16 as asked, leave bf16 unset "
               "for the faster choice", TrainingWarning)
    return requested
