"""The AGREE network (Cao et al., 2018) and how it trains: :class:`AGREE`, the joint group and
user batches (:class:`JointBatches`) and the loss over them (:func:`agree_step_loss`).

:class:`AGREE` learns how much each member counts, per candidate item, with an attention network,
and adds a group-specific embedding. The recommender that wraps it is
:class:`grouprec.aggregation.AGREERecommender` (:mod:`grouprec.aggregation.agree`), which lists
the references.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from grouprec.checks import check_id_tensor, check_size
from grouprec.data import Interactions, NegativeSampler
from grouprec.preference import bpr_loss
from grouprec.training import epoch_to_device, explain_bad_ids

__all__ = ["AGREE", "JointBatches", "agree_step_loss"]


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

    .. math:: \\mathbf{a}_g(j) = \\sum_{u \\in \\mathcal{M}_g} \\alpha_{gu}(j)\\, \\mathbf{p}_u +
       \\mathbf{e}_g .

    The weights depend on the candidate: a member may lead on films and follow on restaurants.
    Groups are padded to S member slots; a padded slot's score is set to :math:`-\\infty` before
    the softmax, so its weight is exactly 0 whatever id it holds.

    The prediction layer is the NCF-style network of the paper (He et al., 2017): for an entity
    representation :math:`\\mathbf{x}` (a group's :math:`\\mathbf{a}_g(j)` or a user's
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
        a_g = (alpha[..., None] * p[:, None, :, :]).sum(2)  # (B, c, d)
        if e is not None:
            a_g = a_g + e[:, None, :]  # + e_g: a_g(j)
        y = self.predict(a_g, q)  # (B, c)
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
    scores its positive and its m negatives in one call. With
    :math:`\\mathcal{L}_{\\mathcal{G}}` and :math:`\\mathcal{L}_{\\mathcal{U}}` the mean of
    :math:`-\\ln \\sigma(\\hat y_{ei} - \\hat y_{ej})` over the batch's group and user
    (row, negative) pairs, the loss is

    .. math:: \\mathcal{L} = \\mathcal{L}_{\\mathcal{G}} + \\beta\\, \\mathcal{L}_{\\mathcal{U}},

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
