"""Metrics: the validation bound as perplexity, generative perplexity under a judge, MAUVE, unigram entropy and
a repetition rate (low entropy or high repetition games generative perplexity: always report them beside it)."""
from __future__ import annotations

import json
import math
import os
from collections import Counter

import torch

from .judge import Judge, load_judge
from ..core.errors import ConfigError


def validation_perplexity(model, blocks, soft_mask: bool = False, **kwargs) -> float:
    """exp of the model's MDLM bound on `blocks` (binary inputs, or two-pass SM inputs): an upper bound on PPL."""
    return math.exp(model.validation_bound(blocks, soft_mask=soft_mask, **kwargs))


def _sequences(sequences) -> list[list]:
    if isinstance(sequences, str):
        raise ConfigError("sequences: pass a list of token-id lists (or of strings), not one string")
    seqs = [list(s.tolist() if hasattr(s, "tolist") else s) for s in sequences]
    if not seqs:
        raise ConfigError("sequences: must not be empty")
    return seqs


def unigram_entropy(sequences) -> float:
    """Mean over sequences of the entropy (nats) of each sequence's own token frequencies. A sequence of one
    repeated token scores 0; n distinct tokens each once score log n."""
    total = 0.0
    seqs = _sequences(sequences)
    for seq in seqs:
        counts = Counter(seq)
        n = sum(counts.values())
        total += -sum(c / n * math.log(c / n) for c in counts.values()) if n else 0.0
    return total / len(seqs)


def repetition_rate(sequences, n: int = 4) -> float:
    """Mean over sequences of the share of n-grams that repeat an earlier n-gram of the same sequence
    (1 - distinct / total); 0 for no repetition. Sequences shorter than n count as 0."""
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n={n!r}: the n-gram order must be an integer >= 1")
    seqs = _sequences(sequences)
    total = 0.0
    for seq in seqs:
        grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
        total += 1 - len(set(grams)) / len(grams) if grams else 0.0
    return total / len(seqs)


def mauve_score(p_texts, q_texts, judge: Judge, max_length: int = 1024, batch_size: int = 16, seed: int = 25,
                num_buckets="auto", scaling: float = 5.0) -> float:
    """MAUVE (mauve-text) between two text sets, featurised by `judge` (last-token, last-layer hidden states):
    ~1 for the same distribution, towards 0 as they diverge. Few samples make it noisy: use hundreds."""
    p = judge.features(p_texts, batch_size=batch_size, max_length=max_length)
    q = judge.features(q_texts, batch_size=batch_size, max_length=max_length)
    return mauve_from_features(p, q, seed=seed, num_buckets=num_buckets, scaling=scaling)


def mauve_from_features(p_features, q_features, seed: int = 25, num_buckets="auto", scaling: float = 5.0) -> float:
    """MAUVE of two feature arrays [N, D] (e.g. `Judge.features`), so a reference set is featurised once."""
    import mauve
    out = mauve.compute_mauve(p_features=p_features, q_features=q_features, num_buckets=num_buckets,
                              mauve_scaling_factor=scaling, seed=seed, device_id=-1, verbose=False)
    return float(out.mauve)


def reference_features(judge: Judge, texts, max_length: int = 1024, batch_size: int = 16):
    """`judge.features(texts)`, cached on disk (under the smkit cache, keyed by judge and texts) so a sweep of many
    runs featurises its MAUVE references once."""
    import hashlib

    import numpy as np

    from .judge import cache_root
    key = hashlib.sha256(json.dumps([judge.name, max_length, list(texts)]).encode()).hexdigest()[:24]
    path = cache_root() / "features" / f"{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    feats = judge.features(texts, batch_size=batch_size, max_length=max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, feats, allow_pickle=False)
    os.replace(tmp, path)
    return feats


def text_metrics(texts, judge: Judge | None = None, reference_texts=None, reference_features=None,
                 max_length: int = 1024, batch_size: int = 16, seed: int = 25) -> dict:
    """Generative perplexity, unigram entropy and 4-gram repetition (on the judge's tokens, so models with
    different tokenizers compare), plus MAUVE against `reference_texts` (or their precomputed
    `reference_features`) when given. The judge scores and featurises in the same forward pass."""
    judge = judge if judge is not None else load_judge()
    want_mauve = reference_texts is not None or reference_features is not None
    if want_mauve:
        score, features = judge.perplexity_and_features(texts, batch_size=batch_size, max_length=max_length)
    else:
        score = judge.perplexity(texts, batch_size=batch_size, max_length=max_length)
    ids = judge.encode(texts)
    out = {"gen_ppl": score.perplexity, "judge_tokens": score.tokens, "entropy": unigram_entropy(ids),
           "repetition": repetition_rate(ids)}
    if want_mauve:
        if reference_features is None:
            reference_features = judge.features(reference_texts, batch_size=batch_size, max_length=max_length)
        out["mauve"] = mauve_from_features(features, reference_features, seed=seed)
    return out


def heldout_nats_per_char(model, corpus: str, soft_mask: bool = False, val_fraction: float = 0.05,
                          max_blocks: int | None = None, batch_size: int = 32, seed: int = 0, repeats: int = 1) -> float:
    """The MDLM bound on a corpus's held-out split (the documents training never saw, `split_documents`) in nats
    per character: nats/token x tokens/character, so models with different tokenizers compare. `soft_mask`:
    two-pass SM inputs, as the SM model is meant to be read."""
    from ..io.data import SEPARATOR, load_corpus, pack_blocks, split_documents
    _, val = split_documents(load_corpus(corpus), val_fraction)
    blocks = pack_blocks(val, model.tokenizer, model.config.seq_len)
    if max_blocks is not None:
        blocks = blocks[torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))[:max_blocks]]
    nats_per_token = model.validation_bound(blocks, soft_mask=soft_mask, batch_size=batch_size, seed=seed,
                                            repeats=repeats)
    texts = [d.text + SEPARATOR for d in val]
    tokens = sum(len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return nats_per_token * tokens / sum(len(t) for t in texts)


def soft_mask_effect(model, num_samples: int = 16, length: int | None = None, steps: int | None = None,
                     strategy: str = "confidence", seed: int = 0, prompt=None, **decode_options) -> dict:
    """How much SM changes decoding: the same seeds decoded with SM off and on.

    Returns `mean_lambda` (over positions still masked after the first pass: the lambda the second pass is fed
    with), `changed` (samples whose text differs), `num_samples`, and both sets of texts. Defaults: the model's
    sequence length and L/4 steps."""
    from ..sampling.loop import generate
    length = model.config.seq_len if length is None else length
    steps = max(1, length // 4) if steps is None else steps
    common = dict(prompt=prompt, num_samples=num_samples, length=length, steps=steps, strategy=strategy, seed=seed,
                  **decode_options)
    on = generate(model, soft_mask=True, trace=True, **common)
    off = generate(model, soft_mask=False, trace=False, **common)
    first = on.trace[0]
    still = first.masked
    mean_lambda = float(first.lam[still].mean()) if still.any() else 0.0
    changed = sum(a != b for a, b in zip(on.tokens.tolist(), off.tokens.tolist()))
    return {"mean_lambda": mean_lambda, "changed": changed, "num_samples": num_samples, "steps": steps,
            "length": length, "texts_sm": on.texts, "texts_binary": off.texts}
