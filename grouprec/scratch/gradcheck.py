"""Checking hand-written gradients against autograd: :func:`cmp` for one tensor, and
:func:`autograd_function` for finite differences through ``torch.autograd.gradcheck``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from grouprec.scratch.layers import Layer

__all__ = ["Comparison", "autograd_function", "cmp", "comparison_frame"]


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
