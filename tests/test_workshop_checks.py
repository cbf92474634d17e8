"""The workshop's exercise checks pass the solutions, fail plausible wrong answers with a hint that names the
mistake, say "not done yet" for an empty exercise, and refuse an answer that calls the library function the
exercise rebuilds.

Each check cell (the cell after an exercise's `solution` cell) defines a `check_*` function and calls it on the
learner's answer. Here the functions and imports of every code cell of a notebook's jupytext twin are run (not
the calls), the solutions last defined, and the checks are called with the solution (must pass) and with wrong
answers (must raise AssertionError, a wrong answer's verdict). Nothing here trains a model: notebook 01's and 04's
checks get a random-weight model, notebook 05's a hand-written sudoku denoiser that knows the rules (so unmasking
orders differ a lot).
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
from smkit.core.schedules import EPS, SCHEDULES, alpha  # noqa: E402

WORKSHOP = Path(__file__).resolve().parents[1] / "notebooks" / "workshop"


def _defs(source: str) -> str:
    """Only the imports and function definitions of a cell (not the calls on the learner's answer)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
    return ast.unparse(tree)


def load(name: str) -> SimpleNamespace:
    """The functions of every code cell of a workshop notebook (parameters cell aside), in order: an exercise's
    solution replaces its empty exercise, and its check follows."""
    nb = jupytext.read(str(WORKSHOP / f"{name}.py"))
    ns = {"torch": torch, "math": math, "smkit": smkit, "tasks": tasks, "EPS": EPS, "SCHEDULES": SCHEDULES,
          "alpha": alpha}
    solutions = 0
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "parameters" in tags:
            continue
        exec(_defs(cell.source), ns)
        solutions += "solution" in tags
    assert solutions, f"{name}: no solution cells"
    return SimpleNamespace(**ns)


def fails(check, *args, hint: str | None = None, capsys=None) -> str:
    """The check raises its wrong-answer verdict; with `hint`, the printed output names the mistake."""
    with pytest.raises(AssertionError, match="not yet right"):
        check(*args)
    if capsys is not None:
        out = capsys.readouterr().out
        if hint is not None:
            assert "hint:" in out and hint in out, out
        return out
    return ""


def not_done(*_):
    raise NotImplementedError


def assert_not_done(check, *args, capsys):
    assert check(*args) is False
    assert "not done yet" in capsys.readouterr().out


# ---------------------------------------------------------------- 01 the forward process and the ELBO

@pytest.fixture(scope="module")
def nb01():
    return load("01-forward-process")


def test_01_loglinear_alpha(nb01, capsys):
    assert nb01.check_loglinear_alpha(nb01.loglinear_alpha) is True
    assert_not_done(nb01.check_loglinear_alpha, not_done, capsys=capsys)
    fails(nb01.check_loglinear_alpha, lambda t: 1 - t, hint="EPS", capsys=capsys)             # forgets EPS
    fails(nb01.check_loglinear_alpha, lambda t: t, hint="MASKED", capsys=capsys)              # masked share
    fails(nb01.check_loglinear_alpha, lambda t: EPS + (1 - EPS) * t, hint="rises", capsys=capsys)
    out = fails(nb01.check_loglinear_alpha, lambda t: alpha("loglinear", t), capsys=capsys)  # the library itself
    assert "calls smkit's" in out


def test_01_noise(nb01, tiny_model, capsys):
    m = tiny_model.eval()
    x0 = torch.randint(0, m.mask_id, (4, m.config.seq_len), generator=torch.Generator().manual_seed(0))
    assert nb01.check_noise(nb01.noise, m, x0) is True
    assert_not_done(nb01.check_noise, not_done, m, x0, capsys=capsys)

    def kept(x0, t, mask_id, g):
        masked = torch.rand(x0.shape, generator=g) < (1 - (1 - EPS) * t)[:, None]  # alpha, not 1 - alpha
        return torch.where(masked, torch.full_like(x0, mask_id), x0), masked

    fails(nb01.check_noise, kept, m, x0, hint="share KEPT", capsys=capsys)

    def one_per_block(x0, t, mask_id, g):
        masked = (torch.rand(len(x0), 1, generator=g) < (1 - EPS) * t[:, None]).expand(x0.shape)
        return torch.where(masked, torch.full_like(x0, mask_id), x0), masked

    fails(nb01.check_noise, one_per_block, m, x0, hint="one per token", capsys=capsys)

    def zeros_not_mask(x0, t, mask_id, g):
        x_t, masked = nb01.noise(x0, t, mask_id, g)
        return torch.where(masked, torch.zeros_like(x0), x0), masked

    out = fails(nb01.check_noise, zeros_not_mask, m, x0, capsys=capsys)
    assert "x_t:" in out and "entries differ" in out
    out = fails(nb01.check_noise, lambda x0, t, mask_id, g: m.noise(x0, t=t, generator=g)[:2], m, x0, capsys=capsys)
    assert "DiffusionLM.noise" in out


def test_01_batch_bound(nb01, tiny_model, capsys):
    m = tiny_model.eval()
    x0 = torch.randint(0, m.mask_id, (4, m.config.seq_len), generator=torch.Generator().manual_seed(0))
    assert nb01.check_batch_bound(nb01.batch_bound, m, x0) is True

    def nll(x0, logp):
        return -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)

    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float((nll(x0, logp) * masked).sum() / x0.numel()), m,
          x0, hint="no 1/t weight", capsys=capsys)
    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float((t[:, None] * nll(x0, logp) * masked).sum()
                                                                    / x0.numel()), m, x0, hint="not t", capsys=capsys)
    fails(nb01.check_batch_bound, lambda x0, masked, logp, t: float(((1 / t)[:, None] * nll(x0, logp) * masked).sum()
                                                                    / masked.sum()), m, x0, capsys=capsys)


