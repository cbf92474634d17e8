"""The tiny untrained denoiser the widget tests decode with (test_widgets, sudoku_trace, the browser tests)."""
from __future__ import annotations

import torch

import smkit
from smkit.models.backbones import BackboneConfig
from smkit.io.data import Document, train_tokenizer


def tiny_char_model(text: str, seq_len: int, sm_centre: float, sm_scale: float = 0.9) -> smkit.DiffusionLM:
    """An untrained char-level denoiser over the characters of `text` (seed 0, eval mode): one layer, 32 wide.
    lambda(H) is sm_scale / 2 at H = -sm_centre; an untrained model's entropy is near ln(vocabulary), so
    sm_centre near -ln(vocabulary) makes soft positions show in a decode."""
    torch.manual_seed(0)
    tok = train_tokenizer([Document("x", text)], "char")
    cfg = smkit.ModelConfig(vocab_size=len(tok), seq_len=seq_len, sm=smkit.SoftMaskParams(scale=sm_scale, centre=sm_centre),
                            backbone=BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return smkit.DiffusionLM(cfg, tokenizer=tok).eval()
