"""Evaluation stage, part 1: ranking metrics that count tied scores fairly.

Two protocols are supported (notebook ``02_evaluation``):

* **sampled**: each held-out item is ranked against its own listed negatives (the benchmark
  files list 100 per case); every case has exactly one relevant item;
* **full ranking**: each entity's held-out items (one or several) are ranked against every item
  outside its training set.

Everything is computed from two counts per relevant item: ``g``, the number of candidates
scoring strictly higher, and ``t``, the number of *other* candidates with exactly the same score.
When ``t > 0`` the ranking is ambiguous. ``ties="expected"`` (the default) reports the
expectation of each metric when ties are broken uniformly at random, in closed form
(McSherry & Najork, ECIR 2008); ``"optimistic"`` and ``"pessimistic"`` report the two bounds
(relevant items placed first or last among the candidates they tie with). Placing the test item
first in the candidate list and letting a stable sort break the ties is the optimistic bound in
disguise (Ma & Cheng, RecSys 2026).

With a single relevant item, its rank (from 1) is uniform over ``{g + 1, ..., g + t + 1}``, so

    HR@K   = P(rank <= K)                       = clip(K - g, 0, t + 1) / (t + 1)
    NDCG@K = E[1[rank <= K] / log2(rank + 1)]    = (C[min(g + t + 1, K)] - C[min(g, K)]) / (t + 1)
    RR     = E[1 / rank]                         = (H[g + t + 1] - H[g]) / (t + 1)

with the cumulative discount ``C[j] = sum_{rank <= j} 1 / log2(rank + 1)`` and the harmonic
numbers ``H[j] = sum_{rank <= j} 1 / rank``. The bounds are the same formulas with ``t = 0``:
``g`` unchanged (optimistic) or ``g + t`` in place of ``g`` (pessimistic).

Every metric accepts numpy arrays or torch tensors and returns numpy values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from grouprec.checks import check_choice, check_counts, check_ks, check_metric_names
from grouprec.constants import DEFAULT_KS

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "TIES",
    "count_ties",
    "coverage",
    "full_ranking_metrics",
    "group_satisfaction",
    "hit_at_k",
    "jain_index",
    "member_ndcg",
    "metric_names",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "sampled_metrics",
    "top_k",
]

#: How score ties are resolved: their expectation under random tie-breaking, or either bound.
TIES = ("expected", "optimistic", "pessimistic")

#: Metric families, in the order results tables show them. ``MRR`` has no cut-off.
ALL_METRICS = ("HR", "NDCG", "Precision", "Recall", "MRR")

#: Metrics reported when none are named: the pair every group-recommendation paper reports.
DEFAULT_METRICS = ("HR", "NDCG")

# Row-chunk budget for full ranking: at most this many (row, relevant item, item) comparisons.
_CHUNK_CELLS = 1 << 24


# --------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------


def _as_scores(x, name: str, ndim: int) -> np.ndarray:
    """A float64 numpy copy of scores given as numpy or torch; NaN is an error."""
    if isinstance(x, torch.Tensor):
        # detach(): metrics only read scores, they must never join a training graph.
        # float64 keeps every tie and every strict inequality of the original dtype.
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if np.isnan(arr).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ValueError(f"{name} contains NaN (first at index {where}); NaN cannot be ranked")
    return arr


def _as_mask(x, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if sp.issparse(x):
        x = x.toarray()
    if isinstance(x, torch.Tensor):
        # detach(): masks are read, never differentiated.
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), got values other than 0 and 1")
        arr = arr.astype(bool)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def metric_names(
    ks: Iterable[int] = DEFAULT_KS, metrics: str | Sequence[str] = DEFAULT_METRICS
) -> list[str]:
    """Column names of a results table, in order: each family at each K, K by K, then MRR."""
    ks = check_ks("ks", ks)
    metrics = check_metric_names("metrics", metrics, ALL_METRICS)
    names = [f"{m}@{k}" for k in ks for m in metrics if m != "MRR"]
    return names + (["MRR"] if "MRR" in metrics else [])


# --------------------------------------------------------------------------------------------
# One relevant item: metrics from the counts (g, t)
# --------------------------------------------------------------------------------------------


def count_ties(pos_scores, neg_scores, neg_mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Count, per case, the negatives scoring above and level with the positive.

    Parameters
    ----------
    pos_scores : array or tensor, shape (n,)
        Score of each case's held-out item.
    neg_scores : array or tensor, shape (n, m)
        Scores of its negatives.
    neg_mask : bool array, shape (n, m), optional
        False marks a negative to leave out (for example padding).

    Returns
    -------
    g, t : np.ndarray
        Shape (n,), int64: negatives scoring strictly higher, and negatives tied with the positive.
    """
    s_pos = _as_scores(pos_scores, "pos_scores", 1)  # (n,)
    s_neg = _as_scores(neg_scores, "neg_scores", 2)  # (n, m)
    if s_neg.shape[0] != s_pos.shape[0]:
        raise ValueError(
            f"pos_scores has {s_pos.shape[0]} cases but neg_scores has {s_neg.shape[0]} rows"
        )
    above = s_neg > s_pos[:, None]  # (n, m)
    tied = s_neg == s_pos[:, None]  # (n, m)
    if neg_mask is not None:
        mask = _as_mask(neg_mask, "neg_mask", s_neg.shape)
        above &= mask
        tied &= mask
    return above.sum(axis=1), tied.sum(axis=1)


