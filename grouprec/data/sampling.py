"""Negative sampling and the validation split.

:class:`NegativeSampler` draws negatives uniformly among the items outside each entity's
positive set; :func:`split_validation` holds out validation cases from the training pairs, with
their own sampled negatives, and logs the step like a cleaning step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from grouprec.constants import N_NEGATIVES, TASKS
from grouprec.data.cleaning import _record
from grouprec.data.containers import EvalCases, GroupDataset, Interactions

# --------------------------------------------------------------------------------------------
# Negative sampling and the validation split
# --------------------------------------------------------------------------------------------


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-d array, sorted: ``np.unique(values)``, by a sort.

    The same result as ``np.unique``, whose hash-based path in recent NumPy versions takes
    seconds on millions of int64 keys where a sort takes a fraction of a second.
    """
    s = np.sort(np.asarray(values).ravel())  # (n,)
    if len(s) == 0:
        return s
    return s[np.concatenate([[True], s[1:] != s[:-1]])]


class NegativeSampler:
    """Uniform negative sampling over items outside each entity's positive set.

    Parameters
    ----------
    positives : Interactions
        Pairs that must never be drawn as negatives of their entity.
    n_items : int
        Size of the item id space.
    """

    def __init__(self, positives: Interactions, n_items: int) -> None:
        self.n_items = int(n_items)
        self._keys = sorted_distinct(positives.keys(self.n_items))
        self._n_pos = np.bincount(self._keys // self.n_items)  # distinct positives per entity

    def is_positive(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array shaped like ``items``: True where the item is a positive of its entity.

        ``entities`` has shape (n,) and ``items`` (n,) or (n, c).
        """
        entities = np.asarray(entities, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if items.ndim == entities.ndim + 1:
            entities = entities[..., None]
        keys = entities * self.n_items + items
        if len(self._keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[pos] == keys

    def sample(self, entities: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_neg`` negatives per entity (with replacement), shape (n, n_neg).

        Vectorised rejection sampling: draw all, redraw only the rejected ones.
        """
        entities = np.asarray(entities, dtype=np.int64)
        n_pos = np.zeros(len(entities), dtype=np.int64)
        known = entities < len(self._n_pos)
        n_pos[known] = self._n_pos[entities[known]]
        if np.any(n_pos >= self.n_items):
            bad = entities[np.argmax(n_pos >= self.n_items)]
            raise ValueError(f"entity {bad} has every item as a positive; no negative exists")
        out = rng.integers(self.n_items, size=(len(entities), n_neg))
        rejected = self.is_positive(entities, out)
        while rejected.any():
            out[rejected] = rng.integers(self.n_items, size=int(rejected.sum()))
            rows = np.nonzero(rejected)[0]
            rejected[rejected] = self.is_positive(entities[rows], out[rejected])
        return out


def split_validation(
    dataset: GroupDataset,
    seed: int = 0,
    n_val: int = 1,
    min_train: int = 2,
    n_negatives: int = N_NEGATIVES,
    tasks: Iterable[str] = TASKS,
    negatives: str = "unseen",
) -> GroupDataset:
    """Hold out ``n_val`` training items per entity as a validation split.

    An entity takes part when it has at least ``n_val + min_train`` distinct training items, so
    it keeps ``min_train`` for training; the others keep all their data (the log counts them).
    Each held-out item is removed from training with every row of its pair, and gets
    ``n_negatives`` distinct negatives sampled uniformly from items that are not training
    positives of the entity. With ``negatives="any"`` they are drawn from every item but the
    held-out one, as the benchmarks' own test lists were (those lists contain training positives
    of their entity). Test data is not read.
    """
    if negatives not in ("unseen", "any"):
        raise ValueError(f"negatives must be 'unseen' or 'any', got {negatives!r}")
    rng = np.random.default_rng(seed)
    out = dataset
    for task in tasks:
        train = out.train(task)
        keys = np.unique(train.keys(out.n_items))
        ent = keys // out.n_items
        counts = np.bincount(ent, minlength=out.n_entities(task))
        eligible = counts >= n_val + min_train
        # A random priority per distinct pair; each entity's n_val smallest are held out.
        priority = rng.random(len(keys))
        order = np.lexsort((priority, ent))
        rank = np.empty(len(keys), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank[order] = np.arange(len(keys)) - starts[ent[order]]
        held = eligible[ent] & (rank < n_val)
        held_keys = keys[held]
        remaining = train.select(~np.isin(train.keys(out.n_items), held_keys))
        held_pairs = np.isin(train.keys(out.n_items), held_keys)
        excluded = train if negatives == "unseen" else train.select(held_pairs)
        sampler = NegativeSampler(excluded, out.n_items)
        free = out.n_items - (
            counts if negatives == "unseen" else np.minimum(counts, n_val)
        )  # items outside each entity's training positives
        if held.any() and free[ent[held]].min() < n_negatives:
            worst = int(ent[held][np.argmin(free[ent[held]])])
            raise ValueError(
                f"n_negatives={n_negatives} is more than the {int(free[worst])} items outside the "
                f"training positives of {task} {worst}; lower n_negatives"
            )
        val_entity = held_keys // out.n_items
        val_item = held_keys % out.n_items
        val_negatives = _sample_distinct(sampler, val_entity, n_negatives, rng)
        cases = EvalCases(val_entity, val_item, val_negatives)
        detail = (
            f"{len(cases)} validation cases from {int(eligible.sum())} entities; "
            f"{int((~eligible & (counts > 0)).sum())} entities with fewer than "
            f"{n_val + min_train} training items keep all their data"
        )
        out = out._with(
            _record("split_validation", task, len(train), len(remaining), detail),
            **{f"{task}_train": remaining, f"{task}_val": cases},
        )
    return out


def _sample_distinct(
    sampler: NegativeSampler, entities: np.ndarray, m: int, rng: np.random.Generator
) -> np.ndarray:
    """Sample ``m`` distinct negatives per entity, shape (n, m)."""
    out = sampler.sample(entities, m, rng)
    while True:
        order = np.argsort(out, axis=1, kind="stable")
        s = np.take_along_axis(out, order, axis=1)
        dup_sorted = np.zeros(out.shape, bool)
        dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
        if not dup_sorted.any():
            return out
        dup = np.zeros(out.shape, bool)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        rows = np.nonzero(dup)[0]
        out[dup] = sampler.sample(entities[rows], 1, rng)[:, 0]
