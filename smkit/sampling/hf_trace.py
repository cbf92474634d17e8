"""A smkit Trace of a Hugging Face diffusion LM's own `generate`: transformers' DiffusionGemmaForBlockDiffusion
(a canvas of uniform noise denoised block by block, each step self-conditioned on the previous step's
logits, accepting the positions an entropy bound allows and renoising the others).

Its decode is recorded from the hooks `generate` offers, and changes nothing in it (same output with and
without tracing, same seed): a logits processor placed first in the list (it returns the logits as they are
and notes the step counter), a streamer that takes the processed logits of every step (`put_draft`, the
logits the model used after temperature and stopping) and every finished block (`put`), and the sampler
object the model builds for the call (read only: its accepted positions). Per step the trace holds:

- tokens: the draft (the argmax of the processed logits, what `generate` returns when it stops) at the
  positions the sampler accepted this step; "[MASK]" (id = the vocabulary size, outside it) at the positions
  it renoised and at the blocks not begun. A last step per block shows the block as `generate` appends it.
- entropy and the top-k of the processed logits at every position of the block being denoised.
- no lambda: this model feeds back no SM mixture (the views say so).
- t = the step counter / the block's first (1 -> 1/N), the block index; meta["blocks"] lists where each
  block starts and ends.
"""
from __future__ import annotations

import torch

from ..core.errors import ConfigError
from ..core.softmask import entropy_from_log_probs
from ..core.trace import StepRecord, Trace


class _StepCounter:
    """A logits processor that changes nothing: it notes the step counter `generate` passes (N .. 1)."""

    def __init__(self):
        self.cur_step = None

    def __call__(self, input_ids, scores, cur_step):
        self.cur_step = int(cur_step)
        return scores


class _Recorder:
    """The streamer: collects every step's draft, acceptance and statistics, and each finished block."""

    _takes_logits = True

    def __init__(self, counter: _StepCounter, k: int, mask_id: int, forward=None):
        self.counter, self.k, self.mask_id, self.forward = counter, k, mask_id, forward
        self.sampler = None
        self.prompt = None
        self.blocks = []       # finished canvases as generate appended them, [B, C] each
        self.steps = []        # per step: block, counter, shown [B, C], entropy [B, C], ids / probs [B, C, k]
        self.first = None      # the step counter at the block's first step
        self.last = None       # (argmax, entropy, accepted) of the block's previous step

    def put(self, value) -> None:
        value = value.detach().cpu().long()
        if self.prompt is None:
            self.prompt = value
        else:
            self.blocks.append(value)
            self.first = self.last = None
        if self.forward is not None:
            self.forward.put(value)

    def put_draft(self, logits=None, value=None) -> None:
        if logits is None:
            raise ConfigError("trace_hf_generate: the model's streamer gave no logits (its put_draft must pass "
                              "them when _takes_logits is set)")
        logits = logits.detach().float()
        log_probs = torch.log_softmax(logits, -1)
        argmax = logits.argmax(-1)
        entropy = entropy_from_log_probs(log_probs.clone())
        top, ids = log_probs.topk(self.k, -1)
        accepted = getattr(self.sampler, "accepted_token_mask", None)
        accepted = torch.ones_like(argmax, dtype=torch.bool) if accepted is None else accepted.detach().cpu().bool()
        if self.last is not None:   # a row that stopped earlier keeps its logits: it did not move this step
            a0, h0, acc0 = self.last
            still = (argmax == a0).all(-1) & (entropy == h0).all(-1)
            accepted = torch.where(still[:, None], acc0, accepted)
        self.last = (argmax, entropy, accepted)
        step = self.counter.cur_step
        if self.first is None:
            self.first = step
        self.steps.append({"block": len(self.blocks), "t": step / self.first, "argmax": argmax,
                           "accepted": accepted, "entropy": entropy, "ids": ids, "probs": top.exp()})
        if self.forward is not None and hasattr(self.forward, "put_draft"):
            if getattr(self.forward, "_takes_logits", False):
                self.forward.put_draft(logits=logits)
            else:
                self.forward.put_draft(value=argmax)

    def end(self) -> None:
        if self.forward is not None:
            self.forward.end()


