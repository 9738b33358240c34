"""Evaluation stage, part 2: one interface for recommenders, one runner, honest model selection.

Any object with ``fit(dataset, task)`` and ``score(entities, items)`` is a :class:`Recommender`;
:func:`evaluate` measures it on the user or the group task under either protocol of
:mod:`grouprec.metrics` and returns a one-row table, and :func:`select` runs a small grid search
scored on the validation split. :func:`select` cannot touch the test split: it refuses
``split="test"`` and hands every model a copy of the dataset whose test cases are empty
(:func:`hide_test`). The test split is evaluated once, at the end, with :func:`evaluate`.
:class:`ConsumedFilter` wraps any recommender so that the items an entity consumed in training
score ``-inf``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from grouprec import metrics as M
from grouprec.base import SCORE_CELLS, BaseRecommender, NotFittedError
from grouprec.checks import check_choice, check_disjoint
from grouprec.constants import DEFAULT_KS, TASKS
from grouprec.data import EvalCases, GroupDataset

__all__ = [
    "PROTOCOLS",
    "BaseRecommender",
    "ConsumedFilter",
    "NotFittedError",
    "Recommender",
    "beyond_accuracy",
    "case_metrics",
    "evaluate",
    "hide_test",
    "model_name",
    "score_all_items",
    "score_candidates",
    "select",
]

#: Evaluation protocols: rank against the listed negatives, or against every unseen item.
PROTOCOLS = ("sampled", "full")

# Scores computed per call to a model: at most this many (entity, item) pairs (the budget of
# BaseRecommender.score_all, so that full ranking calls ``score`` with the same batches).
_SCORE_CELLS = SCORE_CELLS


@runtime_checkable
class Recommender(Protocol):
    """What every recommender in grouprec implements.

    Every model class of grouprec subclasses :class:`grouprec.base.BaseRecommender` (re-exported
    here), which satisfies this protocol and adds ``score_all``, ``recommend``, ``get_params``,
    ``set_params`` and ``clone``; any other object with these two methods works too. A model may
    also define ``score_all(entities) -> (n, n_items)``, the scores of every item;
    full ranking uses it when present and otherwise calls ``score`` with all items, in chunks.
    An optional ``name`` attribute labels the model in results tables.
    """

    def fit(self, dataset: GroupDataset, task: str) -> Recommender:
        """Learn from the training interactions of ``dataset`` for ``task`` ("user" or "group")."""
        ...

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of ``items`` (n, c) for ``entities`` (n,): higher means more relevant."""
        ...


def model_name(model: object) -> str:
    """The label of a model in tables: its ``name`` attribute, else its class name."""
    return str(getattr(model, "name", None) or type(model).__name__)


