"""One training loop for binary MDLM and two-pass soft-masked MDLM (arXiv 2510.17206: training with SM).

Every update draws its batch, its Bernoulli(p_sm) and its noise from a generator seeded by (seed, step),
so a resumed run replays exactly what an uninterrupted run would have done.

The same loop runs under `accelerate launch` (docs/distributed.md). `batch_size` is the global batch: every
process draws the global batch's indices, Bernoulli and noise from the shared generator and keeps its rows,
so N processes make the update one process makes (up to the order of float sums). Rank 0 alone writes
checkpoints, metrics and the final model; the others wait.
"""
from __future__ import annotations

import os
import time
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..io import checkpoint as ckpt
from ..models.backbones import BACKBONES, BackboneConfig
from ..models.dit import PRESETS as DIT_PRESETS
from ..core.config import ConfigError, check, from_mapping, is_int, with_overrides
from .continued import load_base
from ..io.data import TOKENIZER_KINDS, is_pretrained_tokenizer_name
from ..io.metrics import read_metrics
from ..io.outputs import run_folder
from .distributed import Runtime
from ..models.denoiser import DiffusionLM, ModelConfig
from ..core.precision import resolve_bf16
from ..core.progress import progress_bar
from ..core.schedules import EPS, SCHEDULES
from ..core.notices import TrainingWarning, notify
from ..core.soft_mask_params import SoftMaskParams
from ..tasks.registry import is_task_corpus
from ..tasks.training import task_of
from .batches import prepare_data
from .update import LR_SCHEDULES, draw_soft_mask, lr_factor, set_learning_rates, sm_update, step_generator
from .update import make_optimizer as _make_optimizer

HISTORY_COLUMNS = ["step", "forward_passes", "loss", "soft_mask", "lr", "scale", "steepness", "centre", "tokens_per_s",
                   "elapsed_s", "val_bound", "val_bound_sm"]


