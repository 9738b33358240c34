"""Forward/backward stage: layers whose backward pass is written by hand (notebook ``03_backprop``).

Every operation is a small class. ``forward(...)`` computes the output and keeps what the backward
pass needs; ``backward(dout)`` takes the gradient of the loss with respect to the output and
returns the gradients with respect to the inputs, storing the parameter gradients next to the
parameters (``W`` and ``dW``, ``b`` and ``db``, ``E`` and ``dE``). Nothing here uses autograd:
all layers work on plain torch tensors (float32 or float64), so their results can be compared
directly with ``torch.autograd``.

Notation (rows are examples; ``W`` is stored (n_out, n_in), as in ``torch.nn.Linear``; the book
keeps lowercase ``z`` for GAN noise)::

    Z = A Wᵀ + 1 bᵀ          pre-activation            (B, n_out)
    A' = φ(Z)                activation                (B, n_out)
    Delta = dA' ⊙ φ'(Z)      gradient at Z             (B, n_out)
    dW = Deltaᵀ A,  db = Deltaᵀ 1,  dA = Delta W

Backward calls overwrite (they do not accumulate) the stored parameter gradients, and each layer
remembers only its latest forward call: use one layer once per forward pass.

References: Rumelhart, Hinton & Williams (1986) for back-propagation; Rendle et al. (2009) for
BPR; Koren, Bell & Volinsky (2009) for matrix factorisation; Kingma & Ba (2015) for Adam.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

__all__ = [
    "Adam",
    "BCEWithLogits",
    "BPRLoss",
    "Comparison",
    "Dot",
    "Embedding",
    "Layer",
    "Linear",
    "MLP",
    "MatrixFactorization",
    "ReLU",
    "SGD",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "autograd_function",
    "cmp",
    "comparison_frame",
]


# --------------------------------------------------------------------------------------------
# Base class and checks
# --------------------------------------------------------------------------------------------


class Layer:
    """An operation with a hand-written backward pass.

    Subclasses list their parameters in ``param_names``; the gradient of parameter ``X`` is the
    attribute ``dX``, written by :meth:`backward`.
    """

    param_names: tuple[str, ...] = ()

    def forward(self, *inputs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, *inputs):
        return self.forward(*inputs)

    def parameters(self) -> list[Tensor]:
        """The parameter tensors, in the order of ``param_names``."""
        return [getattr(self, name) for name in self.param_names]

    def grads(self) -> list[Tensor]:
        """The gradients of the latest backward call, in the order of :meth:`parameters`."""
        out = []
        for name in self.param_names:
            grad = getattr(self, "d" + name, None)
            if grad is None:
                raise RuntimeError(
                    f"{type(self).__name__}.d{name} does not exist yet: call backward() first"
                )
            out.append(grad)
        return out

    def _cached(self, name: str) -> Tensor:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                f"there is no cached {name!r}"
            )
        return value


def _check_float(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def _check_ids(name: str, ids: Tensor, n: int) -> None:
    if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32):
        got = ids.dtype if isinstance(ids, Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer torch.Tensor of ids, got {got}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise IndexError(f"{name} holds id {bad}, outside 0..{n - 1}")


def _same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    _expect_shape(name_a, a, tuple(b.shape), f"the shape of {name_b}")


def _expect_shape(name: str, x: Tensor, shape: tuple[int, ...], what: str = "shape") -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have {what} {tuple(shape)}, got {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


class Linear(Layer):
    """Affine map on a batch whose rows are examples: ``Z = A Wᵀ + 1 bᵀ``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths; ``W`` has shape (n_out, n_in) and ``b`` shape (n_out,).
    generator : torch.Generator, optional
        Source of the initial values, drawn uniformly from ``(-1/sqrt(n_in), 1/sqrt(n_in))``
        for both ``W`` and ``b`` (non-zero and non-symmetric, so a wrong backward cannot hide).
    dtype : torch.dtype
        Floating-point type of the parameters.
    """

    param_names = ("W", "b")

    def __init__(
        self,
        n_in: int,
        n_out: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if n_in < 1 or n_out < 1:
            raise ValueError(f"n_in and n_out must be positive, got n_in={n_in}, n_out={n_out}")
        bound = 1.0 / math.sqrt(n_in)
        # Drawn in float64 and then cast, so the same generator seed gives the same values in
        # every dtype (up to rounding).
        W = (torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(n_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        self.W, self.b = W.to(dtype), b.to(dtype)
        self.A: Tensor | None = None

    @torch.no_grad()
    def forward(self, A: Tensor) -> Tensor:
        """``Z = A Wᵀ + 1 bᵀ`` for ``A`` of shape (B, n_in); returns Z (B, n_out)."""
        _check_float("A", A)
        if A.ndim != 2 or A.shape[1] != self.W.shape[1]:
            raise ValueError(
                f"A must have shape (B, {self.W.shape[1]}) (rows are examples), "
                f"got {tuple(A.shape)}"
            )
        self.A = A  # (B, n_in), needed for dW
        return A @ self.W.T + self.b  # (B, n_out); `+ b` broadcasts 1 bᵀ

    @torch.no_grad()
    def backward(self, dZ: Tensor) -> Tensor:
        """From ``dZ = ∂L/∂Z`` (B, n_out): store ``dW = dZᵀ A``, ``db = dZᵀ 1``; return ``dZ W``."""
        A = self._cached("A")
        _expect_shape("dZ", dZ, (A.shape[0], self.W.shape[0]), "the shape of Z")
        self.dW = dZ.T @ A  # (n_out, n_in)
        self.db = dZ.sum(0)  # (n_out,) = dZᵀ 1
        return dZ @ self.W  # (B, n_in)


class ReLU(Layer):
    """``A = max(Z, 0)`` element-wise; ``φ'(Z) = 1[Z > 0]``."""

    def __init__(self) -> None:
        self.Z: Tensor | None = None

    @torch.no_grad()
    def forward(self, Z: Tensor) -> Tensor:
        """Element-wise ``max(Z, 0)``."""
        _check_float("Z", Z)
        self.Z = Z
        return Z.clamp(min=0)

    @torch.no_grad()
    def backward(self, dA: Tensor) -> Tensor:
        """``dZ = dA ⊙ 1[Z > 0]``."""
        Z = self._cached("Z")
        _same_shape("dA", dA, "Z", Z)
        return dA * (Z > 0).to(dA.dtype)