class ConsumedFilter(BaseRecommender):
    """Any recommender, with the items each entity consumed in training scored ``-inf``.

    The GAN recommenders of :mod:`grouprec.gan_recommender` filter their own output; wrapping the
    other models in this class gives them the same treatment, for a like-for-like comparison. Use
    it on an unfitted model (``fit`` fits the wrapped model, then remembers the consumed items) or
    on a fitted one with :meth:`wrap`.

    Parameters
    ----------
    model : Recommender
        Any object with ``fit(dataset, task)`` and ``score(entities, items)``.
    """

    _fit_hint = "fit(dataset, task) or use ConsumedFilter.wrap(model, dataset, task)"

    def __init__(self, model: Recommender) -> None:
        self.model = model

    @property
    def name(self) -> str:
        """The wrapped model's label."""
        return str(getattr(self.model, "name", None) or type(self.model).__name__)

    @classmethod
    def wrap(cls, model: Recommender, dataset: GroupDataset, task: str) -> ConsumedFilter:
        """Filter a model already fitted on ``dataset`` for ``task``."""
        out = cls(model)
        out._remember(dataset, task)
        return out

    def _remember(self, dataset: GroupDataset, task: str) -> None:
        check_choice("task", task, TASKS)
        self._start_fit(dataset, task)
        self.consumed_ = dataset.train_matrix(task).tocsr()  # (n_entities, I) binary

    def fit(self, dataset: GroupDataset, task: str) -> ConsumedFilter:
        """Fit the wrapped model and remember what each entity consumed."""
        self.model.fit(dataset, task)
        self._remember(dataset, task)
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The wrapped model's scores (n, c), ``-inf`` where the entity consumed the item."""
        entities, items = self._check_ids(entities, items)
        s = np.array(self.model.score(entities, items), dtype=np.float64)  # a copy
        s[np.asarray(self.consumed_[entities[:, None], items].todense()) > 0] = -np.inf
        return s

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item, ``-inf`` on consumed items."""
        entities, _ = self._check_ids(entities)
        n_items = self.n_items_
        if hasattr(self.model, "score_all"):
            s = np.array(self.model.score_all(entities), dtype=np.float64)
        else:
            items = np.broadcast_to(np.arange(n_items), (len(entities), n_items))
            s = np.array(self.model.score(entities, items), dtype=np.float64)
        consumed = self.consumed_[entities]
        rows = np.repeat(np.arange(len(entities)), np.diff(consumed.indptr))
        s[rows, consumed.indices] = -np.inf
        return s


def _as_numpy(x, what: str, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        # detach(): evaluation reads scores only; nothing may flow back into the model.
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x)
    if arr.shape != shape:
        raise ValueError(f"{what} returned shape {arr.shape}, expected {shape}")
    return arr.astype(np.float64, copy=False)


def score_candidates(
    model: Recommender, entities: np.ndarray, items: np.ndarray, batch_size: int | None = None
) -> np.ndarray:
    """Scores (n, c) of candidate lists ``items`` (n, c) for ``entities`` (n,), in batches.

    ``batch_size`` is the number of rows per call to ``model.score`` (by default as many as keep
    each call under about four million scores).
    """
    entities = np.asarray(entities, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if items.ndim != 2 or items.shape[0] != entities.shape[0]:
        raise ValueError(
            f"items must have shape (n, c) with n = {len(entities)}, got {items.shape}"
        )
    n, c = items.shape
    step = batch_size or max(1, _SCORE_CELLS // max(1, c))
    out = np.empty((n, c), dtype=np.float64)
    for i in range(0, n, step):
        e, it = entities[i : i + step], items[i : i + step]
        out[i : i + step] = _as_numpy(model.score(e, it), f"{model_name(model)}.score", it.shape)
    return out


def score_all_items(
    model: Recommender, entities: np.ndarray, n_items: int, batch_size: int | None = None
) -> np.ndarray:
    """Scores (n, n_items) of every item for ``entities`` (n,), via ``score_all`` if defined."""
    entities = np.asarray(entities, dtype=np.int64)
    step = batch_size or max(1, _SCORE_CELLS // max(1, n_items))
    out = np.empty((len(entities), n_items), dtype=np.float64)
    score_all = getattr(model, "score_all", None)
    for i in range(0, len(entities), step):
        e = entities[i : i + step]
        if score_all is not None:
            s = score_all(e)
            what = f"{model_name(model)}.score_all"
        else:
            s = model.score(e, np.broadcast_to(np.arange(n_items), (len(e), n_items)))
            what = f"{model_name(model)}.score"
        out[i : i + step] = _as_numpy(s, what, (len(e), n_items))
    return out


def _known_positives(dataset: GroupDataset, task: str, split: str) -> sp.csr_matrix:
    """Items an entity is known to have: training items, plus validation items for the test."""
    known = dataset.train_matrix(task)
    val = getattr(dataset, f"{task}_val")
    if split == "test" and val is not None and len(val):
        shape = known.shape
        extra = sp.csr_matrix((np.ones(len(val)), (val.entity, val.item)), shape=shape)
        known = ((known + extra) > 0).astype(np.float32).tocsr()
    return known


def _relevant_matrix(cases: EvalCases, entities: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Held-out items of each entity in ``entities`` (sorted, unique), as a binary matrix."""
    row = np.searchsorted(entities, cases.entity)
    rel = sp.csr_matrix((np.ones(len(cases)), (row, cases.item)), shape=(len(entities), n_items))
    rel.sum_duplicates()
    rel.data[:] = 1.0
    return rel


