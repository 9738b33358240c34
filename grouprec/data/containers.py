"""The typed containers of the data stage: :class:`Interactions`, :class:`EvalCases` and
:class:`GroupDataset`, which holds the members, the training pairs and the evaluation cases of
both tasks ("user" and "group"), and the log of every cleaning step applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from grouprec.checks import check_choice
from grouprec.constants import TASKS

# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interactions:
    """Observed (entity, item) pairs; an entity is a user or a group, depending on the task.

    Attributes
    ----------
    entity, item : np.ndarray
        Ids, shape (n,), int64.
    rating : np.ndarray or None
        Explicit ratings, shape (n,), float32, when the file has a rating column.
    """

    entity: np.ndarray
    item: np.ndarray
    rating: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.entity.shape[0])

    def select(self, keep: np.ndarray) -> Interactions:
        """Rows where the boolean mask ``keep`` (n,) is True, or at the given integer positions."""
        rating = None if self.rating is None else self.rating[keep]
        return Interactions(self.entity[keep], self.item[keep], rating)

    def keys(self, n_items: int) -> np.ndarray:
        """One int64 key per row, ``entity * n_items + item``, for fast set operations."""
        return self.entity * np.int64(n_items) + self.item

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with columns entity, item (and rating)."""
        columns = {"entity": self.entity, "item": self.item}
        if self.rating is not None:
            columns["rating"] = self.rating
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class EvalCases:
    """Held-out positives, each with the candidate negatives it is ranked against.

    Attributes
    ----------
    entity, item : np.ndarray
        Shape (n,), int64: the entity and its held-out item.
    negatives : np.ndarray
        Shape (n, m), int64: the listed negatives of each case (m = 100 in the benchmarks).
    rating : np.ndarray or None
        Shape (n,), float32, when the test file has a rating column.
    """

    entity: np.ndarray
    item: np.ndarray
    negatives: np.ndarray
    rating: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.entity.shape[0])

    def candidates(self) -> np.ndarray:
        """Candidate matrix (n, 1 + m): the positive in column 0, then the negatives."""
        return np.concatenate([self.item[:, None], self.negatives], axis=1)

    def as_interactions(self) -> Interactions:
        """The positives alone, as :class:`Interactions`."""
        return Interactions(self.entity, self.item, self.rating)


@dataclass(frozen=True)
class GroupDataset:
    """Users, items, groups and their interactions, as one typed object.

    Attributes
    ----------
    name : str
        Dataset name (the folder name).
    n_users, n_items, n_groups : int
        Sizes of the id spaces (ids are ``0 .. n - 1``).
    group_members : tuple of np.ndarray
        ``group_members[g]`` holds the user ids of group ``g``, in file order.
    user_train, group_train : Interactions
        Training interactions.
    user_test, group_test : EvalCases
        Test positives with their listed negatives.
    user_val, group_val : EvalCases or None
        Validation cases carved from training data by :func:`split_validation`.
    item_features : pd.DataFrame or None
        Side information per item, when the folder has an ``itemAttributes.tsv`` file.
    path : Path or None
        Folder the data was loaded from.
    log : tuple of dict
        One record per cleaning or splitting step applied since loading.
    """

    name: str
    n_users: int
    n_items: int
    n_groups: int
    group_members: tuple[np.ndarray, ...]
    user_train: Interactions
    user_test: EvalCases
    group_train: Interactions
    group_test: EvalCases
    user_val: EvalCases | None = None
    group_val: EvalCases | None = None
    item_features: pd.DataFrame | None = None
    path: Path | None = None
    log: tuple[dict, ...] = field(default_factory=tuple)

    # -- access by task ----------------------------------------------------------------------
    def n_entities(self, task: str) -> int:
        """Number of users (``task="user"``) or groups (``task="group"``)."""
        return self.n_users if check_choice("task", task, TASKS) == "user" else self.n_groups

    def train(self, task: str) -> Interactions:
        """Training interactions of the task."""
        return self.user_train if check_choice("task", task, TASKS) == "user" else self.group_train

    def cases(self, task: str, split: str) -> EvalCases:
        """Evaluation cases of the task for ``split`` in {"val", "test"}."""
        task = check_choice("task", task, TASKS)
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        out = getattr(self, f"{task}_{split}")
        if out is None:
            raise ValueError(
                f"dataset {self.name!r} has no {split} split for the {task} task; "
                "call grouprec.data.split_validation(dataset) first"
            )
        return out

    def train_matrix(self, task: str, binary: bool = True) -> sp.csr_matrix:
        """Training interactions as a sparse (n_entities, n_items) matrix.

        With ``binary`` every observed pair is 1 (repeated rows count once); otherwise the
        ratings are used (repeated pairs are summed, as scipy does).
        """
        inter = self.train(task)
        if binary or inter.rating is None:
            values = np.ones(len(inter), dtype=np.float32)
        else:
            values = inter.rating.astype(np.float32)
        shape = (self.n_entities(task), self.n_items)
        matrix = sp.csr_matrix((values, (inter.entity, inter.item)), shape=shape)
        if binary:
            matrix.sum_duplicates()
            matrix.data[:] = 1.0
        return matrix

    # -- groups ------------------------------------------------------------------------------
    def members(self, group: int) -> np.ndarray:
        """User ids of one group."""
        return self.group_members[group]

    @property
    def group_sizes(self) -> np.ndarray:
        """Number of members of every group, shape (n_groups,)."""
        return np.array([len(m) for m in self.group_members], dtype=np.int64)

    def member_padded(self, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Member lists as a padded matrix, for batched computation.

        Returns
        -------
        ids : np.ndarray
            Shape (G, S), int64, S = largest group size; padded slots hold 0.
        mask : np.ndarray
            Shape (G, S), bool; True marks a real member.
        """
        groups = np.arange(self.n_groups) if groups is None else np.asarray(groups)
        sizes = self.group_sizes[groups]
        width = int(sizes.max()) if len(sizes) else 0
        ids = np.zeros((len(groups), width), dtype=np.int64)
        mask = np.arange(width)[None, :] < sizes[:, None]  # (G, S)
        if len(groups):
            ids[mask] = np.concatenate([self.group_members[g] for g in groups])
        return ids, mask

    # -- summaries ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts a reader checks first: sizes, interactions, group sizes."""
        sizes = self.group_sizes
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_groups": self.n_groups,
            "mean_group_size": round(float(sizes.mean()), 3) if len(sizes) else 0.0,
            "min_group_size": int(sizes.min()) if len(sizes) else 0,
            "max_group_size": int(sizes.max()) if len(sizes) else 0,
            "n_user_interactions": len(self.user_train) + len(self.user_test),
            "n_group_interactions": len(self.group_train) + len(self.group_test),
            "n_user_train": len(self.user_train),
            "n_user_test": len(self.user_test),
            "n_group_train": len(self.group_train),
            "n_group_test": len(self.group_test),
            "users_with_interactions": int(
                np.unique(np.concatenate([self.user_train.entity, self.user_test.entity])).size
            ),
        }

    def log_frame(self) -> pd.DataFrame:
        """The cleaning and splitting steps applied so far, one row each."""
        return pd.DataFrame(list(self.log))

    def _with(self, record: dict, **changes) -> GroupDataset:
        return replace(self, log=self.log + (record,), **changes)
