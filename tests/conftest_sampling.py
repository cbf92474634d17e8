"""Shared fixtures of the sampler tests: a tiny character-level denoiser, briefly trained so its
predictions are not uniform, and a forward-pass counter on its backbone. Import the fixtures by name."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy
import functools
import math

import pytest
import torch

import smkit
from smkit.models.backbones import BackboneConfig
from smkit.io.data import Document, train_tokenizer

TEXT = ("to be, or not to be, that is the question: whether tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles. ") * 8
SEQ_LEN = 32


def build_model(seq_len: int = SEQ_LEN, **config) -> smkit.DiffusionLM:
    tok = train_tokenizer([Document("x", TEXT)], "char")
    torch.manual_seed(0)
    cfg = smkit.ModelConfig(vocab_size=len(tok), seq_len=seq_len, **config,
                            backbone=BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return smkit.DiffusionLM(cfg, tokenizer=tok)


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@functools.lru_cache(maxsize=None)  # one training run per session, shared by every test module
def train_tiny(updates: int = 150) -> smkit.DiffusionLM:
    model = build_model()
    ids = torch.tensor(model.tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if not n.startswith("soft_mask.")], lr=3e-3)
    model.train()
    for _ in range(updates):
        starts = torch.randint(0, len(ids) - SEQ_LEN, (16,), generator=gen)
        batch = torch.stack([ids[s:s + SEQ_LEN] for s in starts])
        loss = model.loss(batch, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        model.soft_mask.raw_scale.fill_(0.0)  # w_s = 0.5
        # w_b = -3: a char model's entropy stays near 2.5 nats, so the default -0.75 would leave lambda ~ 0
        model.soft_mask.raw_centre.fill_(_inv_softplus(3.0 - 1e-6))
    return model


@pytest.fixture(scope="session")
def trained_lm() -> smkit.DiffusionLM:
    """Trained briefly on TEXT (about a second); w_s = 0.5, w_b = -3 so lambda matters. Do not modify."""
    return train_tiny()


@pytest.fixture
def lm(trained_lm) -> smkit.DiffusionLM:
    """A private copy of the trained model (tests may change it)."""
    return copy.deepcopy(trained_lm)


class ForwardCounter:
    """Counts forward passes of a backbone with a torch forward hook."""

    def __init__(self, model):
        self.count = 0
        self.handle = model.backbone.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.count += 1

    def close(self):
        self.handle.remove()


@pytest.fixture
def counter(trained_lm):
    c = ForwardCounter(trained_lm)
    yield c
    c.close()