def case_metrics(
    model: Recommender,
    dataset: GroupDataset,
    task: str = "group",
    split: str = "test",
    protocol: str = "sampled",
    ks: Iterable[int] = DEFAULT_KS,
    ties: str = "expected",
    *,
    metrics: str | Sequence[str] = M.DEFAULT_METRICS,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Metrics of every evaluated case: one row per held-out pair (sampled) or entity (full).

    The sampled protocol ranks each held-out item against the negatives listed with it. The full
    protocol ranks each entity's held-out items together against every item it is not known to
    have: training items are excluded (and, for the test split, validation items). A held-out
    pair that is also a training pair makes that ill-defined and raises an error (see
    ``grouprec.data.remove_test_leakage``).

    Returns
    -------
    pd.DataFrame
        Column ``entity`` (and ``item`` for the sampled protocol), then one column per metric.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    cases = dataset.cases(task, split)
    if len(cases) == 0:
        raise ValueError(f"the {split} split of the {task} task has no cases to evaluate")
    if protocol == "sampled":
        candidates = cases.candidates()  # (n, 1 + m): positive first, then its negatives
        s = score_candidates(model, cases.entity, candidates, batch_size)  # (n, 1 + m)
        values = M.sampled_metrics(s[:, 0], s[:, 1:], ks, ties, metrics=metrics, per_case=True)
        return pd.DataFrame({"entity": cases.entity, "item": cases.item, **values})
    entities = np.unique(cases.entity)  # (E,)
    relevant = _relevant_matrix(cases, entities, dataset.n_items)  # (E, I)
    known = _known_positives(dataset, task, split)[entities]  # (E, I)
    check_disjoint(task, split, relevant, known, entities)
    step = max(1, _SCORE_CELLS // max(1, dataset.n_items))
    parts = []
    for i in range(0, len(entities), step):
        s = score_all_items(model, entities[i : i + step], dataset.n_items, batch_size)
        parts.append(
            M.full_ranking_metrics(
                s,
                relevant[i : i + step].toarray().astype(bool),
                known[i : i + step].toarray().astype(bool),
                ks,
                ties,
                metrics=metrics,
                per_case=True,
            )
        )
    values = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return pd.DataFrame({"entity": entities, **values})


def evaluate(
    model: Recommender,
    dataset: GroupDataset,
    task: str = "group",
    split: str = "test",
    protocol: str = "sampled",
    ks: Iterable[int] = DEFAULT_KS,
    ties: str = "expected",
    *,
    metrics: str | Sequence[str] = M.DEFAULT_METRICS,
    batch_size: int | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Evaluate a fitted recommender on one task, split and protocol.

    Parameters
    ----------
    model : Recommender
        A fitted model.
    dataset : GroupDataset
        The data the model was fitted on, with its evaluation cases.
    task : {"user", "group"}
        Whose recommendations are judged.
    split : {"val", "test"}
        Which held-out cases.
    protocol : {"sampled", "full"}
        Rank against the listed negatives, or against every item outside the training set.
    ks : iterable of int
        Cut-offs K.
    ties : {"expected", "optimistic", "pessimistic"}
        How tied scores count (see :mod:`grouprec.metrics`).
    metrics : "all" or subset of ``grouprec.metrics.ALL_METRICS``
        Metric families to report.
    batch_size : int, optional
        Rows per call to the model.
    name : str, optional
        Label of the model in the table (default: :func:`model_name`).

    Returns
    -------
    pd.DataFrame
        One row: model, dataset, task, split, protocol, ties, the number of cases (held-out
        pairs for the sampled protocol, entities for full ranking), then the mean of each metric.
    """
    per_case = case_metrics(
        model,
        dataset,
        task,
        split,
        protocol,
        ks,
        ties,
        metrics=metrics,
        batch_size=batch_size,
    )
    row = {
        "model": name or model_name(model),
        "dataset": dataset.name,
        "task": task,
        "split": split,
        "protocol": protocol,
        "ties": ties,
        "cases": len(per_case),
    }
    row.update(per_case.drop(columns=["entity", "item"], errors="ignore").mean().to_dict())
    return pd.DataFrame([row])


def hide_test(dataset: GroupDataset) -> GroupDataset:
    """A copy of ``dataset`` whose test cases are empty, for model selection.

    Models fitted during selection see this copy only, so neither they nor the selection code
    can read a test item.
    """
    changes = {}
    for task in ("user", "group"):
        test = dataset.cases(task, "test")
        m = test.negatives.shape[1]
        changes[f"{task}_test"] = EvalCases(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, m), np.int64)
        )
    record = {
        "step": "hide_test",
        "task": "user+group",
        "before": len(dataset.user_test) + len(dataset.group_test),
        "after": 0,
        "changed": len(dataset.user_test) + len(dataset.group_test),
        "detail": "test cases hidden for model selection",
    }
    return replace(dataset, log=dataset.log + (record,), **changes)


def select(
    model_factory: Callable[..., Recommender],
    grid: Mapping[str, Sequence],
    dataset: GroupDataset,
    task: str = "group",
    metric: str = "NDCG@10",
    *,
    split: str = "val",
    protocol: str = "sampled",
    ks: Iterable[int] = DEFAULT_KS,
    ties: str = "expected",
    metrics: str | Sequence[str] = M.DEFAULT_METRICS,
    progress: bool = True,
) -> tuple[dict, pd.DataFrame]:
    """Grid search scored on the validation split; the test split stays out of reach.

    Every combination of ``grid`` values builds ``model_factory(**params)``, fits it on
    :func:`hide_test` (``dataset``) and evaluates it on the validation cases. The first
    combination with the highest ``metric`` wins. Refit the winner on the full training data and
    evaluate it on the test split once, afterwards.

    Parameters
    ----------
    model_factory : callable
        Builds an unfitted model from keyword hyperparameters (a class works).
    grid : mapping of str to sequence
        Values to try for each hyperparameter; the last one varies fastest.
    dataset : GroupDataset
        Data with a validation split (see ``grouprec.data.split_validation``).
    task : {"user", "group"}
        Whose recommendations are judged.
    metric : str
        Column to maximise, e.g. ``"NDCG@10"``; must be among those computed.
    split : "val"
        Only the validation split is allowed; anything else is an error.
    protocol, ks, ties, metrics
        As in :func:`evaluate`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    best_params : dict
        The winning combination.
    table : pd.DataFrame
        One row per combination, in grid order: its hyperparameters, metrics and fit time
        (``fit_s``, seconds).
    """
    if split != "val":
        raise ValueError(
            f"select() scores on the validation split only, got split={split!r}; evaluate the "
            "selected model on the test split once, afterwards, with evaluate()"
        )
    ks = tuple(ks)
    computed = M.metric_names(ks, metrics)
    if metric not in computed:
        raise ValueError(f"metric {metric!r} is not computed; choose one of {computed}")
    blind = hide_test(dataset)
    blind.cases(task, "val")  # fails early, with advice, when there is no validation split
    keys = list(grid)
    for key in keys:
        if isinstance(grid[key], (str, bytes)) or not isinstance(grid[key], Iterable):
            raise ValueError(f"grid[{key!r}] must be a sequence of values, got {grid[key]!r}")
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    rows = []
    for params in tqdm(combos, desc="grid search", disable=not progress):
        model = model_factory(**params)
        start = time.perf_counter()
        fitted = model.fit(blind, task)
        fit_s = time.perf_counter() - start
        model = model if fitted is None else fitted
        result = evaluate(model, blind, task, "val", protocol, ks, ties, metrics=metrics).iloc[0]
        rows.append({**params, **{c: float(result[c]) for c in computed}, "fit_s": fit_s})
    table = pd.DataFrame(rows, columns=[*keys, *computed, "fit_s"])
    best = int(np.argmax(table[metric].to_numpy()))
    return dict(combos[best]), table


def beyond_accuracy(
    model: Recommender,
    dataset: GroupDataset,
    task: str = "group",
    split: str = "test",
    k: int = 10,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Coverage, novelty and, for groups, member satisfaction and fairness of top-K lists.

    Every entity with a case in ``split`` gets a top-``k`` list from all items it is not known to
    have (as in full ranking), ties broken at random with ``seed``. Novelty uses the item
    popularity among users with training data. For the group task each list is also judged by
    every member's own held-out items of the same split (:func:`grouprec.metrics.group_satisfaction`).

    Returns
    -------
    pd.DataFrame
        One row: model, dataset, task, split, ``Coverage@K``, ``Novelty@K``, and for groups
        ``Sat-mean@K``, ``Sat-min@K``, ``Jain@K`` and the number of judged groups.
    """
    cases = dataset.cases(task, split)
    entities = np.unique(cases.entity)
    known = _known_positives(dataset, task, split)[entities]
    step = max(1, _SCORE_CELLS // max(1, dataset.n_items))
    lists = np.concatenate(
        [
            M.top_k(
                score_all_items(model, entities[i : i + step], dataset.n_items, batch_size),
                k,
                known[i : i + step].toarray().astype(bool),
                seed=seed + i,
            )
            for i in range(0, len(entities), step)
        ]
    )  # (E, k)
    users = dataset.train_matrix("user")
    active_users = int((users.getnnz(axis=1) > 0).sum())
    row = {
        "model": name or model_name(model),
        "dataset": dataset.name,
        "task": task,
        "split": split,
        f"Coverage@{k}": M.coverage(lists, dataset.n_items),
        f"Novelty@{k}": M.novelty(lists, users.getnnz(axis=0), active_users),
    }
    if task == "group":
        ids, mask = dataset.member_padded(entities)
        user_cases = dataset.cases("user", split)
        user_rel = sp.csr_matrix(
            (np.ones(len(user_cases)), (user_cases.entity, user_cases.item)),
            shape=(dataset.n_users, dataset.n_items),
        )
        row.update(M.group_satisfaction(lists, ids, mask, user_rel))
    return pd.DataFrame([row])