def _resolve(g: np.ndarray, t: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds are expectations with no tie left: rank g + 1 (optimistic) or g + t + 1."""
    check_choice("ties", ties, TIES)
    if ties == "optimistic":
        return g, np.zeros_like(t)
    if ties == "pessimistic":
        return g + t, np.zeros_like(t)
    return g, t


def _discount_cumsum(k: int) -> np.ndarray:
    """C[j] = sum_{rank <= j} 1 / log2(rank + 1) for j = 0..k, shape (k + 1,)."""
    d = 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)
    return np.concatenate([[0.0], np.cumsum(d)])


def _harmonic(n: int) -> np.ndarray:
    """H[j] = sum_{rank <= j} 1 / rank for j = 0..n, shape (n + 1,)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64))])


def hit_at_k(g, t, k: int, ties: str = "expected") -> np.ndarray:
    """Hit ratio HR@K of one relevant item per case, from its counts ``g`` and ``t``.

    ``HR@K = P(rank <= K) = clip(K - g, 0, t + 1) / (t + 1)`` for the rank uniform on
    ``{g + 1, ..., g + t + 1}``; the bounds use rank g + 1 (optimistic) or g + t + 1.
    """
    (k,) = check_ks("ks", k)
    g, t = _resolve(*np.broadcast_arrays(check_counts("g", g), check_counts("t", t)), ties)
    return np.clip(k - g, 0, t + 1) / (t + 1.0)


def ndcg_at_k(g, t, k: int, ties: str = "expected") -> np.ndarray:
    """NDCG@K of one relevant item per case: ``E[1[rank <= K] / log2(rank + 1)]`` (ideal DCG 1)."""
    (k,) = check_ks("ks", k)
    g, t = _resolve(*np.broadcast_arrays(check_counts("g", g), check_counts("t", t)), ties)
    C = _discount_cumsum(k)  # (k + 1,)
    return (C[np.minimum(g + t + 1, k)] - C[np.minimum(g, k)]) / (t + 1.0)


def precision_at_k(g, t, k: int, ties: str = "expected") -> np.ndarray:
    """Precision@K with one relevant item: the expected hits in the top K, divided by K."""
    return hit_at_k(g, t, k, ties) / k


def recall_at_k(g, t, k: int, ties: str = "expected") -> np.ndarray:
    """Recall@K with one relevant item: the share of the relevant set found, i.e. HR@K."""
    return hit_at_k(g, t, k, ties)


def reciprocal_rank(g, t, ties: str = "expected") -> np.ndarray:
    """Reciprocal rank ``E[1 / rank] = (H[g + t + 1] - H[g]) / (t + 1)``; its mean is MRR."""
    g, t = _resolve(*np.broadcast_arrays(check_counts("g", g), check_counts("t", t)), ties)
    H = _harmonic(int((g + t).max(initial=0)) + 1)
    return (H[g + t + 1] - H[g]) / (t + 1.0)


_SINGLE = {
    "HR": hit_at_k,
    "NDCG": ndcg_at_k,
    "Precision": precision_at_k,
    "Recall": recall_at_k,
}


