"""Tests for grouprec.scratch: every hand-written backward against autograd, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grouprec import scratch as S

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` that autograd tracks (the scratch layers keep the original)."""
    return x.clone().requires_grad_(True)


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, name: str = "") -> None:
    c = S.cmp(name, ours, theirs)
    assert c.approx, str(c)


# ----------------------------------------------------------------------------- single layers


def test_linear_forward_and_backward_match_autograd():
    A = randn(5, 3, seed=1)
    layer = S.Linear(3, 4, generator=gen(2), dtype=F64)
    G = randn(5, 4, seed=3)  # a random upstream gradient, so no symmetry can hide a mistake
    Z = layer.forward(A)
    dA = layer.backward(G)

    A_, W_, b_ = leaf(A), leaf(layer.W), leaf(layer.b)
    Z_ = F.linear(A_, W_, b_)
    (Z_ * G).sum().backward()
    assert_close(Z, Z_, "Z")
    assert_close(dA, A_.grad, "dA")
    assert_close(layer.dW, W_.grad, "dW")
    assert_close(layer.db, b_.grad, "db")
    assert layer.dW.shape == layer.W.shape and layer.db.shape == layer.b.shape


@pytest.mark.parametrize("cls,fn", [(S.ReLU, torch.relu), (S.Sigmoid, torch.sigmoid)])
def test_activations_match_autograd(cls, fn):
    Z = randn(6, 4, seed=4)
    G = randn(6, 4, seed=5)
    layer = cls()
    A = layer.forward(Z)
    dZ = layer.backward(G)
    Z_ = leaf(Z)
    A_ = fn(Z_)
    (A_ * G).sum().backward()
    assert_close(A, A_, "A")
    assert_close(dZ, Z_.grad, "dZ")


def test_embedding_repeated_ids_accumulate():
    layer = S.Embedding(6, 3, generator=gen(6), dtype=F64)
    ids = torch.tensor([4, 1, 4, 4, 0])
    G = randn(5, 3, seed=7)
    X = layer.forward(ids)
    assert layer.backward(G) is None
    E_ = leaf(layer.E)
    (E_[ids] * G).sum().backward()
    assert_close(X, layer.E[ids], "X")
    assert_close(layer.dE, E_.grad, "dE")
    # Row 4 is the sum of the three rows that looked it up; untouched rows get exactly zero.
    assert torch.allclose(layer.dE[4], G[0] + G[2] + G[3])
    assert torch.equal(layer.dE[[2, 3, 5]], torch.zeros(3, 3, dtype=F64))
    # Assigning instead of adding (a common bug) loses two of the three contributions.
    wrong = torch.zeros_like(layer.E)
    wrong[ids] = G
    assert not S.cmp("dE", wrong, E_.grad).approx


def test_embedding_two_dimensional_ids():
    layer = S.Embedding(5, 2, generator=gen(8), dtype=F64)
    ids = torch.tensor([[0, 3, 3], [3, 1, 0]])
    G = randn(2, 3, 2, seed=9)
    X = layer.forward(ids)
    assert X.shape == (2, 3, 2)
    layer.backward(G)
    E_ = leaf(layer.E)
    (E_[ids] * G).sum().backward()
    assert_close(layer.dE, E_.grad, "dE")


@pytest.mark.parametrize("q_shape", [(4, 3), (4, 5, 3)])
def test_dot_matches_autograd(q_shape):
    P = randn(4, 3, seed=10)
    Q = randn(*q_shape, seed=11)
    layer = S.Dot()
    X = layer.forward(P, Q)
    G = randn(*X.shape, seed=12)
    dP, dQ = layer.backward(G)
    P_, Q_ = leaf(P), leaf(Q)
    X_ = (P_ * Q_).sum(-1) if Q.ndim == 2 else torch.einsum("bd,bcd->bc", P_, Q_)
    (X_ * G).sum().backward()
    assert_close(X, X_, "x")
    assert_close(dP, P_.grad, "dP")
    assert_close(dQ, Q_.grad, "dQ")


# ----------------------------------------------------------------------------- losses


