"""smkit: soft-masked diffusion language models, a notebook-centric research toolkit."""
from .core.errors import (AdapterError, CheckpointError, ConfigError, DataError, DenoiserError, JudgeError,
                          ParameterError, SmkitError, TaskError, TraceError, TraceStepError,
                          UnsafePickleError)
from .core.notices import SamplingWarning, SmkitWarning, TrainingWarning
from .core.soft_mask_params import SoftMaskParams
from .core.softmask import SoftMask, entropy_from_logits, soft_mask_embeddings, soft_mask_lambda
from .models.denoiser import DiffusionLM
from .models.config import ModelConfig
from .io.formats import load_pretrained, save_pretrained
from .io.model_files import DEFAULT_PRETRAINED, PRETRAINED
from .io.hf import from_hf
from .io.adapters import add_adapter, load_adapter, save_adapter
from .training.finetune import FinetuneConfig, finetune
from .training.train import TrainConfig, train
from .core.strategies import STRATEGIES
from .core.trace import StepRecord, Trace
from .sampling.loop import Generation, Plan, SamplingConfig, Steps, generate, iter_steps
from .sampling.trace_sink import TraceFile
from .sampling.hf_trace import trace_hf_generate
from .core import hooks
from .core.hooks import add_hooks

__version__ = "0.1.0"

__all__ = ["SoftMaskParams", "SmkitWarning", "SamplingWarning", "TrainingWarning", "PRETRAINED", "DEFAULT_PRETRAINED", "SoftMask", "soft_mask_lambda", "soft_mask_embeddings", "entropy_from_logits", "DiffusionLM",
           "ModelConfig", "load_pretrained", "TrainConfig", "train", "STRATEGIES", "StepRecord", "Trace", "TraceFile", "trace_hf_generate", "Generation",
           "SamplingConfig", "Plan", "generate", "iter_steps", "Steps", "hooks", "add_hooks", "from_hf", "add_adapter", "save_adapter", "load_adapter",
           "FinetuneConfig", "finetune", "save_pretrained",
           "SmkitError", "ConfigError", "DataError", "CheckpointError", "DenoiserError", "AdapterError", "TaskError",
           "TraceError", "TraceStepError", "ParameterError", "JudgeError", "UnsafePickleError"]
