"""Tiny Hugging Face models for the wrapper, adapter and fine-tuning tests: built from configs here, randomly
initialised, saved to local folders (nothing is downloaded). Import the helpers by name."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import textwrap

import torch

TEXT = ("to be, or not to be, that is the question: whether tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"]   # [MASK] = 4: not the last id
SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=64)
KINDS = ("bert", "roberta", "modernbert")


def char_tokenizer(mask: bool = True):
    """A character-level PreTrainedTokenizerFast with BERT-style special tokens first ([MASK] = 4 when `mask`)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS if mask else [s for s in SPECIALS if s != "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(TEXT)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    kw = {"mask_token": "[MASK]"} if mask else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]",
                                   clean_up_tokenization_spaces=False, **kw)


def build(kind: str, vocab_size: int, seed: int = 0):
    """A randomly initialised tiny transformers model: bert, roberta, modernbert (masked LMs) or qwen2 (decoder)."""
    from transformers import (BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM, Qwen2Config,
                              Qwen2ForCausalLM, RobertaConfig, RobertaForMaskedLM)

    torch.manual_seed(seed)
    if kind == "bert":
        return BertForMaskedLM(BertConfig(vocab_size=vocab_size, type_vocab_size=1, **SMALL))
    if kind == "roberta":  # RoBERTa's positions start after the padding id: room for 64 + 2
        return RobertaForMaskedLM(RobertaConfig(vocab_size=vocab_size, pad_token_id=0,
                                                **{**SMALL, "max_position_embeddings": 66}))
    if kind == "modernbert":
        return ModernBertForMaskedLM(ModernBertConfig(vocab_size=vocab_size, pad_token_id=0, bos_token_id=2,
                                                      eos_token_id=3, cls_token_id=2, sep_token_id=3,
                                                      global_attn_every_n_layers=1, local_attention=64, **SMALL))
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, num_key_value_heads=2, tie_word_embeddings=True,
                                            **SMALL))
    raise ValueError(kind)


def save_dir(folder, kind: str, tokenizer=None, extra_rows: int = 0, seed: int = 0):
    """A local model directory (config, safetensors weights, tokenizer) for `from_hf`."""
    tokenizer = char_tokenizer() if tokenizer is None else tokenizer
    model = build(kind, len(tokenizer) + extra_rows, seed)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def ids(tokenizer, text: str, length: int) -> torch.Tensor:
    out = tokenizer(text, add_special_tokens=False)["input_ids"][:length]
    assert len(out) == length
    return torch.tensor(out)


def batch(tokenizer, n: int = 4, length: int = 24) -> torch.Tensor:
    return torch.stack([ids(tokenizer, TEXT[i * 5:], length) for i in range(n)])


# ------------------------------------------------------------------ a model that ships its own code

_CONFIG_CODE = '''
from transformers import PretrainedConfig


class TinyDLMConfig(PretrainedConfig):
    model_type = "tiny_dlm"

    def __init__(self, vocab_size=32, hidden_size=32, num_heads=2, max_position_embeddings=64, **kwargs):
        self.vocab_size, self.hidden_size, self.num_heads = vocab_size, hidden_size, num_heads
        self.max_position_embeddings = max_position_embeddings
        super().__init__(**kwargs)
'''

_MODEL_CODE = '''
import os

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_tiny_dlm import TinyDLMConfig

if os.environ.get("SMKIT_TEST_REMOTE_MARKER"):   # lets a test see whether this code ever ran
    with open(os.environ["SMKIT_TEST_REMOTE_MARKER"], "a") as f:
        f.write("imported\\n")


class TinyDLMModel(PreTrainedModel):
    """A decoder-style denoiser in the Dream mould: bidirectional attention, logits meant to be shifted."""
    config_class = TinyDLMConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.pos = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layer = nn.TransformerEncoderLayer(config.hidden_size, config.num_heads, 2 * config.hidden_size,
                                                dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, **kwargs):
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        h = inputs_embeds + self.pos(torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device))
        return MaskedLMOutput(logits=self.lm_head(self.layer(h)))
'''


def remote_code_dir(folder, tokenizer=None, seed: int = 0):
    """A directory whose model ships its code (config.json auto_map), as Dream does. The weights are written
    without running that code through transformers: the module is executed here once, by the test itself."""
    import importlib.util
    import sys

    from safetensors.torch import save_file

    tokenizer = char_tokenizer() if tokenizer is None else tokenizer
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "configuration_tiny_dlm.py").write_text(textwrap.dedent(_CONFIG_CODE))
    (folder / "modeling_tiny_dlm.py").write_text(textwrap.dedent(_MODEL_CODE))
    pkg = f"_tiny_dlm_{seed}_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(pkg, folder / "__init__.py", submodule_search_locations=[str(folder)])
    sys.modules[pkg] = importlib.util.module_from_spec(spec)
    try:
        cfg_mod = _load(f"{pkg}.configuration_tiny_dlm", folder / "configuration_tiny_dlm.py")
        marker = os.environ.pop("SMKIT_TEST_REMOTE_MARKER", None)
        model_mod = _load(f"{pkg}.modeling_tiny_dlm", folder / "modeling_tiny_dlm.py")
        if marker is not None:
            os.environ["SMKIT_TEST_REMOTE_MARKER"] = marker
    finally:
        for name in [n for n in sys.modules if n.startswith(pkg)]:
            del sys.modules[name]
    torch.manual_seed(seed)
    config = cfg_mod.TinyDLMConfig(vocab_size=len(tokenizer))
    model = model_mod.TinyDLMModel(config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    d = config.to_dict()
    d.update(model_type="tiny_dlm", architectures=["TinyDLMModel"],
             auto_map={"AutoConfig": "configuration_tiny_dlm.TinyDLMConfig", "AutoModel": "modeling_tiny_dlm.TinyDLMModel"})
    (folder / "config.json").write_text(json.dumps(d, indent=2))
    tokenizer.save_pretrained(str(folder))
    return folder


def _load(name, path):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