def test_bce_with_logits_matches_torch_even_when_saturated():
    X = randn(7, 3, seed=13) * 4
    X[0, 0], X[1, 1] = 60.0, -60.0  # exp overflows in float32 here without the stable form
    y = (randn(7, 3, seed=14) > 0).to(F64)
    y[2, 2] = 0.3  # soft targets are allowed
    loss = S.BCEWithLogits()
    L = loss.forward(X, y)
    dX = loss.backward(2.5)  # a non-unit upstream gradient must scale the result
    X_ = leaf(X)
    L_ = F.binary_cross_entropy_with_logits(X_, y)
    (2.5 * L_).backward()
    assert_close(L, L_, "L")
    assert_close(dX, X_.grad, "dX")
    assert torch.isfinite(dX).all()


def test_bce_shortcut_is_prediction_minus_target():
    X = randn(10, seed=15)
    y = (randn(10, seed=16) > 0).to(F64)
    loss = S.BCEWithLogits()
    loss.forward(X, y)
    assert torch.allclose(loss.backward() * X.numel(), torch.sigmoid(X) - y)


def test_softmax_cross_entropy_matches_torch():
    X = randn(6, 9, seed=17) * 3
    X[0, 2] = 500.0  # would overflow exp() without the max shift
    y = torch.tensor([2, 0, 8, 8, 3, 1])
    loss = S.SoftmaxCrossEntropy()
    L = loss.forward(X, y)
    dX = loss.backward()
    X_ = leaf(X)
    F.cross_entropy(X_, y).backward()
    assert_close(L, F.cross_entropy(X, y), "L")
    assert_close(dX, X_.grad, "dX")
    assert torch.allclose(dX.sum(1), torch.zeros(6, dtype=F64), atol=1e-15)


def test_bpr_loss_matches_torch():
    X_ui, X_uj = randn(8, seed=18) * 3, randn(8, seed=19) * 3
    loss = S.BPRLoss()
    L = loss.forward(X_ui, X_uj)
    dX_ui, dX_uj = loss.backward()
    A_, B_ = leaf(X_ui), leaf(X_uj)
    L_ = -F.logsigmoid(A_ - B_).mean()
    L_.backward()
    assert_close(L, L_, "L")
    assert_close(dX_ui, A_.grad, "dX_ui")
    assert_close(dX_uj, B_.grad, "dX_uj")


# ----------------------------------------------------------------------------- finite differences


