"""Data parallelism under `accelerate launch`: which process this is, and the few collectives training needs.

`smkit train` is one command with or without a launcher. A plain run gets a single-process Runtime that wraps
nothing and runs no collective. Under `accelerate launch` (torchrun's WORLD_SIZE > 1) accelerate wraps the model
(DDP; FSDP when the launch config asks for it) inside `ModelCall`, a module whose forward runs a function of the
model. Every computation that touches parameters (the two-pass SM loss, validation, reading the SM scalars)
goes through that forward: DDP all-reduces the gradients of every parameter it wraps, the three SM scalars
included, and FSDP gathers its shards, only for work that passes through the wrapper's forward.

DDP runs with find_unused_parameters=True unless every update is soft-masked: a binary update leaves the SM
scalars without a gradient on every process; DDP then leaves their .grad unset, as one process would, and AdamW
skips them.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch
from torch import nn

from ..core.config import ConfigError


class ModelCall(nn.Module):
    """`ModelCall(model)(fn)` returns `fn(model)`: what a data-parallel wrapper wraps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn):
        return fn(self.model)


def launched_world_size() -> int:
    """Processes started by the launcher (torchrun, which `accelerate launch` uses); 1 for a plain run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available here; use cpu or auto")
    return torch.device(name)


class Runtime:
    """This process's place in the run. `Runtime.detect(device)` picks single-process or accelerate."""

    def __init__(self, device: torch.device, accelerator=None):
        self.device, self.accelerator = device, accelerator
        self.model: nn.Module | None = None
        self.wrapped: nn.Module | None = None

    @classmethod
    def detect(cls, device: str = "auto", find_unused_parameters: bool = True) -> "Runtime":
        if launched_world_size() <= 1:
            return cls(resolve_device(device))
        if device.startswith("cuda:"):
            raise ConfigError(f"device={device!r}: under accelerate launch the launcher gives each process its GPU; "
                              f"use device: auto (or cuda, or cpu)")
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda': CUDA is not available here; use cpu or auto")
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, DistributedType

        env_precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
        if env_precision not in ("no", ""):
            warnings.warn(f"accelerate's mixed_precision={env_precision!r} is not used: smkit's `bf16` field sets the "
                          f"precision (autocast) of `smkit train`")
        # On a machine without CUDA accelerate only forms a CPU process group (gloo) when told cpu=True.
        acc = Accelerator(cpu=device == "cpu" or not torch.cuda.is_available(), mixed_precision="no",
                          kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)])
        allowed = (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU, DistributedType.FSDP)
        if acc.distributed_type not in allowed:
            raise ConfigError(f"accelerate distributed_type={acc.distributed_type}: smkit train runs DDP (multi-GPU or "
                              f"multi-CPU) or FSDP; see docs/distributed.md")
        return cls(acc.device, acc)

    # ------------------------------------------------------------------ who
    @property
    def distributed(self) -> bool:
        return self.accelerator is not None

    @property
    def fsdp(self) -> bool:
        from accelerate.utils import DistributedType
        return self.distributed and self.accelerator.distributed_type == DistributedType.FSDP

    @property
    def rank(self) -> int:
        return self.accelerator.process_index if self.distributed else 0

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes if self.distributed else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch (batch_size divides by the world size)."""
        per = batch_size // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    # ------------------------------------------------------------------ model
    def wrap(self, model: nn.Module, optimizer):
        """Hand model and optimizer to accelerate (no-op for one process); returns the optimizer to step."""
        self.model = model
        if not self.distributed:
            return optimizer
        self.wrapped, optimizer = self.accelerator.prepare(ModelCall(model), optimizer)
        return optimizer

    def call(self, fn, grad: bool = True):
        """`fn(model)`, through the data-parallel wrapper's forward when there is one. grad=False: no graph
        (validation, reading values); every process must make the same calls."""
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return self.wrapped(fn) if self.distributed else fn(self.model)

    def no_sync(self):
        """Accumulate gradients locally (all micro-batches of an update but the last)."""
        if not self.distributed:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(self.wrapped)

    def backward(self, loss: torch.Tensor) -> None:
        if self.distributed:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def clip_grad_norm_(self, parameters, max_norm: float) -> None:
        """Clip the given parameters' gradient norm; under FSDP (sharded gradients) the norm of all of them."""
        if self.fsdp:
            self.accelerator.clip_grad_norm_(self.wrapped.parameters(), max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    # ------------------------------------------------------------------ collectives
    def mean(self, value: torch.Tensor) -> float:
        """Mean over processes of a scalar (equal shares: the mean of local means is the global mean)."""
        if not self.distributed:
            return float(value)
        value = value.detach().float().reshape(1).to(self.device)
        return float(self.accelerator.reduce(value, reduction="mean"))

    def barrier(self) -> None:
        if self.distributed:
            self.accelerator.wait_for_everyone()

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's text on every process (UTF-8 bytes in a tensor; no pickle)."""
        if not self.distributed:
            return text
        import torch.distributed as dist

        data = torch.tensor(list(text.encode("utf-8")) if self.is_main else [], dtype=torch.uint8)
        size = torch.tensor([data.numel()], dtype=torch.long, device=self.device)
        dist.broadcast(size, src=0)
        buf = torch.zeros(int(size), dtype=torch.uint8, device=self.device)
        if self.is_main:
            buf.copy_(data)
        dist.broadcast(buf, src=0)
        return bytes(buf.cpu().tolist()).decode("utf-8")

    # ------------------------------------------------------------------ state for checkpoints
    def optimizer_state(self, optimizer) -> dict:
        """The full optimizer state_dict, keyed by parameter index as one process would have it (every process
        must call; under FSDP it gathers the shards)."""
        if not self.fsdp:
            return getattr(optimizer, "optimizer", optimizer).state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        full = get_optimizer_state_dict(self.wrapped, optimizer.optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        order = [name for group in full["param_groups"] for name in group["params"]]
        index = {name: i for i, name in enumerate(order)}
        return {"state": {index[n]: s for n, s in full["state"].items()},
                "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in full["param_groups"]]}

    def load_optimizer_state(self, optimizer, state: dict) -> None:
        """Load an index-keyed full state (from `optimizer_state` or one process) after `wrap`."""
        if not self.fsdp:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_optimizer_state_dict,
                                                             set_optimizer_state_dict)

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        names = [n for g in get_optimizer_state_dict(self.wrapped, optimizer.optimizer, options=options)["param_groups"]
                 for n in g["params"]]
        by_name = {"state": {names[int(i)]: s for i, s in state["state"].items()},
                   "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]]}
        set_optimizer_state_dict(self.wrapped, optimizer.optimizer, by_name, options=options)

    def model_for_saving(self, model):
        """A model whose state_dict is the full model: `model` itself unless FSDP shards it, then a CPU copy
        built on rank 0 from the gathered weights (None elsewhere). Every process must call."""
        if not self.fsdp:
            return model
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(self.wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.is_main:
            return None
        copy = type(model)(model.config, tokenizer=model.tokenizer)
        result = copy.load_state_dict({k.removeprefix("model."): v for k, v in full.items()}, strict=False)
        own = copy.state_dict()
        loaded_ptrs = {own[k].data_ptr() for k in own if k not in result.missing_keys}
        untied_missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded_ptrs]
        if result.unexpected_keys or untied_missing:  # never save a model with weights left at their init
            raise RuntimeError(f"gathered FSDP state does not match the model: missing {untied_missing[:5]}, "
                               f"unexpected {result.unexpected_keys[:5]}")
        return copy