def test_01_elbo_weight(nb01, capsys):
    assert nb01.check_elbo_weight(nb01.elbo_weight) is True

    def derivative(f, t):
        t = t.detach().clone().requires_grad_()
        return torch.autograd.grad(f(t).sum(), t)[0]

    fails(nb01.check_elbo_weight, lambda f, t: 1 / t, hint="log-linear schedule only", capsys=capsys)
    fails(nb01.check_elbo_weight, lambda f, t: -derivative(f, t), hint="divide -alpha' by 1 - alpha_t", capsys=capsys)
    fails(nb01.check_elbo_weight, lambda f, t: derivative(f, t) / (1 - f(t)), hint="minus sign", capsys=capsys)
    fails(nb01.check_elbo_weight, lambda f, t: -derivative(f, t) / f(t), hint="not by alpha_t", capsys=capsys)


# ---------------------------------------------------------------- 02 training

@pytest.fixture(scope="module")
def nb02():
    return load("02-train-tiny-mdlm")


def test_02_unigram_entropy(nb02, capsys):
    assert nb02.check_unigram_entropy(nb02.unigram_entropy) is True
    assert_not_done(nb02.check_unigram_entropy, not_done, capsys=capsys)

    def freqs(ids):
        f = torch.bincount(ids.flatten()).double()
        return f[f > 0] / f.sum()

    out = fails(nb02.check_unigram_entropy, lambda ids: float(-(freqs(ids) * freqs(ids).log2()).sum()),
                hint="bits", capsys=capsys)
    assert "1.443 times the expected" in out  # 1 / ln 2: the diff says by how much
    fails(nb02.check_unigram_entropy, lambda ids: math.log(len(freqs(ids))), hint="distinct ids", capsys=capsys)
    fails(nb02.check_unigram_entropy, lambda ids: math.log(int(ids.max()) + 1), hint="largest id", capsys=capsys)


def test_02_gap_in_standard_errors(nb02, capsys):
    assert nb02.check_gap(nb02.gap_in_standard_errors) is True
    x_mean = lambda x: float(torch.as_tensor(x).double().mean())  # noqa: E731
    x_std = lambda x, unbiased=True: float(torch.as_tensor(x).double().std(unbiased=unbiased))  # noqa: E731
    fails(nb02.check_gap, lambda x, ref: (ref - x_mean(x)) / x_std(x), hint="standard DEVIATIONS", capsys=capsys)
    fails(nb02.check_gap, lambda x, ref: (x_mean(x) - ref) / (x_std(x) / math.sqrt(len(x))), hint="the sign",
          capsys=capsys)
    fails(nb02.check_gap, lambda x, ref: (ref - x_mean(x)) / x_std(x) ** 2, hint="variance", capsys=capsys)
    fails(nb02.check_gap, lambda x, ref: (ref - x_mean(x)) / (x_std(x, False) / math.sqrt(len(x))),
          hint="population standard deviation", capsys=capsys)
    fails(nb02.check_gap, lambda x, ref: ref - x_mean(x), capsys=capsys)                           # no noise at all


