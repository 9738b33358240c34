"""GAN losses and one correct alternating training step (chapter ``07_gan_losses``).

A generator :math:`G_\\theta` maps noise :math:`\\mathbf{z}` (and, in a conditional GAN, a
condition :math:`\\mathbf{c}`) to a sample; a discriminator :math:`D_\\phi` returns the probability
that a sample is real. Here the discriminator network returns the *logit*
:math:`s = \\sigma^{-1}(D_\\phi)`, one per example, and every loss is written on logits, where it
is numerically stable (Goodfellow et al., 2014):

* :func:`discriminator_loss`, :math:`\\mathcal{L}_D = -\\mathbb{E}[\\log D_\\phi(\\mathbf{x})]
  - \\mathbb{E}[\\log(1 - D_\\phi(G_\\theta(\\mathbf{z})))]`, the negated value function;
* :func:`generator_loss`, either the ``"minimax"`` loss
  :math:`\\mathbb{E}[\\log(1 - D_\\phi(G_\\theta(\\mathbf{z})))]`, which saturates while the
  discriminator confidently rejects the fakes, or the ``"non-saturating"`` loss
  :math:`-\\mathbb{E}[\\log D_\\phi(G_\\theta(\\mathbf{z}))]`;
* :func:`optimal_discriminator`, :math:`D^*(\\mathbf{x}) = p_{\\text{data}}(\\mathbf{x}) /
  (p_{\\text{data}}(\\mathbf{x}) + p_G(\\mathbf{x}))`.

:func:`train_step` is one step of the alternating algorithm: the discriminator on detached fakes,
then the generator. It knows nothing about the data, so the GAN recommenders of chapter
``08_gan_recommender`` use it as it is: what the generator and the discriminator receive comes
from a callable that returns :class:`GanInputs`. :func:`discriminator_step` and
:func:`generator_step` are its two halves, for schedules with several steps of one player.

For the toy experiments of the chapter, :class:`PackedDiscriminator` lets a discriminator judge
several samples jointly (PacGAN; Lin et al., 2018) and :func:`mode_coverage` counts the modes of
a Gaussian mixture that a generator's samples cover.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grouprec.checks import check_logits

__all__ = [
    "GENERATOR_LOSSES",
    "GanInputs",
    "PackedDiscriminator",
    "discriminator_loss",
    "discriminator_step",
    "generator_loss",
    "generator_step",
    "mode_coverage",
    "optimal_discriminator",
    "train_step",
]

#: The generator losses :func:`generator_loss` knows.
GENERATOR_LOSSES = ("minimax", "non-saturating")


# --------------------------------------------------------------------------------------------
# Losses on logits
# --------------------------------------------------------------------------------------------


def discriminator_loss(s_real: Tensor, s_fake: Tensor) -> Tensor:
    """The discriminator's loss, the negated GAN value function, from logits.

    .. math::
        \\mathcal{L}_D = -\\mathbb{E}_{\\mathbf{x} \\sim p_{\\text{data}}}[\\log \\sigma(s_{\\text{real}})]
        - \\mathbb{E}_{\\mathbf{z} \\sim p_{\\mathbf{z}}}[\\log(1 - \\sigma(s_{\\text{fake}}))]

    computed as ``softplus(-s_real).mean() + softplus(s_fake).mean()``, since
    :math:`-\\log\\sigma(s) = \\log(1 + e^{-s})` and :math:`-\\log(1 - \\sigma(s)) = \\log(1 + e^{s})`;
    finite for any finite logit. Equal to binary cross-entropy with target 1 on the real logits
    plus binary cross-entropy with target 0 on the fake ones. Against the optimal discriminator it
    equals :math:`\\log 4 - 2\\,\\mathrm{JSD}(p_{\\text{data}} \\,\\|\\, p_G)`.

    Parameters
    ----------
    s_real : Tensor
        Discriminator logits of real examples, any shape; averaged.
    s_fake : Tensor
        Discriminator logits of generated examples, any shape; averaged.

    Returns
    -------
    Tensor
        A scalar.
    """
    check_logits("s_real", s_real)
    check_logits("s_fake", s_fake)
    return F.softplus(-s_real).mean() + F.softplus(s_fake).mean()


def generator_loss(s_fake: Tensor, kind: str = "non-saturating") -> Tensor:
    """The generator's loss from the discriminator's logits on generated examples.

    ``"minimax"``: :math:`\\mathbb{E}[\\log(1 - \\sigma(s_{\\text{fake}}))] = -\\operatorname{mean}
    \\operatorname{softplus}(s_{\\text{fake}})`, the generator's half of the value function. Its
    gradient with respect to a logit is :math:`-\\sigma(s) = -D`, which vanishes when the
    discriminator confidently rejects the fakes (:math:`D \\to 0`).

    ``"non-saturating"``: :math:`-\\mathbb{E}[\\log \\sigma(s_{\\text{fake}})] = \\operatorname{mean}
    \\operatorname{softplus}(-s_{\\text{fake}})`, with gradient :math:`-(1 - D)`, largest exactly
    there. Both push :math:`D(G(\\mathbf{z}))` up and share their fixed point.

    Parameters
    ----------
    s_fake : Tensor
        Discriminator logits of generated examples, any shape; averaged.
    kind : str
        One of :data:`GENERATOR_LOSSES`.

    Returns
    -------
    Tensor
        A scalar.
    """
    check_logits("s_fake", s_fake)
    if kind == "minimax":
        return -F.softplus(s_fake).mean()
    if kind == "non-saturating":
        return F.softplus(-s_fake).mean()
    raise ValueError(f"kind must be one of {GENERATOR_LOSSES}, got {kind!r}")


def optimal_discriminator(p_data, p_G):
    """The best discriminator against a fixed generator, from the two densities.

    .. math:: D^*(\\mathbf{x}) = \\frac{p_{\\text{data}}(\\mathbf{x})}
              {p_{\\text{data}}(\\mathbf{x}) + p_G(\\mathbf{x})}

    It maximises :math:`p_{\\text{data}}(\\mathbf{x}) \\log D + p_G(\\mathbf{x}) \\log(1 - D)` at every
    :math:`\\mathbf{x}`. Where both densities are zero every value of :math:`D` is equally good and
    0.5 is returned.

    Parameters
    ----------
    p_data, p_G : numpy.ndarray or Tensor
        Densities (or probabilities) at the same points, non-negative; broadcastable shapes.

    Returns
    -------
    numpy.ndarray or Tensor
        :math:`D^*` at those points, of the type of ``p_data``.
    """
    if isinstance(p_data, Tensor) or isinstance(p_G, Tensor):
        p_data, p_G = torch.as_tensor(p_data), torch.as_tensor(p_G)
        p_data, p_G = torch.broadcast_tensors(p_data, p_G)
        for name, p in (("p_data", p_data), ("p_G", p_G)):
            bad = torch.isnan(p) | (p < 0)
            if bool(bad.any()):
                raise ValueError(
                    f"{name} must be non-negative densities; got {p[bad].flatten()[0].item()}"
                )
        total = p_data + p_G
        return torch.where(total > 0, p_data / torch.where(total > 0, total, 1.0), 0.5)
    p_data, p_G = np.broadcast_arrays(np.asarray(p_data, float), np.asarray(p_G, float))
    for name, p in (("p_data", p_data), ("p_G", p_G)):
        bad = np.isnan(p) | (p < 0)
        if bad.any():
            raise ValueError(f"{name} must be non-negative densities; got {p[bad].flat[0]}")
    total = p_data + p_G
    return np.divide(p_data, total, out=np.full(total.shape, 0.5), where=total > 0)


# --------------------------------------------------------------------------------------------
# One alternating training step
# --------------------------------------------------------------------------------------------


class GanInputs(NamedTuple):
    """What one step feeds the two players.

    Attributes
    ----------
    generator : tuple of Tensor
        Positional arguments of the generator: ``G(*generator)``, e.g. ``(z,)``, or ``(c,)`` for a
        generator driven by a condition alone (CFGAN), or ``(z, c)``.
    condition : tuple of Tensor
        Extra positional arguments of the discriminator, the same for real and generated examples:
        ``D(x, *condition)``; empty for an unconditional GAN.
    """

    generator: tuple[Tensor, ...]
    condition: tuple[Tensor, ...] = ()


def _as_inputs(inputs) -> GanInputs:
    if isinstance(inputs, GanInputs):
        return GanInputs(tuple(inputs.generator), tuple(inputs.condition))
    if isinstance(inputs, Tensor):
        return GanInputs((inputs,))
    raise TypeError(
        "sample_inputs must return a Tensor (the generator's input z) or a GanInputs("
        f"generator=(...), condition=(...)); got {type(inputs).__name__}"
    )


def _params(optimizer: torch.optim.Optimizer, name: str) -> list[Tensor]:
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    if not params:
        raise ValueError(f"{name} holds no parameter that requires a gradient")
    return params


def _logits(D: nn.Module, x: Tensor, condition: tuple[Tensor, ...], what: str) -> Tensor:
    """``D(x, *condition)`` as one logit per judged example, shape (n,)."""
    s = D(x, *condition)
    if not isinstance(s, Tensor):
        raise TypeError(f"the discriminator returned {type(s).__name__} for {what}, not a tensor")
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(
            f"the discriminator must return one logit per example, shape (n,) or (n, 1); "
            f"for {what} of shape {tuple(x.shape)} it returned shape {tuple(s.shape)}"
        )
    return s


def _floats(out: dict[str, Tensor]) -> dict[str, float]:
    """The scalar tensors of a step's record as Python floats (one device sync each)."""
    return {key: value.item() for key, value in out.items()}


