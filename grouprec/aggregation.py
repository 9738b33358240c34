"""Group aggregation: combine the members' scores for each item into one score for the group.

A group recommender often starts from one score per member and candidate item, for example the
predictions of a user model, and needs one score per item for the group. The static rules below
do that with a fixed formula from social choice; none of them learns anything.

Notation, used in every docstring and as variable names in the code:

* ``r`` holds the member scores :math:`r_{si}` (member slot *s*, item *i*), shape (G, S, I):
  G groups, S member slots, I candidate items (``n_items`` in code, as a lone ``I`` reads like
  ``1``); higher means better.
* ``m`` is the member mask :math:`m_s` (True = a real member), shape (G, S). Groups have
  different sizes, so each is padded to S slots; padded slots never influence a result, whatever
  values they hold. :math:`n = \\sum_s m_s` is the group size.
* ``R`` holds the group scores :math:`R_i`, shape (G, I); a higher score ranks the item higher.

Every rule accepts a numpy array or a torch tensor and returns the same kind. float32 and
float64 are kept; any other real dtype is computed and returned as float64. A single group may be
passed as an (S, I) matrix, with ``mask`` None (all rows are members) or of shape (S,); the result
then has shape (I,) instead of (G, I).

Learned aggregation. :class:`AGREE` learns how much each member counts, per candidate item, with
an attention network, and adds a group-specific embedding (Cao et al., 2018); it trains with BPR
on group and user interactions together (:class:`JointBatches`, :func:`agree_step_loss`) through
:func:`grouprec.training.fit`. :class:`AGREERecommender` and :class:`RuleRecommender` (a static
rule over the member scores of any user-level recommender) implement the common recommender
interface of :mod:`grouprec.evaluation`.

Ties. The value rules (average, least misery, most pleasure, multiplicative, average without
misery, Borda, approval) return tied scores for items they cannot tell apart; :func:`top_k`
turns scores into a list and puts tied items in item-index order. The two sequential rules,
plurality voting and the fairness-aware greedy rule, build a list one position at a time and
break ties inside, as their docstrings say; their score form has no ties.

References
----------
Masthoff, J. (2011). Group recommender systems: combining individual models. In F. Ricci,
L. Rokach, B. Shapira and P. B. Kantor (eds.), *Recommender Systems Handbook*, 677-702.
Springer. (Average, least misery, most pleasure, multiplicative, average without misery, Borda
count, approval and plurality voting.)

Baltrunas, L., Makcinskas, T. and Ricci, F. (2010). Group recommendations with rank aggregation
and collaborative filtering. *Proceedings of the 4th ACM Conference on Recommender Systems
(RecSys)*, 119-126. (Aggregating members' ranked lists, Borda count among them.)

Amer-Yahia, S., Roy, S. B., Chawla, A., Das, G. and Yu, C. (2009). Group recommendation:
semantics and efficiency. *Proceedings of the VLDB Endowment* 2(1), 754-765. (Group consensus
as relevance and disagreement; least misery and average as its extremes.)

Lin, X., Zhang, M., Zhang, Y., Gu, Z., Liu, Y. and Ma, S. (2017). Fairness-aware group
recommendation with Pareto-efficiency. *Proceedings of the 11th ACM Conference on Recommender
Systems (RecSys)*, 107-115. (Fairness towards the least-satisfied member; greedy list building.)

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from grouprec.base import BaseRecommender, check_ids
from grouprec.constants import DEFAULT_SEED
from grouprec.data import EvalCases, GroupDataset, Interactions, NegativeSampler
from grouprec.preference import bpr_loss
from grouprec.training import (
    History,
    check_id_tensor,
    check_size,
    fit,
    ranking_val_fn,
    seed_everything,
    select_device,
)

__all__ = [
    "AGREE",
    "LIST_RULES",
    "NORMALISATIONS",
    "RULES",
    "TIE_ATOL",
    "AGREERecommender",
    "JointBatches",
    "RuleRecommender",
    "agree_step_loss",
    "aggregate",
    "approval",
    "average",
    "average_without_misery",
    "borda",
    "fairness_greedy",
    "fairness_greedy_list",
    "least_misery",
    "most_pleasure",
    "multiplicative",
    "plurality",
    "plurality_list",
    "top_k",
]

#: An array of either kind; a function returns the kind it was given.
Array = TypeVar("Array", np.ndarray, torch.Tensor)
#: A mask may be of either kind, whatever the kind of the scores.
AnyArray = np.ndarray | torch.Tensor

#: Inside the sequential rules, vote tallies and relevances closer than this count as tied, so
#: that rounding in a sum (which depends on the order of the members) cannot decide a choice.
TIE_ATOL = 1e-9


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """Validated input: scores as a torch tensor with padded slots zeroed, and how to return."""

    r: torch.Tensor  # (G, S, I) member scores; padded slots hold 0
    m: torch.Tensor  # (G, S) bool, True = real member
    n: torch.Tensor  # (G,) group sizes, in the dtype of r
    is_numpy: bool
    single: bool

    def out(self, R: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Return a per-group result (G, ...) in the caller's array kind and shape."""
        if R.is_floating_point():
            R = R.to(self.r.dtype)
        if self.single:
            R = R[0]
        return R.numpy(force=True) if self.is_numpy else R


def _position(index: tuple[int, ...], single: bool) -> str:
    """Name an entry of the caller's scores array, e.g. ``scores[2, 0, 5]``."""
    shown = index[1:] if single else index
    return "scores[" + ", ".join(str(j) for j in shown) + "]"


