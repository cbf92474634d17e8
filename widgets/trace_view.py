"""One sample of a Trace as numpy arrays, and what the views show of it: states, colours, labels, mixtures.

Every widget and the HTML export read a `SampleView`; nothing else touches the Trace's tensors. Arrays
have a leading step axis S and a position axis L (k_trace = top-k kept by the trace):

    tokens [S, L] (after the step)   masked_before / revealed / remasked [S, L] bool   fixed [S, L] bool
    lam [S, L] (lambda that builds the NEXT input, 0 where not masked)   entropy [S, L] (nats)
    topk_ids / topk_probs [S, L, k_trace]   t [S]   nfe [S]

A position's state after step s is, first match wins: fixed (prompt / infill), revealed (at step s),
remasked (at step s), soft (still masked, lambda >= 1e-3: the next input mixes in candidates), masked
(still masked, lambda below that), decoded (revealed at an earlier step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from smkit.core.errors import ConfigError, TraceError

STATES = ("fixed", "decoded", "revealed", "remasked", "masked", "soft")
FIXED, DECODED, REVEALED, REMASKED, MASKED, SOFT = range(len(STATES))

# colours by state; a soft position blends MASK_COLOUR -> SOFT_COLOUR with lambda as the weight
STATE_COLOURS = {"fixed": "#b9d3f0", "decoded": "#f1f1f1", "revealed": "#58c98b", "remasked": "#f0a050",
                 "masked": "#a9a9a9", "soft": "#7a3ff0"}
MASK_COLOUR = STATE_COLOURS["masked"]
SOFT_COLOUR = STATE_COLOURS["soft"]
SOFT_MIN_LAMBDA = 1e-3  # below this a masked position counts as plain masked: its input is E[m] to 3 decimals
MASK_LABEL = "[MASK]"
MASK_GLYPH = "\u00b7"  # what a plain masked position shows in the token strip


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def blend(a: str, b: str, w) -> list[str]:
    """Hex colours (1 - w) * a + w * b for each weight in `w` (clipped to [0, 1])."""
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, 1.0)[..., None]
    rgb = np.rint((1 - w) * _rgb(a) + w * _rgb(b)).astype(int)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb.reshape(-1, 3)]


def display_token(text: str) -> str:
    """A token's text made visible in one line: spaces, newlines and tabs as symbols."""
    if text == "":
        return "\u2205"
    return text.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5").replace("\r", "")


def vocab_texts(tokenizer, vocab_size: int, mask_id: int | None) -> list[str]:
    """Raw text of every id: the tokenizer's decoding of the single id ("\n" stays a newline), `#id` without
    a tokenizer, "[MASK]" for the mask id."""
    if tokenizer is None:
        texts = [f"#{i}" for i in range(vocab_size)]
    else:
        texts = [tokenizer.decode([i]) for i in range(vocab_size)]
    if mask_id is not None and 0 <= mask_id < vocab_size:
        texts[mask_id] = MASK_LABEL
    return texts


def vocab_labels(tokenizer, vocab_size: int, mask_id: int | None) -> list[str]:
    """Display text of every id: its raw text made visible in one line (see `display_token`)."""
    labels = [display_token(t) for t in vocab_texts(tokenizer, vocab_size, mask_id)]
    if mask_id is not None and 0 <= mask_id < vocab_size:
        labels[mask_id] = MASK_LABEL
    return labels


def _np(x, dtype=None):
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    return x.astype(dtype) if dtype is not None else x