def discriminator_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    x_real: Tensor,
    inputs: GanInputs | Tensor,
    *,
    as_tensors: bool = False,
) -> dict[str, float] | dict[str, Tensor]:
    """One optimiser step of the discriminator on real examples and detached fakes.

    Only the parameters held by ``opt_D`` receive gradients and change; the generator's parameters
    and their ``.grad`` are left exactly as they were.

    Parameters
    ----------
    G, D : nn.Module
        The generator and the discriminator (see :func:`train_step`).
    opt_D : torch.optim.Optimizer
        The discriminator's optimiser.
    x_real : Tensor
        A batch of real examples, ``(B, ...)``.
    inputs : GanInputs or Tensor
        What the generator and the discriminator receive; a tensor is the generator's noise.
    as_tensors : bool
        Return the numbers as detached scalar tensors on the device instead of floats, so that a
        training loop can gather them without waiting for the device at every step.

    Returns
    -------
    dict
        ``d_loss`` (:func:`discriminator_loss` before the step), ``d_real`` and ``d_fake``, the
        mean probability :math:`D_\\phi` gave the real and the generated examples before the step.
    """
    inputs = _as_inputs(inputs)
    # detach: the discriminator's loss must stop at the fakes. Without it, backward would run on
    # through the generator's graph: wasted work, and G's .grad would collect the gradient of the
    # *discriminator's* objective, which pushes the fakes to look more fake.
    x_fake = G(*inputs.generator).detach()
    s_real = _logits(D, x_real, inputs.condition, "the real batch")  # (n,)
    s_fake = _logits(D, x_fake, inputs.condition, "the generated batch")  # (n,)
    loss_D = discriminator_loss(s_real, s_fake)
    # zero_grad: backward adds into .grad, which still holds the previous step's gradient; this
    # step must use the gradient of this batch alone.
    opt_D.zero_grad(set_to_none=True)
    # inputs=: store gradients only in the discriminator's parameters, even if a condition tensor
    # is itself trainable elsewhere (a learned embedding shared with the generator, say).
    loss_D.backward(inputs=_params(opt_D, "opt_D"))
    opt_D.step()
    # detach: the reported numbers are records, not part of any graph.
    out = {
        "d_loss": loss_D.detach(),
        "d_real": torch.sigmoid(s_real.detach()).mean(),
        "d_fake": torch.sigmoid(s_fake.detach()).mean(),
    }
    return out if as_tensors else _floats(out)