class Sigmoid(Layer):
    """``A = σ(Z) = 1 / (1 + exp(-Z))`` element-wise; ``φ'(Z) = σ(Z)(1 - σ(Z))``."""

    def __init__(self) -> None:
        self.S: Tensor | None = None

    @torch.no_grad()
    def forward(self, Z: Tensor) -> Tensor:
        """Element-wise logistic function."""
        _check_float("Z", Z)
        self.S = torch.sigmoid(Z)  # kept: the derivative is written in terms of the output
        return self.S

    @torch.no_grad()
    def backward(self, dA: Tensor) -> Tensor:
        """``dZ = dA ⊙ σ(Z) ⊙ (1 - σ(Z))``."""
        S = self._cached("S")
        _same_shape("dA", dA, "σ(Z)", S)
        return dA * S * (1 - S)


class Embedding(Layer):
    """Row lookup ``X = E[ids]``; the backward pass scatter-adds rows into ``dE``.

    Looking up rows is multiplying by a one-hot selection matrix ``S`` (n_ids, n): ``X = S E``.
    Hence ``dE = Sᵀ dX``: row ``r`` of ``dE`` is the sum of the rows of ``dX`` whose id is ``r``,
    so an id that appears twice in a batch receives both contributions.

    Parameters
    ----------
    n, d : int
        Number of rows (ids ``0 .. n - 1``) and their width; ``E`` has shape (n, d).
    std : float
        Standard deviation of the normal initialisation.
    generator : torch.Generator, optional
        Source of the initial values.
    dtype : torch.dtype
        Floating-point type of the table.
    """

    param_names = ("E",)

    def __init__(
        self,
        n: int,
        d: int,
        std: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if n < 1 or d < 1:
            raise ValueError(f"n and d must be positive, got n={n}, d={d}")
        # Drawn in float64 and then cast, as in Linear.
        self.E = (torch.randn(n, d, generator=generator, dtype=torch.float64) * std).to(dtype)
        self.ids: Tensor | None = None

    @torch.no_grad()
    def forward(self, ids: Tensor) -> Tensor:
        """Rows of ``E`` for integer ``ids`` of any shape; returns shape ``ids.shape + (d,)``."""
        _check_ids("ids", ids, self.E.shape[0])
        self.ids = ids
        return self.E[ids]

    @torch.no_grad()
    def backward(self, dX: Tensor) -> None:
        """Store ``dE`` (n, d), the scatter-add of ``dX`` over ``ids``; ids have no gradient."""
        ids = self._cached("ids")
        expected = (*ids.shape, self.E.shape[1])
        if tuple(dX.shape) != expected:
            raise ValueError(f"dX must have shape {expected}, got {tuple(dX.shape)}")
        self.dE = torch.zeros_like(self.E).index_add_(
            0, ids.reshape(-1), dX.reshape(-1, self.E.shape[1])
        )  # (n, d); a repeated id accumulates
        return None


class Dot(Layer):
    """Dot-product scores ``ŷ = p · q`` along the last axis.

    ``P`` has shape (B, d); ``Q`` has shape (B, d) (one item per row, scores (B,)) or (B, c, d)
    (c candidate items per row, scores (B, c), ``P`` broadcast over the candidates).
    """

    def __init__(self) -> None:
        self.P: Tensor | None = None
        self.Q: Tensor | None = None

    @torch.no_grad()
    def forward(self, P: Tensor, Q: Tensor) -> Tensor:
        """Scores ``ŷ_b = P_b · Q_b`` (B,) or ``ŷ_bc = P_b · Q_bc`` (B, c)."""
        _check_float("P", P)
        _check_float("Q", Q)
        if P.ndim != 2 or Q.ndim not in (2, 3) or Q.shape[0] != P.shape[0]:
            raise ValueError(
                f"P must be (B, d) and Q (B, d) or (B, c, d), got P {tuple(P.shape)} "
                f"and Q {tuple(Q.shape)}"
            )
        if Q.shape[-1] != P.shape[-1]:
            raise ValueError(f"P and Q must share d, got {P.shape[-1]} and {Q.shape[-1]}")
        self.P, self.Q = P, Q
        P_ = P if Q.ndim == 2 else P[:, None, :]  # (B, d) or (B, 1, d)
        return (P_ * Q).sum(-1)

    @torch.no_grad()
    def backward(self, dY: Tensor) -> tuple[Tensor, Tensor]:
        """``dP = Σ_c dŷ_c q_c`` and ``dQ = dŷ ⊗ p``; returns (dP, dQ)."""
        P, Q = self._cached("P"), self._cached("Q")
        _expect_shape("dY", dY, tuple(Q.shape[:-1]), "the shape of the scores")
        if Q.ndim == 2:
            return dY[:, None] * Q, dY[:, None] * P  # (B, d), (B, d)
        dP = (dY[:, :, None] * Q).sum(1)  # (B, d): P was used once per candidate
        dQ = dY[:, :, None] * P[:, None, :]  # (B, c, d)
        return dP, dQ


# --------------------------------------------------------------------------------------------
# Losses: forward returns a scalar; backward(dL) returns the gradient of the scores
# --------------------------------------------------------------------------------------------


def _softplus(X: Tensor) -> Tensor:
    """``log(1 + exp(X))`` without overflow: ``max(X, 0) + log1p(exp(-|X|))``."""
    return X.clamp(min=0) + torch.log1p(torch.exp(-X.abs()))


class BCEWithLogits(Layer):
    """Binary cross-entropy on logits, averaged over all elements.

    ``L = mean(-y log σ(x) - (1 - y) log(1 - σ(x))) = mean(softplus(x) - y x)``, and
    ``∂L/∂x = (σ(x) - y) / N``: the sigmoid's derivative cancels the loss's denominator.
    """

    def __init__(self) -> None:
        self.X: Tensor | None = None
        self.y: Tensor | None = None

    @torch.no_grad()
    def forward(self, X: Tensor, y: Tensor) -> Tensor:
        """Mean loss of logits ``X`` against targets ``y`` in [0, 1] of the same shape."""
        _check_float("X", X)
        _check_float("y", y)
        _same_shape("X", X, "y", y)
        if y.numel() and (float(y.min()) < 0 or float(y.max()) > 1):
            raise ValueError(
                f"y must lie in [0, 1], got values in [{float(y.min())}, {float(y.max())}]"
            )
        self.X, self.y = X, y
        return (_softplus(X) - y * X).mean()

    @torch.no_grad()
    def backward(self, dL: float | Tensor = 1.0) -> Tensor:
        """``dX = dL (σ(X) - y) / N``."""
        X, y = self._cached("X"), self._cached("y")
        return dL * (torch.sigmoid(X) - y) / X.numel()


class SoftmaxCrossEntropy(Layer):
    """Softmax cross-entropy over C classes, averaged over the batch.

    ``L = -(1/B) Σ_b log softmax(X_b)[y_b]``, and ``∂L/∂X = (softmax(X) - Y) / B`` with ``Y``
    the one-hot targets.
    """

    def __init__(self) -> None:
        self.Pr: Tensor | None = None
        self.y: Tensor | None = None

    @torch.no_grad()
    def forward(self, X: Tensor, y: Tensor) -> Tensor:
        """Mean loss of logits ``X`` (B, C) against class ids ``y`` (B,)."""
        _check_float("X", X)
        if X.ndim != 2:
            raise ValueError(f"X must have shape (B, C), got {tuple(X.shape)}")
        _check_ids("y", y, X.shape[1])
        if y.shape != X.shape[:1]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")
        shifted = X - X.max(dim=1, keepdim=True).values  # (B, C); the max cancels, exp ≤ 1
        log_Pr = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))  # (B, C)
        self.Pr, self.y = torch.exp(log_Pr), y
        return -log_Pr.gather(1, y[:, None]).mean()

    @torch.no_grad()
    def backward(self, dL: float | Tensor = 1.0) -> Tensor:
        """``dX = dL (softmax(X) - Y) / B``."""
        Pr, y = self._cached("Pr"), self._cached("y")
        dX = Pr.clone()
        dX[torch.arange(len(y)), y] -= 1  # softmax - one-hot
        return dL * dX / len(y)


