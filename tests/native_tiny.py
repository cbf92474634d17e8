"""The tiny LLaDA and Dream folders of tests/fixtures (see NATIVE_LLADA_DREAM.md there), copied to a test's own
folder, with the tokenizers the tests give them. Import the helpers by name."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import shutil
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KINDS = ("llada", "dream")
MASK_ID = {"llada": 126, "dream": 120}
MASK_TEXT = {"llada": "<|mdm_mask|>", "dream": "<|mask|>"}
EOS_ID = {"llada": 125, "dream": 121}   # as the fixtures' config.json say
DECODER = {"llada": "LlamaForCausalLM", "dream": "Qwen2ForCausalLM"}
TEXT = "to be, or not to be, that is the question: whether tis nobler in the mind to suffer"


def fixture(kind: str) -> Path:
    return FIXTURES / f"{kind}_tiny"


def reference(kind: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(fixture(kind) / "reference.safetensors"))


def copy_folder(kind: str, dest: Path) -> Path:
    """The fixture folder copied to `dest` (which a test may then change), without the reference outputs."""
    shutil.copytree(fixture(kind), dest)
    (dest / "reference.safetensors").unlink()
    return dest


def char_tokenizer(kind: str, declare_mask: bool = False):
    """A character tokenizer (tokenizer.json) whose ids fill the tiny vocabulary up to the model's mask token, named
    as the real model names it, with an end-of-text token where the config puts it: LLaDA 127 ids (end-of-text
    125, mask 126, one embedding row unused), Dream 122 ids (mask 120, end-of-text 121, six rows unused). The mask
    token is declared as such only when `declare_mask`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(TEXT))
    vocab = {c: i for i, c in enumerate(chars)}
    mask, eos = MASK_ID[kind], EOS_ID[kind]
    while len(vocab) < min(mask, eos):
        vocab[f"<|reserved_{len(vocab)}|>"] = len(vocab)
    for token, i in sorted({MASK_TEXT[kind]: mask, "<|endoftext|>": eos}.items(), key=lambda kv: kv[1]):
        vocab[token] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token=chars[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    specials = [t for t in vocab if t.startswith("<|")]
    tok.add_special_tokens(specials)
    kw = {"mask_token": MASK_TEXT[kind]} if declare_mask else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                   eos_token="<|endoftext|>", **kw)


def byte_bpe_tokenizer_files(folder: Path) -> None:
    """Dream's tokenizer layout: a byte-level BPE as vocab.json + merges.txt, its special tokens (<|mask|> = 120,
    <|endoftext|> = 121) in tokenizer_config.json, which also names the authors' tokenizer class and code (never
    run by smkit)."""
    chars = ["\u0120"] + [chr(c) for c in range(33, 127)]       # byte-level: space is "Ġ"
    vocab = {c: i for i, c in enumerate(chars)}
    merges = [("t", "o"), ("b", "e")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    while len(vocab) < 120:
        vocab[f"<|reserved_{len(vocab)}|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "DreamTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "added_tokens_decoder": {"120": {"content": "<|mask|>", **special},
                                 "121": {"content": "<|endoftext|>", **special}},
        "mask_token": "<|mask|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))


def ids(tokenizer, text: str, length: int) -> torch.Tensor:
    out = tokenizer(text, add_special_tokens=False)["input_ids"][:length]
    assert len(out) == length
    return torch.tensor(out)
