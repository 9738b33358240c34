"""The content baseline, the cold-start protocol, and probes of learned item vectors.

* :class:`ContentRecommender` is the simple baseline: the cosine between an entity's profile (the
  sum of the feature vectors of its training items) and each item's features.
* :func:`cold_start_split` hides a random set of items from training to measure the hybrid
  model on items it has never seen, and :func:`silhouette_score` and :func:`linear_probe_r2`
  compare learned item vectors with the planted structure of the synthetic data
  (Rousseeuw, 1987).

References
----------
- P. J. Rousseeuw. Silhouettes: a graphical aid to the interpretation and validation of cluster
  analysis. Journal of Computational and Applied Mathematics 20, 53-65, 1987.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from torch import Tensor

from grouprec.base import BaseRecommender
from grouprec.baselines import history
from grouprec.checks import check_no_new_items, check_size
from grouprec.constants import TASKS
from grouprec.data import EvalCases, GroupDataset, Interactions
from grouprec.features.featurizer import (
    ItemFeaturizer,
    _item_table,
    _new_item_mask,
    normalise_blocks,
)
from grouprec.features.hybrid import _distinct_from_pool


class ContentRecommender(BaseRecommender):
    """Content-based baseline: cosine between an entity's feature profile and each item.

    The profile of entity ``e`` is the sum of the feature vectors of its history items,
    ``π_e = Σ_i h_ei x_i`` with ``h_e`` from :func:`grouprec.baselines.history` (for groups,
    ``alpha`` mixes the group's own items with its members'), and ``x_i`` the item's features with
    each block scaled to unit length (:func:`normalise_blocks`). The score is
    ``cos(π_e, x_i)``. Nothing is learned from the interactions beyond the profile, so every item
    with a description, new or not, is scored the same way.

    Parameters
    ----------
    featurizer : ItemFeaturizer, optional
        Settings of the features (copied and fitted in ``fit``); by default ``ItemFeaturizer()``.
    alpha : float
        For groups: weight of the group's own history against its members' (see ``history``).
    new_items : array of int, optional
        Items that do not exist at training time: the featurizer is fitted without them.
    """

    name = "Content profile"

    def __init__(
        self,
        featurizer: ItemFeaturizer | None = None,
        alpha: float = 1.0,
        new_items: np.ndarray | None = None,
    ) -> None:
        self.featurizer = featurizer
        self.alpha = alpha
        self.new_items = None if new_items is None else np.asarray(new_items, dtype=np.int64)

    def fit(self, dataset: GroupDataset, task: str) -> ContentRecommender:
        """Build the profiles of every entity of ``task`` and score every item."""
        self._start_fit(dataset, task)
        new = _new_item_mask(self.new_items, dataset.n_items)
        check_no_new_items("new_items", new, dataset, task)
        items = _item_table(dataset)
        self.featurizer_ = copy.deepcopy(self.featurizer or ItemFeaturizer())
        F = self.featurizer_.fit_transform(items, fit_items=np.flatnonzero(~new))  # (I, n_f)
        X = normalise_blocks(F, self.featurizer_.blocks_)  # (I, n_f)
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        H = sp.csr_matrix(history(dataset, task, self.alpha))  # (n_e, I)
        profile = np.asarray(H @ X)  # (n_e, n_f)
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        self.scores_ = profile @ X.T  # (n_e, I); 0 for an entity without history
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for entities (n,)."""
        entities, items = self._check_ids(entities, items)
        return self.scores_[entities[:, None], items]

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        return self.scores_[entities]