class BPRLoss(Layer):
    """Bayesian personalised ranking loss (Rendle et al., 2009), averaged over the pairs.

    With ``x̂_uij = ŷ_ui - ŷ_uj`` (positive minus negative score),
    ``L = -mean log σ(x̂_uij) = mean softplus(-x̂_uij)`` and
    ``∂L/∂ŷ_ui = -σ(-x̂_uij) / N = -∂L/∂ŷ_uj``.
    """

    def __init__(self) -> None:
        self.x_uij: Tensor | None = None

    @torch.no_grad()
    def forward(self, y_ui: Tensor, y_uj: Tensor) -> Tensor:
        """Mean loss of positive scores ``y_ui`` against negative scores ``y_uj`` (same shape)."""
        _check_float("y_ui", y_ui)
        _check_float("y_uj", y_uj)
        _same_shape("y_ui", y_ui, "y_uj", y_uj)
        self.x_uij = y_ui - y_uj
        return _softplus(-self.x_uij).mean()

    @torch.no_grad()
    def backward(self, dL: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        """Returns ``(dy_ui, dy_uj)``, with ``dy_ui = -dL σ(-x̂_uij) / N`` and ``dy_uj = -dy_ui``."""
        x_uij = self._cached("x_uij")
        dy_ui = -dL * torch.sigmoid(-x_uij) / x_uij.numel()
        return dy_ui, -dy_ui


# --------------------------------------------------------------------------------------------
# Models built from the layers
# --------------------------------------------------------------------------------------------


class MLP(Layer):
    """A stack ``Linear → φ → Linear → φ → … → Linear`` that outputs logits.

    ``backward`` is the recursion of back-propagation: each layer turns the gradient at its
    output into the gradient at its input, from the last layer to the first.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``[n_0, n_1, ..., n_L]``: input width, hidden widths, output width.
    activation : {"relu", "sigmoid"}
        The hidden non-linearity ``φ``.
    generator : torch.Generator, optional
        Source of the initial values.
    dtype : torch.dtype
        Floating-point type of the parameters.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
        kinds = {"relu": ReLU, "sigmoid": Sigmoid}
        if activation not in kinds:
            raise ValueError(f"activation must be one of {sorted(kinds)}, got {activation!r}")
        self.layers: list[Layer] = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.layers.append(Linear(n_in, n_out, generator=generator, dtype=dtype))
            if k < len(sizes) - 2:
                self.layers.append(kinds[activation]())

    def forward(self, X: Tensor) -> Tensor:
        """Logits (B, n_L) for inputs ``X`` (B, n_0)."""
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dout: Tensor) -> Tensor:
        """Gradient with respect to the input, from the gradient ``dout`` at the logits."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> list[Tensor]:
        """Every layer's parameters, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def grads(self) -> list[Tensor]:
        """Every layer's parameter gradients, in the order of :meth:`parameters`."""
        return [g for layer in self.layers for g in layer.grads()]


class MatrixFactorization(Layer):
    """Matrix factorisation scores ``ŷ_ui = p_u · q_i + β_i`` (Koren, Bell & Volinsky, 2009).

    ``P`` (n_users, d) and ``Q`` (n_items, d) are the user and item factors and ``β``
    (n_items, 1) the item biases; each is an :class:`Embedding`, so their tables are
    ``model.P.E``, ``model.Q.E`` and ``model.beta.E``.

    Parameters
    ----------
    n_users, n_items, d : int
        Sizes of the id spaces and the number of factors.
    item_bias : bool
        Whether to add the learned item bias ``β_i``.
    std : float
        Standard deviation of the normal initialisation of ``P`` and ``Q`` (and ``β``).
    generator : torch.Generator, optional
        Source of the initial values.
    dtype : torch.dtype
        Floating-point type of the parameters.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        d: int,
        item_bias: bool = True,
        std: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.P = Embedding(n_users, d, std=std, generator=generator, dtype=dtype)
        self.Q = Embedding(n_items, d, std=std, generator=generator, dtype=dtype)
        self.beta = (
            Embedding(n_items, 1, std=std, generator=generator, dtype=dtype) if item_bias else None
        )
        self.dot = Dot()

    def _parts(self) -> list[Embedding]:
        return [self.P, self.Q] + ([self.beta] if self.beta is not None else [])

    def forward(self, u: Tensor, items: Tensor) -> Tensor:
        """Scores for users ``u`` (B,) and items (B,) or candidate lists (B, c)."""
        if items.ndim not in (1, 2) or items.shape[0] != u.shape[0] or u.ndim != 1:
            raise ValueError(
                f"u must be (B,) and items (B,) or (B, c), got u {tuple(u.shape)} "
                f"and items {tuple(items.shape)}"
            )
        p_u = self.P.forward(u)  # (B, d)
        q_i = self.Q.forward(items)  # (B, d) or (B, c, d)
        Y = self.dot.forward(p_u, q_i)  # (B,) or (B, c), the scores ŷ_ui
        if self.beta is not None:
            Y = Y + self.beta.forward(items)[..., 0]
        return Y

    def backward(self, dY: Tensor) -> None:
        """Store ``dE`` in ``P``, ``Q`` (and ``beta``) from the gradient ``dY`` at the scores."""
        dp_u, dq_i = self.dot.backward(dY)
        self.P.backward(dp_u)
        self.Q.backward(dq_i)
        if self.beta is not None:
            self.beta.backward(dY[..., None])
        return None

    def parameters(self) -> list[Tensor]:
        """``[P, Q]`` (and ``β``) as tensors."""
        return [part.E for part in self._parts()]

    def grads(self) -> list[Tensor]:
        """Their gradients from the latest backward call."""
        return [g for part in self._parts() for g in part.grads()]


# --------------------------------------------------------------------------------------------
# Optimisers: update the parameter tensors in place from a list of gradients
# --------------------------------------------------------------------------------------------


class _Optimiser:
    def __init__(self, params: Sequence[Tensor], lr: float, weight_decay: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: pass the model's parameters()")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
        self.lr = lr
        self.weight_decay = weight_decay

    def _checked(self, grads: Sequence[Tensor]) -> list[Tensor]:
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradients for {len(self.params)} parameters")
        for k, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if g.shape != p.shape:
                raise ValueError(
                    f"gradient {k} has shape {tuple(g.shape)}, its parameter {tuple(p.shape)}"
                )
        if self.weight_decay:
            # L2 penalty (λ/2)‖θ‖² added to the loss, as torch.optim.SGD and Adam do.
            grads = [g + self.weight_decay * p for p, g in zip(self.params, grads, strict=True)]
        return grads


class SGD(_Optimiser):
    """Gradient descent: ``θ ← θ - η (g + λ θ)``.

    Parameters
    ----------
    params : sequence of Tensor
        The tensors to update in place (a model's ``parameters()``).
    lr : float
        Learning rate ``η``.
    weight_decay : float
        L2 coefficient ``λ``.
    """

    def __init__(self, params: Sequence[Tensor], lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor]) -> None:
        """Apply one update with ``grads`` (a model's ``grads()``, same order as ``params``)."""
        for theta, g in zip(self.params, self._checked(grads), strict=True):
            theta -= self.lr * g


class Adam(_Optimiser):
    """Adam (Kingma & Ba, 2015), written out with its bias correction.

    At step ``t`` with gradient ``g``::

        m ← β₁ m + (1 - β₁) g            v ← β₂ v + (1 - β₂) g ⊙ g
        m̂ = m / (1 - β₁ᵗ)                v̂ = v / (1 - β₂ᵗ)
        θ ← θ - η m̂ / (sqrt(v̂) + ε)

    Parameters
    ----------
    params : sequence of Tensor
        The tensors to update in place (a model's ``parameters()``).
    lr : float
        Learning rate ``η``.
    betas : (float, float)
        Decay rates ``β₁, β₂`` of the first and second moment estimates.
    eps : float
        ``ε``, added to the denominator.
    weight_decay : float
        L2 coefficient ``λ`` added to the gradient (``g + λ θ``), as in ``torch.optim.Adam``.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor]) -> None:
        """Apply one update with ``grads`` (a model's ``grads()``, same order as ``params``)."""
        grads = self._checked(grads)
        beta1, beta2 = self.betas
        self.t += 1
        for theta, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m.mul_(beta1).add_((1 - beta1) * g)
            v.mul_(beta2).add_((1 - beta2) * g * g)
            m_hat = m / (1 - beta1**self.t)
            v_hat = v / (1 - beta2**self.t)
            theta -= self.lr * m_hat / (v_hat.sqrt() + self.eps)


# --------------------------------------------------------------------------------------------
# Checking hand-written gradients
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One hand-derived tensor compared with PyTorch's.

    Attributes
    ----------
    name : str
        What was compared (``"dW1"``, ``"dZ"``, ...).
    exact : bool
        Bit-for-bit equal.
    approx : bool
        Equal within the tolerance of the dtype (see :func:`cmp`).
    max_abs_diff : float
        Largest absolute element-wise difference.
    """

    name: str
    exact: bool
    approx: bool
    max_abs_diff: float

    def __str__(self) -> str:
        return (
            f"{self.name:<12s} | exact: {self.exact!s:<5} | approx: {self.approx!s:<5} "
            f"| max |diff|: {self.max_abs_diff:.1e}"
        )


_TOLERANCES = {torch.float64: (1e-9, 1e-12), torch.float32: (1e-4, 1e-6)}


def cmp(name: str, ours: Tensor, theirs: Tensor) -> Comparison:
    """Compare a hand-computed tensor with the reference (usually an autograd ``.grad``).

    ``approx`` uses ``torch.allclose`` with ``rtol, atol = 1e-9, 1e-12`` in float64 and
    ``1e-4, 1e-6`` otherwise. Shapes must agree exactly: broadcasting would hide a wrong shape.
    """
    if theirs is None:
        raise ValueError(f"{name}: the reference tensor is None (did autograd reach it?)")
    if ours.shape != theirs.shape:
        raise ValueError(
            f"{name}: shapes differ, ours {tuple(ours.shape)} vs {tuple(theirs.shape)}"
        )
    theirs = theirs.detach()  # detached: only the values are compared, no graph is needed
    rtol, atol = _TOLERANCES.get(theirs.dtype, _TOLERANCES[torch.float32])
    ours = ours.to(theirs.dtype)
    diff = (ours - theirs).abs()
    return Comparison(
        name=name,
        exact=bool(torch.equal(ours, theirs)),
        approx=bool(torch.allclose(ours, theirs, rtol=rtol, atol=atol)),
        max_abs_diff=float(diff.max()) if diff.numel() else 0.0,
    )


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """Comparisons as a table with columns name, exact, approx, max_abs_diff."""
    return pd.DataFrame([vars(c) for c in comparisons])


def autograd_function(layer: Layer) -> Callable[..., Tensor]:
    """The layer as a function ``f(*inputs, *params)`` whose autograd backward is ``layer.backward``.

    ``torch.autograd.gradcheck(f, (*inputs, *layer.parameters()))`` then compares the
    hand-written backward pass (input and parameter gradients) with finite differences. Each call
    runs on a shallow copy of the layer, so its cache survives the extra forward calls that
    finite differencing makes. Inputs without a gradient (ids, targets) get ``None``.
    """
    names = layer.param_names
    if len(layer.parameters()) != len(names):
        raise TypeError(
            f"autograd_function takes a single layer, not a model made of layers such as "
            f"{type(layer).__name__}: check its layers one by one"
        )

    class _HandWritten(torch.autograd.Function):
        @staticmethod
        def forward(ctx, n_inputs: int, *args: Tensor) -> Tensor:
            run = copy.copy(layer)
            for name, value in zip(names, args[n_inputs:], strict=True):
                setattr(run, name, value)
            ctx.run, ctx.n_inputs = run, n_inputs
            return run.forward(*args[:n_inputs])

        @staticmethod
        def backward(ctx, dout: Tensor):
            grads = ctx.run.backward(dout)
            grads = grads if isinstance(grads, tuple) else (grads,)
            grads = grads + (None,) * (ctx.n_inputs - len(grads))
            return (None, *grads, *(getattr(ctx.run, "d" + name) for name in names))

    def f(*args: Tensor) -> Tensor:
        n_inputs = len(args) - len(names)
        if n_inputs < 1:
            raise ValueError(
                f"pass the inputs of {type(layer).__name__} followed by its parameters {names}"
            )
        return _HandWritten.apply(n_inputs, *args)

    return f