def trace_hf_generate(model, input_ids, *, k_trace: int = 5, tokenizer=None, **generate_kwargs):
    """Run `model.generate(input_ids, **generate_kwargs)` (a transformers DiffusionGemmaForBlockDiffusion) and
    record it as a smkit `Trace` (see the module docstring). Returns (what generate returned, the Trace).
    `generate_kwargs` go to generate unchanged; a `streamer` or `logits_processor` of yours still runs (the
    recorder passes the steps on). `tokenizer` (optional) travels with the trace for its text."""
    from transformers.generation.logits_process import LogitsProcessorList

    if not hasattr(model, "config") or not hasattr(model.config, "canvas_length") or not hasattr(model, "generate"):
        raise ConfigError(f"trace_hf_generate: model must be a transformers DiffusionGemmaForBlockDiffusion (a "
                          f"block-diffusion model with config.canvas_length), not {type(model).__name__}")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ConfigError("trace_hf_generate: input_ids must be a [batch, prompt length] tensor of token ids")
    if isinstance(k_trace, bool) or not isinstance(k_trace, int) or k_trace < 1:
        raise ConfigError(f"k_trace={k_trace!r}: the top-k kept per position must be an integer >= 1")
    vocab = int(model.config.text_config.vocab_size)
    counter = _StepCounter()
    recorder = _Recorder(counter, min(k_trace, vocab), vocab, forward=generate_kwargs.pop("streamer", None))
    processors = LogitsProcessorList([counter, *(generate_kwargs.pop("logits_processor", None) or [])])
    own = model.__dict__.get("_prepare_sampler")
    build = model._prepare_sampler

    def prepare_sampler(*args, **kwargs):   # the model's own sampler, kept to read what it accepted
        recorder.sampler = build(*args, **kwargs)
        return recorder.sampler

    model._prepare_sampler = prepare_sampler
    try:
        out = model.generate(input_ids, streamer=recorder, logits_processor=processors, **generate_kwargs)
    finally:
        if own is None:
            del model._prepare_sampler
        else:
            model._prepare_sampler = own
    sequences = out.sequences if hasattr(out, "sequences") else out
    trace = _to_trace(recorder, sequences.detach().cpu().long(), vocab, model.config.canvas_length, tokenizer,
                      generate_kwargs)
    return out, trace


def _to_trace(rec: _Recorder, sequences, vocab: int, C: int, tokenizer, kwargs) -> Trace:
    if not rec.steps:
        raise ConfigError("trace_hf_generate: generate ran no denoising step (max_new_tokens=0?)")
    B, P = rec.prompt.shape
    L = sequences.shape[1]
    mask = vocab
    k = rec.k
    state = torch.full((B, L), mask, dtype=torch.long)
    state[:, :P] = rec.prompt
    fixed = torch.zeros(B, L, dtype=torch.bool)
    fixed[:, :P] = True
    records, stat_rows, nfe = [], [], 0

    def record(block, t, tokens, entropy, ids, probs, rows):
        nonlocal state
        before = state
        changed = tokens != before
        mb, ma = before == mask, tokens == mask
        records.append(StepRecord(step=len(records), block=block, t=torch.full((B,), float(t)), tokens=tokens,
                                  masked_before=mb, revealed=changed & mb & ~ma, remasked=changed & ~mb & ma,
                                  lam=None, entropy=entropy, topk_ids=ids, topk_probs=probs, nfe=nfe,
                                  wall_time=0.0, fixed=fixed, mask_id=mask))
        stat_rows.append(rows)
        state = tokens

    for i, s in enumerate(rec.steps):
        nfe += 1
        j = s["block"]
        lo, hi = P + j * C, P + (j + 1) * C
        tokens = state.clone()
        tokens[:, lo:hi] = torch.where(s["accepted"], s["argmax"], torch.full_like(s["argmax"], mask))
        entropy = torch.zeros(B, L)
        entropy[:, lo:hi] = s["entropy"]
        ids = torch.full((B, L, k), mask, dtype=torch.long)
        ids[..., 0] = tokens
        probs = torch.zeros(B, L, k)
        probs[..., 0] = 1.0
        ids[:, lo:hi], probs[:, lo:hi] = s["ids"], s["probs"]
        rows = torch.zeros(B, L, dtype=torch.bool)
        rows[:, lo:hi] = True
        record(j, s["t"], tokens, entropy, ids, probs, rows)
        last_of_block = i + 1 == len(rec.steps) or rec.steps[i + 1]["block"] != j
        if last_of_block and j < len(rec.blocks):       # the block as generate appended it
            done = state.clone()
            done[:, lo:hi] = rec.blocks[j]
            if not torch.equal(done, state):
                ids = torch.full((B, L, k), mask, dtype=torch.long)
                ids[..., 0] = done
                probs = torch.zeros(B, L, k)
                probs[..., 0] = 1.0
                record(j, 0.0, done, torch.zeros(B, L), ids, probs, torch.zeros(B, L, dtype=torch.bool))
    blocks = [[P + j * C, P + (j + 1) * C] for j in range(len(rec.blocks))]
    settings = {k_: v for k_, v in kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))}
    meta = {"source": "transformers DiffusionGemmaForBlockDiffusion.generate", "mask_id": mask,
            "mask_note": "[MASK] marks positions not accepted at the step (renoised) and blocks not begun",
            "canvas_length": C, "prompt_length": P, "blocks": blocks, "lambda": None, "generate": settings}
    return Trace.from_records(records, meta=meta, tokenizer=tokenizer, n_ids=vocab + 1, stat_rows=stat_rows)