def sampled_metrics(
    pos_scores,
    neg_scores,
    ks: Iterable[int] = DEFAULT_KS,
    ties: str = "expected",
    *,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    neg_mask=None,
    per_case: bool = False,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Metrics of the sampled protocol: each positive ranked against its own negatives.

    Parameters
    ----------
    pos_scores : array or tensor, shape (n,)
        Score of each case's held-out item.
    neg_scores : array or tensor, shape (n, m)
        Scores of the case's listed negatives.
    ks : iterable of int
        Cut-offs K.
    ties : {"expected", "optimistic", "pessimistic"}
        Expectation under uniformly random tie-breaking, or a bound.
    metrics : "all" or subset of ``ALL_METRICS``
        Metric families to report.
    neg_mask : bool array, shape (n, m), optional
        False marks a negative to leave out.
    per_case : bool
        Return one value per case instead of the mean.

    Returns
    -------
    dict
        Keys ``"HR@5"``, ``"NDCG@5"``, ... (one of each family per K, K by K), then ``"MRR"``.
    """
    ks = check_ks("ks", ks)
    metrics = check_metric_names("metrics", metrics, ALL_METRICS)
    g, t = count_ties(pos_scores, neg_scores, neg_mask)
    check_choice("ties", ties, TIES)
    if len(g) == 0 and not per_case:
        raise ValueError("no cases to evaluate: pos_scores is empty")
    out: dict[str, np.ndarray] = {}
    for k in ks:
        for m in metrics:
            if m in _SINGLE:
                out[f"{m}@{k}"] = _SINGLE[m](g, t, k, ties)
    if "MRR" in metrics:
        out["MRR"] = reciprocal_rank(g, t, ties)
    return out if per_case else {key: float(v.mean()) for key, v in out.items()}


# --------------------------------------------------------------------------------------------
# Several relevant items per entity: full ranking
# --------------------------------------------------------------------------------------------


def _pad_relevant(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column ids of the True entries of each row, padded: ids (b, R) and mask (b, R)."""
    rows, cols = np.nonzero(rel)
    counts = rel.sum(axis=1)
    width = int(counts.max(initial=0))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(rows)) - starts[rows]
    ids = np.zeros((rel.shape[0], width), dtype=np.int64)
    mask = np.zeros((rel.shape[0], width), dtype=bool)
    ids[rows, slot] = cols
    mask[rows, slot] = True
    return ids, mask


def _first_hit_survival(T: np.ndarray, n_top: np.ndarray) -> np.ndarray:
    """S[:, j] = P(X >= j), X the first slot (from 0) of n_top relevant items among T tied slots.

    The relevant items take a uniformly random n_top-subset of the T slots, so
    ``P(X >= j) = C(T - j, n_top) / C(T, n_top)``, built as a running product of
    ``(T - j - n_top) / (T - j)``. Shape (b, J + 1), J = max(T - n_top) + 1; the last column is 0.
    """
    J = int((T - n_top).max(initial=0)) + 1
    j = np.arange(J)[None, :]  # (1, J)
    live = j <= (T - n_top)[:, None]  # (b, J): factor defined while slots remain
    num = (T[:, None] - j - n_top[:, None]).astype(np.float64)
    den = np.where(live, T[:, None] - j, 1).astype(np.float64)
    factor = np.where(live, num / den, 0.0)
    return np.concatenate([np.ones((len(T), 1)), np.cumprod(factor, axis=1)], axis=1)