GRADCHECK_CASES = {
    "Linear": lambda: (S.Linear(3, 4, generator=gen(20), dtype=F64), (randn(5, 3, seed=21),)),
    "ReLU": lambda: (S.ReLU(), (randn(5, 4, seed=22),)),
    "Sigmoid": lambda: (S.Sigmoid(), (randn(5, 4, seed=23),)),
    "Embedding": lambda: (
        S.Embedding(6, 3, generator=gen(24), dtype=F64),
        (torch.tensor([5, 2, 5, 0]),),
    ),
    "Dot": lambda: (S.Dot(), (randn(4, 3, seed=25), randn(4, 2, 3, seed=26))),
    "BCEWithLogits": lambda: (
        S.BCEWithLogits(),
        (randn(4, 3, seed=27), (randn(4, 3, seed=28) > 0).to(F64)),
    ),
    "SoftmaxCrossEntropy": lambda: (
        S.SoftmaxCrossEntropy(),
        (randn(4, 5, seed=29), torch.tensor([4, 0, 0, 2])),
    ),
    "BPRLoss": lambda: (S.BPRLoss(), (randn(6, seed=30), randn(6, seed=31))),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_gradcheck_against_finite_differences(name):
    layer, inputs = GRADCHECK_CASES[name]()
    differentiable = {"BCEWithLogits": 1, "SoftmaxCrossEntropy": 1, "Embedding": 0}
    k = differentiable.get(name, len(inputs))
    args = [leaf(x) if i < k else x for i, x in enumerate(inputs)]
    args += [leaf(p) for p in layer.parameters()]
    f = S.autograd_function(layer)
    assert torch.autograd.gradcheck(f, tuple(args), eps=1e-6, atol=1e-7)


def test_autograd_function_refuses_a_model():
    with pytest.raises(TypeError, match="single layer"):
        S.autograd_function(S.MLP([2, 3, 1]))
    with pytest.raises(TypeError, match="single layer"):
        S.autograd_function(S.MatrixFactorization(3, 4, 2))


def test_gradcheck_catches_a_wrong_backward():
    class ForgetsDerivative(S.Sigmoid):
        """The source text's mistake: the element-wise product with f'(Z) is dropped."""

        def backward(self, dA):
            return dA

    f = S.autograd_function(ForgetsDerivative())
    assert not torch.autograd.gradcheck(f, (leaf(randn(3, 2, seed=32)),), raise_exception=False)


# ----------------------------------------------------------------------------- models


def torch_mlp(model: S.MLP, activation) -> torch.nn.Sequential:
    """The same network written with torch.nn, with copies of the scratch model's weights."""
    modules = []
    for layer in model.layers:
        if isinstance(layer, S.Linear):
            lin = torch.nn.Linear(layer.W.shape[1], layer.W.shape[0], dtype=layer.W.dtype)
            with torch.no_grad():
                lin.weight.copy_(layer.W)
                lin.bias.copy_(layer.b)
            modules.append(lin)
        else:
            modules.append(activation())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_backward_matches_autograd(activation):
    model = S.MLP([5, 7, 6, 2], activation=activation, generator=gen(33), dtype=F64)
    ref = torch_mlp(model, {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[activation])
    X = randn(9, 5, seed=34)
    G = randn(9, 2, seed=35)
    out = model.forward(X)
    dX = model.backward(G)
    X_ = leaf(X)
    out_ = ref(X_)
    (out_ * G).sum().backward()
    assert_close(out, out_, "logits")
    assert_close(dX, X_.grad, "dX")
    theirs = [p.grad for p in ref.parameters()]
    assert len(model.grads()) == len(theirs) == 6
    for k, (g, g_) in enumerate(zip(model.grads(), theirs, strict=True)):
        assert_close(g, g_, f"param {k}")


class TorchMF(torch.nn.Module):
    """Reference matrix factorisation with nn.Embedding, initialised from a scratch model."""

    def __init__(self, model: S.MatrixFactorization) -> None:
        super().__init__()
        self.P = torch.nn.Embedding.from_pretrained(model.P.E.clone(), freeze=False)
        self.Q = torch.nn.Embedding.from_pretrained(model.Q.E.clone(), freeze=False)
        self.beta = torch.nn.Embedding.from_pretrained(model.beta.E.clone(), freeze=False)

    def forward(self, u, items):
        p = self.P(u)
        q = self.Q(items)
        x = (p * q).sum(-1) if items.ndim == 1 else torch.einsum("bd,bcd->bc", p, q)
        return x + self.beta(items)[..., 0]


def test_matrix_factorization_backward_matches_autograd_with_repeats():
    model = S.MatrixFactorization(4, 6, 3, generator=gen(36), dtype=F64)
    ref = TorchMF(model)
    u = torch.tensor([1, 3, 1, 1, 0])
    items = torch.tensor([[2, 5], [2, 0], [4, 2], [5, 5], [1, 3]])  # repeated users and items
    G = randn(5, 2, seed=37)
    X = model.forward(u, items)
    model.backward(G)
    (ref(u, items) * G).sum().backward()
    assert_close(X, ref(u, items), "x")
    for name, g, g_ in zip(
        ["dP", "dQ", "dbeta"],
        model.grads(),
        [ref.P.weight.grad, ref.Q.weight.grad, ref.beta.weight.grad],
        strict=True,
    ):
        assert_close(g, g_, name)


def test_matrix_factorization_without_bias_and_one_item_per_row():
    model = S.MatrixFactorization(3, 4, 2, item_bias=False, generator=gen(38), dtype=F64)
    u, i = torch.tensor([0, 2, 2]), torch.tensor([3, 3, 1])
    X = model.forward(u, i)
    assert torch.allclose(X, (model.P.E[u] * model.Q.E[i]).sum(-1))
    model.backward(torch.ones(3, dtype=F64))
    assert len(model.parameters()) == len(model.grads()) == 2


# ----------------------------------------------------------------------------- optimisers


def _grads_sequence(shapes, n_steps, seed):
    g = gen(seed)
    return [[torch.randn(*s, generator=g, dtype=F64) for s in shapes] for _ in range(n_steps)]


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch(weight_decay):
    shapes = [(4, 3), (3,)]
    params = [randn(*s, seed=40 + k) for k, s in enumerate(shapes)]
    ref = [leaf(p) for p in params]
    ours = S.Adam(params, lr=0.01, betas=(0.8, 0.95), eps=1e-7, weight_decay=weight_decay)
    theirs = torch.optim.Adam(ref, lr=0.01, betas=(0.8, 0.95), eps=1e-7, weight_decay=weight_decay)
    for step, grads in enumerate(_grads_sequence(shapes, 5, seed=42)):
        ours.step(grads)
        for p, g in zip(ref, grads, strict=True):
            p.grad = g.clone()
        theirs.step()
        for p, p_ in zip(params, ref, strict=True):
            # detached: only the values are compared, no graph is needed
            assert (p - p_.detach()).abs().max() < 1e-7, f"step {step + 1}"
    assert ours.t == 5


def test_sgd_matches_torch():
    params = [randn(3, 2, seed=43)]
    ref = [leaf(params[0])]
    ours = S.SGD(params, lr=0.1, weight_decay=0.05)
    theirs = torch.optim.SGD(ref, lr=0.1, weight_decay=0.05)
    for grads in _grads_sequence([(3, 2)], 3, seed=44):
        ours.step(grads)
        ref[0].grad = grads[0].clone()
        theirs.step()
    assert_close(params[0], ref[0], "theta")


def test_one_mf_bpr_adam_step_equals_pytorch():
    model = S.MatrixFactorization(5, 8, 4, generator=gen(45), dtype=F64)
    ref = TorchMF(model)
    u = torch.tensor([0, 4, 4, 2, 0, 1])
    i = torch.tensor([1, 1, 6, 7, 3, 1])
    j = torch.tensor([2, 0, 2, 5, 6, 1])  # includes j == i for one row: the loss is then log 2
    loss, opt = S.BPRLoss(), S.Adam(model.parameters(), lr=0.05, weight_decay=1e-3)
    opt_ = torch.optim.Adam(ref.parameters(), lr=0.05, weight_decay=1e-3)

    X = model.forward(u, torch.stack([i, j], 1))  # (B, 2)
    L = loss.forward(X[:, 0], X[:, 1])
    dX_ui, dX_uj = loss.backward()
    model.backward(torch.stack([dX_ui, dX_uj], 1))
    opt.step(model.grads())

    X_ = ref(u, torch.stack([i, j], 1))
    L_ = -F.logsigmoid(X_[:, 0] - X_[:, 1]).mean()
    opt_.zero_grad()
    L_.backward()
    opt_.step()

    assert_close(L, L_, "L")
    for p, p_ in zip(model.parameters(), ref.parameters(), strict=True):
        assert_close(p, p_, "param after step")


def test_one_mlp_bce_sgd_step_equals_pytorch():
    model = S.MLP([4, 8, 1], generator=gen(46), dtype=F64)
    ref = torch_mlp(model, torch.nn.ReLU)
    X = randn(10, 4, seed=47)
    y = (randn(10, 1, seed=48) > 0).to(F64)
    loss, opt = S.BCEWithLogits(), S.SGD(model.parameters(), lr=0.5)
    opt_ = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(3):
        L = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step(model.grads())
        L_ = F.binary_cross_entropy_with_logits(ref(X), y)
        opt_.zero_grad()
        L_.backward()
        opt_.step()
        assert_close(L, L_, "L")
    for p, p_ in zip(model.parameters(), ref.parameters(), strict=True):
        assert_close(p, p_, "param after 3 steps")


def test_bpr_training_learns_a_planted_preference():
    # Users 0-9 like items 0-9, users 10-19 like items 10-19; BPR must learn to rank that way.
    rng = np.random.default_rng(0)
    n_users, n_items = 20, 20
    model = S.MatrixFactorization(n_users, n_items, 4, generator=gen(49), dtype=F64)
    loss, opt = S.BPRLoss(), S.Adam(model.parameters(), lr=0.05)
    u = torch.from_numpy(rng.integers(n_users, size=(200, 64)))
    half = (u >= 10).long() * 10
    i = torch.from_numpy(rng.integers(10, size=(200, 64))) + half
    j = torch.from_numpy(rng.integers(10, size=(200, 64))) + (10 - half)
    losses = []
    for t in range(200):
        X = model.forward(u[t], torch.stack([i[t], j[t]], 1))
        losses.append(float(loss.forward(X[:, 0], X[:, 1])))
        model.backward(torch.stack(loss.backward(), 1))
        opt.step(model.grads())
    assert losses[0] == pytest.approx(np.log(2), abs=0.05)
    assert np.mean(losses[-10:]) < 0.1
    scores = model.P.E @ model.Q.E.T + model.beta.E.T  # (n_users, n_items)
    assert (scores[:10, :10].mean() > scores[:10, 10:].mean()) and (
        scores[10:, 10:].mean() > scores[10:, :10].mean()
    )


# ----------------------------------------------------------------------------- dtypes, seeds


def test_float32_agrees_with_float64():
    m64 = S.MLP([3, 5, 1], generator=gen(50), dtype=F64)
    m32 = S.MLP([3, 5, 1], generator=gen(50), dtype=torch.float32)
    X = randn(4, 3, seed=51)
    out64, out32 = m64.forward(X), m32.forward(X.float())
    assert out32.dtype == torch.float32
    m64.backward(torch.ones(4, 1, dtype=F64))
    m32.backward(torch.ones(4, 1))
    assert torch.allclose(out32.double(), out64, atol=1e-5)
    for g32, g64 in zip(m32.grads(), m64.grads(), strict=True):
        assert g32.dtype == torch.float32
        assert torch.allclose(g32.double(), g64, atol=1e-5)


def test_same_generator_seed_same_initialisation():
    a = S.MatrixFactorization(5, 7, 3, generator=gen(52))
    b = S.MatrixFactorization(5, 7, 3, generator=gen(52))
    c = S.MatrixFactorization(5, 7, 3, generator=gen(53))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.P.E, c.P.E)


def test_initialisation_is_not_symmetric_or_zero():
    layer = S.Linear(4, 3, generator=gen(54))
    assert (layer.W != 0).all() and (layer.b != 0).all()
    assert torch.unique(layer.W).numel() == layer.W.numel()


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 6),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_linear_matrix_identities_for_any_shape(B, n_in, n_out, seed):
    layer = S.Linear(n_in, n_out, generator=gen(seed), dtype=F64)
    A = randn(B, n_in, seed=seed + 1)
    Delta = randn(B, n_out, seed=seed + 2)
    layer.forward(A)
    dA = layer.backward(Delta)
    assert torch.allclose(layer.dW, Delta.T @ A)
    assert torch.allclose(layer.db, Delta.T @ torch.ones(B, dtype=F64))
    assert torch.allclose(dA, Delta @ layer.W)


