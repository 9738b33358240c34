"""Evaluation stage, part 3: simple baselines every learned model must beat.

All four subclass :class:`grouprec.base.BaseRecommender` (``fit(dataset, task)``,
``score(entities, items)``, ``score_all(entities)``, ``recommend``, ``get_params``, ``clone``):

* :class:`Random`: a seeded uniform score per (entity, item) pair;
* :class:`Popularity`: how many training entities interacted with the item;
* :class:`ItemKNN`: item-based collaborative filtering with cosine similarity
  (Sarwar et al., WWW 2001), optional top-k neighbour pruning and shrinkage;
* :class:`EASE`: the closed-form linear item-item model of Steck (WWW 2019).

An entity's **history** ``h`` is its row of the training matrix. For the group task the
history mixes the group's own row ``x_g`` with the mean of its members' rows:

    h_g = alpha * x_g + (1 - alpha) * mean_{u in g} x_u,        alpha in [0, 1]

so ``alpha = 1`` uses the group's history only and ``alpha = 0`` its members' only; ``alpha``
is a hyperparameter to select on validation. The item-item models (ItemKNN, EASE) learn their
weights ``W`` (I, I) from every training row of the dataset, users' and groups' alike, and
score ``h W``. Their weights do not depend on ``alpha`` or on the task, so fits that differ
only there reuse them (a small cache keyed by the training matrix and the weight
hyperparameters).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from grouprec.base import BaseRecommender
from grouprec.checks import check_choice, check_fraction, check_ids
from grouprec.constants import TASKS
from grouprec.data import GroupDataset

__all__ = [
    "EASE",
    "ItemKNN",
    "Popularity",
    "Random",
    "check_ids",
    "clear_cache",
    "ease_weights",
    "history",
    "itemknn_weights",
    "member_mean",
    "training_rows",
]


# --------------------------------------------------------------------------------------------
# Histories and training rows
# --------------------------------------------------------------------------------------------


def member_mean(dataset: GroupDataset) -> sp.csr_matrix:
    """Averaging matrix A (n_groups, n_users): ``A[g, u] = 1 / |g|`` for each distinct member u."""
    rows = np.repeat(np.arange(dataset.n_groups), dataset.group_sizes)
    cols = np.concatenate(dataset.group_members)
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(dataset.n_groups, dataset.n_users))
    A.sum_duplicates()
    A.data[:] = 1.0  # a member listed twice counts once
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(A.sum(axis=1)).ravel()) @ A)


def history(dataset: GroupDataset, task: str, alpha: float = 1.0) -> sp.csr_matrix:
    """Each entity's history (n_entities, n_items): its training row, or for groups the mix
    ``alpha * x_g + (1 - alpha) * mean of the members' rows``.
    """
    check_choice("task", task, TASKS)
    alpha = check_fraction("alpha", alpha)
    X_u = dataset.train_matrix("user").astype(np.float64)  # (U, I)
    if task == "user":
        if alpha != 1.0:
            raise ValueError(
                f"alpha mixes group and member histories, so it applies to the group task only; "
                f"got alpha={alpha} with task='user'"
            )
        return X_u
    X_g = dataset.train_matrix("group").astype(np.float64)  # (G, I)
    H = alpha * X_g + (1.0 - alpha) * (member_mean(dataset) @ X_u)  # (G, I)
    H = sp.csr_matrix(H)
    H.eliminate_zeros()
    return H


def training_rows(dataset: GroupDataset) -> sp.csr_matrix:
    """Every binary training row of the dataset: users' rows, then groups' rows (N, n_items)."""
    return sp.csr_matrix(
        sp.vstack([dataset.train_matrix("user"), dataset.train_matrix("group")]), dtype=np.float64
    )


# --------------------------------------------------------------------------------------------
# Item-item weights, with a small cache
# --------------------------------------------------------------------------------------------

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 3


def clear_cache() -> None:
    """Forget every cached item-item weight matrix (frees their memory)."""
    _CACHE.clear()


def _fingerprint(X: sp.csr_matrix) -> str:
    X = sp.csr_matrix(X)
    X.sum_duplicates()
    h = hashlib.blake2b(digest_size=16)
    for part in (np.asarray(X.shape, np.int64), X.indptr, X.indices, X.data):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def _cached(key: tuple, compute):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = compute()
    for arr in value:  # shared between models: nobody may change it in place
        for part in (arr.data, arr.indices, arr.indptr) if sp.issparse(arr) else (arr,):
            part.flags.writeable = False
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def _active(X: sp.csr_matrix) -> np.ndarray:
    """Items with at least one training interaction; the others get all-zero weights."""
    return np.flatnonzero(X.getnnz(axis=0) > 0)


def _gram(X: sp.csr_matrix) -> np.ndarray:
    """X^T X as a dense float64 array; a dense product when X has no more rows than columns."""
    if X.shape[0] <= X.shape[1]:
        Xd = X.toarray()  # (N, A), no larger than the (A, A) result
        return Xd.T @ Xd
    return np.asarray((X.T @ X).todense())


def ease_weights(X: sp.spmatrix, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """EASE weights on the items with training data (Steck, WWW 2019).

    ``B = argmin ||X - X B||^2 + lam ||B||^2`` subject to ``diag(B) = 0`` has the closed form

        P = (X^T X + lam I)^(-1),    B = I - P diag(1 / diag(P)),  i.e.  B_ij = -P_ij / P_jj (i != j)

    computed in float64. With at least as many rows N as items A, P comes from a Cholesky
    factorisation of the (A, A) matrix. With fewer rows (CAMRa2011: 892 rows, 7,624 items) the
    Woodbury identity ``P = (I - X^T (X X^T + lam I)^(-1) X) / lam`` needs only an (N, N)
    factorisation and one matrix product, several times faster and equal up to rounding. An
    item without training data has an all-zero column of ``X``, so its row and column of ``B``
    are zero; it is left out.

    Returns
    -------
    active : np.ndarray
        Shape (A,), the items with training data.
    B : np.ndarray
        Shape (A, A), float64, zero diagonal; rows and columns follow ``active``.
    """
    if not lam > 0:
        raise ValueError(f"lam must be positive, got {lam!r}")
    X = sp.csr_matrix(X, dtype=np.float64)
    active = _active(X)
    X_a = X[:, active]  # (N, A)
    N, A = X_a.shape
    if N < A:
        Xd = X_a.toarray()  # (N, A)
        K = Xd @ Xd.T  # (N, N)
        K[np.diag_indices_from(K)] += lam
        factor = sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
        Z = sla.cho_solve(factor, Xd, check_finite=False)  # (N, A) = (X X^T + lam I)^(-1) X
        P = Xd.T @ Z  # (A, A)
        P *= -1.0 / lam
        P[np.diag_indices_from(P)] += 1.0 / lam
    else:
        G = _gram(X_a)  # (A, A) Gram matrix X^T X
        G[np.diag_indices_from(G)] += lam
        # P = G^(-1) from the Cholesky factor G = L L^T (LAPACK potrf, then potri): about a
        # third of the work of a general inverse. potri fills the lower triangle only.
        potrf, potri = sla.get_lapack_funcs(("potrf", "potri"), (G,))
        L, info = potrf(G, lower=True, overwrite_a=True, clean=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"X^T X + lam I is not positive definite (info={info})")
        P, info = potri(L, lower=True, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"could not invert X^T X + lam I (potri info={info})")
        P += np.tril(P, -1).T  # (A, A) symmetric
    B = P
    B /= -np.diag(P).copy()[None, :]  # in place: B_ij = -P_ij / P_jj
    B[np.diag_indices_from(B)] = 0.0
    return active, B


def itemknn_weights(
    X: sp.spmatrix, k: int | None = None, shrink: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine item-item similarities, optionally shrunk and pruned to k neighbours.

    ``S_ij = (x_i . x_j) / (||x_i|| ||x_j|| + shrink)`` for the item columns ``x_i`` of X, with
    ``S_ii = 0``. With ``k``, each target item j keeps only its k most similar items i (the
    largest entries of column j); every entry tied with the k-th largest value is kept too.

    Returns
    -------
    active : np.ndarray
        Shape (A,), the items with training data.
    S : np.ndarray or scipy.sparse.csr_matrix
        Shape (A, A), float64; rows and columns follow ``active``. Pruned to ``k`` neighbours
        (``k`` < A) it is a CSR matrix of the kept entries (about ``k A`` of them, where the dense
        array would hold ``A^2``: 465 MB on CAMRa2011); otherwise a dense array.
    """
    if shrink < 0:
        raise ValueError(f"shrink must be non-negative, got {shrink!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    X = sp.csr_matrix(X, dtype=np.float64)
    active = _active(X)
    X_a = X[:, active]  # (N, A)
    S = _gram(X_a)  # (A, A) co-occurrence counts
    norm = np.sqrt(np.diag(S).copy())  # (A,), positive on active items
    S /= norm[:, None] * norm[None, :] + shrink
    S[np.diag_indices_from(S)] = 0.0
    if k is not None and k < len(active):
        kth = -np.partition(-S, k - 1, axis=0)[k - 1]  # (A,) k-th largest of each column
        S[S < kth[None, :]] = 0.0
        return active, sp.csr_matrix(S)
    return active, S


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


class _HistoryModel(BaseRecommender):
    """A model whose scores for every (entity, item) pair are computed once, at fit time."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_fraction("alpha", alpha)

    def _scores(self, dataset: GroupDataset, task: str) -> np.ndarray:
        raise NotImplementedError

    def fit(self, dataset: GroupDataset, task: str) -> _HistoryModel:
        """Compute the score of every item for every entity of ``task``."""
        self._start_fit(dataset, task)
        if task == "user" and self.alpha != 1.0:
            history(dataset, task, self.alpha)  # raises the explanatory error
        self.scores_ = self._scores(dataset, task)  # (n_entities, n_items), float64
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of ``items`` (n, c) for ``entities`` (n,)."""
        entities, items = self._check_ids(entities, items)
        return self.scores_[entities[:, None], items]

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        return self.scores_[entities]


class Random(BaseRecommender):
    """Uniform random scores in [0, 1), a fixed function of (seed, entity, item).

    The score of a pair does not depend on which other pairs are scored with it or in which
    batch, so results are identical however the evaluation is batched.
    """

    name = "Random"

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)

    def fit(self, dataset: GroupDataset, task: str) -> Random:
        """Remember the id ranges; nothing is learned."""
        self._start_fit(dataset, task)
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of ``items`` (n, c) for ``entities`` (n,)."""
        entities, items = self._check_ids(entities, items)
        h = _splitmix64(np.full(items.shape, self.seed, dtype=np.uint64))
        h = _splitmix64(h ^ entities.astype(np.uint64)[:, None])
        h = _splitmix64(h ^ items.astype(np.uint64))
        return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53  # 53 random bits -> [0, 1)

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        items = np.broadcast_to(np.arange(self.n_items_), (len(entities), self.n_items_))
        return self.score(entities, items)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 mixing function (Steele, Lea & Flood, OOPSLA 2014), on uint64 arrays."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Popularity(_HistoryModel):
    """Score = share of training entities that interacted with the item (not personalised).

    For users, the share of users. For groups, ``alpha`` weighs the share of groups against the
    share of users: ``alpha * c_G / n_G + (1 - alpha) * c_U / n_U``. Many items share a count,
    so this model produces many tied scores.
    """

    name = "Popularity"

    def _scores(self, dataset: GroupDataset, task: str) -> np.ndarray:
        X_u = dataset.train_matrix("user")
        pop = X_u.getnnz(axis=0) / X_u.shape[0]  # (I,)
        if task == "group":
            X_g = dataset.train_matrix("group")
            pop = self.alpha * X_g.getnnz(axis=0) / X_g.shape[0] + (1.0 - self.alpha) * pop
        return np.broadcast_to(pop.astype(np.float64), (self.n_entities_, self.n_items_))


class _ItemItem(_HistoryModel):
    """Scores ``h W`` for an item-item weight matrix W learned from every training row."""

    def _weights(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _weight_key(self) -> tuple:
        raise NotImplementedError

    def _scores(self, dataset: GroupDataset, task: str) -> np.ndarray:
        X = training_rows(dataset)  # (N, I)
        key = (type(self).__name__, self._weight_key(), _fingerprint(X))
        self.active_, self.weights_ = _cached(key, lambda: self._weights(X))  # (A,), (A, A)
        H = history(dataset, task, self.alpha)[:, self.active_]  # (n_entities, A)
        HW = H @ self.weights_  # (n_entities, A); sparse when the weights are
        scores = np.zeros((self.n_entities_, self.n_items_))
        scores[:, self.active_] = HW.toarray() if sp.issparse(HW) else np.asarray(HW)
        return scores


class ItemKNN(_ItemItem):
    """Item-based nearest neighbours with cosine similarity (Sarwar et al., WWW 2001).

    ``score(e, j) = sum_i h_ei S_ij`` (see :func:`itemknn_weights`).

    Parameters
    ----------
    k : int, optional
        Neighbours kept per item; None keeps all.
    shrink : float
        Added to the cosine's denominator; damps similarities built on few co-occurrences.
    alpha : float
        Weight of the group's own history against its members' (group task only).

    Attributes
    ----------
    active_ : np.ndarray
        Items with training data (A,).
    weights_ : scipy.sparse.csr_matrix or np.ndarray
        Similarities S (A, A) over ``active_``: sparse when pruned to ``k`` neighbours.
    """

    name = "ItemKNN"

    def __init__(self, k: int | None = None, shrink: float = 0.0, alpha: float = 1.0) -> None:
        super().__init__(alpha)
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"k must be a positive integer or None, got {k!r}")
        if not shrink >= 0:
            raise ValueError(f"shrink must be non-negative, got {shrink!r}")
        self.k = None if k is None else int(k)
        self.shrink = float(shrink)

    def _weight_key(self) -> tuple:
        return (self.k, self.shrink)

    def _weights(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        return itemknn_weights(X, self.k, self.shrink)


class EASE(_ItemItem):
    """Embarrassingly Shallow Autoencoder, EASE^R (Steck, WWW 2019).

    ``score(e, j) = sum_i h_ei B_ij`` with the closed-form B of :func:`ease_weights`.

    Parameters
    ----------
    lam : float
        L2 penalty lambda on B; select it on validation.
    alpha : float
        Weight of the group's own history against its members' (group task only).
    """

    name = "EASE"

    def __init__(self, lam: float = 100.0, alpha: float = 1.0) -> None:
        super().__init__(alpha)
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.number)) or not lam > 0:
            raise ValueError(f"lam must be a positive number, got {lam!r}")
        self.lam = float(lam)

    def _weight_key(self) -> tuple:
        return (self.lam,)

    def _weights(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        return ease_weights(X, self.lam)