# --------------------------------------------------------------------------------------------
# The cold-start protocol
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStartSplit:
    """A dataset whose cold items are hidden from training, with cases to choose and to test on.

    The items fall into three disjoint sets: warm items, which exist at training time, and two
    sets of cold items, which do not: one to choose hyperparameters on (validation), one to
    report on (test). Every case ranks its positive against ``n_negatives`` items of its own
    shelf: a cold case against cold items of the same set, a warm case against warm items.

    Attributes
    ----------
    dataset : GroupDataset
        The warm data: training pairs and validation cases without any cold item, and as its test
        split the original test cases whose item is warm. Item features cover every item.
    cold_val_items, cold_test_items : np.ndarray
        The cold item ids of each set, sorted.
    cold_val, cold_test : dict of str to EvalCases
        Per task, every distinct (entity, cold item) pair of the original data with an item of
        the set: from the training and validation splits for ``cold_val``, from every split for
        ``cold_test``.
    n_negatives : int
        Negatives per case, never an item the entity interacted with.
    """

    dataset: GroupDataset
    cold_val_items: np.ndarray
    cold_test_items: np.ndarray
    cold_val: dict[str, EvalCases] = field(default_factory=dict)
    cold_test: dict[str, EvalCases] = field(default_factory=dict)
    n_negatives: int = 50

    @property
    def cold_items(self) -> np.ndarray:
        """Every item that does not exist at training time (both cold sets), sorted."""
        return np.union1d(self.cold_val_items, self.cold_test_items)

    @property
    def warm_items(self) -> np.ndarray:
        """The items that exist at training time, sorted."""
        return np.setdiff1d(np.arange(self.dataset.n_items), self.cold_items)

    def cases(self, task: str, kind: str, split: str = "test") -> EvalCases:
        """Cases of ``task`` whose item is ``kind`` ("warm" or "cold"), for ``split``."""
        if kind not in ("warm", "cold"):
            raise ValueError(f"kind must be 'warm' or 'cold', got {kind!r}")
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        if kind == "warm":
            return self.dataset.cases(task, split)
        cases = self.cold_val if split == "val" else self.cold_test
        if task not in cases:
            raise ValueError(f"no cold cases for task {task!r}; the split has {list(cases)}")
        return cases[task]

    def evaluation_dataset(self, kind: str) -> GroupDataset:
        """The warm dataset with the ``kind`` cases as its val and test splits, for ``evaluate``.

        Use it for evaluation only: a model fitted on it would early-stop on those cases.
        """
        if kind not in ("warm", "cold"):
            raise ValueError(f"kind must be 'warm' or 'cold', got {kind!r}")
        if kind == "warm":
            return self.dataset
        changes: dict[str, Any] = {}
        for task in self.cold_test:
            changes[f"{task}_test"] = self.cold_test[task]
            changes[f"{task}_val"] = self.cold_val.get(task)
        return replace(self.dataset, **changes)


def _all_positives(dataset: GroupDataset, task: str, splits: Sequence[str]) -> Interactions:
    parts = []
    for split in splits:
        if split == "train":
            parts.append(dataset.train(task))
        else:
            cases = getattr(dataset, f"{task}_{split}")
            if cases is not None and len(cases):
                parts.append(cases.as_interactions())
    return Interactions(
        np.concatenate([p.entity for p in parts]), np.concatenate([p.item for p in parts])
    )


def _shelf_cases(
    known: Interactions,
    shelf: np.ndarray,
    n_items: int,
    m: int,
    rng: np.random.Generator,
    what: str,
) -> EvalCases:
    """Every distinct pair of ``known`` whose item is on ``shelf``, with ``m`` shelf negatives."""
    on_shelf = np.isin(known.item, shelf)
    keys = np.unique(known.keys(n_items)[on_shelf])  # sorted by entity, then item
    entity, item = keys // n_items, keys % n_items
    return EvalCases(entity, item, _distinct_from_pool(entity, known, n_items, shelf, m, rng, what))


