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

The package holds three modules: :mod:`~grouprec.scratch.layers` (the base class
:class:`Layer`, the layers and the losses), :mod:`~grouprec.scratch.models` (an MLP and matrix
factorisation built from the layers, and the SGD and Adam optimisers) and
:mod:`~grouprec.scratch.gradcheck` (comparing hand-written gradients with autograd). Everything
is importable from ``grouprec.scratch`` itself.
"""

from grouprec.scratch.gradcheck import Comparison, autograd_function, cmp, comparison_frame
from grouprec.scratch.layers import (
    BCEWithLogits,
    BPRLoss,
    Dot,
    Embedding,
    Layer,
    Linear,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
)
from grouprec.scratch.models import MLP, SGD, Adam, MatrixFactorization

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