@dataclass
class TrainConfig:
    """Every field of `smkit train` (also settable from a YAML/JSON file)."""
    corpus: str = "shakespeare"          # built-in (shakespeare, python), a local file/folder, a datasets name, or task:NAME (an exact-answer task: smkit.tasks)
    task_params: dict = field(default_factory=dict)  # corpus task:NAME: the task's parameters, e.g. {givens: 35} (CLI: --task-param givens=35, repeatable)
    task_condition: bool = True          # corpus task:NAME: given cells never masked nor scored, as evaluation decodes (False: every position maskable)
    text_column: str = "text"            # column holding text, for datasets corpora
    streaming: bool = False              # read corpus as a stream (a datasets name or a local .jsonl/.json/.txt/.parquet/.csv file), tokenised and packed on the fly
    val_docs: int = 1000                 # streaming: documents at the head of the stream held out for validation
    shuffle_buffer: int = 10000          # streaming: documents in the seeded shuffle buffer (1: stream order)
    tokenizer: str = "bpe"               # bpe or char (trained here), or a pretrained tokenizer: a local folder or a hub id in the local cache ([MASK] appended if missing)
    vocab_size: int = 1024               # ids including [MASK]: the size a bpe tokenizer is trained to; must equal a pretrained tokenizer's
    seq_len: int = 128                   # tokens per training block (a task corpus sets it to its text length)
    val_fraction: float = 0.05           # share of documents held out for validation (in-memory corpora)
    backbone: str = "modernbert"         # modernbert (pre-norm, the default), bert, or dit (the paper's diffusion transformer)
    preset: str | None = None            # backbone dit: one of the paper's sizes, tiny, small (169M with GPT-2's vocabulary) or medium; sets hidden_size, num_layers, num_heads, intermediate_size and cond_dim
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    dropout: float = 0.0
    cond_dim: int = 128                  # backbone dit: width of the conditioning vector feeding adaLN
    soft_mask: bool = True               # train with the two-pass SM estimate (False: binary MDLM)
    p_sm: float = 0.8                    # probability that an update uses the two-pass SM estimate
    sm: dict | None = None               # SM values to start from, any of {k, scale, centre, steepness} (smkit.core.soft_mask_params); the rest: the defaults, or with init_from the base's (CLI: --sm scale=0.1, repeatable)
    schedule: str = "loglinear"          # noise schedule: loglinear, linear, cosine
    t_min: float = EPS                   # lower end of the sampled time range (b_l)
    t_max: float = 1.0                   # upper end (b_h)
    antithetic: bool = True              # stratified t over the batch
    batch_size: int = 32                 # global batch (all processes together); divisible by the number of processes
    micro_batch_size: int | None = None  # rows per forward pass in a process (gradients accumulated over them; also the validation batch); None: the whole share
    steps: int | None = 1000             # number of updates (iso-update); None when forward_budget is set
    forward_budget: int | None = None    # forward passes to spend (iso-compute): SM updates cost 2, binary 1
    lr: float = 3e-4                     # backbone learning rate
    sm_lr: float = 1e-2                  # SM scalars' learning rate (no weight decay on them)
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_schedule: str = "constant"        # after warmup: constant or cosine
    grad_clip: float = 1.0               # max gradient norm (0: off)
    ema: float = 0.0                     # EMA decay of backbone weights (0: off); SM scalars are never averaged
    eval_every: int = 200                # updates between validation bounds (0: only at the end)
    eval_blocks: int = 256               # validation blocks used per evaluation
    checkpoint_every: int = 500          # updates between checkpoints of out_dir/last (0: only at the end)
    log_every: int = 10                  # updates between history rows
    out_dir: str = "runs/train"          # checkpoints, metrics.csv and the final model go here
    seed: int = 0
    device: str = "auto"                 # auto, cpu or cuda (cuda:N for one process; under accelerate launch the launcher picks)
    bf16: bool | None = None             # bf16 autocast; None: on where it pays (CUDA with bf16, CPUs with AMX tiles), fp32 elsewhere
    resume: bool = False                 # continue from out_dir/last exactly
    init_from: str | None = None         # continued pretraining: backbone and tokenizer from a shipped model name or a checkpoint folder; fresh optimizer and schedule
    threads: int = 0                     # torch CPU threads (0: torch's default)
    progress: bool = True

    def validate(self) -> "TrainConfig":
        _check_types(self)
        if is_task_corpus(self.corpus):  # one example per block: seq_len is the task's length; bad parameters fail here
            check(not self.streaming, "streaming", self.streaming, "a task corpus is generated on the fly: set false")
            self.seq_len = task_of(self).length
        else:
            check(not self.task_params, "task_params", self.task_params, "only for a task corpus (corpus='task:NAME')")
        check(self.tokenizer in TOKENIZER_KINDS or is_pretrained_tokenizer_name(self.tokenizer), "tokenizer",
              self.tokenizer, f"choose one of {TOKENIZER_KINDS}, or a pretrained tokenizer (a local folder or a hub id)")
        check(self.val_docs >= 1, "val_docs", self.val_docs, "must be >= 1")
        check(self.shuffle_buffer >= 1, "shuffle_buffer", self.shuffle_buffer, "must be >= 1 (1: stream order)")
        if self.micro_batch_size is not None:
            check(1 <= self.micro_batch_size <= self.batch_size, "micro_batch_size", self.micro_batch_size,
                  f"must lie in [1, batch_size={self.batch_size}] or be None")
        check(isinstance(self.seq_len, int) and self.seq_len >= 2, "seq_len", self.seq_len, "must be an integer >= 2")
        check(isinstance(self.vocab_size, int) and self.vocab_size >= 3, "vocab_size", self.vocab_size, "must be >= 3")
        check(0 < self.val_fraction < 1, "val_fraction", self.val_fraction, "must lie in (0, 1)")
        check(self.backbone in BACKBONES, "backbone", self.backbone, f"choose one of {BACKBONES}")
        self._apply_preset()
        check(isinstance(self.p_sm, (int, float)) and 0 <= self.p_sm <= 1, "p_sm", self.p_sm, "must lie in [0, 1]")
        check(self.schedule in SCHEDULES, "schedule", self.schedule, f"choose one of {sorted(SCHEDULES)}")
        check(0 < self.t_min <= 1, "t_min", self.t_min, "the t-range must lie in (0, 1]")
        check(0 < self.t_max <= 1, "t_max", self.t_max, "the t-range must lie in (0, 1]")
        check(self.t_min <= self.t_max, "t_min", self.t_min, f"must not exceed t_max={self.t_max} (reversed range)")
        check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", self.batch_size, "must be >= 1")
        check((self.steps is None) != (self.forward_budget is None), "steps", self.steps,
              f"set exactly one of steps (updates) and forward_budget (forward passes); forward_budget="
              f"{self.forward_budget!r}")
        if self.steps is not None:
            check(isinstance(self.steps, int) and self.steps >= 1, "steps", self.steps, "must be an integer >= 1")
        if self.forward_budget is not None:
            check(isinstance(self.forward_budget, int) and self.forward_budget >= 1, "forward_budget",
                  self.forward_budget, "must be an integer >= 1")
        for name in ("lr", "sm_lr", "weight_decay", "grad_clip"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0 (learning rates and "
                  "decays cannot be negative)")
        check(self.warmup_steps >= 0, "warmup_steps", self.warmup_steps, "must be >= 0")
        check(self.lr_schedule in LR_SCHEDULES, "lr_schedule", self.lr_schedule, "constant or cosine")
        check(0 <= self.ema < 1, "ema", self.ema, "must lie in [0, 1) (0 turns EMA off)")
        for name in ("eval_every", "checkpoint_every", "threads"):
            check(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name, getattr(self, name),
                  "must be an integer >= 0")
        check(isinstance(self.log_every, int) and self.log_every >= 1, "log_every", self.log_every, "must be >= 1")
        check(self.eval_blocks >= 1, "eval_blocks", self.eval_blocks, "must be >= 1")
        check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device", self.device,
              "auto, cpu, cuda or cuda:N")
        SoftMaskParams().overridden(self.sm, "sm").validate("sm")
        self._fit_warmup()
        self.model_config()  # backbone shape errors, k vs vocabulary
        return self

    def _apply_preset(self) -> None:
        """`preset` fills the DiT's shape fields with one of the paper's sizes."""
        if self.preset is None:
            return
        check(self.backbone == "dit", "preset", self.preset, f"presets are sizes of the dit backbone; backbone is "
              f"{self.backbone!r} (set backbone: dit, or preset: null)")
        check(self.preset in DIT_PRESETS, "preset", self.preset, f"choose one of {sorted(DIT_PRESETS)}")
        shape = {**DIT_PRESETS[self.preset], "intermediate_size": 4 * DIT_PRESETS[self.preset]["hidden_size"]}
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        for name, value in shape.items():
            mine = getattr(self, name)
            check(mine in (defaults[name], value), name, mine, f"preset={self.preset!r} sets {name}={value}; set "
                  f"one of them, not both")
            setattr(self, name, value)

    def _fit_warmup(self) -> None:
        """A warmup as long as the run would never reach `lr`: shorten it to a tenth of the run, and say so."""
        if self.steps is not None and self.warmup_steps > self.steps > 0:
            fitted = self.steps // 10
            notify(f"warmup_steps={self.warmup_steps} > steps={self.steps}: the learning rate would never reach "
                   f"lr={self.lr:g}; warmup shortened to {fitted} updates (set warmup_steps below steps to choose)",
                   TrainingWarning)
            self.warmup_steps = fitted

    def model_config(self, vocab_size: int | None = None, base_sm: SoftMaskParams | None = None) -> ModelConfig:
        """The shape of the model this run trains; its SM values are `base_sm` (a continued run's base) or the
        defaults, with the fields `sm` names replaced."""
        bb = BackboneConfig(self.backbone, self.hidden_size, self.num_layers, self.num_heads,
                            self.intermediate_size, self.dropout, cond_dim=self.cond_dim)
        sm = (base_sm or SoftMaskParams()).overridden(self.sm, "sm")
        return ModelConfig(vocab_size=vocab_size or self.vocab_size, seq_len=self.seq_len, backbone=bb, sm=sm,
                           schedule=self.schedule).validate()

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_mapping(cls, upgrade_keys(d))


