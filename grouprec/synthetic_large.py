"""A large synthetic group dataset in the benchmark file format, for scaling experiments.

The benchmarks of this course are small (CAMRa2011 has 602 users); chapter 10 needs data that
outgrows one process. :func:`generate_large` draws a dataset of any size, by default a million
users, a hundred thousand groups and fifty thousand items, from a simple planted structure, and
:func:`write_large` writes it in the files :func:`grouprec.data.load_dataset` reads (see
:mod:`grouprec.data.loading`): ``groupMember.txt``, ``{user,group}Rating{Train,Test}.txt``
(``id item`` lines, no rating) and ``{user,group}RatingNegative.txt``.

The structure, drawn with one ``numpy.random.Generator`` seeded by ``seed`` (same seed, same
bytes):

* ``K`` taste clusters; user u and item i belong to clusters ``u mod K`` and ``i mod K``.
* Within a cluster, item popularity is skewed: an item is the ``r``-th of its cluster with
  ``r = floor(n_c * U**2)``, U uniform on [0, 1), so that low ranks are popular.
* User u has ``1 + Poisson(user_items - 1)`` interactions: each is an item of u's cluster with
  probability ``1 - noise``, else an item of any cluster (same skew); duplicates are dropped.
* Group g has a cluster, ``uniform{min_group_size..max_group_size}`` distinct members from that
  cluster, and ``1 + Poisson(group_items - 1)`` items drawn like a user's.
* ``n_test_users`` users and ``n_test_groups`` groups with at least two items each hold out one
  item for testing, with ``n_negatives`` distinct items that are not positives of the entity.

Everything is vectorised: no Python loop runs per user, group or pair except to format the
member and negative lines, whose counts are the number of groups and of test cases.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grouprec.checks import check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import FILES, EvalCases, GroupDataset, Interactions, NegativeSampler
from grouprec.data.sampling import _sample_distinct, sorted_distinct

__all__ = ["LargeData", "generate_large", "write_large"]

#: Written beside the data files: the generator's arguments, so a folder can be recognised.
MANIFEST = "largeSynthetic.json"


@dataclass
class LargeData:
    """The arrays of a generated dataset, before they are written.

    Attributes
    ----------
    members : np.ndarray
        (G, S) member user ids, padded with -1 beyond each group's size.
    user_train, group_train : Interactions
        Training pairs, sorted by entity then item.
    user_test, group_test : Interactions
        One held-out pair per test entity.
    user_negatives, group_negatives : np.ndarray
        (n_test, n_negatives) distinct negatives of each test pair.
    params : dict
        The arguments of :func:`generate_large`.
    """

    members: np.ndarray
    user_train: Interactions
    group_train: Interactions
    user_test: Interactions
    group_test: Interactions
    user_negatives: np.ndarray
    group_negatives: np.ndarray
    params: dict

    def to_dataset(self, name: str = "large_synthetic") -> GroupDataset:
        """The :class:`~grouprec.data.GroupDataset` that ``load_dataset`` reads from the files
        :func:`write_large` writes, without writing or parsing them (``path`` is None)."""
        size = (self.members >= 0).sum(axis=1)  # (G,)
        flat = self.members[self.members >= 0]  # row by row
        members = tuple(np.split(flat, np.cumsum(size)[:-1]))
        return GroupDataset(
            name=name,
            n_users=self.params["n_users"],
            n_items=self.params["n_items"],
            n_groups=self.params["n_groups"],
            group_members=members,
            user_train=self.user_train,
            user_test=EvalCases(self.user_test.entity, self.user_test.item, self.user_negatives),
            group_train=self.group_train,
            group_test=EvalCases(
                self.group_test.entity, self.group_test.item, self.group_negatives
            ),
        )


def _draw_items(
    cluster: np.ndarray, n_items: int, K: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """One item per row of ``cluster`` (n,): from that cluster, or any with probability noise."""
    n = len(cluster)
    c = np.where(rng.random(n) < noise, rng.integers(K, size=n), cluster)  # (n,)
    n_c = (n_items - c + K - 1) // K  # items i with i mod K == c
    r = np.floor(n_c * rng.random(n) ** 2).astype(np.int64)  # popularity rank in the cluster
    return c + K * r


def _pairs(
    cluster: np.ndarray, mean: float, n_items: int, K: int, noise: float, rng
) -> Interactions:
    """Distinct (entity, item) pairs, ``1 + Poisson(mean - 1)`` draws per entity."""
    counts = 1 + rng.poisson(mean - 1.0, size=len(cluster))  # (n,)
    entity = np.repeat(np.arange(len(cluster), dtype=np.int64), counts)
    item = _draw_items(cluster[entity], n_items, K, noise, rng)
    keys = sorted_distinct(entity * n_items + item)  # sorted by entity, then item
    return Interactions(keys // n_items, keys % n_items)


def _hold_out(
    train: Interactions, n_entities: int, n_test: int, n_items: int, n_negatives: int, rng
) -> tuple[Interactions, Interactions, np.ndarray]:
    """Move one pair of ``n_test`` random entities with two or more pairs to a test split."""
    counts = np.bincount(train.entity, minlength=n_entities)
    eligible = np.flatnonzero(counts >= 2)
    chosen = np.sort(rng.choice(eligible, size=min(n_test, len(eligible)), replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = starts[chosen] + np.floor(rng.random(len(chosen)) * counts[chosen]).astype(np.int64)
    keep = np.ones(len(train), dtype=bool)
    keep[rows] = False
    test = Interactions(train.entity[rows], train.item[rows])
    sampler = NegativeSampler(train, n_items)  # negatives avoid every training positive...
    negatives = _sample_distinct(sampler, test.entity, n_negatives, rng)
    return train.select(keep), test, negatives  # ... and the test item, which was one


def generate_large(
    n_users: int = 1_000_000,
    n_groups: int = 100_000,
    n_items: int = 50_000,
    user_items: float = 5.0,
    group_items: float = 10.0,
    min_group_size: int = 2,
    max_group_size: int = 8,
    n_clusters: int = 50,
    noise: float = 0.2,
    n_test_users: int = 10_000,
    n_test_groups: int = 10_000,
    n_negatives: int = 100,
    seed: int = DEFAULT_SEED,
) -> LargeData:
    """Draw a large synthetic group dataset (see the module docstring for the structure).

    Parameters
    ----------
    n_users, n_groups, n_items : int
        Sizes of the id spaces. Every user, every group and the last item occur in the files,
        so that :func:`grouprec.data.load_dataset` infers these sizes.
    user_items, group_items : float
        Mean number of draws of items per user and per group (at least 1); duplicates are
        dropped, so the pair counts are a little lower.
    min_group_size, max_group_size : int
        Range of the number of members of a group (2 or more, at most the users per cluster).
    n_clusters : int
        K, the number of taste clusters (lowered to ``n_users // max_group_size`` and to
        ``n_items`` when they are smaller, so that every cluster can fill a group).
    noise : float
        Probability in [0, 1] that a draw ignores the entity's cluster.
    n_test_users, n_test_groups : int
        Entities with one held-out test pair each (fewer when fewer have two or more pairs).
    n_negatives : int
        Distinct negatives listed per test pair.
    seed : int
        Seed of the one generator every draw comes from.
    """
    params = {
        "n_users": check_size("n_users", n_users),
        "n_groups": check_size("n_groups", n_groups),
        "n_items": check_size("n_items", n_items, 2),
        "user_items": float(user_items),
        "group_items": float(group_items),
        "min_group_size": check_size("min_group_size", min_group_size, 2),
        "max_group_size": check_size("max_group_size", max_group_size, 2),
        "n_clusters": check_size("n_clusters", n_clusters),
        "noise": float(noise),
        "n_test_users": check_size("n_test_users", n_test_users, 0),
        "n_test_groups": check_size("n_test_groups", n_test_groups, 0),
        "n_negatives": check_size("n_negatives", n_negatives),
        "seed": check_size("seed", seed, 0),
    }
    for name in ("user_items", "group_items"):
        if not params[name] >= 1.0:
            raise ValueError(f"{name} must be a number >= 1, got {params[name]!r}")
    if not 0.0 <= params["noise"] <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {noise!r}")
    if min_group_size > max_group_size:
        raise ValueError(f"min_group_size={min_group_size} exceeds max_group_size={max_group_size}")
    if n_users < max_group_size:
        raise ValueError(f"n_users={n_users} is smaller than max_group_size={max_group_size}")
    if n_negatives > n_items - 1 - 2 * params["user_items"]:
        raise ValueError(f"n_negatives={n_negatives} leaves too few items (n_items={n_items})")
    rng = np.random.default_rng(seed)
    K = min(n_clusters, n_users // max_group_size, n_items)

    # Groups: a cluster, a size, and that many distinct members of the cluster.
    g_cluster = rng.integers(K, size=n_groups)  # (G,)
    size = rng.integers(min_group_size, max_group_size + 1, size=n_groups)  # (G,)
    n_in = (n_users - g_cluster + K - 1) // K  # users of each group's cluster, >= max size
    slot = np.arange(max_group_size)[None, :] < size[:, None]  # (G, S)
    rank = np.floor(rng.random((n_groups, max_group_size)) * n_in[:, None]).astype(np.int64)
    while True:  # redraw repeated members until each group's are distinct
        s = np.sort(np.where(slot, rank, -1 - np.arange(max_group_size)), axis=1)
        dup = np.zeros_like(slot)
        dup[:, 1:] = s[:, 1:] == s[:, :-1]
        bad = np.flatnonzero(dup.any(axis=1))
        if len(bad) == 0:
            break
        redraw = rng.random((len(bad), max_group_size)) * n_in[bad, None]
        rank[bad] = np.floor(redraw).astype(np.int64)
    members = np.where(slot, g_cluster[:, None] + K * rank, -1)  # (G, S)

    user_train = _pairs(np.arange(n_users) % K, user_items, n_items, K, noise, rng)
    if user_train.item.max() < n_items - 1:  # the last item occurs, so its id fixes n_items
        keys = sorted_distinct(np.append(user_train.keys(n_items), n_items - 1))  # user 0's
        user_train = Interactions(keys // n_items, keys % n_items)
    group_train = _pairs(g_cluster, group_items, n_items, K, noise, rng)
    user_train, user_test, user_neg = _hold_out(
        user_train, n_users, n_test_users, n_items, n_negatives, rng
    )
    group_train, group_test, group_neg = _hold_out(
        group_train, n_groups, n_test_groups, n_items, n_negatives, rng
    )
    return LargeData(
        members, user_train, group_train, user_test, group_test, user_neg, group_neg, params
    )


def _write_pairs(path: Path, pairs: Interactions) -> None:
    frame = pd.DataFrame({"entity": pairs.entity, "item": pairs.item})
    frame.to_csv(path, sep=" ", header=False, index=False, lineterminator="\n")


def _write_negatives(path: Path, test: Interactions, negatives: np.ndarray) -> None:
    heads = [f"({e},{i})" for e, i in zip(test.entity.tolist(), test.item.tolist(), strict=True)]
    frame = pd.DataFrame(negatives)
    frame.insert(0, "head", heads)
    frame.to_csv(path, sep=" ", header=False, index=False, lineterminator="\n")


def write_large(data: LargeData, folder: str | os.PathLike) -> Path:
    """Write ``data`` into ``folder`` in the benchmark file format, atomically.

    The files are written into a temporary folder beside ``folder`` and renamed into place. An
    existing ``folder`` is replaced only when it is empty or holds an earlier output of this
    module (it has a ``largeSynthetic.json``); anything else is an error.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    if folder.exists() and (
        not folder.is_dir() or (any(folder.iterdir()) and not (folder / MANIFEST).is_file())
    ):
        raise FileExistsError(
            f"folder={str(folder)!r} exists and is not an earlier output of generate_large "
            f"(no {MANIFEST}); choose another folder"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        lines = []
        for g, row in enumerate(data.members.tolist()):
            lines.append(f"{g} {','.join(str(u) for u in row if u >= 0)}\n")
        (tmp / FILES["members"]).write_text("".join(lines), encoding="utf-8")
        for kind in ("user", "group"):
            train, test = getattr(data, f"{kind}_train"), getattr(data, f"{kind}_test")
            _write_pairs(tmp / FILES[f"{kind}_train"], train)
            _write_pairs(tmp / FILES[f"{kind}_test"], test)
            _write_negatives(
                tmp / FILES[f"{kind}_negative"], test, getattr(data, f"{kind}_negatives")
            )
        manifest = {"generator": "grouprec.synthetic_large.generate_large", **data.params}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
