"""The mask token's text, text with masks shown, and the check that a tokenizer fits a model built by smkit (its last id is the mask)."""
from __future__ import annotations

from .errors import DataError

MASK_TOKEN = "[MASK]"


def check_tokenizer(tokenizer, vocab_size: int | None = None, mask_id: int | None = None) -> None:
    """Fail loudly on an empty tokenizer (transformers can build one silently) or one that does not
    match a model's vocabulary."""
    n = len(tokenizer)
    if n < 3 or not tokenizer("ab")["input_ids"]:
        raise DataError(f"tokenizer is empty (len={n}): it encodes nothing; was it saved with tokenizer.json?")
    if tokenizer.mask_token_id is None or tokenizer.mask_token_id != n - 1:
        raise DataError(f"tokenizer must have {MASK_TOKEN} as its last id ({n - 1}); got mask_token_id="
                        f"{tokenizer.mask_token_id}")
    if vocab_size is not None and n != vocab_size:
        raise DataError(f"tokenizer has {n} ids but the model's vocabulary has {vocab_size}: they do not match")
    if mask_id is not None and tokenizer.mask_token_id != mask_id:
        raise DataError(f"tokenizer mask id {tokenizer.mask_token_id} != model mask_id {mask_id}")


def text_of(ids, tokenizer, mask_id: int, mask_text: str) -> str:
    """Decode `ids`, each [MASK] shown as `mask_text` (runs of real tokens are decoded together)."""
    parts, run = [], []
    for i in list(ids) + [None]:
        if i is None or i == mask_id:
            if run:
                parts.append(tokenizer.decode(run))
                run = []
            if i is not None:
                parts.append(mask_text)
        else:
            run.append(i)
    return "".join(parts)
