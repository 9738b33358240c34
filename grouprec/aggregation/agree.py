"""Learned aggregation: AGREE, attentive group recommendation (Cao et al., 2018).

:class:`AGREE` learns how much each member counts, per candidate item, with an attention
network, and adds a group-specific embedding; it trains with BPR on group and user interactions
together (:class:`JointBatches`, :func:`agree_step_loss`) through :func:`grouprec.training.fit`.
:class:`AGREERecommender` implements the common recommender interface of
:mod:`grouprec.evaluation`.

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

import copy
import math
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from grouprec.aggregation._common import _CELLS, _check_members, _size_chunks
from grouprec.base import BaseRecommender, check_ids
from grouprec.constants import DEFAULT_SEED
from grouprec.data import EvalCases, GroupDataset, Interactions, NegativeSampler
from grouprec.preference import bpr_loss
from grouprec.training import (
    History,
    ValFn,
    check_id_tensor,
    check_size,
    epoch_to_device,
    explain_bad_ids,
    fit,
    ranking_val_fn,
    seed_everything,
    select_device,
)


class AGREE(nn.Module):
    """Attentive group recommendation, AGREE (Cao et al., 2018), with BPR-ready scores.

    Every user u has an embedding :math:`\\mathbf{p}_u`, every item j an embedding
    :math:`\\mathbf{q}_j` and every group g a group-specific embedding :math:`\\mathbf{e}_g`
    (rows of ``P``, ``Q`` and ``E``). For group g and candidate item j, each member u gets an
    attention score from a one-hidden-layer network (additive attention, Bahdanau et al., 2015)

    .. math:: o_{gu}(j) = \\mathbf{h}^\\top \\operatorname{ReLU}(\\mathbf{W}_p \\mathbf{p}_u +
       \\mathbf{W}_q \\mathbf{q}_j + \\mathbf{b}),

    a softmax over the group's members turns the scores into weights
    :math:`\\alpha_{gu}(j) = \\exp o_{gu}(j) / \\sum_{v \\in \\mathcal{M}_g} \\exp o_{gv}(j)`,
    and the group is represented, for this candidate, by

    .. math:: \\mathbf{g}_g(j) = \\sum_{u \\in \\mathcal{M}_g} \\alpha_{gu}(j)\\, \\mathbf{p}_u +
       \\mathbf{e}_g .

    The weights depend on the candidate: a member may lead on films and follow on restaurants.
    Groups are padded to S member slots; a padded slot's score is set to :math:`-\\infty` before
    the softmax, so its weight is exactly 0 whatever id it holds.

    The prediction layer is the NCF-style network of the paper (He et al., 2017): for an entity
    representation :math:`\\mathbf{x}` (a group's :math:`\\mathbf{g}_g(j)` or a user's
    :math:`\\mathbf{p}_u`) and item :math:`\\mathbf{q}_j`,

    .. math:: \\hat y = \\mathbf{w}_2^\\top \\operatorname{ReLU}(\\mathbf{W}_1 [\\mathbf{x} \\odot
       \\mathbf{q}_j;\\, \\mathbf{x};\\, \\mathbf{q}_j] + \\mathbf{b}_1) + b_2,

    shared by groups and users, so that user data trains the member and item embeddings the
    groups use. The score is a logit (no sigmoid): BPR needs only score differences.

    :math:`\\mathbf{e}_g` starts at 0, so that until its own choices say otherwise a group is the
    attention-weighted mix of its members; a group composed on the spot (no id) uses 0 too.

    Parameters
    ----------
    n_users, n_items, n_groups : int
        Sizes of the id spaces.
    n_slots : int
        S, the width of the padded member table (the largest group size).
    d : int
        Width of every embedding.
    attention_dim : int
        Width of the attention network's hidden layer (rows of W_p and W_q).
    hidden : int
        Width of the prediction layer's hidden layer (rows of W_1).
    dropout : float
        Dropout rate on both hidden layers, in training mode only.
    init_std : float
        Standard deviation of the normal initialisation of P and Q.
    members, member_mask : array, shape (n_groups, n_slots), optional
        Member user ids (padded with any valid id) and the mask of real members, as returned
        by ``GroupDataset.member_padded``. Stored as buffers, so they travel with the weights;
        when loading a checkpoint they may be left out.

    Attributes
    ----------
    P, Q, E : nn.Embedding
        User (n_users, d), item (n_items, d) and group-specific (n_groups, d) embeddings.
    W_p, W_q, h : nn.Linear
        The attention network; ``W_q``'s bias is b, ``h`` has one output and no bias.
    W_1, w_2 : nn.Linear
        The prediction layer.
    members, member_mask : Tensor
        Buffers of shape (n_groups, n_slots).
    config : dict
        The constructor arguments except the member table (stored in checkpoints).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_groups: int,
        n_slots: int,
        d: int = 32,
        attention_dim: int = 16,
        hidden: int = 8,
        dropout: float = 0.0,
        init_std: float = 0.1,
        members: np.ndarray | Tensor | None = None,
        member_mask: np.ndarray | Tensor | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "n_groups": check_size("n_groups", n_groups),
            "n_slots": check_size("n_slots", n_slots),
            "d": check_size("d", d),
            "attention_dim": check_size("attention_dim", attention_dim),
            "hidden": check_size("hidden", hidden),
            "dropout": float(dropout),
            "init_std": float(init_std),
        }
        G, S = n_groups, n_slots
        self.P = nn.Embedding(n_users, d)
        self.Q = nn.Embedding(n_items, d)
        self.E = nn.Embedding(n_groups, d)
        nn.init.normal_(self.P.weight, std=init_std)
        nn.init.normal_(self.Q.weight, std=init_std)
        nn.init.zeros_(self.E.weight)
        self.W_p = nn.Linear(d, attention_dim, bias=False)
        self.W_q = nn.Linear(d, attention_dim)  # its bias is b
        self.h = nn.Linear(attention_dim, 1, bias=False)
        self.W_1 = nn.Linear(3 * d, hidden)  # its bias is b_1
        self.w_2 = nn.Linear(hidden, 1)  # its bias is b_2
        self.dropout = nn.Dropout(dropout)

        if (members is None) != (member_mask is None):
            raise ValueError("pass members and member_mask together, or neither")
        if members is None:  # placeholders, e.g. before load_checkpoint fills them
            ids = torch.zeros(G, S, dtype=torch.int64)
            mask = torch.zeros(G, S, dtype=torch.bool)
            mask[:, 0] = True
        else:
            ids = torch.as_tensor(np.asarray(members), dtype=torch.int64)
            mask = torch.as_tensor(np.asarray(member_mask)).to(torch.bool)
            if tuple(ids.shape) != (G, S) or tuple(mask.shape) != (G, S):
                raise ValueError(
                    f"members and member_mask must have shape (n_groups, n_slots) = {(G, S)}; "
                    f"got {tuple(ids.shape)} and {tuple(mask.shape)}"
                )
            empty = (~mask.any(1)).nonzero().flatten()
            if len(empty):
                raise ValueError(f"group {int(empty[0])} has no member: its mask row is all False")
            check_id_tensor("members", ids[mask], n_users)
            ids = ids.masked_fill(~mask, 0)  # padded slots hold a valid id, never used
        self.register_buffer("members", ids)
        self.register_buffer("member_mask", mask)

    # -- building blocks -------------------------------------------------------------------
    def attention_logits(self, p: Tensor, q: Tensor) -> Tensor:
        """Scores :math:`o_{gu}(j)` of members ``p`` (B, S, d) for candidates ``q`` (B, c, d).

        Returns (B, c, S); padded slots are not masked here.
        """
        a_p = self.W_p(p)  # (B, S, a)  W_p p_u, once per member
        a_q = self.W_q(q)  # (B, c, a)  W_q q_j + b, once per candidate
        H = torch.relu(a_q[:, :, None, :] + a_p[:, None, :, :])  # (B, c, S, a)
        return self.dropout(H) @ self.h.weight[0]  # (B, c, S)

    def predict(self, x: Tensor, q: Tensor) -> Tensor:
        """The prediction layer: scores of representations ``x`` for items ``q``.

        ``x`` and ``q`` have broadcastable shapes (..., d), e.g. a user's (B, 1, d) against
        candidates (B, c, d); the result has their broadcast shape without the last axis.
        """
        # W_1 [x*q; x; q] = W_xq (x*q) + W_x x + W_qq q: the three column blocks of W_1 applied
        # separately give the same numbers without building the (..., 3d) concatenation, and let
        # a user's W_x p_u be computed once for all of its candidates.
        d = q.shape[-1]
        W_xq, W_x, W_qq = self.W_1.weight.split(d, dim=1)  # (hidden, d) each
        z = (x * q) @ W_xq.T + x @ W_x.T + q @ W_qq.T + self.W_1.bias  # (..., hidden)
        return self.w_2(self.dropout(torch.relu(z)))[..., 0]  # (...)

    def _group_scores(
        self, ids: Tensor, m: Tensor, e: Tensor | None, q: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Scores (B, c) and weights (B, c, S) for padded members ``ids``, mask ``m`` (B, S),
        and candidates' embeddings ``q`` (B, c, d)."""
        B, S = ids.shape
        if B == 0:
            return q.new_zeros(q.shape[:-1]), q.new_zeros((*q.shape[:-1], S))
        width = self._slot_width(m)
        p = self.P(ids[:, :width])  # (B, S', d)
        o = self.attention_logits(p, q)  # (B, c, S')
        o = o.masked_fill(~m[:, None, :width], -math.inf)  # padded slots: weight exactly 0
        alpha = torch.softmax(o, dim=-1)  # (B, c, S')
        # sum_u alpha_gu(j) p_u as a broadcast product and a sum: with a handful of members per
        # group this is faster than torch.bmm's many tiny matrix products.
        g = (alpha[..., None] * p[:, None, :, :]).sum(2)  # (B, c, d)
        if e is not None:
            g = g + e[:, None, :]  # + e_g
        y = self.predict(g, q)  # (B, c)
        if width < S:
            alpha = nn.functional.pad(alpha, (0, S - width))  # (B, c, S)
        return y, alpha

    @staticmethod
    def _slot_width(m: Tensor) -> int:
        """Member slots to compute for a batch's mask ``m`` (B, S).

        On the CPU, only the leading slots that hold a member in some row of the batch. On an
        accelerator that width would have to come back to the host at every step, which waits
        for the device; there every slot is computed (padded ones get weight 0 anyway).
        """
        return int(m.any(0).nonzero().max()) + 1 if m.device.type == "cpu" else m.shape[1]

    @staticmethod
    def _shapes(entities: Tensor, items: Tensor, what: str) -> bool:
        if entities.ndim != 1 or items.ndim not in (1, 2) or items.shape[0] != entities.shape[0]:
            raise ValueError(
                f"{what} must have shape (B,) and items (B,) or (B, c); got "
                f"{tuple(entities.shape)} and {tuple(items.shape)}"
            )
        return items.ndim == 1

    # -- scores ----------------------------------------------------------------------------
    def forward(
        self, groups: Tensor, items: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Group scores :math:`\\hat y_{gj}`: groups (B,) with items (B,) or (B, c).

        Returns scores of the shape of ``items``; with ``return_attention`` also the weights
        :math:`\\alpha_{gu}(j)`, shape (B, S) or (B, c, S), 0 on padded slots.
        """
        single = self._shapes(groups, items, "groups")
        it = items[:, None] if single else items  # (B, c)
        # Ids are not checked on the way (that would wait for the device at every step); a
        # lookup that fails says which argument held a bad id.
        with explain_bad_ids(
            groups=(groups, self.E.num_embeddings), items=(items, self.Q.num_embeddings)
        ):
            e = self.E(groups)  # (B, d)
            q = self.Q(it)  # (B, c, d)
        y, alpha = self._group_scores(self.members[groups], self.member_mask[groups], e, q)
        if single:
            y, alpha = y[:, 0], alpha[:, 0]
        return (y, alpha) if return_attention else y

    def attention(self, groups: Tensor, items: Tensor) -> Tensor:
        """Member weights :math:`\\alpha_{gu}(j)`, (B, S) for items (B,) or (B, c, S) for (B, c)."""
        return self.forward(groups, items, return_attention=True)[1]

    def score_users(self, users: Tensor, items: Tensor) -> Tensor:
        """User scores :math:`\\hat y_{uj}` from the same prediction layer on :math:`\\mathbf{p}_u`.

        users (B,) with items (B,) or (B, c); returns the shape of ``items``.
        """
        single = self._shapes(users, items, "users")
        with explain_bad_ids(
            users=(users, self.P.num_embeddings), items=(items, self.Q.num_embeddings)
        ):
            q = self.Q(items)  # (B, d) or (B, c, d)
            p = self.P(users)  # (B, d)
        return self.predict(p if single else p[:, None, :], q)  # p_u broadcast over candidates

    def score_members(
        self,
        members: Tensor,
        member_mask: Tensor,
        items: Tensor,
        groups: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Scores for any member sets, e.g. groups composed on the spot.

        Parameters
        ----------
        members, member_mask : Tensor
            Shape (B, S'): user ids and the mask of real members (at least one per row).
        items : Tensor
            Shape (B, c): candidates.
        groups : Tensor, optional
            Shape (B,): group ids whose :math:`\\mathbf{e}_g` to add; without them
            :math:`\\mathbf{e}_g = 0`, as for a group never seen in training.
        return_attention : bool
            Also return the weights (B, c, S').
        """
        if members.shape != member_mask.shape or items.ndim != 2 or len(items) != len(members):
            raise ValueError(
                f"members and member_mask must have shape (B, S) and items (B, c); got "
                f"{tuple(members.shape)}, {tuple(member_mask.shape)} and {tuple(items.shape)}"
            )
        m = member_mask.to(torch.bool)
        if len(m) and not bool(m.any(1).all()):
            raise ValueError("every row of member_mask needs at least one real member")
        checks = {
            "members": (members, self.P.num_embeddings),
            "items": (items, self.Q.num_embeddings),
        }
        if groups is not None:
            checks["groups"] = (groups, self.E.num_embeddings)
        with explain_bad_ids(**checks):
            e = None if groups is None else self.E(groups)  # (B, d)
            q = self.Q(items)  # (B, c, d)
            y, alpha = self._group_scores(members.masked_fill(~m, 0), m, e, q)
        return (y, alpha) if return_attention else y


def agree_step_loss(model: AGREE, batch: dict[str, Any], user_weight: float = 1.0) -> Tensor:
    """The ``loss_fn`` for :func:`grouprec.training.fit`: BPR on groups plus BPR on users.

    ``batch`` comes from :class:`JointBatches`: ``entity`` (B,), ``pos`` (B,), ``neg`` (B, m)
    and ``n_groups``, the number of leading rows that are groups (the rest are users). Each row
    scores its positive and its m negatives in one call. With :math:`\\mathcal{L}_G` and
    :math:`\\mathcal{L}_U` the mean of :math:`-\\ln \\sigma(\\hat y_{ei} - \\hat y_{ej})` over the
    batch's group and user (row, negative) pairs, the loss is

    .. math:: \\mathcal{L} = \\mathcal{L}_G + \\beta\\, \\mathcal{L}_U,

    with :math:`\\beta` = ``user_weight`` (a batch without one kind has only the other term).
    Each kind is averaged over its own pairs, so the groups keep their weight on a dataset where
    user pairs outnumber them twenty to one (Mafengwo). Pass
    ``functools.partial(agree_step_loss, user_weight=...)`` to :func:`~grouprec.training.fit`.
    """
    entity, pos, neg = batch["entity"], batch["pos"], batch["neg"]
    n_groups = int(batch["n_groups"])
    items = torch.cat([pos[:, None], neg], dim=1)  # (B, 1 + m) positive first
    loss = items.new_zeros((), dtype=model.Q.weight.dtype)
    if n_groups:
        y_g = model(entity[:n_groups], items[:n_groups])  # (B_g, 1 + m)
        loss = loss + bpr_loss(y_g[:, 0], y_g[:, 1:])  # L_G
    if n_groups < len(entity):
        y_u = model.score_users(entity[n_groups:], items[n_groups:])  # (B_u, 1 + m)
        loss = loss + user_weight * bpr_loss(y_u[:, 0], y_u[:, 1:])  # beta L_U
    return loss


class JointBatches:
    """One epoch of mixed group and user BPR batches, for :func:`agree_step_loss`.

    Every epoch visits each group and each user training pair once, in one random order over
    both kinds, so that every batch holds group and user pairs in proportion to their numbers.
    Negatives come from each pair's own kind: items the group (or the user) has no training
    interaction with, drawn for the whole epoch in two vectorised calls. Within a batch the group
    rows come first. Call it as ``batches(epoch, rng)``; :func:`grouprec.training.fit` does.

    Parameters
    ----------
    group_train, user_train : Interactions
        Group-item and user-item training pairs (either may be empty, not both).
    n_items : int
        Size of the item id space.
    n_neg : int
        Negatives drawn per positive pair.
    batch_size : int
        Pairs per batch; the last batch of an epoch may be smaller.

    Yields
    ------
    dict
        ``entity`` (B,) group ids then user ids, ``pos`` (B,), ``neg`` (B, n_neg), all int64
        tensors on ``device`` when called with one (:func:`~grouprec.training.fit` passes its
        own; the epoch is drawn with NumPy and moved in one copy per array), else on the CPU,
        and ``n_groups`` (int), the number of group rows.
    """

    def __init__(
        self,
        group_train: Interactions,
        user_train: Interactions,
        n_items: int,
        n_neg: int = 1,
        batch_size: int = 4096,
    ) -> None:
        if len(group_train) + len(user_train) == 0:
            raise ValueError("group_train and user_train are both empty: nothing to train on")
        self.n_neg = check_size("n_neg", n_neg)
        self.batch_size = check_size("batch_size", batch_size)
        self.n_items = check_size("n_items", n_items)
        self.n_group_pairs = len(group_train)
        self.entity = np.concatenate([group_train.entity, user_train.entity]).astype(np.int64)
        self.item = np.concatenate([group_train.item, user_train.item]).astype(np.int64)
        self.group_sampler = NegativeSampler(group_train, n_items)
        self.user_sampler = NegativeSampler(user_train, n_items)

    @property
    def n_pairs(self) -> int:
        """Positive pairs per epoch, groups' and users'."""
        return len(self.entity)

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(self.n_pairs / self.batch_size)

    def __call__(
        self, epoch: int, rng: np.random.Generator, device: torch.device | str | None = None
    ) -> Iterator[dict[str, Any]]:
        N, N_g, bs = self.n_pairs, self.n_group_pairs, self.batch_size
        order = rng.permutation(N)  # rows < N_g are group pairs
        is_user = order >= N_g
        # Group rows first within each batch: a stable sort by (batch, kind) moves rows only
        # inside their batch.
        order = order[np.argsort((np.arange(N) // bs) * 2 + is_user, kind="stable")]
        is_group = order < N_g
        entity = self.entity[order]  # (N,)
        neg = np.empty((N, self.n_neg), dtype=np.int64)  # (N, m)
        neg[is_group] = self.group_sampler.sample(entity[is_group], self.n_neg, rng)
        neg[~is_group] = self.user_sampler.sample(entity[~is_group], self.n_neg, rng)
        entity_t = torch.from_numpy(entity)
        pos_t = torch.from_numpy(self.item[order])
        neg_t = torch.from_numpy(neg)
        if device is not None:  # the whole epoch in one copy per array; batches are views
            entity_t, pos_t, neg_t = (epoch_to_device(t, device) for t in (entity_t, pos_t, neg_t))
        n_groups = np.add.reduceat(is_group, np.arange(0, N, bs))  # (batches,) on the host
        for b, start in enumerate(range(0, N, bs)):
            stop = start + bs
            yield {
                "entity": entity_t[start:stop],
                "pos": pos_t[start:stop],
                "neg": neg_t[start:stop],
                "n_groups": int(n_groups[b]),
            }


def _score_groups(model: AGREE, groups: Tensor, items: Tensor) -> Tensor:
    return model(groups, items)


def _score_users(model: AGREE, users: Tensor, items: Tensor) -> Tensor:
    return model.score_users(users, items)


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
        Seeds the initialisation, the batch order, the negatives and dropout.
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
        self.epochs = check_size("epochs", epochs)
        self.lr = lr
        self.n_neg = check_size("n_neg", n_neg)
        if not float(user_weight) >= 0.0:
            raise ValueError(f"user_weight must be a non-negative number, got {user_weight!r}")
        self.user_weight = float(user_weight)
        self.batch_size = check_size("batch_size", batch_size)
        self.weight_decay = weight_decay
        self.patience = patience
        self.init_std = init_std
        self.seed = seed
        self.device = device
        self.progress = progress

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
        if task not in ("user", "group"):
            raise ValueError(f"task must be 'user' or 'group', got {task!r}")
        self._start_fit(dataset, task)
        seed_everything(self.seed)  # the initial weights depend on the seed
        self.model_ = self.build(dataset)
        self.members_, self.mask_ = dataset.member_padded()
        self.dataset_name_ = dataset.name
        self.n_users_ = int(dataset.n_users)
        self.n_groups_ = int(dataset.n_groups)
        batches = JointBatches(
            dataset.group_train, dataset.user_train, dataset.n_items, self.n_neg, self.batch_size
        )
        val = getattr(dataset, f"{task}_val")
        val_fn = None
        if val is not None and len(val):
            width = self.members_.shape[1] if task == "group" else 1
            if task == "group":
                # Cases ordered by group size: each validation batch then pads its member lists
                # only to its own largest group. The order does not change a mean metric.
                o = np.argsort(self.mask_.sum(axis=1)[val.entity], kind="stable")
                val = EvalCases(val.entity[o], val.item[o], val.negatives[o])
            val_fn = ranking_val_fn(
                val,
                score=_score_groups if task == "group" else _score_users,
                batch_size=self._rows(1 + val.negatives.shape[1], width),
            )
        return batches, val_fn

    def fit(self, dataset: GroupDataset, task: str = "group") -> AGREERecommender:
        """Train on all group and user training pairs; validate on ``task``'s validation cases."""
        batches, val_fn = self.prepare_fit(dataset, task)
        self.history_: History = fit(
            self.model_,
            partial(agree_step_loss, user_weight=self.user_weight),
            batches,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fn=val_fn,
            patience=self.patience,
            seed=self.seed,
            progress=self.progress,
            device=select_device(self.device),
        )
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
        if task not in ("user", "group"):
            raise ValueError(f"task must be 'user' or 'group', got {task!r}")
        self._check_fitted()
        other = copy.copy(self)
        other.task_ = task
        other.n_entities_ = self.n_groups_ if task == "group" else self.n_users_
        return other

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
            groups,
            items[:, None] if single else items,
            self.n_groups_,
            self.n_items_,
            "group",
            name="groups",
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
        ids, items = _check_members(members, items, self.n_users_, self.n_items_)
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
