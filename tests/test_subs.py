"""`subs` (SUBS log-probabilities) computed cheaply equals the plain definition, values and gradients, and leaves
its input alone unless asked."""
import pytest
import torch

from smkit.models.denoiser import subs


def reference(logits, ids, mask_id, n_tokens=None):
    """The definition, written the obvious way: excluded columns at -inf, log-softmax, one-hot carry where unmasked."""
    logits = logits.clone()
    logits[..., mask_id] = float("-inf")
    if n_tokens is not None:
        logits[..., n_tokens:] = float("-inf")
    logp = torch.log_softmax(logits, -1)
    carry = torch.full_like(logp, float("-inf")).scatter_(-1, ids.unsqueeze(-1), 0.0)
    return torch.where((ids != mask_id).unsqueeze(-1), carry, logp)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 13, generator=gen)
    ids = torch.randint(0, 11, (3, 9), generator=gen)
    ids[:, ::2] = 12
    return logits, ids


@pytest.mark.parametrize("n_tokens", [None, 11])
def test_values_match_the_definition(batch, n_tokens):
    logits, ids = batch
    assert torch.equal(subs(logits, ids, 12, n_tokens), reference(logits, ids, 12, n_tokens))
    strided = logits.transpose(0, 1).contiguous().transpose(0, 1)      # not contiguous
    assert torch.equal(subs(strided, ids, 12, n_tokens), reference(logits, ids, 12, n_tokens))


def test_input_kept_unless_inplace(batch):
    logits, ids = batch
    before = logits.clone()
    subs(logits, ids, 12)
    assert torch.equal(logits, before)
    subs(logits, ids, 12, inplace=True)
    assert torch.isneginf(logits[..., 12]).all()


@pytest.mark.parametrize("n_tokens", [None, 11])
def test_gradients_match_the_definition(batch, n_tokens):
    logits, ids = batch
    ours = logits.clone().requires_grad_()
    theirs = logits.clone().requires_grad_()
    target = torch.randint(0, 11, ids.shape, generator=torch.Generator().manual_seed(1))
    for x, fn in ((ours, lambda x: subs(x * 1, ids, 12, n_tokens, inplace=True)),
                  (theirs, lambda x: reference(x, ids, 12, n_tokens))):
        out = fn(x)
        out.gather(-1, target.unsqueeze(-1)).squeeze(-1)[ids == 12].sum().backward()
    assert torch.allclose(ours.grad, theirs.grad)
