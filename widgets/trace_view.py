"""One sample of a Trace, read lazily, and what the views show of it: states, colours, labels, mixtures.

Every widget and the HTML export read a `SampleView`; nothing else touches the Trace. The per-step maps of
the sample (leading step axis S, position axis L) are read once, on first use (`Trace.sample_maps`: each
step's changes and this sample's statistics, a few MB at L = S = 1024); the top-k candidates of a step are
read when that step is shown (`topk_at`, a few steps kept):

    tokens [S, L] (after the step)   masked_before / revealed / remasked [S, L] bool   fixed [S, L] bool
    lam [S, L] (lambda that builds the NEXT input, 0 where not masked)   entropy [S, L] (nats)
    top1 [S, L] (the top-1 probability)   t [S]   nfe [S]   topk_at(s) -> ids, probs [L, k_trace]

A position's state after step s is, first match wins: fixed (prompt / infill), revealed (at step s),
remasked (at step s), soft (still masked, lambda >= 1e-3: the next input mixes in candidates), masked
(still masked, lambda below that), decoded (revealed at an earlier step).

Lambda is shown on the range of the model's gate: lambda = scale * sigmoid(...) never exceeds the scale (0.07-0.21
on the shipped models), so colours run from 0 to the scale (`SampleView.lam_top`), not to 1. A soft position's colour
starts at a light violet, never the grey of a plain masked one, so "the gate is shut" and "a little open" differ.
"""
from __future__ import annotations

import numpy as np
from smkit.core.errors import ConfigError, TraceError

STATES = ("fixed", "decoded", "revealed", "remasked", "masked", "soft")
FIXED, DECODED, REVEALED, REMASKED, MASKED, SOFT = range(len(STATES))

# colours by state; a soft position blends MASK_COLOUR -> SOFT_COLOUR with lambda as the weight
STATE_COLOURS = {"fixed": "#b9d3f0", "decoded": "#f1f1f1", "revealed": "#58c98b", "remasked": "#f0a050",
                 "masked": "#a9a9a9", "soft": "#7a3ff0"}
MASK_COLOUR = STATE_COLOURS["masked"]
SOFT_COLOUR = STATE_COLOURS["soft"]
SOFT_LIGHT = "#d6c8fb"  # a soft position's colour at the smallest lambda; SOFT_COLOUR at lambda = lam_top
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


