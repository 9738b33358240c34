"""Layers and losses whose backward pass is written by hand, and the :class:`Layer` base class
they share (the notation is in :mod:`grouprec.scratch`'s docstring)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from grouprec.checks import check_float_tensor, check_id_tensor, check_same_shape, check_shape

__all__ = [
    "BCEWithLogits",
    "BPRLoss",
    "Dot",
    "Embedding",
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
]


# The base class
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
        check_float_tensor("A", A)
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
        check_shape("dZ", dZ, (A.shape[0], self.W.shape[0]), "the shape of Z")
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
        check_float_tensor("Z", Z)
        self.Z = Z
        return Z.clamp(min=0)

    @torch.no_grad()
    def backward(self, dA: Tensor) -> Tensor:
        """``dZ = dA ⊙ 1[Z > 0]``."""
        Z = self._cached("Z")
        check_same_shape("dA", dA, "Z", Z)
        return dA * (Z > 0).to(dA.dtype)


class Sigmoid(Layer):
    """``A = σ(Z) = 1 / (1 + exp(-Z))`` element-wise; ``φ'(Z) = σ(Z)(1 - σ(Z))``."""

    def __init__(self) -> None:
        self.S: Tensor | None = None

    @torch.no_grad()
    def forward(self, Z: Tensor) -> Tensor:
        """Element-wise logistic function."""
        check_float_tensor("Z", Z)
        self.S = torch.sigmoid(Z)  # kept: the derivative is written in terms of the output
        return self.S

    @torch.no_grad()
    def backward(self, dA: Tensor) -> Tensor:
        """``dZ = dA ⊙ σ(Z) ⊙ (1 - σ(Z))``."""
        S = self._cached("S")
        check_same_shape("dA", dA, "σ(Z)", S)
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
        check_id_tensor("ids", ids, self.E.shape[0])
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
        check_float_tensor("P", P)
        check_float_tensor("Q", Q)
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
        check_shape("dY", dY, tuple(Q.shape[:-1]), "the shape of the scores")
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
        check_float_tensor("X", X)
        check_float_tensor("y", y)
        check_same_shape("X", X, "y", y)
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
        check_float_tensor("X", X)
        if X.ndim != 2:
            raise ValueError(f"X must have shape (B, C), got {tuple(X.shape)}")
        check_id_tensor("y", y, X.shape[1])
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
        check_float_tensor("y_ui", y_ui)
        check_float_tensor("y_uj", y_uj)
        check_same_shape("y_ui", y_ui, "y_uj", y_uj)
        self.x_uij = y_ui - y_uj
        return _softplus(-self.x_uij).mean()

    @torch.no_grad()
    def backward(self, dL: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        """Returns ``(dy_ui, dy_uj)``, with ``dy_ui = -dL σ(-x̂_uij) / N`` and ``dy_uj = -dy_ui``."""
        x_uij = self._cached("x_uij")
        dy_ui = -dL * torch.sigmoid(-x_uij) / x_uij.numel()
        return dy_ui, -dy_ui
