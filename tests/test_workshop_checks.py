"""The workshop's exercise checks pass the solutions and fail plausible wrong answers.

Each check cell (the cell after an exercise's `solution` cell) defines a `check_*` function and calls it on the
learner's answer. Here the functions are taken from the notebooks' jupytext twins (only the `def`s and imports of
those cells are run), called with the solution (must pass) and with wrong answers (must raise AssertionError,
check_answer's verdict for a wrong answer). Nothing here trains a model: notebook 01's check gets a random-weight
model, notebook 05's a hand-written sudoku denoiser that knows the rules (so unmasking orders differ a lot).
"""
from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

jupytext = pytest.importorskip("jupytext")

import smkit  # noqa: E402
from smkit import tasks  # noqa: E402
from smkit.notebooks import check_answer  # noqa: E402
from smkit.core.schedules import EPS, SCHEDULES, alpha  # noqa: E402

WORKSHOP = Path(__file__).resolve().parents[1] / "notebooks" / "workshop"


def _defs(source: str) -> str:
    """Only the imports and function definitions of a cell (not the call on the learner's answer)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
    return ast.unparse(tree)


def load(name: str) -> SimpleNamespace:
    """The check functions and the solutions of a workshop notebook, in one namespace."""
    nb = jupytext.read(str(WORKSHOP / f"{name}.py"))
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    ns = {"torch": torch, "math": math, "smkit": smkit, "tasks": tasks, "check_answer": check_answer, "EPS": EPS,
          "SCHEDULES": SCHEDULES, "alpha": alpha}
    found = 0
    for i, t in enumerate(tags):
        if "solution" in t:
            exec(_defs(nb.cells[i].source), ns)       # the solution
            exec(_defs(nb.cells[i + 1].source), ns)   # its check
            found += 1
    assert found, f"{name}: no solution cells"
    return SimpleNamespace(**ns)


def fails(check, *args) -> None:
    with pytest.raises(AssertionError, match="not yet right"):
        check(*args)


def not_done(*_):
    raise NotImplementedError


# ---------------------------------------------------------------- 01 the forward process and the ELBO

@pytest.fixture(scope="module")
def nb01():
    return load("01-forward-process")


def test_01_loglinear_alpha(nb01, capsys):
    assert nb01.check_loglinear_alpha(nb01.loglinear_alpha) is True
    assert nb01.check_loglinear_alpha(not_done) is False and "not done yet" in capsys.readouterr().out
    fails(nb01.check_loglinear_alpha, lambda t: 1 - t)             # forgets EPS
    fails(nb01.check_loglinear_alpha, lambda t: t)                 # masked share, not clean share
    fails(nb01.check_loglinear_alpha, lambda t: EPS + (1 - EPS) * t)


def test_01_batch_bound(nb01, tiny_model):
    m = tiny_model.eval()
    x0 = torch.randint(0, m.mask_id, (4, m.config.seq_len), generator=torch.Generator().manual_seed(0))
    assert nb01.check_batch_bound(nb01.batch_bound, m, x0) is True

    def nll(x0, logp):
        return -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)

    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float((nll(x0, logp) * masked).sum() / x0.numel()), m, x0)
    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float((t[:, None] * nll(x0, logp) * masked).sum()
                                                                    / x0.numel()), m, x0)
    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float(((1 / t)[:, None] * nll(x0, logp) * masked).sum()
                                                                    / masked.sum()), m, x0)


def test_01_elbo_weight(nb01):
    assert nb01.check_elbo_weight(nb01.elbo_weight) is True

    def derivative(name, t):
        t = t.detach().clone().requires_grad_()
        return torch.autograd.grad(alpha(name, t).sum(), t)[0]

    fails(nb01.check_elbo_weight, lambda name, t: 1 / t)                                     # right for loglinear only
    fails(nb01.check_elbo_weight, lambda name, t: -derivative(name, t))                      # no 1 - alpha
    fails(nb01.check_elbo_weight, lambda name, t: derivative(name, t) / (1 - alpha(name, t)))  # sign
    fails(nb01.check_elbo_weight, lambda name, t: -derivative(name, t) / alpha(name, t))     # alpha, not 1 - alpha


# ---------------------------------------------------------------- 02 training

@pytest.fixture(scope="module")
def nb02():
    return load("02-train-tiny-mdlm")


def test_02_unigram_entropy(nb02):
    assert nb02.check_unigram_entropy(nb02.unigram_entropy) is True

    def freqs(ids):
        f = torch.bincount(ids.flatten()).double()
        return f[f > 0] / f.sum()

    fails(nb02.check_unigram_entropy, lambda ids: float(-(freqs(ids) * freqs(ids).log2()).sum()))  # bits
    fails(nb02.check_unigram_entropy, lambda ids: math.log(len(freqs(ids))))                        # uniform over seen ids
    fails(nb02.check_unigram_entropy, lambda ids: math.log(int(ids.max()) + 1))                     # uniform over all ids


def test_02_gap_in_standard_errors(nb02):
    assert nb02.check_gap(nb02.gap_in_standard_errors) is True
    x_mean = lambda x: float(torch.as_tensor(x).double().mean())
    x_std = lambda x: float(torch.as_tensor(x).double().std())
    fails(nb02.check_gap, lambda x, ref: (ref - x_mean(x)) / x_std(x))                           # std, not its error
    fails(nb02.check_gap, lambda x, ref: (x_mean(x) - ref) / (x_std(x) / math.sqrt(len(x))))    # sign
    fails(nb02.check_gap, lambda x, ref: (ref - x_mean(x)) / x_std(x) ** 2)                      # variance
    fails(nb02.check_gap, lambda x, ref: ref - x_mean(x))                                        # no noise at all


# ---------------------------------------------------------------- 03 soft-masking

@pytest.fixture(scope="module")
def nb03():
    return load("03-soft-masking")


def test_03_lambda(nb03):
    assert nb03.check_lambda(nb03.my_lambda) is True
    fails(nb03.check_lambda, lambda H, s, c, a: torch.sigmoid(a * (-H - c)))          # no w_s
    fails(nb03.check_lambda, lambda H, s, c, a: s * torch.sigmoid(a * (-H + c)))      # sign of w_b
    fails(nb03.check_lambda, lambda H, s, c, a: s * torch.sigmoid(a * (H - c)))       # sign of H
    fails(nb03.check_lambda, lambda H, s, c, a: torch.full_like(H, s))                # the gate wide open


def test_03_superposition(nb03):
    assert nb03.check_superposition(nb03.superposition_weights) is True
    fails(nb03.check_superposition, lambda p, lam: torch.cat([torch.tensor([1 - lam]), lam * p]))        # no renormalising
    fails(nb03.check_superposition, lambda p, lam: torch.cat([torch.tensor([lam]), (1 - lam) * p / p.sum()]))  # swapped
    fails(nb03.check_superposition, lambda p, lam: torch.ones(len(p) + 1))                              # sums, not weights
    fails(nb03.check_superposition, lambda p, lam: torch.cat([torch.tensor([1 - lam]), lam * p / p.sum()])[1:])  # no mask slot


# ---------------------------------------------------------------- 04 samplers

@pytest.fixture(scope="module")
def nb04():
    return load("04-samplers")


def test_04_confidence_rule_and_its_ties(nb04):
    assert nb04.check_confidence_rule(nb04.pick_most_confident) is True

    def by_order(top1, candidates, n, key):
        order = sorted((i for i in range(len(top1)) if candidates[i]), key=key)[:n]
        out = torch.zeros_like(candidates)
        out[order] = True
        return out

    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, torch.ones_like(c), n, lambda i: (-t[i], i)))  # ignores candidates
    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n, lambda i: (-t[i], -i)))    # ties: higher position first
    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n, lambda i: (t[i], i)))      # least confident first
    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n + 1, lambda i: (-t[i], i)))  # one too many


# ---------------------------------------------------------------- 05 sudoku

class SudokuRules(torch.nn.Module):
    """A hand-written sudoku denoiser (no training): it reads the ids back from one-hot input embeddings and gives
    every blank logit 0 for the digits its row, column and box lack, -30 for those they hold. Revealing the cell
    it is surest of first solves most puzzles; a random order guesses at ambiguous cells and fails most."""

    def __init__(self, tokenizer):
        super().__init__()
        vocab = tokenizer.get_vocab()
        self.V = len(vocab)
        self.emb = torch.nn.Embedding(self.V, self.V)
        self.emb.weight.data = torch.eye(self.V)
        self.digits = torch.tensor([vocab[str(d)] for d in range(1, 10)])
        self.newline = vocab["\n"]
        self.cells = torch.tensor([r * 10 + c for r in range(9) for c in range(9)])

    def get_input_embeddings(self):
        return self.emb

    def forward(self, inputs_embeds=None, **_):
        ids = inputs_embeds.argmax(-1)
        B, L = ids.shape
        onehot = (ids[:, self.cells, None] == self.digits).float().view(B, 9, 9, 9)   # [B, row, col, digit]
        boxes = onehot.view(B, 3, 3, 3, 3, 9).amax((2, 4))                             # [B, box row, box col, digit]
        used = torch.maximum(torch.maximum(onehot.amax(2, keepdim=True), onehot.amax(1, keepdim=True)),
                             boxes.repeat_interleave(3, 1).repeat_interleave(3, 2))
        logits = torch.full((B, L, self.V), -30.0)
        cell_logits = torch.full((B, 81, self.V), -30.0)
        cell_logits[..., self.digits] = -30.0 * used.view(B, 81, 9)
        logits[:, self.cells] = cell_logits
        logits[:, 9::10, self.newline] = 0.0
        return logits


@pytest.fixture(scope="module")
def rules_solver():
    task = tasks.get("sudoku", givens=50)
    cfg = smkit.ModelConfig(vocab_size=len(task.tokenizer()), seq_len=task.length, backbone=None, k=1)
    return smkit.DiffusionLM(cfg, backbone=SudokuRules(task.tokenizer()), tokenizer=task.tokenizer()).eval(), task


@pytest.fixture(scope="module")
def nb05():
    return load("05-sudoku")


def test_05_the_rules_solver_shows_the_order_effect(rules_solver):
    model, task = rules_solver
    rand = tasks.evaluate(model, task, n=48, strategy="random", soft_mask=False, seed=0)
    conf = tasks.evaluate(model, task, n=48, strategy="confidence", soft_mask=False, seed=0)
    assert conf.ci_low > rand.ci_high, (conf, rand)


def test_05_own_rule_must_beat_random(nb05, rules_solver, capsys):
    model, task = rules_solver
    n = 48
    random_result = tasks.evaluate(model, task, n=n, strategy="random", soft_mask=False, seed=0)
    margin = tasks.evaluate(model, task, n=n, strategy="margin", soft_mask=False, seed=0)
    check = lambda rule: nb05.check_unmasking_rule(rule, model, task, n, 0, random_result, margin, name="test-rule")
    assert check(nb05.my_rule) is True
    assert check(not_done) is False and "not done yet" in capsys.readouterr().out
    from smkit.core.strategies import top_n
    none = lambda v: torch.zeros_like(v.candidates)
    fails(check, lambda v: (top_n(torch.rand(v.candidates.shape), v.candidates, v.n_reveal), none(v)))  # random order
    fails(check, lambda v: (top_n(-v.top_probs[..., 0], v.candidates, v.n_reveal), none(v)))  # least confident first
    fails(check, lambda v: (top_n(-v.entropy * 0 - torch.arange(v.candidates.shape[1]).double(), v.candidates,
                                  v.n_reveal), none(v)))  # reading order, left to right


def test_05_a_model_that_cannot_separate_orders_is_not_judged(nb05, rules_solver, capsys):
    model, task = rules_solver
    weak = SimpleNamespace(accuracy=0.0, ci_low=0.0, ci_high=0.07)
    assert nb05.check_unmasking_rule(nb05.my_rule, model, task, 48, 0, weak, weak, name="test-rule") is False
    assert "cannot judge" in capsys.readouterr().out