# ---------------------------------------------------------------- 03 soft-masking

@pytest.fixture(scope="module")
def nb03():
    return load("03-soft-masking")


def test_03_lambda(nb03, capsys):
    assert nb03.check_lambda(nb03.my_lambda) is True
    assert_not_done(nb03.check_lambda, not_done, capsys=capsys)
    fails(nb03.check_lambda, lambda H, s, c, a: torch.sigmoid(a * (-H - c)), hint="never exceeds w_s", capsys=capsys)
    fails(nb03.check_lambda, lambda H, s, c, a: s * torch.sigmoid(a * (-H + c)), hint="sign of w_b", capsys=capsys)
    fails(nb03.check_lambda, lambda H, s, c, a: s * torch.sigmoid(a * (H - c)), hint="sign of H", capsys=capsys)
    fails(nb03.check_lambda, lambda H, s, c, a: torch.full_like(H, s), capsys=capsys)            # the gate wide open
    out = fails(nb03.check_lambda, lambda H, s, c, a: smkit.soft_mask_lambda(None, s, c, a, entropy=H), capsys=capsys)
    assert "soft_mask_lambda" in out


def test_03_superposition(nb03, capsys):
    assert nb03.check_superposition(nb03.superposition_weights) is True
    one = lambda lam: torch.tensor([1 - lam], dtype=torch.float64)  # noqa: E731
    fails(nb03.check_superposition, lambda p, lam: torch.cat([one(lam), lam * p]), hint="renormalise", capsys=capsys)
    fails(nb03.check_superposition, lambda p, lam: torch.cat([torch.tensor([lam]), (1 - lam) * p / p.sum()]),
          hint="not the other way round", capsys=capsys)
    fails(nb03.check_superposition, lambda p, lam: torch.ones(len(p) + 1), capsys=capsys)       # sums, not weights
    out = fails(nb03.check_superposition, lambda p, lam: lam * p / p.sum(), hint="the mask's", capsys=capsys)
    assert "got shape (3,), expected shape (4,)" in out


# ---------------------------------------------------------------- 04 samplers

@pytest.fixture(scope="module")
def nb04():
    return load("04-samplers")


def test_04_confidence_rule_and_its_ties(nb04, capsys):
    assert nb04.check_confidence_rule(nb04.pick_most_confident) is True
    assert_not_done(nb04.check_confidence_rule, not_done, capsys=capsys)

    def by_order(top1, candidates, n, key):
        order = sorted((i for i in range(len(top1)) if candidates[i]), key=key)[:n]
        out = torch.zeros_like(candidates)
        out[order] = True
        return out

    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, torch.ones_like(c), n, lambda i: (-t[i], i)),
          hint="only candidates", capsys=capsys)
    out = fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n, lambda i: (-t[i], -i)),
                hint="LOWER position", capsys=capsys)
    assert "a tie at the cut: the lowest positions win" in out and "at [" in out  # the case and where it differs
    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n, lambda i: (t[i], i)), hint="MOST confident",
          capsys=capsys)
    fails(nb04.check_confidence_rule, lambda t, c, n: by_order(t, c, n + 1, lambda i: (-t[i], i)), hint="exactly n",
          capsys=capsys)
    from smkit.core.strategies import top_n
    out = fails(nb04.check_confidence_rule, lambda t, c, n: top_n(t[None], c[None], torch.tensor([n]))[0],
                capsys=capsys)
    assert "top_n" in out