class SampleView:
    """One sample of a trace (see the module docstring): maps [S, L] read on first use, top-k per step."""

    def __init__(self, trace, sample: int, mask_id: int, labels: list[str], k: int, soft_mask: dict | None = None,
                 vocab_text: list[str] | None = None):
        self.trace, self.sample = trace, int(sample)
        self.mask_id, self.labels, self.k = int(mask_id), labels, int(k)
        self.soft_mask = soft_mask      # {'scale', 'centre', 'steepness', 'k'} when known
        self.vocab_text = vocab_text    # raw text of every id (labels are made visible; these are not)
        self.has_lambda = "lam" in trace.fields   # a Hugging Face decode feeds back no lambda
        self.num_steps = len(trace)
        self.length = int(trace.length)
        self.k_trace = int(trace.k_trace)
        self._maps = None
        self._topk: dict[int, tuple] = {}
        self._codes: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------ the sample's maps
    @property
    def maps(self) -> dict:
        if self._maps is None:
            self._maps = self.trace.sample_maps(self.sample)
            if not self.has_lambda:
                self._maps["lam"] = np.zeros_like(self._maps["entropy"])
        return self._maps

    tokens = property(lambda self: self.maps["tokens"])
    masked_before = property(lambda self: self.maps["masked_before"])
    revealed = property(lambda self: self.maps["revealed"])
    remasked = property(lambda self: self.maps["remasked"])
    fixed = property(lambda self: self.maps["fixed"])
    lam = property(lambda self: self.maps["lam"])
    entropy = property(lambda self: self.maps["entropy"])
    top1 = property(lambda self: self.maps["top1"])
    t = property(lambda self: self.maps["t"])
    nfe = property(lambda self: self.maps["nfe"])

    def refresh(self) -> None:
        """Take in the steps the trace gained since this view was made (a live decode), reading only those."""
        n = len(self.trace)
        if n == self.num_steps:
            return
        if self._maps is not None:
            new = [self.trace.at(s, samples=[self.sample]) for s in range(self.num_steps, n)]
            add = {name: np.stack([d[name][0] for d in new]) for name in
                   ("tokens", "masked_before", "revealed", "remasked", "fixed", "lam", "entropy", "t") if name in new[0]}
            add["top1"] = np.stack([d["topk_probs"][0][:, 0] for d in new])
            add["nfe"] = np.asarray([d["nfe"] for d in new])
            for name, v in add.items():
                self._maps[name] = np.concatenate([self._maps[name], v])
        self.num_steps = n
        self._codes.clear()

    # ------------------------------------------------------------ shape
    def clamp_step(self, step: int) -> int:
        return int(min(max(int(step), 0), self.num_steps - 1))

    @property
    def lam_top(self) -> float:
        """The top of lambda's colour scale: the gate's scale, the largest lambda it can give, when the SM values
        are known and scale >= SOFT_MIN_LAMBDA; else 1, the largest lambda there is."""
        scale = (self.soft_mask or {}).get("scale")
        return float(scale) if scale is not None and scale >= SOFT_MIN_LAMBDA else 1.0

    def first_soft_step(self) -> int | None:
        """The first step after which some position is soft (its next input mixes in candidates), or None.
        Reads one step at a time."""
        for step in range(self.num_steps):
            if (self.state_codes(step) == SOFT).any():
                return step
        return None

    # ------------------------------------------------------------ per step
    def topk_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids [L, k_trace] int64, probabilities [L, k_trace] float32) of `step`: one step read."""
        step = int(step) % self.num_steps
        got = self._topk.get(step)
        if got is None:
            d = self.trace.at(step, samples=[self.sample])
            got = (d["topk_ids"][0], d["topk_probs"][0])
            if len(self._topk) >= 64:
                self._topk.pop(next(iter(self._topk)))
            self._topk[step] = got
        return got

    @property
    def topk_ids(self) -> np.ndarray:
        """[S, L, k_trace] every step's candidates (reads every step: the HTML export)."""
        return np.stack([self.topk_at(s)[0] for s in range(self.num_steps)])

    @property
    def topk_probs(self) -> np.ndarray:
        return np.stack([self.topk_at(s)[1] for s in range(self.num_steps)])

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
        """Background colour of every position after `step` (soft: SOFT_LIGHT to SOFT_COLOUR as lambda goes
        from 0 to lam_top)."""
        codes = self.state_codes(step)
        out = np.array([STATE_COLOURS[s] for s in STATES], dtype=object)[codes]
        soft = codes == SOFT
        if soft.any():
            out[soft] = blend(SOFT_LIGHT, SOFT_COLOUR, self.lam[step][soft] / self.lam_top)
        return out.tolist()

    def token_labels(self, step: int) -> list[str]:
        """Text of every position after `step`: the token; a soft position shows its top candidate; a plain
        masked one shows a dot."""
        codes = self.state_codes(step)
        lab = np.asarray(self.labels, dtype=object)
        ids = self.tokens[step].copy()
        soft = codes == SOFT
        if soft.any():
            ids[soft] = self.topk_at(step)[0][soft, 0]
        out = lab[ids]
        out[(codes == MASKED) | (codes == REMASKED)] = MASK_GLYPH
        return out.tolist()

    def tips(self, step: int) -> list[str]:
        """Hover text of every position: state, lambda, entropy and the top-k candidates with probabilities."""
        codes = self.state_codes(step)
        lab = self.labels
        ids, probs = self.topk_at(step)
        ids, probs, codes = ids.tolist(), probs.tolist(), codes.tolist()   # Python numbers format fastest
        lam, ent, tok = self.lam[step].tolist(), self.entropy[step].tolist(), self.tokens[step].tolist()
        out = []
        for p in range(self.length):
            cands = "  ".join(f"{lab[i]} {q:.2f}" for i, q in zip(ids[p], probs[p]) if q > 0) or "-"
            out.append(f"pos {p} | {STATES[codes[p]]} {lab[tok[p]]} | \u03bb={lam[p]:.3f} "
                       f"H={ent[p]:.2f} | top-{self.k_trace}: {cands}")
        return out

    @property
    def label_array(self) -> np.ndarray:
        """The labels as a numpy object array (labels of many ids at once: `label_array[ids]`)."""
        if getattr(self, "_label_array", None) is None or len(self._label_array) != len(self.labels):
            self._label_array = np.asarray(self.labels, dtype=object)
        return self._label_array

    def final_text(self) -> list[str]:
        """`texts` after the last step, kept (layouts place cells by it at every step)."""
        key = self.num_steps
        if getattr(self, "_final", (None,))[0] != key:
            self._final = (key, self.texts(self.num_steps - 1))
        return self._final[1]

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
        ids, probs = self.topk_at(step)
        probs = torch.as_tensor(probs[pos, : self.k], dtype=torch.float64)
        weights = mixture_weights(torch.tensor(float(self.lam[step, pos]), dtype=torch.float64), probs.log())
        names = [MASK_LABEL] + [f"{r + 1}: {self.labels[int(i)]}" for r, i in enumerate(ids[pos, : self.k])]
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
        return np.where(self.tokens == self.mask_id, self.lam, np.nan).astype(np.float32)

    def entropy_map(self) -> np.ndarray:
        """[S, L] entropy where the position was masked before the step (the ones predicted), NaN elsewhere."""
        return np.where(self.masked_before & ~self.fixed, self.entropy, np.nan).astype(np.float32)

    def lambda_points(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, entropy, lambda) of the positions still masked after `step`."""
        pos = np.flatnonzero(self.masked_after(step))
        return pos, self.entropy[step, pos], self.lam[step, pos]


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
    return int(trace.num_samples)


def final_texts(trace, vocab_text: list[str]) -> list[str]:
    """Every sample's text after the trace's last step: the raw text of its tokens (`SampleView.vocab_text`)."""
    return ["".join(vocab_text[int(t)] for t in row) for row in trace.tokens_after(-1)]


def opening_step(*views: SampleView) -> int:
    """Where a view of these samples opens (the explorer, the comparison): the first step after which some
    position of any of them is soft (where soft-masking shows; the last step has nothing masked), else step 0."""
    firsts = [f for f in (v.first_soft_step() for v in views) if f is not None]
    return min(firsts, default=0)


def sample_view(trace, sample: int = 0, model=None, tokenizer=None, mask_id: int | None = None,
                soft_mask: dict | None = None, k: int | None = None) -> SampleView:
    """A SampleView of sample `sample` of `trace`, a smkit `Trace` (`generate(..., trace=True).trace`, or
    `Trace.open(path)`; one `StepRecord` becomes a one-step Trace with `Trace.from_records([record])`).
    Nothing is read yet: the view reads the sample's steps when a widget first shows them.

    A trace records its mask id; the SM values and k it was decoded with come from its meta, else from
    `model`; token text from `model.tokenizer`, else the trace's tokenizer. A `model` that did not make the
    trace (another [MASK] id, vocabulary or tokenizer) is refused (`Trace.check_model`).
    """
    from smkit.core.trace import Trace
    if not isinstance(trace, Trace):
        shape = tuple(getattr(getattr(trace, "tokens", None), "shape", ()))
        raise TraceError(f"trace: give a smkit Trace (tokens [steps, samples, length]), not a "
                         f"{type(trace).__name__} with tokens of shape {shape}; one step "
                         f"record becomes a Trace with smkit.core.trace.Trace.from_records([record])")
    missing = [name for name in ("entropy", "topk_ids", "topk_probs") if name not in trace.fields]
    if missing:
        raise TraceError(f"the trace has no {missing}: decode with trace=True (and k_trace >= 1) to show it")
    if trace.k_trace == 0:
        raise TraceError("the trace keeps no top-k candidates (k_trace=0): decode with k_trace >= 1 to show it")
    if len(trace) == 0:
        raise TraceError("the trace holds no step")
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < trace.num_samples:
        raise TraceError(f"sample={sample!r}: the trace holds samples 0..{trace.num_samples - 1}")
    trace.check_model(model)
    meta = _meta(trace)
    if mask_id is None:
        mask_id = trace.mask_id
    if soft_mask is None:
        soft_mask = trace_soft_mask(trace) or (model.soft_mask.values() if model is not None else None)
    if tokenizer is None:
        tokenizer = model.tokenizer if model is not None and model.tokenizer is not None else trace.tokenizer
    if mask_id is None:
        raise ConfigError("mask_id=None: pass model= or mask_id= (the trace does not record the mask id)")
    k_trace = trace.k_trace
    if k is None:
        k = (meta.get("sm") or {}).get("k") or meta.get("k") or (soft_mask or {}).get("k") or k_trace
    k = int(max(1, min(k, k_trace)))  # the trace keeps k_trace candidates: the mixture shows at most those
    vocab = int(getattr(tokenizer, "__len__", lambda: 0)() if tokenizer is not None else 0)
    vocab = max(vocab, int(mask_id) + 1, int(trace.layout.n_ids))
    return SampleView(trace, int(sample), int(mask_id), vocab_labels(tokenizer, vocab, int(mask_id)), k,
                      soft_mask=soft_mask, vocab_text=vocab_texts(tokenizer, vocab, int(mask_id)))