def _as_batch(scores: Array, mask: AnyArray | None) -> _Batch:
    """Check scores and mask and bring them to the (G, S, I) / (G, S) convention."""
    is_numpy = not isinstance(scores, torch.Tensor)
    if is_numpy:
        x = np.asarray(scores)
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
            raise TypeError(f"scores must hold real numbers; got dtype {x.dtype}")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        r = torch.from_numpy(x if x.flags.writeable else x.copy())
    else:
        r = scores
        if r.is_complex():
            raise TypeError(f"scores must hold real numbers; got dtype {r.dtype}")
        if r.dtype not in (torch.float32, torch.float64):
            r = r.to(torch.float64)
    shape = tuple(r.shape)
    if r.ndim not in (2, 3):
        raise ValueError(f"scores must have shape (G, S, I) or, for one group, (S, I); got {shape}")
    single = r.ndim == 2
    if single:
        r = r.unsqueeze(0)
    G, S, n_items = r.shape
    if n_items == 0:
        raise ValueError(f"scores has no candidate items: shape {shape}")

    if mask is None:
        m = torch.ones(G, S, dtype=torch.bool, device=r.device)
    else:
        m = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
        expected = (S,) if single else (G, S)
        if tuple(m.shape) != expected:
            raise ValueError(
                f"mask must have shape {expected} to match scores of shape {shape}; "
                f"got {tuple(m.shape)}"
            )
        if m.dtype != torch.bool:
            if m.is_floating_point() or m.is_complex() or not bool(((m == 0) | (m == 1)).all()):
                raise ValueError(f"mask must be boolean (True = real member); got dtype {m.dtype}")
            m = m != 0
        m = m.to(r.device).reshape(G, S)

    empty = (~m.any(1)).nonzero().flatten().tolist()
    if empty:
        where = "the group" if single else f"group {empty[0]}"
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise ValueError(f"{where} has no real members: its mask row is all False{more}")

    # Zero the padded slots once, so that no garbage (nan, inf) can reach any later sum.
    r = torch.where(m[:, :, None], r, torch.zeros((), dtype=r.dtype, device=r.device))
    # The smallest and largest score are finite exactly when every score is (nan propagates).
    if not (bool(torch.isfinite(r.amin())) and bool(torch.isfinite(r.amax()))):
        index = tuple(int(j) for j in (~torch.isfinite(r)).nonzero()[0])
        raise ValueError(
            f"{_position(index, single)} = {r[index].item()} belongs to a real member; "
            "scores of real members must be finite"
        )
    n = m.sum(1).to(r.dtype)  # (G,)
    return _Batch(r=r, m=m, n=n, is_numpy=is_numpy, single=single)


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number; got {threshold!r}") from None
    if math.isnan(value):
        raise ValueError("threshold must be a number; got nan")
    return value