def test_04_sampler_matches_smkit_token_for_token(nb04, tiny_model, capsys):
    m = tiny_model.eval()
    assert nb04.check_sampler(nb04.my_sampler, m, length=16) is True
    assert_not_done(nb04.check_sampler, not_done, m, 16, capsys=capsys)

    def greedy(model, length, k, seed):
        x = torch.full((1, length), model.mask_id)
        for _ in range(length // k):
            with torch.no_grad():
                logp = model(x)[0]
            reveal = nb04.pick_most_confident(logp.max(-1).values.exp(), x[0] == model.mask_id, k)
            x[0, reveal] = logp[reveal].argmax(-1)
        return x[0], length // k

    fails(nb04.check_sampler, greedy, m, 16, hint="likeliest token", capsys=capsys)

    def extra_pass(model, length, k, seed):
        tokens, nfe = nb04.my_sampler(model, length, k, seed)
        return tokens, nfe + 1

    out = fails(nb04.check_sampler, extra_pass, m, 16, capsys=capsys)
    assert "NFE: yours" in out

    def wrong_generator(model, length, k, seed):
        gen = torch.Generator().manual_seed(seed)
        x = torch.full((1, length), model.mask_id)
        for _ in range(length // k):
            with torch.no_grad():
                logp = model(x)[0]
            reveal = nb04.pick_most_confident(logp.max(-1).values.exp(), x[0] == model.mask_id, k)
            x[0, reveal] = nb04.draw(logp[reveal], gen)
        return x[0], length // k

    out = fails(nb04.check_sampler, wrong_generator, m, 16, capsys=capsys)
    assert "tokens:" in out and "revealed at step" in out

    def library(model, length, k, seed):
        g = smkit.generate(model, length=length, steps=length // k, strategy="confidence", soft_mask=False, seed=seed)
        return g.tokens[0], g.nfe

    out = fails(nb04.check_sampler, library, m, 16, capsys=capsys)
    assert "calls smkit's" in out and "generate" in out


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
    cfg = smkit.ModelConfig(vocab_size=len(task.tokenizer()), seq_len=task.length, backbone=None)
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
    check = lambda rule: nb05.check_unmasking_rule(rule, model, task, n, 0, random_result, margin, name="test-rule")  # noqa: E731
    assert check(nb05.my_rule) is True
    assert_not_done(check, not_done, capsys=capsys)
    from smkit.core.strategies import top_n
    none = lambda v: torch.zeros_like(v.candidates)  # noqa: E731
    fails(check, lambda v: (top_n(torch.rand(v.candidates.shape), v.candidates, v.n_reveal), none(v)))  # random order
    out = fails(check, lambda v: (top_n(-v.top_probs[..., 0], v.candidates, v.n_reveal), none(v)), capsys=capsys)
    assert "or FEWER" in out                                                   # least confident first
    fails(check, lambda v: (top_n(-v.entropy * 0 - torch.arange(v.candidates.shape[1]).double(), v.candidates,
                                  v.n_reveal), none(v)))  # reading order, left to right


def test_05_a_model_that_cannot_separate_orders_is_not_judged(nb05, rules_solver, capsys):
    model, task = rules_solver
    weak = SimpleNamespace(accuracy=0.0, ci_low=0.0, ci_high=0.07, correct=[False] * 48)
    assert nb05.check_unmasking_rule(nb05.my_rule, model, task, 48, 0, weak, weak, name="test-rule") is False
    assert "cannot judge" in capsys.readouterr().out


def test_05_clashes_made_inside_one_step_are_counted(nb05, rules_solver):
    """Two cells of one row revealed in the same step with the same digit count as `inside`; a digit that repeats
    one already on the board counts as `against`."""
    model, task = rules_solver
    from smkit.core.trace import StepRecord, Trace
    vocab = task.tokenizer().get_vocab()
    mask = model.mask_id
    before = torch.full((1, 89), vocab["1"])
    before[0, 9::10] = vocab["\n"]
    before[0, [0, 1, 2, 12]] = mask
    after = before.clone()
    after[0, 0] = after[0, 1] = vocab["5"]       # row 1: two 5s in one step
    after[0, 2] = vocab["1"]                     # row 1 already holds 1s
    revealed = (before == mask) & (after != mask)
    rec = StepRecord(step=0, block=0, t=torch.ones(1), tokens=after, masked_before=before == mask, revealed=revealed,
                     remasked=torch.zeros_like(revealed), lam=None, entropy=None, topk_ids=None, topk_probs=None,
                     nfe=1, wall_time=0.0, fixed=before != mask, mask_id=mask)
    inside, against = nb05.clashes_made(Trace.from_records([rec]), mask)
    assert int(inside[0, 0]) == 2                # the two 5s share a row and a box: two pairs
    assert int(against[0, 0]) > 0                # the new 1 repeats the row's 1s
