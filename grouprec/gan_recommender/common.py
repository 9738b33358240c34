"""What the two GAN recommenders share: argument checks, random draws on the generator's device,
the record of a run (:class:`GanHistory`) and the plumbing of the recommender interface
(filtering of consumed items, the epochs, scoring), in the base class of
:class:`~grouprec.gan_recommender.CFGANRecommender` and
:class:`~grouprec.gan_recommender.IRGANRecommender`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from grouprec.base import BaseRecommender
from grouprec.checks import check_choice
from grouprec.constants import TASKS
from grouprec.data import GroupDataset
from grouprec.training import ranking_val_fn, select_device, train_epochs

# Rows of conditions turned dense at once when scoring.
_SCORE_ROWS = 1024


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


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
        check_choice("task", task, TASKS)
        super()._start_fit(dataset, task)
        self.consumed_ = dataset.train_matrix(task).tocsr()  # (n_entities, I) binary
        self.device_ = select_device(self.device)
        # The same, dense on the device, for validation without a round trip through the host.
        consumed = torch.from_numpy(self.consumed_.toarray() != 0)  # (n_entities, I) bool
        self.consumed_mask_ = consumed.to(self.device_)

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

    def _device_rows(self, entities: Tensor) -> Tensor:
        """:meth:`_score_rows` for entity ids on the device, computed and left there: (n, I)."""
        parts = []
        for start in range(0, len(entities), _SCORE_ROWS):
            e = entities[start : start + _SCORE_ROWS]
            with torch.no_grad():
                y = self._generate(e).float()  # (b, I)
            if self.filter_consumed:
                y = y.masked_fill(self.consumed_mask_[e], -math.inf)
            parts.append(y)
        if not parts:
            return torch.empty((0, self.n_items_), device=self.device_)
        return torch.cat(parts)

    def _val_score(self, G: nn.Module, e: Tensor, i: Tensor) -> Tensor:
        """Validation scores (B, c): the generator's output as the recommender ranks it, for
        entities ``e`` (B,) and candidates ``i`` (B, c) on the device, computed there. An entity
        with several validation cases (five per entity on CAMRa2011) is generated once."""
        unique, inverse = torch.unique(e, return_inverse=True)
        return self._device_rows(unique)[inverse[:, None], i]

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