# Fields of TrainConfig before the SM values moved into `sm` (0.1.0): still read, with a deprecation message.
_OLD_SM_KEYS = {"k": "k", "sm_scale_init": "scale", "sm_centre_init": "centre", "sm_steepness_init": "steepness"}


def upgrade_keys(d: dict) -> dict:
    """A config dict with the old SM keys moved into `sm`. `init_sm: true` is what a continued run now does by
    default; `init_sm: false` (start from the default SM values, not the base's) becomes an explicit `sm`."""
    d = dict(d)
    old = {key: d.pop(key) for key in list(_OLD_SM_KEYS) + ["init_sm"] if key in d}
    if not old:
        return d
    sm = {_OLD_SM_KEYS[key]: value for key, value in old.items() if key in _OLD_SM_KEYS}
    if sm and d.get("sm") is not None:
        raise ConfigError(f"sm={d['sm']!r} and the old keys {sorted(k for k in old if k in _OLD_SM_KEYS)}: give the "
                          f"soft-masking values in sm only")
    if old.get("init_sm") is False and d.get("init_from") is not None:
        sm = {**SoftMaskParams().to_dict(), **sm}
    if sm or d.get("sm"):
        d["sm"] = {**sm, **(d.get("sm") or {})}
    notify(f"config keys {sorted(old)} are deprecated: the soft-masking values go in sm: {{k, scale, centre, "
           f"steepness}}, and a continued run keeps its base's unless sm names them; read as sm={d.get('sm')}",
           DeprecationWarning)
    return d


