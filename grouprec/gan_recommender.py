"""GAN recommenders behind the common interface (chapter ``08_gan_recommender``).

Two ways to make a generative adversarial network recommend items:

* :class:`CFGANRecommender`, CFGAN (Chae et al., CIKM 2018): a *vector-wise* conditional GAN.
  The generator :math:`G_\\theta` maps a condition :math:`\\mathbf{c}_u` (the entity's history,
  see :func:`conditions`) and optional noise :math:`\\mathbf{z}` to a real-valued vector
  :math:`\\hat{\\mathbf{y}}_u \\in (0, 1)^{|\\mathcal{I}|}` over all items; the discriminator
  :math:`D_\\phi` judges (vector, condition) pairs. The discriminator sees a generated vector only
  through the *partial mask* :math:`\\mathbf{m}_u = \\mathbf{e}_u + \\mathbf{k}_u` (the entity's
  items plus sampled non-items, :func:`sample_masks`), and the generator also pays the
  *zero-reconstruction* penalty :math:`\\alpha_{ZR} \\sum_{j \\in N^{ZR}_u} \\hat y_{uj}^2`
  (:func:`zero_reconstruction`). Training is :func:`grouprec.gan.train_step`, unchanged.
* :class:`IRGANRecommender`, IRGAN (Wang et al., SIGIR 2017), for item recommendation: the
  generator is a distribution :math:`p_\\theta(i \\mid u) = \\operatorname{softmax}_i(g_\\theta(u, i))`
  over item ids, from which it *samples*; the discriminator :math:`D_\\phi(u, i) =
  \\sigma(f_\\phi(u, i))` tells training pairs from sampled ones. A sampled item id is an integer,
  so no gradient flows from the discriminator back into :math:`\\theta`; the generator learns by
  the policy gradient (REINFORCE, Williams 1992), :func:`reinforce_loss`.

Both recommend with the generator: CFGAN ranks items by :math:`\\hat{\\mathbf{y}}_u` (noise at its
mean, :math:`\\mathbf{z} = \\mathbf{0}`), IRGAN by :math:`g_\\theta(u, i)`. Items the entity already
consumed in training are filtered out (score :math:`-\\infty`) unless ``filter_consumed=False``;
:meth:`CFGANRecommender.filtered` gives the same fitted model with the other setting, for a
like-for-like comparison with models that do not filter, and :class:`ConsumedFilter` gives any
other recommender the same filtering. Both GANs stop early on the validation NDCG@10 and never
read the test split.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grouprec import gan
from grouprec.base import BaseRecommender
from grouprec.baselines import history
from grouprec.constants import DEFAULT_SEED, TASKS
from grouprec.data import GroupDataset
from grouprec.evaluation import ConsumedFilter  # re-exported: chapter 08 imports it from here
from grouprec.preference import MF, BPRRecommender
from grouprec.training import ranking_val_fn, seed_everything, select_device, train_epochs

__all__ = [
    "CFGANDiscriminator",
    "CFGANGenerator",
    "CFGANRecommender",
    "ConsumedFilter",
    "GanHistory",
    "IRGANRecommender",
    "OBJECTIVES",
    "conditions",
    "leave_one_out_baseline",
    "reinforce_loss",
    "sample_masks",
    "zero_reconstruction",
]

#: What :class:`CFGANRecommender` trains its generator with: the adversarial game, or (as a
#: control) a plain squared reconstruction error on the very entries the discriminator sees.
OBJECTIVES = ("gan", "reconstruction")

#: Which training rows :class:`CFGANRecommender` learns from.
TRAIN_ROWS = ("task", "all")

# Rows of conditions turned dense at once when scoring.
_SCORE_ROWS = 1024


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(
    name: str, value: Any, low: float, high: float, *, open_low: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    inside = (value > low if open_low else value >= low) and value <= high
    if not inside or math.isnan(value):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")
    return value


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def _check_hidden(name: str, hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, (int, np.integer)):
        hidden = (int(hidden),)
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(f"{name} must list at least one layer width, got {hidden!r}")
    return tuple(_check_int(f"{name}[{k}]", w) for k, w in enumerate(hidden))


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with beta1 = 0.5, the usual choice for GANs (Radford et al., 2016).

    The fused implementation, where this PyTorch has it, updates every parameter in one kernel;
    with CFGAN's item-wide weight matrices it is several times faster than the default loop.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


# --------------------------------------------------------------------------------------------
# Random draws: on the generator's device, then moved to the data's
# --------------------------------------------------------------------------------------------
# A torch.Generator draws only on its own device. Every draw below is made there and the result
# moved to the device of the data it is for, so a generator and a model on different devices
# still work together (a CPU generator with a model on a GPU: the GPU run then uses the very
# random numbers of a CPU run). When both are on one device, nothing is moved.


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where a draw happens: on the generator's device, or on ``device`` without a generator."""
    return device if generator is None else generator.device