def generator_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    inputs: GanInputs | Tensor,
    *,
    kind: str = "non-saturating",
    penalty: Callable[[Tensor, GanInputs], Tensor] | None = None,
    as_tensors: bool = False,
) -> dict[str, float] | dict[str, Tensor]:
    """One optimiser step of the generator against the current discriminator.

    The gradient flows through the discriminator to reach the generator, but only the parameters
    held by ``opt_G`` store it and change: the discriminator's parameters and ``.grad`` are left
    as they were.

    Parameters
    ----------
    G, D : nn.Module
        The generator and the discriminator (see :func:`train_step`).
    opt_G : torch.optim.Optimizer
        The generator's optimiser.
    inputs : GanInputs or Tensor
        What the generator and the discriminator receive; a tensor is the generator's noise.
    kind : str
        The generator loss, one of :data:`GENERATOR_LOSSES`.
    penalty : callable, optional
        ``penalty(x_fake, inputs) -> scalar`` added to the generator's loss, for models whose
        generator has a second objective (CFGAN's zero-reconstruction term, for instance).
    as_tensors : bool
        Return detached scalar tensors instead of floats (see :func:`discriminator_step`).

    Returns
    -------
    dict
        ``g_loss`` (the generator's loss before the step, penalty included) and, with a penalty,
        ``g_penalty``.
    """
    inputs = _as_inputs(inputs)
    params = _params(opt_G, "opt_G")
    # zero_grad: clear the generator's gradient of the previous step (backward accumulates).
    opt_G.zero_grad(set_to_none=True)
    x_fake = G(*inputs.generator)  # no detach here: the generator learns through D's verdict
    s_fake = _logits(D, x_fake, inputs.condition, "the generated batch")  # (n,)
    loss_G = generator_loss(s_fake, kind)
    out: dict[str, Tensor] = {}
    if penalty is not None:
        extra = penalty(x_fake, inputs)
        if not isinstance(extra, Tensor) or extra.ndim != 0:
            raise TypeError(
                f"penalty must return a scalar tensor, got {type(extra).__name__} of shape "
                f"{tuple(getattr(extra, 'shape', ()))}"
            )
        loss_G = loss_G + extra
        out["g_penalty"] = extra.detach()  # detach: a record, not part of a graph
    # inputs=: gradients pass through D but are stored only in the generator's parameters, so
    # the discriminator's .grad is untouched (and its weight gradients are not even computed).
    loss_G.backward(inputs=params)
    opt_G.step()
    out["g_loss"] = loss_G.detach()  # detach: a record, not part of a graph
    out = {"g_loss": out.pop("g_loss"), **out}
    return out if as_tensors else _floats(out)