def _check_types(cfg: TrainConfig) -> None:
    """Each field's value has its declared type (YAML reads `3e-4` as text: write `3.0e-4`)."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            continue
        base = next(a for a in args if a is not type(None)) if args else hint
        if base is str and isinstance(value, os.PathLike):  # paths (corpus, tokenizer, out_dir) as Path objects
            value = os.fspath(value)
            setattr(cfg, f.name, value)
        if base is bool:
            ok = isinstance(value, bool)
        elif base is int:
            ok = is_int(value)
        elif base is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, base)
        if not ok:
            name = "a number" if base is float else f"{base.__name__}" + (" or None" if type(None) in args else "")
            hint_text = " (YAML reads 3e-4 as text; write 3.0e-4)" if isinstance(value, str) and base is float else ""
            raise ConfigError(f"{f.name}={value!r}: must be {name}{hint_text}")


@dataclass
class TrainResult:
    model: DiffusionLM
    history: "object"  # pandas.DataFrame, one row per logged update
    out_dir: Path
    rank: int = 0      # this process's rank under accelerate launch (0 for a plain run)




def make_optimizer(model: DiffusionLM, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with two groups: the backbone (lr, weight decay) and the three SM scalars (sm_lr, no decay)."""
    return _make_optimizer(model, cfg.lr, cfg.sm_lr, cfg.weight_decay)