def _full_chunk(
    s: np.ndarray,
    rel: np.ndarray,
    cand: np.ndarray,
    ks: tuple[int, ...],
    ties: str,
    metrics: tuple[str, ...],
) -> dict[str, np.ndarray]:
    ids, valid = _pad_relevant(rel)  # (b, R), (b, R)
    s_rel = np.take_along_axis(s, ids, axis=1)  # (b, R)
    above = (s[:, None, :] > s_rel[:, :, None]) & cand[:, None, :]  # (b, R, I)
    level = (s[:, None, :] == s_rel[:, :, None]) & cand[:, None, :]  # (b, R, I)
    g = above.sum(axis=2)  # (b, R) candidates strictly above item i
    t = level.sum(axis=2) - 1  # (b, R) other candidates tied with item i
    same = (s_rel[:, :, None] == s_rel[:, None, :]) & valid[:, None, :]  # (b, R, R)
    t_rel = same.sum(axis=2) - 1  # (b, R) other relevant items tied with item i
    n_rel = valid.sum(axis=1)  # (b,)
    out: dict[str, np.ndarray] = {}
    if ties == "expected":
        # Linear metrics: each relevant item's rank is uniform on {g + 1, ..., g + t + 1}.
        # First-hit metrics (HR, MRR): only the best-scoring relevant tie group matters.
        top = np.argmax(np.where(valid, s_rel, -np.inf), axis=1)  # (b,)
        a = np.take_along_axis(g, top[:, None], axis=1)[:, 0]  # (b,) slots above the group
        T = np.take_along_axis(t, top[:, None], axis=1)[:, 0] + 1  # (b,) size of the group
        n_top = np.take_along_axis(t_rel, top[:, None], axis=1)[:, 0] + 1  # relevant in it
        S = _first_hit_survival(T, n_top)  # (b, J + 1)
        g_, t_ = np.where(valid, g, 0), np.where(valid, t, 0)
    else:
        # Bounds: relevant items fill the first (optimistic) or last (pessimistic) slots of
        # their tie group, in a fixed order among themselves. r counts from 0 (rank = r + 1).
        order = np.triu(np.ones((ids.shape[1],) * 2, dtype=bool), 1)  # (R, R): i' before i
        before = (same & order.T[None]).sum(axis=2)  # (b, R) tied relevant items placed ahead
        r = g + before if ties == "optimistic" else g + (t - t_rel) + before  # (b, R)
        r = np.where(valid, r, np.iinfo(np.int64).max // 2)
        r_min = r.min(axis=1)  # (b,)
    for k in ks:
        C = _discount_cumsum(k)
        if ties == "expected":
            hits = np.where(valid, hit_at_k(g_, t_, k), 0.0).sum(axis=1)  # (b,)
            dcg = np.where(valid, ndcg_at_k(g_, t_, k), 0.0).sum(axis=1)  # (b,)
            hr = 1.0 - S[np.arange(len(a)), np.clip(k - a, 0, S.shape[1] - 1)]
        else:
            in_top = valid & (r < k)
            hits = in_top.sum(axis=1).astype(np.float64)
            dcg = np.where(in_top, 1.0 / np.log2(np.minimum(r, k) + 2.0), 0.0).sum(axis=1)
            hr = (r_min < k).astype(np.float64)
        values = {
            "HR": hr,
            "NDCG": dcg / C[np.minimum(n_rel, k)],
            "Precision": hits / k,
            "Recall": hits / n_rel,
        }
        for m in metrics:
            if m in values:
                out[f"{m}@{k}"] = values[m]
    if "MRR" in metrics:
        if ties == "expected":
            p = S[:, :-1] - S[:, 1:]  # (b, J): P(X = j)
            out["MRR"] = (p / (a[:, None] + np.arange(p.shape[1])[None, :] + 1.0)).sum(axis=1)
        else:
            out["MRR"] = 1.0 / (r_min + 1.0)
    return out


def full_ranking_metrics(
    scores,
    relevant,
    exclude=None,
    ks: Iterable[int] = DEFAULT_KS,
    ties: str = "expected",
    *,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    per_case: bool = False,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Metrics of the full-ranking protocol, with any number of relevant items per row.

    Each row (an entity) ranks every candidate item: all items except those in ``exclude``
    (its training items), while relevant items always stay candidates. With R the relevant set:

    * ``HR@K``: at least one relevant item in the top K;
    * ``Precision@K = hits / K`` and ``Recall@K = hits / |R|``;
    * ``NDCG@K = DCG@K / IDCG@K`` with gain 1 per relevant item and discount
      ``1 / log2(rank + 1)``;
    * ``MRR``: reciprocal rank of the first relevant item.

    ``ties="expected"`` is exact: hits and DCG are sums over relevant items, each with a rank
    uniform on ``{g + 1, ..., g + t + 1}``; HR and MRR depend on the first relevant item only, whose
    position inside its tie group follows from choosing the relevant items' slots at random.
    The bounds put the relevant items first or last among the candidates they tie with. With
    one relevant item per row, the result equals :func:`sampled_metrics` on the same candidates.

    Parameters
    ----------
    scores : array or tensor, shape (n, n_items)
        Score of every item for every row.
    relevant : bool array or sparse matrix, shape (n, n_items)
        Held-out items of each row; every row needs at least one.
    exclude : bool array or sparse matrix, shape (n, n_items), optional
        Items that are not candidates (the row's training items).
    ks, ties, metrics, per_case
        As in :func:`sampled_metrics`.

    Returns
    -------
    dict
        Keys as in :func:`sampled_metrics`.
    """
    ks = check_ks("ks", ks)
    ties = check_choice("ties", ties, TIES)
    metrics = check_metric_names("metrics", metrics, ALL_METRICS)
    s = _as_scores(scores, "scores", 2)  # (n, I)
    rel = _as_mask(relevant, "relevant", s.shape)  # (n, I)
    empty = ~rel.any(axis=1)
    if empty.any():
        raise ValueError(f"relevant row {int(np.argmax(empty))} has no relevant item")
    cand = np.ones_like(rel) if exclude is None else ~_as_mask(exclude, "exclude", s.shape)
    cand |= rel
    if len(s) == 0 and not per_case:
        raise ValueError("no rows to evaluate: scores is empty")
    width = max(1, int(rel.sum(axis=1).max(initial=1)))
    step = max(1, _CHUNK_CELLS // (width * max(1, s.shape[1])))
    parts = [
        _full_chunk(s[i : i + step], rel[i : i + step], cand[i : i + step], ks, ties, metrics)
        for i in range(0, len(s), step)
    ]
    keys = metric_names(ks, metrics)
    out = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0) for key in keys}
    return out if per_case else {key: float(v.mean()) for key, v in out.items()}


# --------------------------------------------------------------------------------------------
# Recommended lists: top-K, group satisfaction and fairness, coverage, novelty
# --------------------------------------------------------------------------------------------


def top_k(scores, k: int, exclude=None, seed: int = 0) -> np.ndarray:
    """The K best-scoring candidates of each row, ties broken uniformly at random (seeded).

    Parameters
    ----------
    scores : array or tensor, shape (n, n_items)
        Scores of every item.
    k : int
        List length.
    exclude : bool array or sparse matrix, shape (n, n_items), optional
        Items that may not be recommended (the row's training items).
    seed : int
        Seed of the random tie-breaking.

    Returns
    -------
    np.ndarray
        Shape (n, k), int64 item ids, best first.
    """
    (k,) = check_ks("ks", k)
    s = _as_scores(scores, "scores", 2)  # (n, I)
    banned = np.zeros(s.shape, bool) if exclude is None else _as_mask(exclude, "exclude", s.shape)
    available = (~banned).sum(axis=1)
    if len(s) and available.min() < k:
        row = int(np.argmin(available))
        raise ValueError(f"row {row} has {int(available[row])} candidates, fewer than k={k}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(s), k), dtype=np.int64)
    step = max(1, _CHUNK_CELLS // max(1, s.shape[1]))
    for i in range(0, len(s), step):
        chunk = s[i : i + step]
        noise = rng.random(chunk.shape)  # (b, I): the tie-breaker, the last sort key
        order = np.lexsort((noise, -chunk, banned[i : i + step]), axis=-1)
        out[i : i + step] = order[:, :k]
    return out


def member_ndcg(lists, member_ids, member_mask, user_relevant) -> np.ndarray:
    """NDCG@K of each group's list, judged by each member's own held-out items.

    Parameters
    ----------
    lists : int array, shape (G, K)
        Each group's recommended items, best first.
    member_ids : int array, shape (G, S)
        Members of each group, padded (see ``GroupDataset.member_padded``).
    member_mask : bool array, shape (G, S)
        True marks a real member.
    user_relevant : sparse matrix, shape (n_users, n_items)
        Held-out items of every user (non-zero entries).

    Returns
    -------
    np.ndarray
        Shape (G, S), float64; NaN for padding and for members with no held-out item.
    """
    lists = np.asarray(lists, dtype=np.int64)  # (G, K)
    member_ids = np.asarray(member_ids, dtype=np.int64)  # (G, S)
    member_mask = _as_mask(member_mask, "member_mask", member_ids.shape)
    if lists.ndim != 2 or lists.shape[0] != member_ids.shape[0]:
        raise ValueError(
            f"lists must have shape (G, K) with G = {member_ids.shape[0]} groups, got {lists.shape}"
        )
    rel = sp.csr_matrix(user_relevant, copy=True)
    rel.sum_duplicates()
    rel.eliminate_zeros()
    n_items = rel.shape[1]
    K = lists.shape[1]
    coo = rel.tocoo()
    keys = np.unique(coo.row.astype(np.int64) * n_items + coo.col)  # sorted (user, item) keys
    pair = member_ids[:, :, None] * n_items + lists[:, None, :]  # (G, S, K)
    hit = np.isin(pair, keys)  # (G, S, K)
    n_rel = np.diff(rel.indptr)[member_ids]  # (G, S)
    C = _discount_cumsum(K)
    dcg = (hit / np.log2(np.arange(K) + 2.0)).sum(axis=2)  # (G, S)
    ok = member_mask & (n_rel > 0)
    return np.where(ok, dcg / C[np.minimum(n_rel, K)].clip(min=1e-300), np.nan)


def jain_index(x, axis: int = -1) -> np.ndarray:
    """Jain's fairness index ``(sum x)^2 / (n * sum x^2)`` over the non-NaN entries along ``axis``.

    1 when every entry is equal, ``1/n`` when one entry takes everything; NaN when there is no
    entry or every entry is 0 (fairness of nothing is undefined).
    """
    x = np.asarray(x, dtype=np.float64)
    if np.nanmin(x, initial=0.0) < 0:
        raise ValueError("jain_index needs non-negative values")
    ok = ~np.isnan(x)
    n = ok.sum(axis=axis)
    s1 = np.where(ok, x, 0.0).sum(axis=axis)
    s2 = np.where(ok, x * x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n > 0) & (s2 > 0), s1 * s1 / (n * s2), np.nan)


def group_satisfaction(lists, member_ids, member_mask, user_relevant) -> dict[str, float]:
    """Summaries of :func:`member_ndcg` over groups: mean, minimum and Jain's index.

    Per group, the NDCG values of the members who have held-out items (the set
    ``M_g^+``; members without any are NaN in :func:`member_ndcg` and left out, not counted as
    0) are combined by their mean (average satisfaction), their minimum (the least satisfied
    member) and Jain's index over ``M_g^+`` (how evenly satisfaction is spread). Each is then
    averaged over the groups where it is defined.

    Returns
    -------
    dict
        ``"Sat-mean@K"``, ``"Sat-min@K"``, ``"Jain@K"``, the number of groups with at least one
        judged member (``"groups"``) and of groups where Jain's index is defined
        (``"groups_with_hits"``).
    """
    sat = member_ndcg(lists, member_ids, member_mask, user_relevant)  # (G, S)
    K = np.asarray(lists).shape[1]
    judged = ~np.isnan(sat).all(axis=1)  # (G,)
    if not judged.any():
        raise ValueError("no group has a member with a held-out item: nothing to judge")
    s = sat[judged]
    jain = jain_index(s)
    return {
        f"Sat-mean@{K}": float(np.nanmean(s, axis=1).mean()),
        f"Sat-min@{K}": float(np.nanmin(s, axis=1).mean()),
        f"Jain@{K}": float(np.nanmean(jain)) if (~np.isnan(jain)).any() else float("nan"),
        "groups": int(judged.sum()),
        "groups_with_hits": int((~np.isnan(jain)).sum()),
    }


def coverage(lists, n_items: int) -> float:
    """Catalogue coverage: the share of all items that appear in at least one list."""
    lists = np.asarray(lists, dtype=np.int64)
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    if lists.size and (lists.min() < 0 or lists.max() >= n_items):
        raise ValueError(f"lists hold item ids outside 0..{n_items - 1}")
    return float(np.unique(lists).size / n_items)


def novelty(lists, item_counts, n_entities: int) -> float:
    """Mean self-information ``-log2 p_i`` of the recommended items (bits).

    ``p_i = (c_i + 1) / (N + 1)`` is the smoothed share of the N training entities that
    interacted with item i, so an item nobody has seen scores ``log2(N + 1)`` rather than infinity.
    """
    lists = np.asarray(lists, dtype=np.int64)
    c = np.asarray(item_counts, dtype=np.float64)
    if n_entities < 1:
        raise ValueError(f"n_entities must be positive, got {n_entities}")
    if c.size and (c.min() < 0 or c.max() > n_entities):
        raise ValueError(f"item_counts must lie in 0..n_entities={n_entities}")
    p = (c + 1.0) / (n_entities + 1.0)
    return float(-np.log2(p[lists]).mean())