# ----------------------------------------------------------------------------- helpers, errors


def test_cmp_reports_exact_approx_and_difference():
    x = randn(3, 3, seed=55)
    same = S.cmp("same", x, x.clone())
    assert same.exact and same.approx and same.max_abs_diff == 0.0
    off = S.cmp("off", x + 1e-3, x)
    assert not off.exact and not off.approx and off.max_abs_diff == pytest.approx(1e-3)
    assert "approx: False" in str(off)
    frame = S.comparison_frame([same, off])
    assert list(frame.columns) == ["name", "exact", "approx", "max_abs_diff"]
    with pytest.raises(ValueError, match="shapes differ"):
        S.cmp("bad", x, x[:2])
    with pytest.raises(ValueError, match="None"):
        S.cmp("none", x, None)


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match="before forward"):
        S.Linear(2, 2).backward(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"A must have shape \(B, 3\)"):
        S.Linear(3, 2).forward(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        S.ReLU().forward(torch.zeros(2, dtype=torch.int64))
    with pytest.raises(IndexError, match="id 9"):
        S.Embedding(5, 2).forward(torch.tensor([0, 9]))
    with pytest.raises(IndexError, match="id -1"):
        S.Embedding(5, 2).forward(torch.tensor([-1]))
    with pytest.raises(ValueError, match=r"y must lie in \[0, 1\]"):
        S.BCEWithLogits().forward(torch.zeros(2), torch.tensor([0.0, 2.0]))
    with pytest.raises(IndexError, match="y holds id 5"):
        S.SoftmaxCrossEntropy().forward(torch.zeros(2, 5), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="y_ui must have the shape of y_uj"):
        S.BPRLoss().forward(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="activation"):
        S.MLP([2, 2], activation="tanh")
    with pytest.raises(RuntimeError, match="call backward"):
        S.Linear(2, 2).grads()
    layer = S.Linear(3, 2)
    layer.forward(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dZ must have the shape of Z"):
        layer.backward(torch.zeros(4, 3))


def test_optimiser_errors():
    p = [torch.zeros(2, 2)]
    with pytest.raises(ValueError, match="lr must be positive"):
        S.SGD(p, lr=0.0)
    with pytest.raises(ValueError, match="2 gradients for 1 parameters"):
        S.Adam(p).step([torch.zeros(2, 2), torch.zeros(1)])
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(3,\)"):
        S.Adam(p).step([torch.zeros(3)])
    with pytest.raises(ValueError, match="betas"):
        S.Adam(p, betas=(1.0, 0.9))