class Trainer:
    """Owns model, optimizer, EMA and history; `run()` trains to the budget, checkpointing on the way."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg.validate()
        # DDP must tolerate parameters without a gradient unless every update is soft-masked: a binary update
        # leaves the SM scalars out of the graph.
        self.runtime = Runtime.detect(cfg.device, find_unused_parameters=not (cfg.soft_mask and cfg.p_sm == 1))
        world = self.runtime.world_size
        check(cfg.batch_size % world == 0, "batch_size", cfg.batch_size,
              f"the global batch must divide by the number of processes ({world})")
        self.per_process = cfg.batch_size // world
        if cfg.micro_batch_size is not None:
            check(self.per_process % cfg.micro_batch_size == 0, "micro_batch_size", cfg.micro_batch_size,
                  f"must divide each process's share of the batch ({cfg.batch_size} / {world} processes = "
                  f"{self.per_process})")
        check(not (self.runtime.fsdp and cfg.ema), "ema", cfg.ema, "must be 0 under FSDP (sharded weights)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # where the results go is checked before the base, the data or the model are touched (by the process
        # that writes them: the others write nothing, not even the probe)
        self.out_dir = Path(cfg.out_dir).expanduser()
        if self.runtime.is_main:
            run_folder(self.out_dir, "out_dir", resume=cfg.resume)
        self.device = self.runtime.device
        self.bf16 = resolve_bf16(cfg.bf16, self.device)
        last = self.out_dir / "last"
        if cfg.resume and not ckpt.is_checkpoint(last):
            raise ckpt.CheckpointError(f"resume=True but {str(last)!r} holds no checkpoint to continue from")
        tokenizer, self.base = None, None
        if cfg.init_from is not None:
            self.base = load_base(cfg)  # every mismatch with the base fails here, before any data or compute
            tokenizer = self.base.model.tokenizer
        if cfg.resume:
            ckpt.read_manifest(last)
            tokenizer = DiffusionLM.load_pretrained(last).tokenizer
        tokenizer, self.batches, self.val_blocks, self.val_fixed = prepare_data(cfg, self.runtime, tokenizer)
        self.step, self.forward_passes, self.rows = 0, 0, []
        if cfg.resume:
            self._load(last)
        else:
            torch.manual_seed(cfg.seed)
            base_sm = None if self.base is None else self.base.model.soft_mask.params()
            self.model = DiffusionLM(cfg.model_config(len(tokenizer), base_sm), tokenizer=tokenizer)
            if self.base is not None:
                self.base.start(self.model, cfg.sm)
            self.model.to(self.device)
            self.optimizer = self.runtime.wrap(self.model, make_optimizer(self.model, cfg))
            self.ema = self._new_ema()
        self.model.train_config = asdict(cfg)  # saved with the model (smkit.tasks.for_model reads it)

    # ------------------------------------------------------------------ state
    def base_record(self) -> dict | None:
        """The base a continued run started from (name or path + checksum of its weights), or None."""
        return None if self.base is None else self.base.record()

    def _new_ema(self):
        if not self.cfg.ema:
            return None
        return {n: p.detach().clone() for n, p in self.model.backbone.named_parameters()}

    def _update_ema(self):
        with torch.no_grad():
            for n, p in self.model.backbone.named_parameters():
                self.ema[n].lerp_(p.detach(), 1 - self.cfg.ema)

    def _total_updates_estimate(self) -> int:
        if self.cfg.steps is not None:
            return self.cfg.steps
        per_update = 1 + (self.cfg.p_sm if self.cfg.soft_mask else 0.0)
        return max(1, round(self.cfg.forward_budget / per_update))

    def _done(self) -> bool:
        if self.cfg.steps is not None:
            return self.step >= self.cfg.steps
        return self.forward_passes >= self.cfg.forward_budget

    def _save(self, path: Path):
        """Checkpoint to `path`: every process takes part (FSDP gathers), rank 0 writes, all leave together."""
        import pandas as pd
        opt_tensors, opt_rest = ckpt.flatten_optimizer(self.runtime.optimizer_state(self.optimizer))
        model = self.runtime.model_for_saving(self.model)
        if self.runtime.is_main:
            history = pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)

            def files(tmp: Path):
                ckpt.save_tensors(opt_tensors, tmp / "optimizer.safetensors")
                if self.ema is not None:
                    ckpt.save_tensors(self.ema, tmp / "ema.safetensors")
                history.to_csv(tmp / "metrics.csv", index=False)

            trainer = {"step": self.step, "forward_passes": self.forward_passes, "optimizer": opt_rest,
                       "world_size": self.runtime.world_size, "train_config": asdict(self.cfg),
                       "base": self.base_record()}
            model.save_pretrained(path, extra={"trainer": trainer}, extra_files=files)
        self.runtime.barrier()

    def _load(self, path: Path):
        import pandas as pd
        meta = ckpt.read_manifest(path)
        with warnings.catch_warnings():  # a checkpoint written before `sm`: its keys are read, not the user's to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            saved = upgrade_keys(meta["trainer"]["train_config"])
        if SoftMaskParams().overridden(saved.get("sm")) != SoftMaskParams().overridden(self.cfg.sm):
            raise ConfigError(f"resume=True: sm={self.cfg.sm!r} differs from the checkpoint's {saved.get('sm')!r}; "
                              f"resume with the same settings")
        same = ["corpus", "tokenizer", "vocab_size", "seq_len", "backbone", "hidden_size", "num_layers", "num_heads",
                "intermediate_size", "cond_dim", "soft_mask", "p_sm", "schedule", "batch_size", "seed", "init_from"]
        if self.cfg.streaming or saved.get("streaming", False):
            same += ["streaming", "val_docs", "shuffle_buffer"]
        if is_task_corpus(self.cfg.corpus):
            same += ["task_params", "task_condition"]
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        for name in same:
            if saved.get(name, defaults[name]) != getattr(self.cfg, name):
                raise ConfigError(f"resume=True: {name}={getattr(self.cfg, name)!r} differs from the checkpoint's "
                                  f"{saved.get(name, defaults[name])!r}; resume with the same settings")
        saved_world = meta["trainer"].get("world_size", 1)
        if self.cfg.streaming and saved_world != self.runtime.world_size:
            raise ConfigError(f"resume=True: a streamed run was checkpointed by {saved_world} process(es) and each "
                              f"read its own share of the stream; resume it with {saved_world}, not "
                              f"{self.runtime.world_size}")
        saved_base = meta["trainer"].get("base")
        if self.base is not None and saved_base and saved_base["sha256"] != self.base.sha256:
            raise ConfigError(f"resume=True: init_from={self.cfg.init_from!r} now holds other weights than the base "
                              f"this run started from (sha256 {saved_base['sha256'][:12]}...); resume needs the same base")
        self.model = DiffusionLM.load_pretrained(path).to(self.device).train()
        self.optimizer = self.runtime.wrap(self.model, make_optimizer(self.model, self.cfg))
        opt = ckpt.unflatten_optimizer(ckpt.load_tensors(path / "optimizer.safetensors"), meta["trainer"]["optimizer"])
        self.runtime.load_optimizer_state(self.optimizer, opt)
        self.ema = None
        if self.cfg.ema:
            self.ema = {k: v.to(self.device) for k, v in ckpt.load_tensors(path / "ema.safetensors").items()}
        self.step = meta["trainer"]["step"]
        self.forward_passes = meta["trainer"]["forward_passes"]
        self.batches.skip_updates(self.step, self.per_process)
        hist = read_metrics(path / "metrics.csv")  # a run begun by an earlier smkit has the paper's column names
        self.rows = [list(r) for r in hist[HISTORY_COLUMNS].itertuples(index=False)]

    # ------------------------------------------------------------------ loop
    def _noise(self, batch: torch.Tensor, gen: torch.Generator, rows: slice, fixed: torch.Tensor | None = None):
        """This process's rows of the global batch's noise. The generator draws for the whole global batch
        (its stream must not depend on the number of processes): the local rows sit in a zero tensor of the
        global shape, and only they are kept. `fixed` (a task's givens) are never masked."""
        full, full_fixed = batch, fixed
        if self.runtime.world_size > 1:
            full = batch.new_zeros(self.cfg.batch_size, batch.shape[1])
            full[rows] = batch
            if fixed is not None:
                full_fixed = fixed.new_zeros(self.cfg.batch_size, batch.shape[1])
                full_fixed[rows] = fixed
        x_t, masked, weight = self.model.noise(full, generator=gen, t_min=self.cfg.t_min, t_max=self.cfg.t_max,
                                               antithetic=self.cfg.antithetic, fixed=full_fixed)
        return x_t[rows], masked[rows], weight[rows]

    def train_step(self) -> tuple[float, bool]:
        cfg, runtime = self.cfg, self.runtime
        gen = step_generator(cfg.seed, self.step)
        rows = runtime.rows(cfg.batch_size)
        batch, fixed = self.batches.take(gen, cfg.batch_size, rows)
        batch, fixed = batch.to(self.device), None if fixed is None else fixed.to(self.device)
        use_sm = draw_soft_mask(gen, cfg.soft_mask, cfg.p_sm)
        noised = self._noise(batch, gen, rows, fixed)
        set_learning_rates(self.optimizer, cfg.lr, cfg.sm_lr,
                           lr_factor(self.step, self._total_updates_estimate(), cfg.warmup_steps, cfg.lr_schedule))
        loss = sm_update(self.model, self.optimizer, batch, noised, use_sm, fixed=fixed,
                         micro_batch_size=cfg.micro_batch_size, grad_clip=cfg.grad_clip, bf16=self.bf16,
                         runtime=runtime)
        if self.ema is not None:
            self._update_ema()
        self.step += 1
        self.forward_passes += 2 if use_sm else 1
        return runtime.mean(loss), use_sm

    def evaluate(self) -> tuple[float, float]:
        """Validation bounds (nats/token): binary and SM two-pass, same noise; with EMA weights if kept. Every
        process computes the same numbers (same blocks, same noise)."""
        size = self.cfg.micro_batch_size or self.cfg.batch_size
        with self._ema_weights():
            return self.runtime.call(lambda m: (
                m.validation_bound(self.val_blocks, soft_mask=False, batch_size=size, fixed=self.val_fixed),
                m.validation_bound(self.val_blocks, soft_mask=True, batch_size=size, fixed=self.val_fixed)), grad=False)

    def soft_mask_values(self) -> dict:
        return self.runtime.call(lambda m: m.soft_mask.values(), grad=False)

    def _ema_weights(self):
        trainer = self

        class _Swap:
            def __enter__(self):
                if trainer.ema is None:
                    return
                self.saved = {n: p.detach().clone() for n, p in trainer.model.backbone.named_parameters()}
                with torch.no_grad():
                    for n, p in trainer.model.backbone.named_parameters():
                        p.copy_(trainer.ema[n])

            def __exit__(self, *exc):
                if trainer.ema is None:
                    return
                with torch.no_grad():
                    for n, p in trainer.model.backbone.named_parameters():
                        p.copy_(self.saved[n])
        return _Swap()

    def run(self) -> TrainResult:
        cfg, main = self.cfg, self.runtime.is_main
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            ckpt.write_json(self.out_dir / "train_config.json", asdict(cfg))
        total = self._total_updates_estimate()
        bar = progress_bar(total=total, initial=min(self.step, total), desc="train",
                           disable=not (cfg.progress and main), dynamic_ncols=True)
        t0, tokens, window_start = time.perf_counter(), 0, time.perf_counter()
        elapsed0 = self.rows[-1][HISTORY_COLUMNS.index("elapsed_s")] if self.rows else 0.0
        while not self._done():
            loss, used = self.train_step()
            tokens += cfg.batch_size * cfg.seq_len
            bar.update(1)
            last_step = self._done()
            evaluate = last_step or (cfg.eval_every and self.step % cfg.eval_every == 0)
            if self.step % cfg.log_every == 0 or evaluate:
                now = time.perf_counter()
                vb, vsm = self.evaluate() if evaluate else (float("nan"), float("nan"))
                w = self.soft_mask_values()
                self.rows.append([self.step, self.forward_passes, loss, used,
                                  self.optimizer.param_groups[0]["lr"], w["scale"], w["steepness"], w["centre"],
                                  tokens / max(now - window_start, 1e-9), elapsed0 + now - t0, vb, vsm])
                tokens, window_start = 0, time.perf_counter()
                postfix = {"loss": f"{loss:.3f}"}
                if cfg.soft_mask:  # the gate's scale means nothing while training a binary model
                    postfix["scale"] = f"{w['scale']:.3f}"
                bar.set_postfix(postfix, refresh=False)
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and not last_step:
                self._save(self.out_dir / "last")
                self._write_history()
        bar.close()
        self._save(self.out_dir / "last")
        with self._ema_weights():
            model = self.runtime.model_for_saving(self.model)
            if main:
                model.save_pretrained(self.out_dir / "model", extra={"train_config": asdict(cfg),
                                                                     "base": self.base_record()})
        history = self._write_history()
        self.runtime.barrier()
        return TrainResult(self.model, history, self.out_dir, self.runtime.rank)

    def _write_history(self):
        """The history as a DataFrame on every process; rank 0 writes metrics.csv (atomically)."""
        import pandas as pd
        history = pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)
        if self.runtime.is_main:
            tmp = self.out_dir / ".metrics.csv.tmp"
            history.to_csv(tmp, index=False)
            os.replace(tmp, self.out_dir / "metrics.csv")
        return history


def train(config: TrainConfig | dict | None = None, **overrides) -> TrainResult:
    """Train a denoiser. `config` is a TrainConfig or dict; keyword overrides win (the given TrainConfig is left
    as it was). Returns model, history, out_dir."""
    if isinstance(config, dict):
        config = upgrade_keys(config)
    return Trainer(with_overrides(config, TrainConfig, upgrade_keys(overrides), what="training option")).run()
