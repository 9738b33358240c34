"""Models built from the hand-written layers (an MLP, matrix factorisation) and the optimisers
that update their parameter tensors in place."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from grouprec.scratch.layers import Dot, Embedding, Layer, Linear, ReLU, Sigmoid

__all__ = ["Adam", "MLP", "MatrixFactorization", "SGD"]


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