def cold_start_split(
    dataset: GroupDataset,
    frac: float = 0.15,
    val_frac: float = 0.15,
    n_negatives: int = 50,
    seed: int = 0,
    tasks: Iterable[str] = TASKS,
) -> ColdStartSplit:
    """Hide random items from training, as if they were added to the catalogue afterwards.

    1. Draw ``round(frac * n_items)`` cold test items and ``round(val_frac * n_items)`` cold
       validation items, uniformly at random and disjoint. The rest are warm.
    2. Remove every training pair with a cold item (users' and groups'), and every validation case
       whose positive is cold; the remaining validation cases get fresh negatives from the warm
       items, so that early stopping never meets a cold item.
    3. Cold test cases: every distinct (entity, item) pair of the original training, validation
       and test data with a cold test item. Cold validation cases: the same from the training and
       validation data only, with a cold validation item, so that choosing hyperparameters never
       reads the test split. Warm test cases: the original test cases whose item is warm.
    4. Every case ranks its positive against ``n_negatives`` distinct items of its own shelf (the
       warm items, the cold validation items or the cold test items) that the entity never
       interacted with: in any split for test cases, in training and validation for validation
       cases. All shelves use the same number of negatives, so their metrics share one chance
       level.

    Parameters
    ----------
    dataset : GroupDataset
        Cleaned data with a test split, usually with a validation split too.
    frac, val_frac : float
        Shares of the items made cold for testing and for validation (``val_frac`` may be 0).
    n_negatives : int
        Negatives per case; at most a shelf's size minus an entity's positives on it.
    seed : int
        Seeds the choice of items and every negative.
    tasks : iterable of str
        Tasks whose data is split.

    Returns
    -------
    ColdStartSplit
    """
    if not (0.0 < float(frac) < 1.0) or not (0.0 <= float(val_frac) < 1.0):
        raise ValueError(
            f"frac must lie in (0, 1) and val_frac in [0, 1); got frac={frac!r}, "
            f"val_frac={val_frac!r}"
        )
    m = check_size("n_negatives", n_negatives)
    tasks = tuple(tasks)
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"tasks must be drawn from {TASKS}, got {task!r}")
    # Three independent streams: the cold items, the test shelves' negatives, the validation
    # shelves' negatives. Validation draws never depend on how much the test split consumed.
    rng, test_rng, val_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    n_items = dataset.n_items
    n_test, n_val = int(round(float(frac) * n_items)), int(round(float(val_frac) * n_items))
    if n_test < 1 or n_test + n_val >= n_items:
        raise ValueError(
            f"frac={frac} and val_frac={val_frac} make {n_test} + {n_val} of {n_items} items "
            "cold; at least one must be cold for testing and one must stay warm"
        )
    order = rng.permutation(n_items)
    test_items = np.sort(order[:n_test]).astype(np.int64)
    val_items = np.sort(order[n_test : n_test + n_val]).astype(np.int64)
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[order[: n_test + n_val]] = True
    warm = np.flatnonzero(~is_cold)
    out = dataset
    cold_val: dict[str, EvalCases] = {}
    cold_test: dict[str, EvalCases] = {}
    for task in tasks:
        train = dataset.train(task)
        val = getattr(dataset, f"{task}_val")
        test = dataset.cases(task, "test")
        everything = _all_positives(dataset, task, ("train", "val", "test"))
        # Validation sees training and validation positives only: the test split stays hidden.
        seen = _all_positives(dataset, task, ("train", "val"))
        cold_test[task] = _shelf_cases(
            everything, test_items, n_items, m, test_rng, f"{task} cold test"
        )
        if n_val:
            cold_val[task] = _shelf_cases(seen, val_items, n_items, m, val_rng, f"{task} cold val")
        keep = ~is_cold[test.item]
        w_entity = test.entity[keep]
        warm_test = EvalCases(
            w_entity,
            test.item[keep],
            _distinct_from_pool(
                w_entity, everything, n_items, warm, m, test_rng, f"{task} warm test"
            ),
            None if test.rating is None else test.rating[keep],
        )
        warm_train = train.select(~is_cold[train.item])
        changes: dict[str, Any] = {f"{task}_train": warm_train, f"{task}_test": warm_test}
        n_warm_val = 0
        if val is not None:
            keep_v = ~is_cold[val.item]
            v_entity = val.entity[keep_v]
            changes[f"{task}_val"] = EvalCases(
                v_entity,
                val.item[keep_v],
                _distinct_from_pool(v_entity, seen, n_items, warm, m, val_rng, f"{task} warm val"),
                None if val.rating is None else val.rating[keep_v],
            )
            n_warm_val = int(keep_v.sum())
        removed = len(train) - len(warm_train)
        record = {
            "step": "cold_start_split",
            "task": task,
            "before": len(train),
            "after": len(warm_train),
            "changed": removed,
            "detail": (
                f"{n_test} cold test + {n_val} cold validation items (seed {seed}); {removed} "
                f"training rows with them removed; cases: {len(cold_test[task])} cold test, "
                f"{len(cold_val[task]) if n_val else 0} cold validation, {len(warm_test)} warm "
                f"test, {n_warm_val} warm validation; {m} negatives each, from its own shelf"
            ),
        }
        out = out._with(record, **changes)
    return ColdStartSplit(out, val_items, test_items, cold_val, cold_test, m)


