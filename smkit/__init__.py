"""smkit: soft-masked diffusion language models, a notebook-centric research toolkit."""
from .errors import SmkitError
from .softmask import SoftMask, entropy_from_logits, soft_mask_embeddings, soft_mask_lambda
from .model import DiffusionLM, ModelConfig, load_pretrained
from .saving import DEFAULT_PRETRAINED, PRETRAINED
from .hf import from_hf
from .adapters import add_adapter, load_adapter, save_adapter
from .finetune import FinetuneConfig, finetune
from .train import TrainConfig, train
from .strategies import STRATEGIES
from .trace import StepRecord, Trace
from .sampling import Generation, Plan, SamplingConfig, Steps, generate, iter_steps
from . import hooks
from .hooks import add_hooks

__version__ = "0.1.0"

__all__ = ["PRETRAINED", "DEFAULT_PRETRAINED", "SoftMask", "soft_mask_lambda", "soft_mask_embeddings", "entropy_from_logits", "DiffusionLM",
           "ModelConfig", "load_pretrained", "TrainConfig", "train", "STRATEGIES", "StepRecord", "Trace", "Generation",
           "SamplingConfig", "Plan", "generate", "iter_steps", "Steps", "hooks", "add_hooks", "from_hf", "add_adapter", "save_adapter", "load_adapter",
           "FinetuneConfig", "finetune", "SmkitError"]