def _randperm(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """A random permutation of ``0..n-1`` on ``device``."""
    where = _draw_device(generator, device)
    return torch.randperm(n, generator=generator, device=where).to(device)


def _multinomial(p: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` draws with replacement from each row of ``p`` (B, I), on the device of ``p``."""
    where = _draw_device(generator, p.device)
    j = torch.multinomial(p.to(where), n, replacement=True, generator=generator)
    return j.to(p.device)  # (B, n)


# --------------------------------------------------------------------------------------------
# CFGAN: conditions, masks, penalty, networks
# --------------------------------------------------------------------------------------------


def conditions(dataset: GroupDataset, task: str, alpha: float = 1.0) -> sp.csr_matrix:
    """CFGAN's condition of every entity of ``task``, (n_entities, n_items), float32.

    A user's condition is its binary training row :math:`\\mathbf{x}_u`. A group's is
    :math:`\\mathbf{c}_g = \\alpha\\,\\mathbf{x}_g + (1 - \\alpha)\\,\\frac{1}{|g|}\\sum_{u \\in g}
    \\mathbf{x}_u`, the history of :func:`grouprec.baselines.history`: ``alpha = 1`` uses the
    group's own row only, ``alpha = 0`` its members' only.
    """
    return sp.csr_matrix(history(dataset, task, alpha), dtype=np.float32)


def sample_masks(
    x: Tensor, s_pm: float, s_zr: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """CFGAN's two masks for a batch of binary rows ``x`` (B, I).

    * the partial mask :math:`\\mathbf{m} = \\mathbf{e} + \\mathbf{k}`: every item of the row
      (:math:`\\mathbf{e} = \\mathbf{x}`) plus the negatives :math:`\\mathbf{k}`, each non-item
      drawn with probability ``s_pm``; the discriminator sees a generated vector only there;
    * the zero-reconstruction mask :math:`\\mathbf{m}^{ZR}`: non-items drawn, independently, with
      probability ``s_zr``; the generator is penalised for scoring them above 0.

    Chae et al. draw a fixed *fraction* of the non-items per row; independent draws with that
    probability give the same fraction on average, in one vectorised call. The draws come from
    ``generator`` on its own device (without one, from the default generator of ``x``'s device)
    and the masks are on ``x``'s device.

    Returns
    -------
    m_pm, m_zr : Tensor
        Float 0/1 masks of the shape and dtype of ``x``.
    """
    s_pm = _check_float("s_pm", s_pm, 0.0, 1.0)
    s_zr = _check_float("s_zr", s_zr, 0.0, 1.0)
    e = x > 0  # (B, I) the row's items
    where = _draw_device(generator, x.device)  # drawn there, then moved to x's device
    k = torch.rand(x.shape, generator=generator, device=where) < s_pm  # (B, I)
    n_zr = torch.rand(x.shape, generator=generator, device=where) < s_zr  # (B, I)
    k, n_zr = ~e & k.to(x.device), ~e & n_zr.to(x.device)
    return (e | k).to(x.dtype), n_zr.to(x.dtype)


def zero_reconstruction(y_hat: Tensor, m_zr: Tensor, alpha_zr: float) -> Tensor:
    """CFGAN's zero-reconstruction penalty, averaged over the batch.

    .. math:: \\Omega = \\frac{\\alpha_{ZR}}{B} \\sum_{u} \\sum_{j} m^{ZR}_{uj}\\, \\hat y_{uj}^2

    Parameters
    ----------
    y_hat : Tensor
        Generated vectors (B, I).
    m_zr : Tensor
        Zero-reconstruction mask (B, I), 1 on the sampled non-items.
    alpha_zr : float
        The penalty's weight.

    Returns
    -------
    Tensor
        A scalar.
    """
    if y_hat.shape != m_zr.shape or y_hat.ndim != 2:
        raise ValueError(
            f"y_hat and m_zr must both have shape (B, I); got {tuple(y_hat.shape)} "
            f"and {tuple(m_zr.shape)}"
        )
    return alpha_zr * (m_zr * y_hat.square()).sum(dim=1).mean()


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU()]
        width = out
    return nn.Sequential(*layers, nn.Linear(width, n_out))


class CFGANGenerator(nn.Module):
    """CFGAN's generator: :math:`\\hat{\\mathbf{y}} = \\sigma(\\mathrm{MLP}([\\mathbf{c};
    \\mathbf{z}]))`, one value in (0, 1) per item.

    Parameters
    ----------
    n_items : int
        Length of the condition and of the generated vector.
    hidden : sequence of int
        Widths of the hidden ReLU layers.
    z_dim : int
        Length of the noise :math:`\\mathbf{z}`; 0 for a generator driven by the condition alone
        (the setting of CFGAN's published code).
    prior : Tensor, optional
        Item probabilities (I,) in (0, 1). The output layer's bias starts at their logits, so an
        untrained generator returns the prior instead of 0.5 for every item.

    Attributes
    ----------
    net : nn.Sequential
        The MLP; its output is the logit of :math:`\\hat{\\mathbf{y}}`.
    config : dict
        The constructor arguments, for checkpoints (without ``prior``).
    """

    def __init__(
        self,
        n_items: int,
        hidden: Sequence[int] = (64,),
        z_dim: int = 0,
        prior: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = {
            "n_items": _check_int("n_items", n_items),
            "hidden": list(_check_hidden("hidden", hidden)),
            "z_dim": _check_int("z_dim", z_dim, minimum=0),
        }
        self.n_items, self.z_dim = self.config["n_items"], self.config["z_dim"]
        self.net = _mlp(self.n_items + self.z_dim, self.config["hidden"], self.n_items)
        if prior is not None:
            prior = torch.as_tensor(prior, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)
            if prior.shape != (self.n_items,):
                raise ValueError(
                    f"prior must have shape ({self.n_items},), got {tuple(prior.shape)}"
                )
            with torch.no_grad():
                self.net[-1].bias.copy_(torch.logit(prior))

    def forward(self, c: Tensor, z: Tensor | None = None) -> Tensor:
        """Generated vectors (B, I) from conditions ``c`` (B, I) and noise ``z`` (B, z_dim).

        Without ``z`` a generator with noise uses its mean, :math:`\\mathbf{z} = \\mathbf{0}`.
        """
        if c.ndim != 2 or c.shape[1] != self.n_items:
            raise ValueError(f"c must have shape (B, {self.n_items}), got {tuple(c.shape)}")
        if self.z_dim:
            if z is None:
                z = c.new_zeros(c.shape[0], self.z_dim)  # the noise's mean
            if z.shape != (c.shape[0], self.z_dim):
                raise ValueError(
                    f"z must have shape ({c.shape[0]}, {self.z_dim}), got {tuple(z.shape)}"
                )
            c = torch.cat([c, z], dim=1)  # (B, I + z_dim)
        elif z is not None:
            raise ValueError("this generator has z_dim=0 and takes no noise, but z was given")
        return torch.sigmoid(self.net(c))  # (B, I)


class CFGANDiscriminator(nn.Module):
    """CFGAN's discriminator: the logit :math:`s = \\mathrm{MLP}([\\mathbf{x} \\odot \\mathbf{m};
    \\mathbf{c}])` that a vector :math:`\\mathbf{x}` is real, given the condition.

    Applying the partial mask :math:`\\mathbf{m}` here, to real and generated vectors alike, is
    the same as masking the generated vector before it reaches the discriminator: a real binary
    row is 0 outside :math:`\\mathbf{e} \\subseteq \\mathbf{m}`, so masking leaves it as it is. It
    keeps the *unmasked* generated vector available to the zero-reconstruction penalty.

    Parameters
    ----------
    n_items : int
        Length of the judged vector and of the condition.
    hidden : sequence of int
        Widths of the hidden ReLU layers.
    """

    def __init__(self, n_items: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        self.config = {
            "n_items": _check_int("n_items", n_items),
            "hidden": list(_check_hidden("hidden", hidden)),
        }
        self.n_items = self.config["n_items"]
        self.net = _mlp(2 * self.n_items, self.config["hidden"], 1)

    def forward(self, x: Tensor, c: Tensor, m: Tensor | None = None) -> Tensor:
        """Logits (B,) for vectors ``x`` (B, I), conditions ``c`` (B, I) and masks ``m`` (B, I)."""
        if x.ndim != 2 or x.shape[1] != self.n_items or c.shape != x.shape:
            raise ValueError(
                f"x and c must both have shape (B, {self.n_items}); got {tuple(x.shape)} "
                f"and {tuple(c.shape)}"
            )
        if m is not None:
            if m.shape != x.shape:
                raise ValueError(
                    f"m must have the shape of x, {tuple(x.shape)}; got {tuple(m.shape)}"
                )
            x = x * m  # only the masked entries reach the network
        return self.net(torch.cat([x, c], dim=1))[:, 0]  # (B,)


# --------------------------------------------------------------------------------------------
# History of a GAN run
# --------------------------------------------------------------------------------------------


@dataclass
class GanHistory:
    """What happened while a GAN recommender trained, one record per epoch (from 1).

    Attributes
    ----------
    records : list of dict
        Per epoch: the mean ``d_loss``, ``g_loss``, ``d_real`` (mean :math:`D` on real examples),
        ``d_fake`` (on generated ones), ``g_penalty`` where there is one, then the validation
        metrics and ``seconds``.
    best_epoch : int or None
        The epoch whose weights the model holds (best validation NDCG@10); None without
        validation, when the model holds the last epoch's.
    seconds : float
        Wall-clock time of the whole run.
    stopped_early : bool
        True when the validation metric stopped improving before the last epoch.
    monitor : str or None
        The validation metric that chose the best epoch.
    """

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    stopped_early: bool = False
    monitor: str | None = None

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.records)

    @property
    def best(self) -> dict[str, float]:
        """The record of the best epoch (empty without validation)."""
        return {} if self.best_epoch is None else dict(self.records[self.best_epoch - 1])

    def add_epoch(
        self,
        stats: dict[str, float],
        metrics: dict[str, float] | None,
        extra: dict[str, float],
        seconds: float,
    ) -> None:
        """Record one epoch (:func:`grouprec.training.train_epochs` calls this) as one record:
        the training statistics, the validation metrics, a callback's numbers, ``seconds``."""
        self.records.append({**stats, **(metrics or {}), **extra, "seconds": seconds})

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch, index ``epoch``."""
        frame = pd.DataFrame(self.records)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
        return frame


def _weighted_means(steps: list[tuple[dict[str, Tensor], int]], total: int) -> dict[str, float]:
    """The epoch's mean of each statistic, from per-step scalar tensors weighted by batch size.

    The steps' numbers stay on the device until here and come to the host once per statistic;
    they are summed as floats in the order of the steps, ``sum(value * n) / total``.
    """
    means: dict[str, float] = {}
    for key in steps[0][0] if steps else ():
        values = torch.stack([out[key] for out, _ in steps]).tolist()  # one copy to the host
        acc = 0.0
        for value, (_, n) in zip(values, steps, strict=True):
            acc = acc + value * n
        means[key] = acc / total
    return means


# --------------------------------------------------------------------------------------------
# Shared plumbing of the two recommenders
# --------------------------------------------------------------------------------------------


class _GenerativeRecommender(BaseRecommender):
    """Filtering of consumed items, the epochs, and the recommender interface."""

    name = "GAN"
    filter_consumed: bool

    def filtered(self, filter_consumed: bool) -> _GenerativeRecommender:
        """The same fitted model, sharing its weights, with ``filter_consumed`` set as given."""
        other = copy.copy(self)
        other.filter_consumed = bool(filter_consumed)
        return other

    def _start_fit(self, dataset: GroupDataset, task: str) -> None:
        _check_choice("task", task, TASKS)
        super()._start_fit(dataset, task)
        self.consumed_ = dataset.train_matrix(task).tocsr()  # (n_entities, I) binary
        self.device_ = select_device(self.device)

    def _seeded_generator(self) -> torch.Generator:
        """The seeded source of every random draw of a training run, on the training device.

        Draws are made on the generator's device and moved to the data's (see
        :func:`_randperm`), so a CPU generator serves a model on a GPU too; the CUDA tests
        override this method to train on a GPU with the random numbers of a CPU run.
        """
        return torch.Generator(device=self.device_).manual_seed(self.seed)

    def _train_epochs(
        self,
        dataset: GroupDataset,
        task: str,
        one_epoch: Callable[[], dict[str, float]],
        lr: float,
    ) -> GanHistory:
        """Both GANs' epochs through :func:`grouprec.training.train_epochs`.

        ``one_epoch()`` trains ``G_`` and ``D_`` for one epoch and returns its mean statistics;
        the loop validates the generator, stops early on the validation NDCG@10 and restores the
        weights of both players at the best epoch.
        """
        val = getattr(dataset, f"{task}_val")
        val_fn = None if val is None or len(val) == 0 else ranking_val_fn(val, self._val_score)
        user_callback = getattr(self, "callback", None)

        def callback(epoch: int) -> dict[str, float]:
            self.G_.eval()
            with torch.no_grad():
                return user_callback(self, epoch)

        hist = train_epochs(
            lambda epoch: one_epoch(),
            epochs=self.epochs,
            state={"G": self.G_, "D": self.D_},
            val_fn=None if val_fn is None else lambda: val_fn(self.G_),
            monitor="NDCG@10",
            patience=self.patience,
            callback=None if user_callback is None else callback,
            history=GanHistory(),
            lr=lr,
            progress=self.progress,
            desc=self.name,
            postfix=("d_loss", "NDCG@10"),
            postfix_format=".3f",
        )
        self.G_.eval()
        self.D_.eval()
        return hist

    def _generate(self, entities: Tensor) -> Tensor:
        """The generator's scores (n, I) for entity ids ``entities`` (n,) on the device."""
        raise NotImplementedError

    def _score_rows(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, I) of every item, float32, consumed items at -inf when filtering."""
        out = np.empty((len(entities), self.n_items_), dtype=np.float32)
        for start in range(0, len(entities), _SCORE_ROWS):
            e = entities[start : start + _SCORE_ROWS]
            with torch.no_grad():
                y = self._generate(torch.as_tensor(e, device=self.device_))  # (b, I)
            out[start : start + len(e)] = y.float().cpu().numpy()
            if self.filter_consumed:
                consumed = self.consumed_[e]
                rows = np.repeat(np.arange(len(e)), np.diff(consumed.indptr))
                out[start + rows, consumed.indices] = -np.inf
        return out

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        return self._score_rows(entities)

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate ``items`` (n, c) for ``entities`` (n,).

        With ``filter_consumed``, an item the entity consumed in training scores ``-inf``.
        """
        entities, items = self._check_ids(entities, items)
        unique, inverse = np.unique(entities, return_inverse=True)  # each entity generated once
        return self._score_rows(unique)[inverse[:, None], items]

    def recommend(self, entities: np.ndarray, k: int = 10, exclude: Any = None) -> np.ndarray:
        """Top-``k`` item ids (n, k) for ``entities`` (n,), consumed items never included.

        As :meth:`grouprec.base.BaseRecommender.recommend` (best first, ties to the lower item
        id), with the entity's training items always excluded, whatever ``filter_consumed``
        says; ``exclude`` adds more items to leave out.
        """
        entities, _ = self._check_ids(entities)
        banned = self._exclusion(entities, exclude)
        consumed = self.consumed_[entities]
        if banned is not None:
            consumed = sp.csr_matrix(consumed + sp.csr_matrix(banned, dtype=consumed.dtype))
        return BaseRecommender.recommend(self.filtered(False), entities, k, exclude=consumed)


# --------------------------------------------------------------------------------------------
# CFGAN
# --------------------------------------------------------------------------------------------


class CFGANRecommender(_GenerativeRecommender):
    """CFGAN (Chae et al., CIKM 2018) for users or groups, behind the common interface.

    Training rows are binary interaction vectors :math:`\\mathbf{x}_u` (the real examples) with
    their conditions :math:`\\mathbf{c}_u` (:func:`conditions`). Each step draws the masks of
    :func:`sample_masks` and noise :math:`\\mathbf{z} \\sim \\mathcal{N}(\\mathbf{0}, \\mathbf{I})`
    and calls :func:`grouprec.gan.train_step` with ``GanInputs(generator=(c, z),
    condition=(c, m_pm))`` and the :func:`zero_reconstruction` penalty: one discriminator step on
    detached fakes, then one generator step. Every epoch ends with the validation NDCG@10 of the
    generator's scores; the best epoch's weights are kept.

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths of the generator's MLP.
    hidden_D : sequence of int, optional
        Hidden widths of the discriminator's MLP; by default those of the generator.
    z_dim : int
        Noise length; 0 (no noise) is the setting of the published CFGAN code.
    s_pm : float
        Probability that a non-item joins the partial mask (the paper's :math:`S_{PM}`).
    s_zr : float
        Probability that a non-item joins the zero-reconstruction set (:math:`S_{ZR}`).
    alpha_zr : float
        Weight of the zero-reconstruction penalty (:math:`\\alpha`).
    alpha : float
        For groups, the weight of the group's own row in its condition (see :func:`conditions`);
        must be 1 for the user task.
    train_rows : {"task", "all"}
        Learn from the rows of the task's entities only, or from every user's and every group's
        training row (as the item-item baselines do); a row of the other kind is conditioned on
        itself.
    objective : {"gan", "reconstruction"}
        ``"reconstruction"`` replaces the discriminator by a squared error on the masked entries,
        :math:`\\sum_j m_{uj} (\\hat y_{uj} - x_{uj})^2`, plus the same penalty: the autoencoder
        that CFGAN's generator can turn into.
    kind : str
        The generator's loss, one of :data:`grouprec.gan.GENERATOR_LOSSES` (Chae et al. write the
        minimax loss).
    epochs : int
        Largest number of epochs.
    lr : float
        Adam's learning rate, for both players.
    batch_size : int
        Rows per step.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    filter_consumed : bool
        Score training items ``-inf`` (see :meth:`filtered`).
    seed : int
        Seeds the initial weights, the batch order, the masks and the noise.
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. The seeded generator of
        the batch order, masks and noise lives there too, and a GPU's random numbers differ from
        the CPU's: the same seed gives another run on another kind of device.
    progress : bool
        Show a progress bar over epochs.
    callback : callable, optional
        ``callback(model, epoch) -> dict`` called after each epoch's validation, with the
        generator in evaluation mode and gradients off; its numbers join the epoch's record in
        ``history_`` (to watch a quantity of your own while the model trains).

    Attributes
    ----------
    G_, D_ : CFGANGenerator, CFGANDiscriminator
        The trained players (best validation epoch).
    history_ : GanHistory
        Losses, discriminator outputs and validation metrics per epoch.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64,),
        hidden_D: Sequence[int] | None = None,
        z_dim: int = 0,
        s_pm: float = 0.1,
        s_zr: float = 0.1,
        alpha_zr: float = 0.1,
        alpha: float = 1.0,
        train_rows: str = "task",
        objective: str = "gan",
        kind: str = "non-saturating",
        epochs: int = 30,
        lr: float = 3e-3,
        batch_size: int = 128,
        patience: int | None = 5,
        filter_consumed: bool = True,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
        callback: Callable[[CFGANRecommender, int], dict[str, float]] | None = None,
    ) -> None:
        self.hidden = _check_hidden("hidden", hidden)
        self.hidden_D = None if hidden_D is None else _check_hidden("hidden_D", hidden_D)
        self.z_dim = _check_int("z_dim", z_dim, minimum=0)
        self.s_pm = _check_float("s_pm", s_pm, 0.0, 1.0)
        self.s_zr = _check_float("s_zr", s_zr, 0.0, 1.0)
        self.alpha_zr = _check_float("alpha_zr", alpha_zr, 0.0, math.inf)
        self.alpha = _check_float("alpha", alpha, 0.0, 1.0)
        self.train_rows = _check_choice("train_rows", train_rows, TRAIN_ROWS)
        self.objective = _check_choice("objective", objective, OBJECTIVES)
        self.kind = _check_choice("kind", kind, gan.GENERATOR_LOSSES)
        self.epochs = _check_int("epochs", epochs)
        self.lr = _check_float("lr", lr, 0.0, math.inf, open_low=True)
        self.batch_size = _check_int("batch_size", batch_size)
        self.patience = None if patience is None else _check_int("patience", patience)
        self.filter_consumed = bool(filter_consumed)
        self.seed = _check_int("seed", seed, minimum=0)
        self.device = device
        self.progress = progress
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    @property
    def name(self) -> str:
        """Label in results tables."""
        return "CFGAN" if self.objective == "gan" else "CFGAN-G, reconstruction"

    # -- data ------------------------------------------------------------------------------------
    def _training_rows(self, dataset: GroupDataset, task: str) -> tuple[sp.csr_matrix, ...]:
        """Real rows X (N, I) and their conditions C (N, I) for training, non-empty rows only."""
        other = "group" if task == "user" else "user"
        X = [dataset.train_matrix(task)]
        C = [self.conditions_]
        if self.train_rows == "all":
            X.append(dataset.train_matrix(other))
            C.append(conditions(dataset, other))  # a row of the other kind: its own history
        X = sp.csr_matrix(sp.vstack(X), dtype=np.float32)
        C = sp.csr_matrix(sp.vstack(C), dtype=np.float32)
        keep = np.flatnonzero(X.getnnz(axis=1) > 0)
        if len(keep) == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training rows for task {task!r}")
        return X[keep], C[keep]

    def _dense(self, M: sp.csr_matrix) -> Tensor:
        return torch.from_numpy(M.toarray()).to(self.device_)

    # -- training --------------------------------------------------------------------------------
    def fit(self, dataset: GroupDataset, task: str) -> CFGANRecommender:
        """Train on ``dataset``'s training rows for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        if task == "user" and self.alpha != 1.0:
            raise ValueError(
                f"alpha mixes group and member histories, so it applies to the group task only; "
                f"got alpha={self.alpha} with task='user'"
            )
        self.conditions_ = conditions(dataset, task, self.alpha)  # (n_entities, I)
        X, C = self._training_rows(dataset, task)
        seed_everything(self.seed)  # the initial weights
        prior = torch.from_numpy(np.asarray(X.mean(axis=0)).ravel())  # (I,) item frequency
        self.G_ = CFGANGenerator(self.n_items_, self.hidden, self.z_dim, prior).to(self.device_)
        self.D_ = CFGANDiscriminator(self.n_items_, self.hidden_D or self.hidden).to(self.device_)
        opt_G = _adam(self.G_.parameters(), self.lr)
        opt_D = _adam(self.D_.parameters(), self.lr)
        gen = self._seeded_generator()
        X_t, C_t = self._dense(X), self._dense(C)  # (N, I) each

        self.history_ = self._train_epochs(
            dataset, task, lambda: self._epoch(X_t, C_t, opt_G, opt_D, gen), self.lr
        )
        return self

    def _epoch(
        self,
        X: Tensor,
        C: Tensor,
        opt_G: torch.optim.Optimizer,
        opt_D: torch.optim.Optimizer,
        gen: torch.Generator,
    ) -> dict[str, float]:
        """One pass over the training rows; the batch-size-weighted mean of each statistic."""
        self.G_.train()
        self.D_.train()
        order = _randperm(len(X), gen, X.device)
        steps: list[tuple[dict[str, Tensor], int]] = []
        for start in range(0, len(X), self.batch_size):
            rows = order[start : start + self.batch_size]
            x, c = X[rows], C[rows]  # (B, I) real rows and their conditions
            m_pm, m_zr = sample_masks(x, self.s_pm, self.s_zr, gen)  # (B, I) each
            z = (
                torch.randn(
                    len(rows), self.z_dim, generator=gen, device=_draw_device(gen, x.device)
                ).to(x.device)
                if self.z_dim
                else None
            )  # (B, z_dim)

            def penalty(y_hat: Tensor, inputs: gan.GanInputs, m_zr: Tensor = m_zr) -> Tensor:
                return zero_reconstruction(y_hat, m_zr, self.alpha_zr)

            inputs = gan.GanInputs(generator=(c,) if z is None else (c, z), condition=(c, m_pm))
            if self.objective == "gan":
                out = gan.train_step(
                    self.G_,
                    self.D_,
                    opt_G,
                    opt_D,
                    x,
                    lambda _x, inputs=inputs: inputs,
                    kind=self.kind,
                    penalty=penalty,
                    as_tensors=True,
                )
            else:
                out = self._reconstruction_step(x, inputs, m_pm, penalty, opt_G)
            steps.append((out, len(rows)))
        return _weighted_means(steps, len(X))

    def _reconstruction_step(
        self, x: Tensor, inputs: gan.GanInputs, m_pm: Tensor, penalty, opt_G
    ) -> dict[str, Tensor]:
        """The control: the generator alone, fitted to the masked entries of the real row."""
        y_hat = self.G_(*inputs.generator)  # (B, I)
        extra = penalty(y_hat, inputs)
        loss = (m_pm * (y_hat - x).square()).sum(dim=1).mean() + extra
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        # detach: the reported numbers are records, not part of any graph; scalar tensors on the
        # device, brought to the host once per epoch.
        return {"g_loss": loss.detach(), "g_penalty": extra.detach()}

    # -- scoring ---------------------------------------------------------------------------------
    def _generate(self, entities: Tensor) -> Tensor:
        c = self._dense(self.conditions_[entities.cpu().numpy()])  # (n, I)
        return self.G_(c)  # noise at its mean

    def _val_score(self, G: nn.Module, e: Tensor, i: Tensor) -> Tensor:
        """Validation scores (B, c): the generator's output, as the recommender ranks it."""
        y = torch.as_tensor(self._score_rows(e.cpu().numpy()), device=i.device)  # (B, I)
        return y.gather(1, i)


# --------------------------------------------------------------------------------------------
# IRGAN
# --------------------------------------------------------------------------------------------


def leave_one_out_baseline(cost: Tensor) -> Tensor:
    """For each of the :math:`K` draws of a row, the mean cost of the row's *other* draws.

    .. math:: b_k = \\frac{1}{K - 1} \\sum_{m \\ne k} \\ell(i_m)

    :math:`b_k` does not depend on draw :math:`k`, so :func:`reinforce_loss` stays unbiased with
    it. The plain row mean :math:`\\bar\\ell` does depend on it, through its own term
    :math:`\\ell(i_k) / K`: subtracting it scales the expected gradient by :math:`(K - 1) / K`.

    Parameters
    ----------
    cost : Tensor
        Costs of the draws, (B, K) with :math:`K \\ge 2`.

    Returns
    -------
    Tensor
        (B, K), the baseline of each draw.
    """
    if cost.dim() != 2 or cost.shape[1] < 2:
        raise ValueError(
            f"cost must have shape (B, K) with K >= 2 draws per row; got {tuple(cost.shape)}"
        )
    return (cost.sum(dim=1, keepdim=True) - cost) / (cost.shape[1] - 1)


def reinforce_loss(log_p: Tensor, cost: Tensor, baseline: Tensor | float = 0.0) -> Tensor:
    """A surrogate whose gradient is the REINFORCE estimate of :math:`\\nabla_\\theta
    \\mathbb{E}_{i \\sim p_\\theta}[\\ell(i)]`.

    For samples :math:`i_1, \\dots, i_K \\sim p_\\theta` with costs :math:`\\ell(i_k)` (numbers
    that do not depend on :math:`\\theta`) and a baseline :math:`b`,

    .. math:: \\nabla_\\theta \\frac{1}{K}\\sum_k \\big(\\ell(i_k) - b\\big) \\log p_\\theta(i_k)
              = \\frac{1}{K}\\sum_k \\big(\\ell(i_k) - b\\big) \\nabla_\\theta \\log p_\\theta(i_k),

    an unbiased estimate of :math:`\\nabla_\\theta \\mathbb{E}[\\ell]` because
    :math:`\\mathbb{E}[\\nabla_\\theta \\log p_\\theta(i)] = \\nabla_\\theta \\sum_i p_\\theta(i) = 0`,
    which is also why any baseline that does not depend on the sample leaves it unbiased.

    Parameters
    ----------
    log_p : Tensor
        :math:`\\log p_\\theta(i_k)` of the samples, any shape, with a graph to :math:`\\theta`.
    cost : Tensor
        Their costs, the shape of ``log_p``; detached inside.
    baseline : Tensor or float
        Subtracted from the cost; broadcastable to it (e.g. a per-row mean, shape (B, 1)).

    Returns
    -------
    Tensor
        A scalar; its *value* is not the expected cost, only its gradient matters.
    """
    if cost.shape != log_p.shape:
        raise ValueError(
            f"cost must have the shape of log_p, {tuple(log_p.shape)}; got {tuple(cost.shape)}"
        )
    # detach: the cost and the baseline are numbers handed to the generator, not functions of
    # its parameters; a gradient through them would not be the policy gradient.
    advantage = (cost - baseline).detach()
    return (advantage * log_p).mean()


class _Pairs(NamedTuple):
    """IRGAN's training pairs, sorted by entity, on the device."""

    u: Tensor  # (N,) entity of each pair
    i: Tensor  # (N,) its item
    row: Tensor  # (N,) the entity's row among the active entities
    position: Tensor  # (N,) the pair's position among its entity's pairs
    active: Tensor  # (E,) entities with at least one pair
    n_max: int  # most pairs of one entity


def _all_scores(mf: MF, u: Tensor) -> Tensor:
    """Scores (B, I) of every item for entity ids ``u`` (B,): ``P[u] Qᵀ + β``, one product.

    The same numbers as ``mf(u[:, None], all_items[None, :])`` without its (B, I, d) temporary.
    """
    y = mf.P(u) @ mf.Q.weight.T  # (B, I)
    return y if mf.beta is None else y + mf.beta.weight[:, 0]


class _PairDiscriminator(nn.Module):
    """IRGAN's discriminator as :func:`grouprec.gan.discriminator_step` calls it: ``D(i, u)``."""

    def __init__(self, f: MF) -> None:
        super().__init__()
        self.f = f

    def forward(self, i: Tensor, u: Tensor) -> Tensor:
        return self.f(u, i)  # (B,) logits f_φ(u, i)


class _PresampledGenerator(nn.Module):
    """Hands :func:`grouprec.gan.discriminator_step` items already drawn from :math:`p_\\theta`.

    The draws of an epoch are made at once, per entity (one softmax per entity, not per pair);
    this module only looks them up, so the discriminator step sees the generator's samples
    without the generator being run once per training pair.
    """

    def forward(self, j: Tensor) -> Tensor:
        return j


class IRGANRecommender(_GenerativeRecommender):
    """IRGAN (Wang et al., SIGIR 2017) for item recommendation, behind the common interface.

    Generator :math:`p_\\theta(i \\mid u) = \\operatorname{softmax}_i(g_\\theta(u, i) / \\tau)` and
    discriminator :math:`D_\\phi(u, i) = \\sigma(f_\\phi(u, i))`, both matrix factorisation scores
    (:class:`grouprec.preference.MF`). Each epoch:

    1. *discriminator*: every training pair :math:`(u, i)` is a real example and one item
       :math:`j \\sim p_\\theta(\\cdot \\mid u)` a generated one; minimise
       :func:`grouprec.gan.discriminator_loss` over batches (:func:`grouprec.gan.discriminator_step`);
    2. *generator*, ``g_steps`` passes over the entities: draw ``n_samples`` items per entity
       from :math:`p_\\theta`, cost them with the generator's GAN loss under the current
       discriminator (``kind="minimax"``, the paper's: :math:`\\log(1 - D_\\phi(u, j)) =
       -\\operatorname{softplus}(f_\\phi(u, j))`), and step along :func:`reinforce_loss`, with
       :func:`leave_one_out_baseline` when ``baseline`` is set.

    Parameters
    ----------
    d : int
        Embedding width of both players.
    temperature : float
        :math:`\\tau` of the generator's softmax.
    n_samples : int
        Items drawn per entity for each generator step.
    g_steps : int
        Generator passes over the entities per epoch.
    baseline : bool
        Subtract from each draw's cost the mean cost of the entity's other draws
        (:func:`leave_one_out_baseline`; variance reduction without bias). Needs ``n_samples``
        of at least 2.
    kind : str
        The generator's per-sample cost, ``"minimax"`` or ``"non-saturating"``
        (:math:`-\\log D_\\phi(u, j)`).
    pretrain_epochs : int
        When positive, the generator starts from matrix factorisation trained with BPR for at
        most this many epochs (:class:`grouprec.preference.BPRRecommender`, early-stopped on
        validation), as the IRGAN code starts from a pre-trained model; 0 starts at random.
    epochs : int
        Largest number of epochs.
    lr_G, lr_D : float
        Adam's learning rates.
    batch_size : int
        Training pairs per discriminator step.
    batch_entities : int
        Entities per generator step.
    weight_decay : float
        L2 penalty on both players' parameters.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    filter_consumed : bool
        Score training items ``-inf``.
    seed : int
        Seeds the weights, the batch order and the samples.
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. The seeded generator of
        the order and the samples lives there too, so a GPU run differs from a CPU run with the
        same seed.
    progress : bool
        Show a progress bar over epochs.

    Attributes
    ----------
    G_, D_ : MF
        Scores :math:`g_\\theta` and :math:`f_\\phi` of the trained players (best epoch).
    history_ : GanHistory
        Per epoch: ``d_loss``, ``d_real``, ``d_fake``, ``g_loss`` (the generator's GAN loss on
        its samples, the mean cost), validation metrics.
    pretrained_ : BPRRecommender or None
        The fitted MF-BPR model the generator started from, when ``pretrain_epochs`` > 0; its
        ``history_`` is the pre-training run.
    """

    name = "IRGAN"

    def __init__(
        self,
        d: int = 32,
        temperature: float = 1.0,
        n_samples: int = 32,
        g_steps: int = 1,
        baseline: bool = True,
        kind: str = "minimax",
        pretrain_epochs: int = 0,
        epochs: int = 30,
        lr_G: float = 0.01,
        lr_D: float = 0.01,
        batch_size: int = 4096,
        batch_entities: int = 256,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        filter_consumed: bool = True,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        self.d = _check_int("d", d)
        self.temperature = _check_float("temperature", temperature, 0.0, math.inf, open_low=True)
        self.n_samples = _check_int("n_samples", n_samples)
        self.g_steps = _check_int("g_steps", g_steps, minimum=0)
        self.baseline = bool(baseline)
        if self.baseline and self.n_samples < 2:
            raise ValueError(
                f"baseline=True needs n_samples >= 2 (the baseline of a draw is the mean cost of "
                f"the other draws), got n_samples={n_samples!r}"
            )
        self.kind = _check_choice("kind", kind, gan.GENERATOR_LOSSES)
        self.pretrain_epochs = _check_int("pretrain_epochs", pretrain_epochs, minimum=0)
        self.epochs = _check_int("epochs", epochs)
        self.lr_G = _check_float("lr_G", lr_G, 0.0, math.inf, open_low=True)
        self.lr_D = _check_float("lr_D", lr_D, 0.0, math.inf, open_low=True)
        self.batch_size = _check_int("batch_size", batch_size)
        self.batch_entities = _check_int("batch_entities", batch_entities)
        self.weight_decay = _check_float("weight_decay", weight_decay, 0.0, math.inf)
        self.patience = None if patience is None else _check_int("patience", patience)
        self.filter_consumed = bool(filter_consumed)
        self.seed = _check_int("seed", seed, minimum=0)
        self.device = device
        self.progress = progress

    def log_p(self, u: Tensor) -> Tensor:
        """:math:`\\log p_\\theta(\\cdot \\mid u)` over all items, (B, I), for entity ids ``u`` (B,).

        ``u`` may live anywhere (or be a NumPy array); the result is on the model's device.
        """
        u = torch.as_tensor(u, device=self.G_.P.weight.device)
        return F.log_softmax(_all_scores(self.G_, u) / self.temperature, dim=1)

    def cost(self, u: Tensor, j: Tensor) -> Tensor:
        """The generator's per-sample GAN loss under the current discriminator, shape of ``j``.

        On the model's device, wherever ``u`` and ``j`` come from.
        """
        device = self.D_.P.weight.device
        s = self.D_(torch.as_tensor(u, device=device), torch.as_tensor(j, device=device))
        return -F.softplus(s) if self.kind == "minimax" else F.softplus(-s)

    def fit(self, dataset: GroupDataset, task: str) -> IRGANRecommender:
        """Train on ``dataset``'s training pairs for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        train = dataset.train(task)
        if len(train) == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training pairs for task {task!r}")
        seed_everything(self.seed)  # the initial weights
        self.G_ = MF(self.n_entities_, self.n_items_, self.d).to(self.device_)
        self.D_ = MF(self.n_entities_, self.n_items_, self.d).to(self.device_)
        self.pretrained_ = None
        if self.pretrain_epochs:
            self.pretrained_ = BPRRecommender(
                "mf", self.d, self.pretrain_epochs, seed=self.seed, device=self.device
            ).fit(dataset, task)
            self.G_.load_state_dict(self.pretrained_.model_.state_dict())
        opt_G = torch.optim.Adam(self.G_.parameters(), lr=self.lr_G, weight_decay=self.weight_decay)
        opt_D = torch.optim.Adam(self.D_.parameters(), lr=self.lr_D, weight_decay=self.weight_decay)
        gen = self._seeded_generator()
        pairs = self._pairs(train)

        def one_epoch() -> dict[str, float]:
            self.G_.train()
            self.D_.train()
            record = self._discriminator_pass(pairs, opt_D, gen)
            costs: list[tuple[dict[str, Tensor], int]] = []
            for _ in range(self.g_steps):
                order = _randperm(len(pairs.active), gen, self.device_)
                shuffled = pairs.active[order]
                for s in range(0, len(shuffled), self.batch_entities):
                    u = shuffled[s : s + self.batch_entities]
                    costs.append(({"g_loss": self._policy_step(u, opt_G, gen)}, len(u)))
            record.update(_weighted_means(costs, sum(n for _, n in costs)))
            return record

        self.history_ = self._train_epochs(dataset, task, one_epoch, max(self.lr_G, self.lr_D))
        return self

    def _pairs(self, train) -> _Pairs:
        """The training pairs sorted by entity, with what drawing per entity needs."""
        order = np.argsort(train.entity, kind="stable")
        entity = train.entity[order]
        active, first, counts = np.unique(entity, return_index=True, return_counts=True)
        row_of = np.full(self.n_entities_, -1)
        row_of[active] = np.arange(len(active))

        def tensor(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=torch.int64, device=self.device_)

        return _Pairs(
            u=tensor(entity),
            i=tensor(train.item[order]),
            row=tensor(row_of[entity]),
            position=tensor(np.arange(len(order)) - np.repeat(first, counts)),
            active=tensor(active),
            n_max=int(counts.max()),
        )

    def _discriminator_pass(
        self, pairs: _Pairs, opt_D: torch.optim.Optimizer, gen: torch.Generator
    ) -> dict[str, float]:
        """One pass of discriminator steps: every training pair against one draw of the generator.

        The draws are made per entity, ``n_max`` at once from :math:`p_\\theta(\\cdot \\mid u)`,
        and pair number ``k`` of an entity takes draw number ``k``: one softmax per entity instead
        of one per pair.
        """
        with torch.no_grad():  # sampling only: the generator does not learn here
            draws = torch.cat(
                [
                    _multinomial(
                        self.log_p(pairs.active[s : s + self.batch_entities]).exp(),
                        pairs.n_max,
                        gen,
                    )
                    for s in range(0, len(pairs.active), self.batch_entities)
                ]
            )  # (E, n_max)
        j_all = draws[pairs.row, pairs.position]  # (N,) one generated item per training pair
        perm = _randperm(len(pairs.u), gen, self.device_)
        D_pair, sampler = _PairDiscriminator(self.D_), _PresampledGenerator()
        steps: list[tuple[dict[str, Tensor], int]] = []
        for s in range(0, len(perm), self.batch_size):
            b = perm[s : s + self.batch_size]
            inputs = gan.GanInputs(generator=(j_all[b],), condition=(pairs.u[b],))
            out = gan.discriminator_step(
                sampler, D_pair, opt_D, pairs.i[b], inputs, as_tensors=True
            )
            steps.append((out, len(b)))
        return _weighted_means(steps, len(perm))

    def _generator_step(
        self, u: Tensor, opt_G: torch.optim.Optimizer, gen: torch.Generator
    ) -> float:
        """One policy-gradient step of the generator for entities ``u`` (B,); the mean cost."""
        return self._policy_step(u, opt_G, gen).item()

    def _policy_step(self, u: Tensor, opt_G: torch.optim.Optimizer, gen: torch.Generator) -> Tensor:
        """:meth:`_generator_step`, with the mean cost as a scalar tensor on the device."""
        log_p = self.log_p(u)  # (B, I), with a graph to θ
        with torch.no_grad():  # the draws and their costs are data for this step, not functions
            j = _multinomial(log_p.exp(), self.n_samples, gen)  # (B, K)
            cost = self.cost(u[:, None], j)  # (B, K), the discriminator only read
        b = leave_one_out_baseline(cost) if self.baseline else 0.0  # (B, K) baseline
        loss = reinforce_loss(log_p.gather(1, j), cost, b)
        # zero_grad, then backward into the generator's parameters only: the costs carry no graph.
        opt_G.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.G_.parameters()))
        opt_G.step()
        return cost.mean()

    def _generate(self, entities: Tensor) -> Tensor:
        return _all_scores(self.G_, entities)  # (n, I) g_θ(u, i)

    def _val_score(self, G: nn.Module, e: Tensor, i: Tensor) -> Tensor:
        y = torch.as_tensor(self._score_rows(e.cpu().numpy()), device=i.device)  # (B, I)
        return y.gather(1, i)
