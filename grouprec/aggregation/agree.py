"""Learned aggregation: AGREE, attentive group recommendation (Cao et al., 2018).

:class:`AGREE` learns how much each member counts, per candidate item, with an attention
network, and adds a group-specific embedding; it trains with BPR on group and user interactions
together (:class:`JointBatches`, :func:`agree_step_loss`) through :func:`grouprec.training.fit`.
:class:`AGREERecommender` implements the common recommender interface of
:mod:`grouprec.evaluation`. The network, its batches and its loss live in
:mod:`grouprec.aggregation.agree_network`; this module holds the recommender.

References
----------
Cao, D., He, X., Miao, L., An, Y., Yang, C. and Hong, R. (2018). Attentive group recommendation.
*Proceedings of the 41st International ACM SIGIR Conference on Research and Development in
Information Retrieval*, 645-654. (AGREE: item-dependent attention over members, a
group-specific embedding, an NCF-style prediction layer, joint training on user and group data.)

Bahdanau, D., Cho, K. and Bengio, Y. (2015). Neural machine translation by jointly learning to
align and translate. *3rd International Conference on Learning Representations (ICLR)*.
(Additive attention: a small network scores each element, a softmax turns scores into weights.)

He, X., Liao, L., Zhang, H., Nie, L., Hu, X. and Chua, T.-S. (2017). Neural collaborative
filtering. *Proceedings of the 26th International Conference on World Wide Web*, 173-182.

Rendle, S., Freudenthaler, C., Gantner, Z. and Schmidt-Thieme, L. (2009). BPR: Bayesian
personalized ranking from implicit feedback. *Proceedings of the 25th Conference on Uncertainty
in Artificial Intelligence (UAI)*, 452-461.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from grouprec.aggregation._common import (
    _CELLS,
    _size_chunks,
    joint_as_task,
    joint_scorer,
    start_joint_fit,
    train_joint,
)
from grouprec.aggregation.agree_network import AGREE, JointBatches, agree_step_loss
from grouprec.base import BaseRecommender
from grouprec.checks import check_ids, check_members, check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import EvalCases, GroupDataset
from grouprec.training import (
    History,
    ValFn,
    keeps_global_rng,
    ranking_val_fn,
)

__all__ = ["AGREE", "AGREERecommender", "JointBatches", "agree_step_loss"]


class AGREERecommender(BaseRecommender):
    """AGREE trained with BPR on group and user data, behind the common recommender interface.

    ``fit`` trains one :class:`AGREE` on every group and user training pair
    (:class:`JointBatches`, :func:`agree_step_loss`) with :func:`grouprec.training.fit`, and
    stops early on NDCG@10 over the validation cases of the fitted task when the dataset has a
    validation split (it never reads the test split). ``score`` then scores groups (task
    ``"group"``) or users (task ``"user"``).

    Parameters
    ----------
    d : int
        Embedding width.
    attention_dim : int
        Hidden width of the attention network.
    hidden : int
        Hidden width of the prediction layer.
    dropout : float
        Dropout rate of both hidden layers.
    epochs : int
        Largest number of epochs.
    lr : float
        Adam's learning rate.
    n_neg : int
        Negatives sampled per positive pair and epoch.
    user_weight : float
        Weight :math:`\\beta` of the user loss against the group loss (see
        :func:`agree_step_loss`); 0 trains on groups only, although user pairs are still drawn.
    batch_size : int
        Positive pairs per batch.
    weight_decay : float
        L2 penalty on all parameters.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    init_std : float
        Initialisation scale of the user and item embeddings.
    seed : int
        Seeds the initialisation, the batch order, the negatives and dropout. ``fit`` gives the
        caller's global generators back their state (:func:`~grouprec.training.keeps_global_rng`).
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. The scoring methods take
        and return NumPy arrays wherever the model lives. Dropout draws from the generator of
        that device, so with ``dropout > 0`` a GPU run differs from a CPU run with the same seed.
    progress : bool
        Show a progress bar while training.

    Attributes
    ----------
    model_ : AGREE
        The trained module (best validation epoch).
    history_ : History
        Loss and validation curves.
    task_ : str
        The task fitted.
    members_, mask_ : np.ndarray
        The padded member table (n_groups, S) the model was built with, and its mask.
    """

    name = "AGREE"

    def __init__(
        self,
        d: int = 32,
        attention_dim: int = 16,
        hidden: int = 8,
        dropout: float = 0.0,
        epochs: int = 30,
        lr: float = 0.005,
        n_neg: int = 4,
        user_weight: float = 1.0,
        batch_size: int = 4096,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        init_std: float = 0.1,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        self.d = check_size("d", d)
        self.attention_dim = check_size("attention_dim", attention_dim)
        self.hidden = check_size("hidden", hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        if not float(user_weight) >= 0.0:
            raise ValueError(f"user_weight must be a non-negative number, got {user_weight!r}")
        self.user_weight = float(user_weight)
        self._set_training_params(locals())

    def build(self, dataset: GroupDataset) -> AGREE:
        """A fresh, untrained :class:`AGREE` for the dataset's id spaces and groups."""
        members, mask = dataset.member_padded()  # (G, S) each
        return AGREE(
            dataset.n_users,
            dataset.n_items,
            dataset.n_groups,
            members.shape[1],
            d=self.d,
            attention_dim=self.attention_dim,
            hidden=self.hidden,
            dropout=self.dropout,
            init_std=self.init_std,
            members=members,
            member_mask=mask,
        )

    def _rows(self, c: int, width: int) -> int:
        """Rows scored per call so that the attention tensor (rows, c, width, a) stays small."""
        return max(1, _CELLS // max(1, c * width * self.attention_dim))

    def prepare_fit(
        self, dataset: GroupDataset, task: str = "group"
    ) -> tuple[JointBatches, ValFn | None]:
        """Everything :meth:`fit` does before training: the untrained model and its inputs.

        Seeds the global generators, builds :attr:`model_` and records the fitted task; returns
        the batches and the validation function (None without a validation split) that
        :meth:`fit` hands to :func:`grouprec.training.fit`. :mod:`grouprec.distributed` trains
        from the same pieces with several processes.
        """
        batches, val = start_joint_fit(self, dataset, task)
        self.members_, self.mask_ = dataset.member_padded()
        val_fn = None
        if val is not None:
            width = self.members_.shape[1] if task == "group" else 1
            if task == "group":
                # Cases ordered by group size: each validation batch then pads its member lists
                # only to its own largest group. The order does not change a mean metric.
                o = np.argsort(self.mask_.sum(axis=1)[val.entity], kind="stable")
                val = EvalCases(val.entity[o], val.item[o], val.negatives[o])
            val_fn = ranking_val_fn(
                val,
                score=joint_scorer(task),
                batch_size=self._rows(1 + val.negatives.shape[1], width),
            )
        return batches, val_fn

    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str = "group") -> AGREERecommender:
        """Train on all group and user training pairs; validate on ``task``'s validation cases."""
        batches, val_fn = self.prepare_fit(dataset, task)
        self.history_: History = train_joint(self, batches, val_fn)
        return self

    def as_task(self, task: str) -> AGREERecommender:
        """The same fitted model, scoring the entities of ``task`` (no training).

        AGREE learns users and groups together, so one fit serves both tasks: a model fitted
        (and stopped early) on the group task can rank items for users, and the other way
        round. The returned object shares the network; only what ``score`` scores changes.

        Parameters
        ----------
        task : {"user", "group"}
        """
        return joint_as_task(self, task)

    def _check_fitted(self) -> AGREE:
        self._check_is_fitted()
        return self.model_

    def _run_groups(
        self, groups: np.ndarray, items: np.ndarray, want_attention: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        model = self._check_fitted()
        device = next(model.parameters()).device
        n, c = items.shape
        S = self.members_.shape[1]
        y = np.empty((n, c), dtype=np.float32)
        alpha = np.zeros((n, c, S), dtype=np.float32) if want_attention else None
        model.eval()
        with torch.no_grad():
            for rows in _size_chunks(self.mask_.sum(axis=1)[groups], c * self.attention_dim):
                g = torch.as_tensor(groups[rows], device=device)
                it = torch.as_tensor(items[rows], device=device)
                y_b, a_b = model(g, it, return_attention=True)
                y[rows] = y_b.float().cpu().numpy()
                if alpha is not None:
                    alpha[rows] = a_b.float().cpu().numpy()
        return y, alpha

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for ``entities`` (n,), groups or users."""
        entities, items = self._check_ids(entities, items)
        model = self.model_
        if self.task_ == "group":
            return self._run_groups(entities, items, want_attention=False)[0]
        items = np.ascontiguousarray(items)  # a copy of a broadcast view: writable
        device = next(model.parameters()).device
        step = self._rows(items.shape[1], 1)
        out = np.empty(items.shape, dtype=np.float32)
        model.eval()
        with torch.no_grad():
            for start in range(0, len(entities), step):
                u = torch.as_tensor(entities[start : start + step], device=device)
                it = torch.as_tensor(items[start : start + step], device=device)
                out[start : start + step] = model.score_users(u, it).float().cpu().numpy()
        return out

    def attention_weights(self, groups: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Member weights :math:`\\alpha_{gu}(j)` in the slots of ``dataset.member_padded()``.

        Parameters
        ----------
        groups : array of int, shape (n,)
        items : array of int, shape (n,) or (n, c)

        Returns
        -------
        np.ndarray
            Shape (n, S) or (n, c, S), float32; each row sums to 1 over the group's members and
            padded slots hold 0.
        """
        self._check_fitted()
        items = np.asarray(items)
        single = items.ndim == 1
        groups, items2 = check_ids(
            "groups",
            groups,
            items[:, None] if single else items,
            self.n_groups_,
            self.n_items_,
            "group",
        )
        alpha = self._run_groups(groups, items2, want_attention=True)[1]
        return alpha[:, 0] if single else alpha

    def score_members(
        self, members: Sequence[int] | np.ndarray, items: np.ndarray, group: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and weights for any set of users, e.g. a group composed on the spot.

        Parameters
        ----------
        members : sequence of int
            User ids, at least one; they need not be a group of the dataset.
        items : array of int, shape (c,)
            Candidate items.
        group : int, optional
            A group id whose :math:`\\mathbf{e}_g` to add; None uses 0 (a new group).

        Returns
        -------
        y : np.ndarray
            Shape (c,), the group scores.
        alpha : np.ndarray
            Shape (c, |members|), each candidate's member weights.
        """
        model = self._check_fitted()
        ids, items = check_members("members", members, items, self.n_users_, self.n_items_)
        device = next(model.parameters()).device
        step = self._rows(1, len(ids))
        y = np.empty(len(items), dtype=np.float32)
        alpha = np.empty((len(items), len(ids)), dtype=np.float32)
        m_ids = torch.as_tensor(ids, device=device)[None]  # (1, |M|)
        mask = torch.ones_like(m_ids, dtype=torch.bool)
        g = None if group is None else torch.tensor([int(group)], device=device)
        model.eval()
        with torch.no_grad():
            for start in range(0, len(items), step):
                it = torch.as_tensor(items[start : start + step], device=device)[None]  # (1, c')
                y_b, a_b = model.score_members(m_ids, mask, it, g, return_attention=True)
                y[start : start + step] = y_b[0].float().cpu().numpy()
                alpha[start : start + step] = a_b[0].float().cpu().numpy()
        return y, alpha