def train_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer,
    x_real: Tensor,
    sample_inputs: Callable[[Tensor], GanInputs | Tensor],
    *,
    kind: str = "non-saturating",
    penalty: Callable[[Tensor, GanInputs], Tensor] | None = None,
    as_tensors: bool = False,
) -> dict[str, float] | dict[str, Tensor]:
    """One step of alternating GAN training: the discriminator, then the generator.

    Goodfellow et al. (2014, Algorithm 1) with one discriminator step per generator step.
    ``sample_inputs(x_real)`` is called once, and both halves use what it returns, so a
    condition taken from the real batch (a user's interaction vector, say) lines up with it.

    Parameters
    ----------
    G, D : nn.Module
        The generator, called as ``G(*inputs.generator)``, and the discriminator, called as
        ``D(x, *inputs.condition)`` and returning one logit per judged example.
    opt_G, opt_D : torch.optim.Optimizer
        Their optimisers; they must not share a parameter.
    x_real : Tensor
        A batch of real examples, ``(B, ...)``.
    sample_inputs : callable
        ``sample_inputs(x_real) -> GanInputs``, or a tensor ``z`` for an unconditional generator.
    kind : str
        The generator loss, one of :data:`GENERATOR_LOSSES`.
    penalty : callable, optional
        Added to the generator's loss; see :func:`generator_step`.
    as_tensors : bool
        Return detached scalar tensors instead of floats (see :func:`discriminator_step`).

    Returns
    -------
    dict
        ``d_loss``, ``g_loss``, ``d_real`` (mean :math:`D_\\phi(\\mathbf{x})`), ``d_fake`` (mean
        :math:`D_\\phi(G_\\theta(\\mathbf{z}))`), all floats measured before the updates, and
        ``g_penalty`` with a penalty.
    """
    if kind not in GENERATOR_LOSSES:  # fail before the discriminator moves
        raise ValueError(f"kind must be one of {GENERATOR_LOSSES}, got {kind!r}")
    shared = {id(p) for p in _params(opt_G, "opt_G")} & {id(p) for p in _params(opt_D, "opt_D")}
    if shared:
        raise ValueError(
            f"opt_G and opt_D share {len(shared)} parameter tensor(s); each player must own its own"
        )
    inputs = _as_inputs(sample_inputs(x_real))
    out = discriminator_step(G, D, opt_D, x_real, inputs, as_tensors=as_tensors)
    out.update(
        generator_step(G, D, opt_G, inputs, kind=kind, penalty=penalty, as_tensors=as_tensors)
    )
    return {
        key: out[key] for key in ("d_loss", "g_loss", "d_real", "d_fake", "g_penalty") if key in out
    }