@dataclass
class SampleView:
    """One sample of a trace: numpy arrays [S, L, ...] and the vocabulary's labels (see module docstring)."""
    tokens: np.ndarray
    masked_before: np.ndarray
    revealed: np.ndarray
    remasked: np.ndarray
    fixed: np.ndarray
    lam: np.ndarray
    entropy: np.ndarray
    topk_ids: np.ndarray
    topk_probs: np.ndarray
    t: np.ndarray
    nfe: np.ndarray
    mask_id: int
    labels: list[str]
    k: int  # candidates in the SM mixture (the first k of the trace's top-k)
    soft_mask: dict | None = None  # {'scale', 'centre', 'steepness', 'k'} when known
    sample: int = 0
    vocab_text: list[str] | None = None  # raw text of every id (labels are made visible; these are not)
    _codes: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ shape
    @property
    def num_steps(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def k_trace(self) -> int:
        return int(self.topk_ids.shape[-1])

    def clamp_step(self, step: int) -> int:
        return int(min(max(int(step), 0), self.num_steps - 1))

    # ------------------------------------------------------------ per step
    def masked_after(self, step: int) -> np.ndarray:
        return self.tokens[step] == self.mask_id

    def state_codes(self, step: int) -> np.ndarray:
        """int [L]: an index into STATES for every position after `step`."""
        if step not in self._codes:
            masked = self.masked_after(step)
            codes = np.full(self.length, DECODED, dtype=np.int8)
            codes[masked] = MASKED
            codes[masked & (self.lam[step] >= SOFT_MIN_LAMBDA)] = SOFT
            codes[self.remasked[step]] = REMASKED
            codes[self.revealed[step]] = REVEALED
            codes[self.fixed[step]] = FIXED
            if len(self._codes) > 4096:
                self._codes.clear()
            self._codes[step] = codes
        return self._codes[step]

    def states(self, step: int) -> list[str]:
        return [STATES[c] for c in self.state_codes(step)]

    def colours(self, step: int) -> list[str]:
        """Background colour of every position after `step` (soft: lambda as intensity)."""
        codes = self.state_codes(step)
        out = np.array([STATE_COLOURS[s] for s in STATES], dtype=object)[codes]
        soft = codes == SOFT
        if soft.any():
            out[soft] = blend(MASK_COLOUR, SOFT_COLOUR, self.lam[step][soft])
        return out.tolist()

    def token_labels(self, step: int) -> list[str]:
        """Text of every position after `step`: the token; a soft position shows its top candidate; a plain
        masked one shows a dot."""
        codes = self.state_codes(step)
        lab = np.asarray(self.labels, dtype=object)
        ids = self.tokens[step].copy()
        soft = codes == SOFT
        ids[soft] = self.topk_ids[step][soft, 0]
        out = lab[ids]
        out[(codes == MASKED) | (codes == REMASKED)] = MASK_GLYPH
        return out.tolist()

    def tips(self, step: int) -> list[str]:
        """Hover text of every position: state, lambda, entropy and the top-k candidates with probabilities."""
        codes = self.state_codes(step)
        lab = self.labels
        ids, probs = self.topk_ids[step], self.topk_probs[step]
        lam, ent, tok = self.lam[step], self.entropy[step], self.tokens[step]
        out = []
        for p in range(self.length):
            cands = "  ".join(f"{lab[int(i)]} {float(q):.2f}" for i, q in zip(ids[p], probs[p]) if q > 0) or "-"
            out.append(f"pos {p} | {STATES[codes[p]]} {lab[int(tok[p])]} | \u03bb={lam[p]:.3f} "
                       f"H={ent[p]:.2f} | top-{self.k_trace}: {cands}")
        return out

    def texts(self, step: int) -> list[str]:
        """Raw text of every position after `step` ("[MASK]" where still masked); `texts(-1)`: the end."""
        vocab = self.vocab_text if self.vocab_text is not None else self.labels
        return [vocab[int(t)] for t in self.tokens[step]]

    def counts(self, step: int) -> dict:
        codes = self.state_codes(step)
        return {s: int((codes == i).sum()) for i, s in enumerate(STATES)}

    # ------------------------------------------------------------ per (step, position)
    def mixture(self, step: int, pos: int) -> tuple[list[str], list[float]]:
        """The input fed back at `pos` after `step`: names and weights of the embedding rows mixed.

        Masked: (1 - lambda) on [MASK] and lambda * pi_i on each of the k candidates, pi the top-k
        probabilities renormalised. Otherwise the exact token with weight 1.
        """
        tok = int(self.tokens[step, pos])
        if tok != self.mask_id:
            return [self.labels[tok]], [1.0]
        import torch
        from smkit.core.softmask import mixture_weights
        probs = torch.as_tensor(self.topk_probs[step, pos, : self.k], dtype=torch.float64)
        weights = mixture_weights(torch.tensor(float(self.lam[step, pos]), dtype=torch.float64), probs.log())
        names = [MASK_LABEL] + [f"{r + 1}: {self.labels[int(i)]}" for r, i in enumerate(self.topk_ids[step, pos, : self.k])]
        return names, weights.tolist()

    def mixture_table(self) -> np.ndarray:
        """[S, L, k+1] the weights `mixture` gives at every (step, position): NaN where the position is not
        masked after the step (there the exact token goes in, weight 1). One call of smkit's formula."""
        import torch
        from smkit.core.softmask import mixture_weights
        probs = torch.as_tensor(self.topk_probs[..., : self.k], dtype=torch.float64)
        weights = mixture_weights(torch.as_tensor(self.lam, dtype=torch.float64), probs.log()).numpy()
        return np.where((self.tokens == self.mask_id)[..., None], weights, np.nan)

    def reveal_step(self, pos: int) -> int | None:
        """The last step at which `pos` was revealed, or None."""
        hits = np.flatnonzero(self.revealed[:, pos])
        return int(hits[-1]) if hits.size else None

    # ------------------------------------------------------------ heatmaps
    def lam_map(self) -> np.ndarray:
        """[S, L] lambda where the position is masked after the step, NaN elsewhere (blank in a heatmap)."""
        return np.where(self.tokens == self.mask_id, self.lam, np.nan)

    def entropy_map(self) -> np.ndarray:
        """[S, L] entropy where the position was masked before the step (the ones predicted), NaN elsewhere."""
        return np.where(self.masked_before & ~self.fixed, self.entropy, np.nan)

    def lambda_points(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, entropy, lambda) of the positions still masked after `step`."""
        pos = np.flatnonzero(self.masked_after(step))
        return pos, self.entropy[step, pos], self.lam[step, pos]

    # ------------------------------------------------------------ growth (LiveDecoder)
    def append(self, other: "SampleView") -> None:
        """Add the steps of `other` (same sample, same length) after these ones."""
        for name in ("tokens", "masked_before", "revealed", "remasked", "fixed", "lam", "entropy", "topk_ids",
                     "topk_probs", "t", "nfe"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)], axis=0))
        self._codes.clear()


_FIELDS = ("tokens", "masked_before", "revealed", "remasked", "fixed", "lam", "entropy", "topk_ids", "topk_probs")


def _meta(trace) -> dict:
    meta = getattr(trace, "meta", None)
    return meta if isinstance(meta, dict) else {}


def trace_soft_mask(trace) -> dict | None:
    """The SM values a trace was decoded with (smkit's sampler records them in `trace.meta`)."""
    meta = _meta(trace)
    if isinstance(meta.get("sm"), dict):
        return {"k": meta["sm"].get("k"), **{n: float(meta["sm"][n]) for n in ("scale", "centre", "steepness")}}
    if all(f"sm_{n}" in meta for n in ("scale", "centre", "steepness")):  # traces saved before smkit 0.2
        return {"k": meta.get("k"), "scale": float(meta["sm_scale"]), "centre": float(meta["sm_centre"]),
                "steepness": float(meta["sm_steepness"])}
    return None


def num_samples(trace) -> int:
    return int(_np(trace.tokens).shape[1])


def final_texts(trace, vocab_text: list[str]) -> list[str]:
    """Every sample's text after the trace's last step: the raw text of its tokens (`SampleView.vocab_text`)."""
    tokens = _np(trace.tokens)
    return ["".join(vocab_text[int(t)] for t in row) for row in tokens[-1]]


def sample_view(trace, sample: int = 0, model=None, tokenizer=None, mask_id: int | None = None,
                soft_mask: dict | None = None, k: int | None = None) -> SampleView:
    """A SampleView of sample `sample` of `trace`, a smkit `Trace` (`generate(..., trace=True).trace`; one
    `StepRecord` becomes a one-step Trace with `Trace.from_records([record])`).

    What the arrays do not hold comes from the arguments first, then: the mask id from the trace's meta,
    else `model`; the SM values and k the trace was decoded with (its meta), else the
    model's; token text from `model.tokenizer`, else the trace's tokenizer.
    """
    missing = [name for name in _FIELDS if getattr(trace, name, None) is None]
    if missing:
        raise TraceError(f"the trace has no {missing}: decode with trace=True (and k_trace >= 1) to show it")
    if _np(trace.tokens).ndim != 3:
        raise TraceError(f"trace: give a smkit Trace (tokens [steps, samples, length]), not a "
                         f"{type(trace).__name__} with tokens of shape {tuple(_np(trace.tokens).shape)}; one step "
                         f"record becomes a Trace with smkit.core.trace.Trace.from_records([record])")
    arrays = {}
    for name in _FIELDS:
        a = _np(getattr(trace, name))
        if not 0 <= sample < a.shape[1]:
            raise TraceError(f"sample={sample!r}: the trace holds samples 0..{a.shape[1] - 1}")
        arrays[name] = a[:, sample]
    if arrays["topk_ids"].shape[-1] == 0:
        raise TraceError("the trace keeps no top-k candidates (k_trace=0): decode with k_trace >= 1 to show it")
    steps = arrays["tokens"].shape[0]
    t = _np(getattr(trace, "t"))
    t = t.reshape(steps, -1)[:, sample if t.size > steps else 0] if t.size else np.zeros(steps)
    nfe = np.asarray(_np(getattr(trace, "nfe", np.arange(1, steps + 1))), dtype=np.int64).reshape(-1)
    nfe = nfe if nfe.size == steps else np.arange(1, steps + 1)
    meta = _meta(trace)
    if mask_id is None:
        mask_id = meta.get("mask_id")
    if mask_id is None and model is not None:
        mask_id = model.mask_id
    if soft_mask is None:
        soft_mask = trace_soft_mask(trace) or (model.soft_mask.values() if model is not None else None)
    if tokenizer is None:
        tokenizer = model.tokenizer if model is not None and model.tokenizer is not None else \
            getattr(trace, "tokenizer", None)
    if mask_id is None:
        raise ConfigError("mask_id=None: pass model= or mask_id= (the trace does not record the mask id)")
    k_trace = arrays["topk_ids"].shape[-1]
    if k is None:
        k = meta.get("k") or (soft_mask or {}).get("k") or k_trace
    k = int(max(1, min(k, k_trace)))  # the trace keeps k_trace candidates: the mixture shows at most those
    vocab = int(getattr(tokenizer, "__len__", lambda: 0)() if tokenizer is not None else 0)
    vocab = max(vocab, int(mask_id) + 1, int(arrays["tokens"].max()) + 1, int(arrays["topk_ids"].max()) + 1)
    fixed = arrays["fixed"]
    if fixed.shape != arrays["tokens"].shape:  # recorded once for the whole decode
        fixed = np.broadcast_to(fixed.reshape(-1, arrays["tokens"].shape[1])[-1], arrays["tokens"].shape)
    return SampleView(tokens=arrays["tokens"].astype(np.int64), masked_before=arrays["masked_before"].astype(bool),
                      revealed=arrays["revealed"].astype(bool), remasked=arrays["remasked"].astype(bool),
                      fixed=np.array(fixed, dtype=bool), lam=arrays["lam"].astype(np.float64),
                      entropy=arrays["entropy"].astype(np.float64), topk_ids=arrays["topk_ids"].astype(np.int64),
                      topk_probs=arrays["topk_probs"].astype(np.float64), t=t.astype(np.float64), nfe=nfe,
                      mask_id=int(mask_id), labels=vocab_labels(tokenizer, vocab, int(mask_id)), k=k,
                      soft_mask=soft_mask, sample=sample, vocab_text=vocab_texts(tokenizer, vocab, int(mask_id)))
