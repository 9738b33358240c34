"""Static group aggregation rules: a fixed formula from social choice; none of them learns anything.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from grouprec.checks import check_threshold, check_top_k

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
    tau = check_threshold("threshold", threshold)
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
    tau = check_threshold("threshold", threshold)
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
    ranking = _plurality_list(b, n_items if k is None else check_top_k("k", k, n_items))
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
    ranking = _plurality_list(b, n_items if k is None else check_top_k("k", k, n_items))  # (G, k)
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
    ranking, _ = _fairness_list(b, check_top_k("k", k, b.r.shape[2]))
    return b.out(ranking)


def fairness_greedy(scores: Array, mask: AnyArray | None = None, *, k: int) -> Array:
    """Fairness-aware greedy rule as group scores, consistent with :func:`fairness_greedy_list`.

    The item at position p of the k-long list scores k + 1 - p (from k + 1 down to 2); every other
    item scores its average relevance, in [0, 1], so it ranks below the list, in the order the
    greedy step would use to break ties. ``top_k(fairness_greedy(scores, mask, k=k), k)`` equals
    the list. Parameters as in :func:`fairness_greedy_list`; return value as in :func:`average`.
    """
    b = _as_batch(scores, mask)
    ranking, rho_mean = _fairness_list(b, check_top_k("k", k, b.r.shape[2]))
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
    k = n_items if k is None else check_top_k("k", k, n_items)
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