# --------------------------------------------------------------------------------------------
# Comparing learned item vectors with planted structure
# --------------------------------------------------------------------------------------------


def silhouette_score(
    X: Tensor | np.ndarray, labels: np.ndarray, metric: str = "euclidean"
) -> float:
    """Mean silhouette of the points ``X`` (n, d) grouped by ``labels`` (n,) (Rousseeuw, 1987).

    For point ``i`` in cluster ``A``: ``a_i`` is its mean distance to the other points of ``A``,
    ``b_i`` the smallest mean distance to the points of another cluster, and
    ``s_i = (b_i - a_i) / max(a_i, b_i)``, with ``s_i = 0`` when ``A`` has one point. Values near
    1 mean tight, well-separated clusters; near 0, overlapping ones.

    Parameters
    ----------
    metric : {"euclidean", "cosine"}
        The distance: Euclidean, or ``1 - cos`` between the vectors.
    """
    X = X.detach().cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)  # values only
    X = X.astype(np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and labels (n,); got {X.shape} and {labels.shape}")
    _, y = np.unique(labels, return_inverse=True)
    K = int(y.max()) + 1 if y.size else 0
    if K < 2 or K >= len(y):
        raise ValueError(f"the silhouette needs 2 <= clusters < points; got {K} and {len(y)}")
    if metric == "euclidean":
        sq = (X**2).sum(1)
        D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0))  # (n, n)
        np.fill_diagonal(D, 0.0)
    elif metric == "cosine":
        norm = np.linalg.norm(X, axis=1, keepdims=True)
        Xn = np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)
        D = 1.0 - Xn @ Xn.T
        np.fill_diagonal(D, 0.0)
    else:
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    L = np.eye(K)[y]  # (n, K) one-hot of the clusters
    sums = D @ L  # (n, K): total distance from each point to each cluster
    size = L.sum(0)  # (K,)
    own = size[y] - 1  # other points in the point's own cluster
    a = np.divide(sums[np.arange(len(y)), y], own, out=np.zeros(len(y)), where=own > 0)
    mean_other = sums / size[None, :]
    mean_other[np.arange(len(y)), y] = np.inf
    b = mean_other.min(1)
    s = np.where(own > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def linear_probe_r2(
    X: Tensor | np.ndarray,
    Y: Tensor | np.ndarray,
    fit_rows: np.ndarray,
    eval_rows: np.ndarray | None = None,
) -> float:
    """How well a linear map of ``X`` recovers ``Y``: R² of a least-squares fit, pooled over columns.

    Learned embeddings are identified only up to an invertible linear map (``p_u·q_i`` does not
    change when ``q_i → A q_i`` and ``p_u → A⁻ᵀ p_u``), so they are compared with the true vectors
    through the best affine map ``Y ≈ X W + c``, fitted on ``fit_rows`` and scored on
    ``eval_rows`` (by default the same rows):
    ``R² = 1 - Σ ‖y_i - ŷ_i‖² / Σ ‖y_i - ȳ‖²``, with ``ȳ`` the mean over the scored rows.

    Parameters
    ----------
    X : (n, k) learned vectors.
    Y : (n, d) true vectors.
    fit_rows, eval_rows : int or bool arrays selecting rows.
    """
    X = X.detach().cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)  # values only
    Y = Y.detach().cpu().numpy() if isinstance(Y, Tensor) else np.asarray(Y)  # values only
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be (n, k) and (n, d) with the same n; got {X.shape}, {Y.shape}"
        )
    eval_rows = fit_rows if eval_rows is None else eval_rows
    X1 = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)  # (n, k + 1): the intercept
    W, *_ = np.linalg.lstsq(X1[fit_rows], Y[fit_rows], rcond=None)  # (k + 1, d)
    Y_eval = Y[eval_rows]
    residual = ((Y_eval - X1[eval_rows] @ W) ** 2).sum()
    total = ((Y_eval - Y_eval.mean(0)) ** 2).sum()
    if total == 0:
        raise ValueError("Y is constant on eval_rows; R² is undefined")
    return float(1.0 - residual / total)