def _check_k(k: int, n_items: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_items:
        raise ValueError(
            f"k must be an integer between 1 and the number of items {n_items}; got {k!r}"
        )
    return int(k)


# --------------------------------------------------------------------------------------------
# Static rules
# --------------------------------------------------------------------------------------------


def average(scores: Array, mask: AnyArray | None = None) -> Array:
    """Average rule: the group likes an item as much as its members do on average.

    :math:`R_i = \\frac{1}{n} \\sum_{s} m_s r_{si}` (Masthoff, 2011).

    Parameters
    ----------
    scores : array, shape (G, S, I) or (S, I)
        Member scores; higher is better.
    mask : array of bool, shape (G, S) or (S,), optional
        True marks a real member, False a padded slot; None means every slot is a member.

    Returns
    -------
    array, shape (G, I) or (I,)
        Group scores, same array kind as ``scores``.
    """
    b = _as_batch(scores, mask)
    R = b.r.sum(1) / b.n[:, None]  # (G, I); padded slots hold 0
    return b.out(R)


def least_misery(scores: Array, mask: AnyArray | None = None) -> Array:
    """Least misery: the group is as happy as its least happy member.

    :math:`R_i = \\min_{s: m_s} r_{si}` (Masthoff, 2011; Amer-Yahia et al., 2009). Parameters
    and return value as in :func:`average`.
    """
    b = _as_batch(scores, mask)
    R = b.r.masked_fill(~b.m[:, :, None], math.inf).amin(1)  # (G, I)
    return b.out(R)


def most_pleasure(scores: Array, mask: AnyArray | None = None) -> Array:
    """Most pleasure: the group is as happy as its happiest member.

    :math:`R_i = \\max_{s: m_s} r_{si}` (Masthoff, 2011). Parameters and return value as in
    :func:`average`.
    """
    b = _as_batch(scores, mask)
    R = b.r.masked_fill(~b.m[:, :, None], -math.inf).amax(1)  # (G, I)
    return b.out(R)


def multiplicative(scores: Array, mask: AnyArray | None = None) -> Array:
    """Multiplicative rule: multiply the members' scores, returned as their geometric mean.

    Masthoff (2011) ranks items by the product :math:`\\prod_s r_{si}`. This function returns
    its n-th root, the geometric mean

    .. math:: R_i = \\exp\\Big(\\frac{1}{n} \\sum_{s: m_s} \\log r_{si}\\Big),

    computed in log space. Within a group *n* is fixed, so the ranking is exactly the product's,
    but the numbers stay on the scale of the scores: the raw product of 48 scores of 0.1 is
    1e-48, below the smallest float32, and would make every item tie at 0. A score of 0 from any
    member gives the item 0, a veto. Parameters and return value as in :func:`average`.

    Raises
    ------
    ValueError
        If a real member has a negative score: products of signed numbers do not rank by
        preference (two dislikes multiply to a like).
    """
    b = _as_batch(scores, mask)
    negative = b.m[:, :, None] & (b.r < 0)  # (G, S, I)
    if bool(negative.any()):
        index = tuple(int(j) for j in negative.nonzero()[0])
        raise ValueError(
            f"multiplicative needs non-negative scores; {_position(index, b.single)} = "
            f"{b.r[index].item()}. Shift or squash the scores first (e.g. a sigmoid)."
        )
    log_r = torch.log(torch.where(b.m[:, :, None], b.r, 1.0))  # (G, S, I); padded: log 1 = 0
    R = torch.exp(log_r.sum(1) / b.n[:, None])  # (G, I)
    # A geometric mean lies between the smallest and the largest score; clamping only undoes the
    # last-bit rounding of exp(log(.)), so that a one-member group gets its scores back exactly.
    lo = b.r.masked_fill(~b.m[:, :, None], math.inf).amin(1)
    hi = b.r.masked_fill(~b.m[:, :, None], -math.inf).amax(1)
    R = torch.minimum(torch.maximum(R, lo), hi)
    return b.out(R)


def average_without_misery(
    scores: Array, mask: AnyArray | None = None, *, threshold: float
) -> Array:
    """Average without misery: the average, but an item that makes any member miserable is out.

    .. math:: R_i = \\frac{1}{n} \\sum_s m_s r_{si} \\text{ if } \\min_{s: m_s} r_{si} \\ge
       \\tau, \\text{ else } -\\infty

    (Masthoff, 2011). A score equal to the threshold :math:`\\tau` is not misery. Excluded items
    all get :math:`-\\infty`: they tie with one another and rank below every admitted item
    (:func:`top_k` lists them in item-index order).

    Parameters
    ----------
    scores, mask
        As in :func:`average`.
    threshold : float
        The misery threshold :math:`\\tau`, on the scale of the scores.

    Returns
    -------
    array, shape (G, I) or (I,)
        Group scores, :math:`-\\infty` for excluded items.
    """
    tau = _check_threshold(threshold)
    b = _as_batch(scores, mask)
    mean = b.r.sum(1) / b.n[:, None]  # (G, I)
    worst = b.r.masked_fill(~b.m[:, :, None], math.inf).amin(1)  # (G, I)
    R = mean.masked_fill(worst < tau, -math.inf)
    return b.out(R)


def _argsort_rows(x: torch.Tensor) -> torch.Tensor:
    """Indices that sort each row of x (M, I) in ascending order; equal values in any order."""
    if x.device.type == "cpu":
        # On the CPU, numpy sorts many short rows about ten times faster than torch does.
        # detach(): numpy cannot take a tensor that autograd tracks, and an order has no gradient.
        return torch.from_numpy(np.argsort(x.detach().numpy(), axis=1))
    return torch.argsort(x, dim=1)


@dataclass(frozen=True)
class _TieBlocks:
    """Each member's items from best to worst, cut into blocks of equal score; all (M, I).

    ``order`` lists the items best first (any order inside a block); ``block`` gives each item's
    block, 0 for the best; ``size`` and ``start`` give each block's number of items and first
    position in ``order`` (size 0 past the last block).
    """

    order: torch.Tensor
    block: torch.Tensor
    size: torch.Tensor
    start: torch.Tensor


def _tie_blocks(x: torch.Tensor) -> _TieBlocks:
    order = _argsort_rows(x).flip(1)  # (M, I) best first
    x_sorted = x.gather(1, order)  # (M, I) descending
    new_block = torch.ones_like(x_sorted, dtype=torch.bool)
    new_block[:, 1:] = x_sorted[:, 1:] != x_sorted[:, :-1]
    block_sorted = new_block.cumsum(1) - 1  # (M, I) block of each position in order
    block = torch.empty_like(order).scatter_(1, order, block_sorted)  # (M, I) block of each item
    size = torch.zeros_like(order).scatter_add_(1, block_sorted, torch.ones_like(order))
    start = size.cumsum(1) - size  # (M, I) exclusive running total of block sizes
    return _TieBlocks(order=order, block=block, size=size, start=start)


def _borda_sum(b: _Batch, tb: _TieBlocks) -> torch.Tensor:
    """Borda points summed over each group's real members, shape (G, I); ``tb`` on ``b.r[b.m]``.

    Of I items the worst gets 0 points and the best I - 1; items a member scores equally share
    the mean of the points their block spans. An item in a block that starts at position
    :math:`a` (0 = best) and holds :math:`z` items has :math:`I - a - z` items below it, so it
    gets :math:`I - a - z + (z - 1) / 2 = I - a - (z + 1) / 2` points.
    """
    G, S, n_items = b.r.shape
    g_of = b.m.nonzero(as_tuple=True)[0]  # (M,) group of each real member
    a = tb.start.gather(1, tb.block)  # (M, I) start of each item's block
    z = tb.size.gather(1, tb.block)  # (M, I) size of each item's block
    points = n_items - a.to(b.r.dtype) - (z.to(b.r.dtype) + 1) / 2  # (M, I)
    return torch.zeros(G, n_items, dtype=b.r.dtype, device=b.r.device).index_add_(0, g_of, points)


def borda(scores: Array, mask: AnyArray | None = None) -> Array:
    """Borda count: each member awards I - 1 points to their best item down to 0 for the worst.

    :math:`R_i = \\sum_{s: m_s} b_{si}`, where :math:`b_{si}` is item *i*'s Borda points from
    member *s* among the I candidates (Masthoff, 2011; Baltrunas et al., 2010). Items a member
    scores equally share the points they span on average (a two-way tie for the top of four items
    gives each (3 + 2) / 2 = 2.5), so relabelling items never changes their points. Only each
    member's order matters, not the size of the score gaps. Parameters and return value as in
    :func:`average`.
    """
    b = _as_batch(scores, mask)
    return b.out(_borda_sum(b, _tie_blocks(b.r[b.m])))


def approval(scores: Array, mask: AnyArray | None = None, *, threshold: float) -> Array:
    """Approval voting: count the members who approve an item, that is score it at least τ.

    :math:`R_i = \\sum_{s: m_s} [r_{si} \\ge \\tau]` (Masthoff, 2011). Approval cannot tell apart
    items with the same count, so for a one-member group it keeps only the split approved /
    not approved of that member's ranking.

    Parameters
    ----------
    scores, mask
        As in :func:`average`.
    threshold : float
        The approval threshold :math:`\\tau`, on the scale of the scores.

    Returns
    -------
    array, shape (G, I) or (I,)
        The number of approving members, as floats.
    """
    tau = _check_threshold(threshold)
    b = _as_batch(scores, mask)
    R = ((b.r >= tau) & b.m[:, :, None]).sum(1)  # (G, I)
    return b.out(R.to(b.r.dtype))


def _pick(
    primary: torch.Tensor, secondary: torch.Tensor, free: torch.Tensor, atol: float
) -> torch.Tensor:
    """For each row, the free column that is best by primary, then secondary, then lowest index.

    Values within ``atol`` of the best count as tied. Shapes (G, I) -> (G,).
    """
    p = primary.masked_fill(~free, -math.inf)
    best = free & (p >= p.amax(1, keepdim=True) - atol)  # (G, I)
    q = secondary.masked_fill(~best, -math.inf)
    best &= q >= q.amax(1, keepdim=True) - atol
    return best.to(torch.uint8).argmax(1)  # argmax returns the first maximum: the lowest index


def _plurality_list(b: _Batch, k: int) -> torch.Tensor:
    """Sequential plurality voting; returns the first k positions, shape (G, k).

    Each member's one vote sits on their current block: the best tie block that still holds a
    free (not yet listed) item, split evenly over its free items. The tally is kept up to date
    instead of recounted: after each pick only the members whose current block held the picked
    item move their vote, so a round costs little more than one pass over the members.
    """
    G, S, n_items = b.r.shape
    device = b.r.device
    g_of = b.m.nonzero(as_tuple=True)[0]  # (M,) group of each real member
    tb = _tie_blocks(b.r[b.m])  # (M, I) each real member's tie blocks
    # Per-member tables are read through flat views: entry (v, j) sits at v * I + j, and
    # one-dimensional indexing is much faster than indexing with a pair of index tensors.
    M = g_of.numel()
    base = torch.arange(M, device=device) * n_items  # (M,)
    order, block, size, start = (x.view(-1) for x in (tb.order, tb.block, tb.size, tb.start))
    taken = torch.zeros_like(size)  # (M * I,) items of each block already listed
    cur = base.clone()  # (M,) flat index of each member's current block; block 0 is the best
    tally = torch.zeros(G * n_items, dtype=torch.float64, device=device)  # (G * I,)

    def spread(v: torch.Tensor, share: torch.Tensor) -> None:
        """Add share[j] to the tally of every item in member v[j]'s current block."""
        length = size[cur[v]]  # (A,) at least 1
        offset = length.cumsum(0) - length  # (A,) where each member's entries begin
        n_entries = int(length.sum())
        # entry[e]: which of the A members entry e serves (repeat_interleave does the same, but
        # its CPU kernel wakes every thread even for a handful of members).
        entry = torch.zeros(n_entries, dtype=torch.long, device=device)
        entry[offset[1:]] = 1
        entry = entry.cumsum(0)  # (L,)
        first = base[v] + start[cur[v]] - offset  # (A,) maps entry e to its flat position
        item = order[torch.arange(n_entries, device=device) + first[entry]]  # (L,)
        tally.index_add_(0, g_of[v][entry] * n_items + item, share[entry])

    # Listed items of a block keep receiving shares, but they are never picked again, and the
    # share 1 / (free items of the block) counts only the free ones.
    spread(torch.arange(M, device=device), 1.0 / size[cur].to(torch.float64))
    borda_sum = _borda_sum(b, tb).to(torch.float64)  # (G, I) tie-break
    free = torch.ones(G, n_items, dtype=torch.bool, device=device)
    ranking = torch.empty(G, k, dtype=torch.long, device=device)
    for t in range(k):
        c = _pick(tally.view(G, n_items), borda_sum, free, TIE_ATOL)  # (G,)
        ranking[:, t] = c
        free[torch.arange(G, device=device), c] = False
        if t == k - 1:
            break
        hit = base + block[base + c[g_of]]  # (M,) flat index of the block holding c
        taken[hit] += 1
        v = (hit == cur).nonzero().flatten()  # (A,) members whose vote was on c
        left = (size[cur[v]] - taken[cur[v]]).to(torch.float64)  # (A,) free items still there
        spread(v, -1.0 / (left + 1))  # withdraw their votes ...
        w = v[left == 0]  # ... move a used-up vote to the next block with a free item:
        for _ in range(2):  # mostly the very next block, so step there first,
            cur[w] += 1
            w = w[taken[cur[w]] == size[cur[w]]]
        if w.numel():  # and search the rows of the few members still without one
            has_free = taken.view(M, n_items)[w] < size.view(M, n_items)[w]  # (A', I) by block
            later = torch.arange(n_items, device=device) > (cur[w] - base[w])[:, None]
            cur[w] = base[w] + (has_free & later).to(torch.uint8).argmax(1)
        left = (size[cur[v]] - taken[cur[v]]).to(torch.float64)
        spread(v, 1.0 / left)  # ... and vote again
    return ranking


def plurality_list(scores: Array, mask: AnyArray | None = None, *, k: int | None = None) -> Array:
    """Plurality voting, sequential: the list it builds, best item first.

    Each member votes for their favourite item among those not yet listed; the item with the most
    votes takes the next position, and the vote repeats (Masthoff, 2011). A member with several
    equally scored favourites splits the vote evenly among them. Items tied on votes (within
    :data:`TIE_ATOL`) are separated by their Borda count (:func:`borda`), which looks past the
    favourites, and then by lower item index. With one member, the list is that member's
    ranking, equal scores in item-index order.

    Parameters
    ----------
    scores, mask
        As in :func:`average`.
    k : int, optional
        How many positions to build; None builds the whole ranking of all I items.

    Returns
    -------
    array of int64, shape (G, k) or (k,)
        Item indices, best first.
    """
    b = _as_batch(scores, mask)
    n_items = b.r.shape[2]
    ranking = _plurality_list(b, n_items if k is None else _check_k(k, n_items))
    return b.out(ranking)


def _list_to_scores(ranking: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """Scores that rank a list first, in its order, and the other items by ``rest`` in [0, 1].

    The item at position p (from 0) of a k-long list scores k + 1 - p, from k + 1 down to 2.
    Shapes (G, k), (G, I) -> (G, I).
    """
    k = ranking.shape[1]
    points = torch.arange(k + 1, 1, -1, dtype=rest.dtype, device=rest.device)  # (k,)
    return rest.scatter(1, ranking, points.expand_as(ranking).contiguous())


def plurality(scores: Array, mask: AnyArray | None = None, *, k: int | None = None) -> Array:
    """Plurality voting as group scores, consistent with :func:`plurality_list`.

    The item at position p (from 0) of the k-long list scores k + 1 - p, from k + 1 down to 2;
    items left off the list score 0. ``top_k(plurality(scores, mask, k=k), k)`` equals
    ``plurality_list(scores, mask, k=k)``. Parameters as in :func:`plurality_list`; return value
    as in :func:`average`.
    """
    b = _as_batch(scores, mask)
    G, S, n_items = b.r.shape
    ranking = _plurality_list(b, n_items if k is None else _check_k(k, n_items))  # (G, k)
    rest = torch.zeros(G, n_items, dtype=b.r.dtype, device=b.r.device)
    return b.out(_list_to_scores(ranking, rest))


def _relevance(b: _Batch) -> torch.Tensor:
    """Each member's scores min-max scaled to [0, 1] over the candidates, float64 (G, S, I).

    A member who scores every candidate alike is equally served by any list: they get 1 for
    every item, so they never become the least-satisfied member and never steer the choice.
    """
    x = b.r.to(torch.float64)
    lo = x.amin(2, keepdim=True)  # (G, S, 1)
    span = x.amax(2, keepdim=True) - lo  # (G, S, 1)
    return torch.where(span > 0, (x - lo) / span, 1.0)  # the unused branch may hold nan


def _fairness_list(b: _Batch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The greedy max-min list (G, k) and each item's mean relevance (G, I), float64."""
    G, S, n_items = b.r.shape
    device = b.r.device
    m = b.m[:, :, None]  # (G, S, 1)
    rho = _relevance(b)  # (G, S, I)
    rho_mean = (rho * m).sum(1) / b.n.to(torch.float64)[:, None]  # (G, I) the tie-break
    rho_real = rho.masked_fill(~m, math.inf)  # (G, S, I) a padded slot is never the minimum
    C = torch.zeros(G, S, 1, dtype=torch.float64, device=device)  # (G, S, 1) cumulative
    C_plus = torch.empty_like(rho_real)  # (G, S, I) C_s + rho_si, refilled in place each step
    free = torch.ones(G, n_items, dtype=torch.bool, device=device)
    ranking = torch.empty(G, k, dtype=torch.long, device=device)
    for t in range(k):
        worst = torch.add(C, rho_real, out=C_plus).amin(1)  # (G, I) min over members
        c = _pick(worst, rho_mean, free, TIE_ATOL)  # (G,)
        ranking[:, t] = c
        free[torch.arange(G, device=device), c] = False
        C = C + rho.gather(2, c[:, None, None].expand(G, S, 1))  # (G, S, 1)
    return ranking, rho_mean


def fairness_greedy_list(scores: Array, mask: AnyArray | None = None, *, k: int) -> Array:
    """Fairness-aware greedy list: each position lifts the least-satisfied member the most.

    Member relevance is the member's score min-max scaled over the candidates,
    :math:`\\rho_{si} = (r_{si} - \\min_j r_{sj}) / (\\max_j r_{sj} - \\min_j r_{sj})` (1 for a
    member who scores all candidates alike). With :math:`L` the items listed so far and
    :math:`C_s = \\sum_{j \\in L} \\rho_{sj}` member *s*'s cumulative relevance, the next item is

    .. math:: \\arg\\max_{i \\notin L} \\min_{s: m_s} (C_s + \\rho_{si}),

    ties (within :data:`TIE_ATOL`) going to the higher average relevance
    :math:`\\frac{1}{n} \\sum_s m_s \\rho_{si}`, then to the lower item index. This is the
    max-min fairness of Lin et al. (2017) built greedily; greedy is not optimal: the best first
    item can block a better pair.

    Parameters
    ----------
    scores, mask
        As in :func:`average`.
    k : int
        Length of the list, between 1 and I.

    Returns
    -------
    array of int64, shape (G, k) or (k,)
        Item indices, best first.
    """
    b = _as_batch(scores, mask)
    ranking, _ = _fairness_list(b, _check_k(k, b.r.shape[2]))
    return b.out(ranking)


def fairness_greedy(scores: Array, mask: AnyArray | None = None, *, k: int) -> Array:
    """Fairness-aware greedy rule as group scores, consistent with :func:`fairness_greedy_list`.

    The item at position p of the k-long list scores k + 1 - p (from k + 1 down to 2); every other
    item scores its average relevance, in [0, 1], so it ranks below the list, in the order the
    greedy step would use to break ties. ``top_k(fairness_greedy(scores, mask, k=k), k)`` equals
    the list. Parameters as in :func:`fairness_greedy_list`; return value as in :func:`average`.
    """
    b = _as_batch(scores, mask)
    ranking, rho_mean = _fairness_list(b, _check_k(k, b.r.shape[2]))
    return b.out(_list_to_scores(ranking, rho_mean))


# --------------------------------------------------------------------------------------------
# From scores to lists, and every static rule by name
# --------------------------------------------------------------------------------------------


def top_k(group_scores: Array, k: int | None = None) -> Array:
    """The k best items by group score, best first; equal scores in item-index order.

    Parameters
    ----------
    group_scores : array, shape (G, I) or (I,)
        Scores from any rule; no NaN.
    k : int, optional
        List length, between 1 and I; None lists all I items.

    Returns
    -------
    array of int64, shape (G, k) or (k,)
        Item indices, same array kind as ``group_scores``.
    """
    is_numpy = not isinstance(group_scores, torch.Tensor)
    R = torch.as_tensor(np.asarray(group_scores)) if is_numpy else group_scores
    if R.ndim not in (1, 2) or R.shape[-1] == 0:
        raise ValueError(f"group_scores must have shape (G, I) or (I,); got {tuple(R.shape)}")
    if R.is_floating_point() and bool(torch.isnan(R).any()):
        raise ValueError("group_scores contains nan, which has no place in a ranking")
    n_items = R.shape[-1]
    k = n_items if k is None else _check_k(k, n_items)
    ranking = torch.sort(R, dim=-1, descending=True, stable=True).indices[..., :k]
    return ranking.numpy(force=True) if is_numpy else ranking


#: Every static rule by name, each returning group scores (G, I). ``approval`` and
#: ``average_without_misery`` need ``threshold``, ``fairness_greedy`` needs ``k``, and
#: ``plurality`` takes an optional ``k``.
RULES: dict[str, Callable[..., np.ndarray | torch.Tensor]] = {
    "average": average,
    "least_misery": least_misery,
    "most_pleasure": most_pleasure,
    "multiplicative": multiplicative,
    "average_without_misery": average_without_misery,
    "borda": borda,
    "approval": approval,
    "plurality": plurality,
    "fairness_greedy": fairness_greedy,
}


def aggregate(scores: Array, mask: AnyArray | None, rule: str, **params) -> Array:
    """Group scores from the static rule named ``rule``, one of :data:`RULES`.

    Parameters
    ----------
    scores, mask
        As in :func:`average`.
    rule : str
        A key of :data:`RULES`.
    **params
        The rule's own parameters, e.g. ``threshold`` or ``k``.

    Returns
    -------
    array, shape (G, I) or (I,)
        Group scores, same array kind as ``scores``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {sorted(RULES)}")
    return RULES[rule](scores, mask, **params)


# --------------------------------------------------------------------------------------------
# Static rules over the member scores of a user-level recommender
# --------------------------------------------------------------------------------------------

#: The rules that build a list one position at a time and break their last ties by item index.
LIST_RULES = ("plurality", "fairness_greedy")

#: How :class:`RuleRecommender` puts each member's scores on a common scale.
NORMALISATIONS = ("minmax", "rank", "none")

# At most this many (row, member slot, candidate) cells are scored or aggregated at once.
_CELLS = 1 << 22


def _fmix64(x: np.ndarray) -> np.ndarray:
    """The 64-bit finaliser of MurmurHash3 (Appleby, 2011): a bijective mixing of uint64s."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def _tie_keys(seed: int, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A pseudo-random key per (seed, entity, item), shape of ``items`` (n, c).

    A fixed function of the three ids: a candidate's key does not depend on its column, on the
    other candidates, or on how a call is batched.
    """
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps around by design
        h = _fmix64(np.full(items.shape, seed, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        h = _fmix64(h ^ entities.astype(np.uint64)[:, None])
        return _fmix64(h ^ items.astype(np.uint64))


def _size_chunks(sizes: np.ndarray, cells_per_slot: int) -> Iterator[np.ndarray]:
    """Positions of groups in chunks of similar size, smallest first, each within the budget.

    A chunk of groups padded to its own largest size s costs rows * s * ``cells_per_slot``
    cells; chunks are cut so that this stays under :data:`_CELLS` (a chunk holds at least one
    group). Sorting by size keeps the padding of each chunk small, which matters where a few
    groups are much larger than the rest (Mafengwo: median 8 members, largest 48).
    """
    order = np.argsort(sizes, kind="stable")
    sizes = np.asarray(sizes)[order]
    start = 0
    while start < len(order):
        cost = np.arange(1, len(order) - start + 1) * sizes[start:] * max(1, cells_per_slot)
        stop = start + max(1, int(np.searchsorted(cost, _CELLS, side="right")))
        yield order[start:stop]
        start = stop


class RuleRecommender(BaseRecommender):
    """A static rule applied to the member scores of a user-level recommender.

    For a group g and its candidate items, every member u scores every candidate with the base
    recommender, :math:`r_{uj}`; each member's scores are put on a common scale (``normalise``),
    because the rules compare and add scores of different people; and the rule turns the
    (members x candidates) matrix into group scores :math:`R_j` (see :data:`RULES`). Groups are
    processed in batches of padded member lists, as :func:`aggregate` expects.

    **Who has a say.** A member without any training interaction (``skip_inactive``) has no
    preferences the base could have learned: a latent-factor model returns its random initial
    vector, an item-item model all zeros. A member whose scores do not tell the candidates apart
    expresses no preference among them either. Both are left out of the aggregation; a group in
    which nobody has a say keeps all its members (their scores are then uninformative anyway).
    On Mafengwo about two members in three have no training interaction.

    **Ties in list rules.** :data:`LIST_RULES` build a list position by position and break their
    last ties by the lower candidate index. In the sampled protocol the held-out item sits in
    column 0 of every candidate list, so that tie-break would hand it every tie. Before a list
    rule runs, each row's candidates are therefore reordered by a pseudo-random key of (seed,
    group, item), and the scores are put back in the caller's order afterwards: ties go to a
    random candidate, the same one however the call is batched.

    Parameters
    ----------
    base : Recommender
        A recommender for the user task, e.g. ``EASE`` or ``BPRRecommender``.
    rule : str
        A key of :data:`RULES`.
    normalise : {"minmax", "rank", "none"}
        ``"minmax"``: each member's scores over the candidates scaled to [0, 1], their favourite
        1 and their least favourite 0; ``"rank"``: the share of the other candidates the member
        scores lower (ties count half), also in [0, 1]; ``"none"``: the raw scores (thresholds
        and the multiplicative rule then depend on the base's scale).
    skip_inactive : bool
        Leave members without training interactions out of the aggregation (see above).
    fit_base : bool
        Make :meth:`fit` fit ``base`` on the user task first; False uses ``base`` as it is.
        :meth:`clone` clones ``base`` too, unfitted: with ``fit_base=False``, fit the clone's
        ``base`` before the clone.
    seed : int
        Seeds the random tie order of the list rules.
    **params
        The rule's own parameters: ``threshold`` (on the normalised scale) for ``approval`` and
        ``average_without_misery``, ``k`` for ``fairness_greedy`` and ``plurality``. A list rule
        given a ``k`` larger than the number of candidates lists all of them.

    Attributes
    ----------
    members_, mask_ : np.ndarray
        The dataset's padded member lists (n_groups, S) and their mask.
    active_ : np.ndarray
        Shape (n_users,), True for users with at least one training interaction.
    known_ : scipy.sparse.csr_matrix
        Shape (n_groups, n_items), the groups' training items (see :meth:`score_all`).
    """

    _fit_hint = "fit(dataset, 'group')"

    def __init__(
        self,
        base: Any,
        rule: str,
        *,
        normalise: str = "minmax",
        skip_inactive: bool = True,
        fit_base: bool = True,
        seed: int = DEFAULT_SEED,
        **params: Any,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {sorted(RULES)}")
        if normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
        if not callable(getattr(base, "score", None)):
            raise TypeError(f"base must be a recommender with a score method, got {base!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.base = base
        self.rule = rule
        self.normalise = normalise
        self.skip_inactive = bool(skip_inactive)
        self.fit_base = bool(fit_base)
        self.seed = int(seed)
        self.params = dict(params)

    @property
    def name(self) -> str:
        """Label in results tables: the rule's name."""
        return self.rule

    def fit(self, dataset: GroupDataset, task: str = "group") -> RuleRecommender:
        """Remember the groups' members (and fit the base on the user task if ``fit_base``)."""
        if task != "group":
            raise ValueError(
                f"RuleRecommender recommends to groups, so task must be 'group'; got {task!r}"
            )
        if self.fit_base:
            self.base.fit(dataset, "user")
        self._start_fit(dataset, "group")
        self.members_, self.mask_ = dataset.member_padded()  # (G, S) each
        self.active_ = np.bincount(dataset.user_train.entity, minlength=dataset.n_users) > 0
        self.known_ = dataset.train_matrix("group")  # (G, I) each group's training items
        self.n_groups_ = int(dataset.n_groups)
        self.n_users_ = int(dataset.n_users)
        return self

    def _normalised(self, r: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
        """Each member's scores on the common scale; (n, S, c) -> same.

        With ``eligible`` (n, c), the scale is set by the eligible candidates alone, and the
        others are placed strictly below all of them (-1 on the 0-1 scales).
        """
        c = r.shape[2]
        if eligible is None:
            ok = np.ones((1, 1, c), dtype=bool)
        else:
            ok = eligible[:, None, :]  # (n, 1, c)
        if self.normalise == "rank":
            # Average ranks 1 (lowest) .. c over the eligible candidates, ties sharing the mean
            # of the ranks they span; (rank - 1) / (c_ok - 1) is then the share of the other
            # eligible candidates scored lower, ties counting half.
            rank = rankdata(np.where(ok, r, -np.inf), method="average", axis=2)  # (n, S, c)
            n_out = (~ok).sum(axis=2, keepdims=True)  # (n, 1, 1) ineligible, ranked lowest
            c_ok = np.maximum(c - n_out, 2)
            out = (rank - n_out - 1.0) / (c_ok - 1)
            return np.where(ok, np.where(c - n_out > 1, out, 1.0), -1.0)
        lo = np.where(ok, r, np.inf).min(axis=2, keepdims=True)  # (n, S, 1)
        hi = np.where(ok, r, -np.inf).max(axis=2, keepdims=True)
        span = hi - lo
        if self.normalise == "none":
            return np.where(ok, r, lo - span - 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, np.where(span > 0, (r - lo) / span, 1.0), -1.0)

    def _member_matrix(
        self,
        ids: np.ndarray,
        mask: np.ndarray,
        items: np.ndarray,
        eligible: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised member scores r (n, S, c) and who has a say (n, S), for padded members."""
        n, S = ids.shape
        c = items.shape[1]
        r = np.zeros((n, S, c))
        rows, slots = np.nonzero(mask)
        if len(rows):
            scores = np.asarray(self.base.score(ids[rows, slots], items[rows]), dtype=np.float64)
            if scores.shape != (len(rows), c):
                raise ValueError(
                    f"base.score returned shape {scores.shape}, expected {(len(rows), c)}"
                )
            r[rows, slots] = scores
        r = self._normalised(r, eligible)
        ok = np.ones((1, 1, c), dtype=bool) if eligible is None else eligible[:, None, :]
        top = np.where(ok, r, -np.inf).max(axis=2)  # (n, S) over the eligible candidates
        bottom = np.where(ok, r, np.inf).min(axis=2)
        say = mask & (top > bottom)  # (n, S) the member tells the candidates apart
        if self.skip_inactive:
            say &= self.active_[ids]
        nobody = ~say.any(axis=1)
        say[nobody] = mask[nobody]
        return r, say

    def _aggregate(
        self, r: np.ndarray, say: np.ndarray, keys_for: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Group scores (n, c) from member scores r (n, S, c) of the members with a say."""
        params = dict(self.params)
        c = items.shape[1]
        if self.rule not in LIST_RULES:
            return np.asarray(aggregate(r, say, self.rule, **params), dtype=np.float64)
        if params.get("k") is not None:
            params["k"] = min(int(params["k"]), c)
        perm = np.argsort(_tie_keys(self.seed, keys_for, items), axis=1)  # (n, c)
        R_perm = aggregate(
            np.take_along_axis(r, perm[:, None, :], axis=2), say, self.rule, **params
        )
        R = np.empty((len(items), c))
        np.put_along_axis(R, perm, np.asarray(R_perm, dtype=np.float64), axis=1)
        return R

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Group scores (n, c) of candidate items (n, c) for groups ``entities`` (n,)."""
        groups, items = self._check_ids(entities, items)
        n, c = items.shape
        out = np.empty((n, c))
        sizes = self.mask_.sum(axis=1)[groups]
        for rows in _size_chunks(sizes, c):
            g, it = groups[rows], items[rows]
            width = int(sizes[rows].max())  # members come first in every padded row
            r, say = self._member_matrix(self.members_[g, :width], self.mask_[g, :width], it)
            out[rows] = self._aggregate(r, say, g, it)
        return out

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Group scores (n, n_items) of every item, for full ranking and top-K lists.

        As :meth:`score` with every item a candidate, except for the list rules: they build
        their list from the items the group has no training interaction with, on the members'
        scale over those items, and rank the group's training items last. Full ranking and
        ``beyond_accuracy`` leave the training items out afterwards; a list built with them
        would lose its best places and leave only its tied tail.
        """
        groups, _ = self._check_ids(entities)
        if self.rule not in LIST_RULES:
            items = np.broadcast_to(np.arange(self.n_items_), (len(groups), self.n_items_))
            return self.score(groups, items)
        out = np.empty((len(groups), self.n_items_))
        sizes = self.mask_.sum(axis=1)[groups]
        for rows in _size_chunks(sizes, self.n_items_):
            g = groups[rows]
            it = np.broadcast_to(np.arange(self.n_items_), (len(g), self.n_items_))
            eligible = ~self.known_[g].toarray().astype(bool)  # (n, I)
            eligible[~eligible.any(axis=1)] = True  # a group that has every item: no exclusion
            width = int(sizes[rows].max())
            r, say = self._member_matrix(
                self.members_[g, :width], self.mask_[g, :width], it, eligible
            )
            out[rows] = self._aggregate(r, say, g, it)
        return out

    def score_members(
        self, members: Sequence[int] | np.ndarray, items: np.ndarray, group: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score candidates for any set of users, e.g. a group composed on the spot.

        Parameters
        ----------
        members : sequence of int
            User ids, at least one.
        items : array of int, shape (c,)
            Candidate items.
        group : int, optional
            A group id to seed the random tie order of list rules with (any integer works).

        Returns
        -------
        R : np.ndarray
            Shape (c,), the group scores.
        r : np.ndarray
            Shape (|members|, c), each member's normalised scores.
        say : np.ndarray
            Shape (|members|,), bool: who took part in the aggregation.
        """
        self._check_is_fitted()
        ids, _ = check_ids(members, None, self.n_users_, self.n_items_, "user", name="members")
        items, _ = check_ids(items, None, self.n_items_, self.n_items_, "item", name="items")
        if ids.ndim != 1 or len(ids) == 0 or items.ndim != 1 or len(items) == 0:
            raise ValueError(
                f"members and items must be non-empty 1-d id lists; got shapes {ids.shape} "
                f"and {items.shape}"
            )
        r, say = self._member_matrix(ids[None], np.ones((1, len(ids)), bool), items[None])
        key = np.array([-1 if group is None else int(group)], dtype=np.int64)
        R = self._aggregate(r, say, key, items[None])
        return R[0], r[0], say[0]


# --------------------------------------------------------------------------------------------
# Learned aggregation: AGREE
# --------------------------------------------------------------------------------------------


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
        self, ids: Tensor, m: Tensor, e: Tensor | None, items: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Scores (B, c) and weights (B, c, S) for padded members ``ids``, mask ``m`` (B, S)."""
        B, S = ids.shape
        if B == 0:
            return items.new_zeros(items.shape, dtype=self.Q.weight.dtype), items.new_zeros(
                (*items.shape, S), dtype=self.Q.weight.dtype
            )
        # Only the slots that hold a member in some row of the batch are computed.
        width = int(m.any(0).nonzero().max()) + 1
        p = self.P(ids[:, :width])  # (B, S', d)
        q = self.Q(items)  # (B, c, d)
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
        check_id_tensor("groups", groups, self.E.num_embeddings)
        check_id_tensor("items", items, self.Q.num_embeddings)
        single = self._shapes(groups, items, "groups")
        it = items[:, None] if single else items  # (B, c)
        y, alpha = self._group_scores(
            self.members[groups], self.member_mask[groups], self.E(groups), it
        )
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
        check_id_tensor("users", users, self.P.num_embeddings)
        check_id_tensor("items", items, self.Q.num_embeddings)
        single = self._shapes(users, items, "users")
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
        check_id_tensor("members", members, self.P.num_embeddings)
        check_id_tensor("items", items, self.Q.num_embeddings)
        if members.shape != member_mask.shape or items.ndim != 2 or len(items) != len(members):
            raise ValueError(
                f"members and member_mask must have shape (B, S) and items (B, c); got "
                f"{tuple(members.shape)}, {tuple(member_mask.shape)} and {tuple(items.shape)}"
            )
        m = member_mask.to(torch.bool)
        if len(m) and not bool(m.any(1).all()):
            raise ValueError("every row of member_mask needs at least one real member")
        e = None
        if groups is not None:
            check_id_tensor("groups", groups, self.E.num_embeddings)
            e = self.E(groups)
        y, alpha = self._group_scores(members.masked_fill(~m, 0), m, e, items)
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
        CPU tensors, and ``n_groups`` (int), the number of group rows.
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

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
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
        n_groups = np.add.reduceat(is_group, np.arange(0, N, bs))  # (batches,)
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

    def fit(self, dataset: GroupDataset, task: str = "group") -> AGREERecommender:
        """Train on all group and user training pairs; validate on ``task``'s validation cases."""
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
            User ids, at least one.
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
        ids, _ = check_ids(members, None, self.n_users_, self.n_items_, "user", name="members")
        items, _ = check_ids(items, None, self.n_items_, self.n_items_, "item", name="items")
        if ids.ndim != 1 or len(ids) == 0 or items.ndim != 1 or len(items) == 0:
            raise ValueError(
                f"members and items must be non-empty 1-d id lists; got shapes {ids.shape} "
                f"and {items.shape}"
            )
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