# --------------------------------------------------------------------------------------------
# Tools for the toy experiments
# --------------------------------------------------------------------------------------------


class PackedDiscriminator(nn.Module):
    """Judge ``m`` samples at once: PacGAN packing (Lin et al., 2018).

    A batch ``(B, d)`` is cut into ``B / m`` packs of ``m`` consecutive samples, each flattened
    to one row ``(m d,)``, and ``net`` returns one logit per pack. Packs are all real or all
    generated, so the discriminator can see a lack of diversity *within* a pack, which no
    discriminator of single samples can.

    Parameters
    ----------
    net : nn.Module
        Maps ``(B / m, m d)`` to ``(B / m,)`` or ``(B / m, 1)`` logits.
    m : int
        Samples per pack.
    """

    def __init__(self, net: nn.Module, m: int) -> None:
        super().__init__()
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m must be a positive integer, got {m!r}")
        self.net = net
        self.m = m

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[0] % self.m:
            raise ValueError(
                f"PackedDiscriminator(m={self.m}) needs a batch (B, d) with B divisible by m; "
                f"got shape {tuple(x.shape)}"
            )
        return self.net(x.reshape(x.shape[0] // self.m, self.m * x.shape[1]))  # (B/m, m d) in


def _cpu_float64(a: Tensor | np.ndarray | Sequence[Sequence[float]]) -> Tensor:
    """``a`` as a float64 tensor on the CPU, from a tensor on any device or array-like data."""
    if isinstance(a, Tensor):
        # detach: the points are read, never differentiated; samples of a generator on a GPU
        # (and with a graph) come here as they are.
        return a.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(a, dtype=float), dtype=torch.float64)


def mode_coverage(
    samples: Tensor | np.ndarray,
    centres: Tensor | np.ndarray | Sequence[Sequence[float]],
    std: float,
    *,
    n_std: float = 3.0,
    min_share: float = 0.1,
) -> dict:
    """How well samples cover the modes of a mixture of equal, isotropic Gaussians.

    A sample is *high quality* when it lies within ``n_std`` standard deviations of its nearest
    centre (the measure of Srivastava et al., 2017). A mode is *covered* when its high-quality
    samples make up at least ``min_share`` of the fair share :math:`1/K` of all samples.

    Parameters
    ----------
    samples : Tensor or numpy.ndarray
        Generated points, ``(n, dim)``; a tensor may be on any device and have a graph.
    centres : array-like
        The :math:`K` mode centres, ``(K, dim)``.
    std : float
        The modes' standard deviation.

    Returns
    -------
    dict
        ``modes`` (the number covered, an int), ``high_quality`` (the fraction of high-quality
        samples) and ``counts`` (high-quality samples per mode, ``(K,)`` int64 array).
    """
    x = _cpu_float64(samples)
    c = _cpu_float64(centres)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0 or len(c) == 0:
        raise ValueError(
            f"samples (n, dim) and centres (K, dim) must be non-empty with the same dim; got "
            f"shapes {tuple(x.shape)} and {tuple(c.shape)}"
        )
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}")
    distance, nearest = torch.cdist(x, c).min(dim=1)  # (n,), (n,)
    good = distance < n_std * std  # (n,)
    counts = torch.bincount(nearest[good], minlength=len(c)).numpy()
    return {
        "modes": int((counts >= min_share * len(x) / len(c)).sum()),
        "high_quality": float(good.double().mean()),
        "counts": counts,
    }
