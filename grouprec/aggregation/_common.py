"""Helpers shared by the group recommenders of :mod:`grouprec.aggregation`.

Scoring groups in chunks of similar size within a memory budget
(:class:`~grouprec.aggregation.RuleRecommender`, :class:`~grouprec.aggregation.AGREERecommender`),
and the fit plumbing of the two recommenders learned on groups and users together,
:class:`~grouprec.aggregation.AGREERecommender` and
:class:`~grouprec.aggregation.ConsensusRecommender`: both draw the joint batches of
:class:`~grouprec.aggregation.JointBatches`, minimise :func:`~grouprec.aggregation.agree_step_loss`
through :func:`grouprec.training.fit` and serve both tasks from one fit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
from torch import Tensor, nn

from grouprec.aggregation.agree_network import JointBatches, agree_step_loss
from grouprec.data import EvalCases, GroupDataset
from grouprec.training import History, fit, seed_everything, select_device

# At most this many (row, member slot, candidate) cells are scored or aggregated at once.
_CELLS = 1 << 22


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


# --------------------------------------------------------------------------------------------
# Fitting a model learned on groups and users together
# --------------------------------------------------------------------------------------------


def start_joint_fit(
    recommender: Any, dataset: GroupDataset, task: str
) -> tuple[JointBatches, EvalCases | None]:
    """What ``fit`` does before training: the untrained model and its batches.

    Checks ``task``, records the fit (``_start_fit``), seeds the global generators with
    ``recommender.seed`` (the initial weights depend on it; ``fit`` restores them afterwards), builds ``recommender.model_`` with
    ``recommender.build(dataset)`` and records the id spaces. Returns the joint batches of every
    group and user training pair and the validation cases of ``task`` (None without them).
    """
    if task not in ("user", "group"):
        raise ValueError(f"task must be 'user' or 'group', got {task!r}")
    recommender._start_fit(dataset, task)
    seed_everything(recommender.seed)  # the initial weights depend on the seed
    recommender.model_ = recommender.build(dataset)  # weights drawn on the CPU, moved by fit
    recommender.dataset_name_ = dataset.name
    recommender.n_users_ = int(dataset.n_users)
    recommender.n_groups_ = int(dataset.n_groups)
    batches = JointBatches(
        dataset.group_train,
        dataset.user_train,
        dataset.n_items,
        recommender.n_neg,
        recommender.batch_size,
    )
    val = getattr(dataset, f"{task}_val")
    return batches, (val if val is not None and len(val) else None)


def joint_scorer(task: str):
    """``score(model, entities, items)`` for :func:`grouprec.training.ranking_val_fn`: the
    model's group scores (``forward``) or user scores (``score_users``)."""
    return _score_groups if task == "group" else _score_users


def _score_groups(model: nn.Module, groups: Tensor, items: Tensor) -> Tensor:
    return model(groups, items)


def _score_users(model: nn.Module, users: Tensor, items: Tensor) -> Tensor:
    return model.score_users(users, items)


def train_joint(recommender: Any, batches: JointBatches, val_fn) -> History:
    """Train ``recommender.model_`` with :func:`grouprec.training.fit` on ``batches``: BPR on
    groups plus ``user_weight`` times BPR on users, with the recommender's hyperparameters."""
    return fit(
        recommender.model_,
        partial(agree_step_loss, user_weight=recommender.user_weight),
        batches,
        epochs=recommender.epochs,
        lr=recommender.lr,
        weight_decay=recommender.weight_decay,
        val_fn=val_fn,
        patience=recommender.patience,
        seed=recommender.seed,
        progress=recommender.progress,
        device=select_device(recommender.device),
    )


def joint_as_task(recommender: Any, task: str) -> Any:
    """The same fitted recommender, scoring the entities of ``task`` (no training): a shallow
    copy that shares the network; only what ``score`` scores changes."""
    if task not in ("user", "group"):
        raise ValueError(f"task must be 'user' or 'group', got {task!r}")
    recommender._check_is_fitted()
    other = copy.copy(recommender)
    other.task_ = task
    other.n_entities_ = recommender.n_groups_ if task == "group" else recommender.n_users_
    return other
