"""Audit and cleaning: what is wrong with a dataset, and explicit, composable steps to fix it.

:func:`audit` counts the defects of a loaded dataset (zero ratings, duplicates, test pairs
leaked into training, negatives that are positives, member ids beyond the user table, ...).
Each cleaning step returns a new dataset and logs what it changed in
:attr:`~grouprec.data.GroupDataset.log`; :func:`clean` chains steps and
:func:`benchmark_clean` is the chain the benchmarks use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from grouprec.constants import TASKS
from grouprec.data.containers import EvalCases, GroupDataset, Interactions
from grouprec.data.loading import FILES

# --------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------


def _count_crlf(path: Path) -> int:
    return path.read_bytes().count(b"\r\n") if path.is_file() else 0


def _negatives_audit(cases: EvalCases, train: Interactions, n_items: int) -> dict:
    negs = cases.negatives
    contains_test = (negs == cases.item[:, None]).any(axis=1)
    sorted_negs = np.sort(negs, axis=1)
    within_dups = (sorted_negs[:, 1:] == sorted_negs[:, :-1]).sum()
    train_keys = np.unique(train.keys(n_items))
    neg_keys = cases.entity[:, None] * np.int64(n_items) + negs
    in_train = np.isin(neg_keys, train_keys)
    return {
        "lists containing their own test item": int(contains_test.sum()),
        "duplicate negatives within a list": int(within_dups),
        "negatives that are train positives": int(in_train.sum()),
    }


def _train_audit(inter: Interactions, n_items: int) -> dict:
    keys = inter.keys(n_items)
    n_distinct = np.unique(keys).size
    if inter.rating is not None:
        rows = np.stack([inter.entity, inter.item, inter.rating.astype(np.int64)], axis=1)
        n_exact_distinct = np.unique(rows, axis=0).shape[0]
        zero = int((inter.rating == 0).sum())
    else:
        n_exact_distinct, zero = n_distinct, 0
    return {
        "rows": len(inter),
        "distinct pairs": int(n_distinct),
        "exact duplicate rows": int(len(inter) - n_exact_distinct),
        "repeated pairs (any rating)": int(len(inter) - n_distinct),
        "zero ratings": zero,
    }


def members_beyond_users(dataset: GroupDataset) -> dict:
    """Member ids above every user id of the user rating data, and what they cost.

    The loader sizes the user table to cover every member id, so a typo such as member id
    999999 in ``groupMember.txt`` silently makes ``n_users`` 1,000,000. Such ids are kept (the
    files are loaded as they are); :func:`audit` counts them and ``python -m grouprec info``
    prints them.

    Parameters
    ----------
    dataset : GroupDataset
        Its user ids are those of ``user_train``, ``user_test`` (the negative lists belong to
        the test cases) and ``user_val`` when present.

    Returns
    -------
    dict
        ``n_ids``: distinct member ids above the largest user id; ``n_memberships``: how often
        they occur in the member lists; ``largest``: the largest of them (None when there are
        none); ``groups``: int64 array of the groups that list them; ``n_users_with`` and
        ``n_users_without``: the size of the user table with them and without them (one more
        than the largest user id); ``added``: the difference, the user-table rows they add.
    """
    user_ids = [dataset.user_train.entity, dataset.user_test.entity]
    if dataset.user_val is not None:
        user_ids.append(dataset.user_val.entity)
    n_without = int(max(ids.max(initial=-1) for ids in user_ids)) + 1
    sizes = dataset.group_sizes
    members = np.concatenate(dataset.group_members) if len(sizes) else np.zeros(0, dtype=np.int64)
    beyond = members >= n_without
    largest = int(members[beyond].max()) if beyond.any() else None
    # rows they add to the table as sized (n_users may have been given larger than needed)
    added = 0 if largest is None else max(0, min(dataset.n_users, largest + 1) - n_without)
    return {
        "n_ids": int(np.unique(members[beyond]).size),
        "n_memberships": int(beyond.sum()),
        "largest": largest,
        "groups": np.unique(np.repeat(np.arange(len(sizes)), sizes)[beyond]),
        "n_users_with": n_without + added,
        "n_users_without": n_without,
        "added": added,
    }


def audit(dataset: GroupDataset) -> pd.DataFrame:
    """Count every known defect of a dataset, without changing it.

    Returns
    -------
    pd.DataFrame
        One row per check, with columns ``task``, ``check`` and ``count``. The row "largest
        of those member ids" holds an id (0 when there is none); see
        :func:`members_beyond_users`.
    """
    rows = []
    for task in TASKS:
        train = dataset.train(task)
        test = dataset.cases(task, "test")
        for check, count in _train_audit(train, dataset.n_items).items():
            rows.append((task, f"train: {check}", count))
        test_keys = test.as_interactions().keys(dataset.n_items)
        leaked = np.isin(test_keys, np.unique(train.keys(dataset.n_items)))
        rows.append((task, "test pairs also in train", int(leaked.sum())))
        rows.append(
            (task, "entities with a test pair in train", int(np.unique(test.entity[leaked]).size))
        )
        for check, count in _negatives_audit(test, train, dataset.n_items).items():
            rows.append((task, f"negatives: {check}", count))
        if dataset.path is not None:
            for kind in ("train", "test", "negative"):
                path = dataset.path / FILES[f"{task}_{kind}"]
                rows.append((task, f"CRLF line endings: {path.name}", _count_crlf(path)))
    if dataset.path is not None:
        rows.append(
            (
                "group",
                f"CRLF line endings: {FILES['members']}",
                _count_crlf(dataset.path / FILES["members"]),
            )
        )
    members = np.concatenate(dataset.group_members)
    sizes = dataset.group_sizes
    repeated = sizes - np.array([np.unique(m).size for m in dataset.group_members])
    rows.append(("group", "members listed twice in a group", int(repeated.sum())))
    rows.append(("group", "groups of one member", int((sizes == 1).sum())))
    active = np.unique(np.concatenate([dataset.user_train.entity, dataset.user_test.entity]))
    rows.append(
        (
            "user",
            "group members with no user interactions",
            int(np.setdiff1d(np.unique(members), active).size),
        )
    )
    beyond = members_beyond_users(dataset)
    rows.append(("user", "member ids above every user id in the user files", beyond["n_ids"]))
    rows.append(("user", "memberships of those member ids", beyond["n_memberships"]))
    rows.append(("user", "largest of those member ids", beyond["largest"] or 0))
    rows.append(("user", "user-table rows added by those member ids", beyond["added"]))
    return pd.DataFrame(rows, columns=["task", "check", "count"])


# --------------------------------------------------------------------------------------------
# Cleaning: explicit, composable steps; each returns a new dataset and logs what it changed
# --------------------------------------------------------------------------------------------


def _record(step: str, task: str, before: int, after: int, detail: str = "") -> dict:
    return {
        "step": step,
        "task": task,
        "before": before,
        "after": after,
        "changed": before - after if before != after else 0,
        "detail": detail,
    }


def _per_task(
    dataset: GroupDataset,
    tasks: Iterable[str],
    step: str,
    fn: Callable[[Interactions, str], tuple[Interactions, str]],
) -> GroupDataset:
    out = dataset
    for task in tasks:
        before = out.train(task)
        after, detail = fn(before, task)
        out = out._with(
            _record(step, task, len(before), len(after), detail), **{f"{task}_train": after}
        )
    return out


def drop_zero_ratings(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Remove training rows whose rating is 0 (the AGREE and ConsRec loaders skip them)."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None:
            return inter, "no rating column"
        keep = inter.rating != 0
        return inter.select(keep), f"{int((~keep).sum())} rows with rating 0 removed"

    return _per_task(dataset, tasks, "drop_zero_ratings", step)


def deduplicate(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, keep: str = "max"
) -> GroupDataset:
    """Keep one row per (entity, item) pair in the training data.

    Parameters
    ----------
    keep : {"max", "first", "last", "mean"}
        Which rating a repeated pair keeps.
    """
    if keep not in ("max", "first", "last", "mean"):
        raise ValueError(f"keep must be 'max', 'first', 'last' or 'mean', got {keep!r}")

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        frame = inter.to_frame()
        if inter.rating is None:
            out = frame.drop_duplicates(["entity", "item"])
        elif keep in ("first", "last"):
            out = frame.drop_duplicates(["entity", "item"], keep=keep)
        else:
            out = frame.groupby(["entity", "item"], sort=False, as_index=False)["rating"].agg(keep)
        out = out.sort_index() if keep in ("first", "last") or inter.rating is None else out
        rating = None if inter.rating is None else out["rating"].to_numpy(np.float32)
        result = Interactions(
            out["entity"].to_numpy(np.int64), out["item"].to_numpy(np.int64), rating
        )
        return result, f"{len(inter) - len(result)} repeated rows merged (keep={keep})"

    return _per_task(dataset, tasks, "deduplicate", step)


def normalise_ratings(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Min-max scale training ratings to [0, 1] per task: ``r' = (r - r_min) / (r_max - r_min)``."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None or len(inter) == 0:
            return inter, "no rating column"
        lo, hi = float(inter.rating.min()), float(inter.rating.max())
        scaled = np.zeros_like(inter.rating) if hi == lo else (inter.rating - lo) / (hi - lo)
        return (
            Interactions(inter.entity, inter.item, scaled.astype(np.float32)),
            f"ratings {lo:g}..{hi:g} scaled to 0..1",
        )

    return _per_task(dataset, tasks, "normalise_ratings", step)


def binarise(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, threshold: float = 0.0
) -> GroupDataset:
    """Turn ratings into implicit feedback: keep rows with rating > threshold, drop the column."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None:
            return inter, "already implicit"
        keep = inter.rating > threshold
        return (
            Interactions(inter.entity[keep], inter.item[keep], None),
            f"{int((~keep).sum())} rows with rating <= {threshold:g} removed",
        )

    return _per_task(dataset, tasks, "binarise", step)


def remove_test_leakage(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Remove from training every (entity, item) pair that is also a test positive."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        test_keys = dataset.cases(task, "test").as_interactions().keys(dataset.n_items)
        leaked = np.isin(inter.keys(dataset.n_items), test_keys)
        return inter.select(~leaked), f"{int(leaked.sum())} train rows equal to a test pair removed"

    return _per_task(dataset, tasks, "remove_test_leakage", step)


def seen_test_cases(dataset: GroupDataset, task: str) -> np.ndarray:
    """Mask (n_test,) of the test cases whose (entity, item) pair also occurs in training."""
    cases = dataset.cases(task, "test")
    keys = cases.as_interactions().keys(dataset.n_items)
    return np.isin(keys, dataset.train(task).keys(dataset.n_items))


def drop_seen_test_cases(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Drop the test cases whose pair already occurs in training; training is untouched.

    The evaluation side of the leakage of chapter 1: a test item the entity already has in
    training asks whether a model recommends a repeat, which the benchmarks' own models were not
    built to answer. Dropping the case (rather than deleting the training pair, which reads the
    test file to change training data) keeps training as published. The log records how many
    cases each task lost.
    """
    out = dataset
    for task in tasks:
        cases = out.cases(task, "test")
        seen = seen_test_cases(out, task)
        kept = EvalCases(cases.entity[~seen], cases.item[~seen], cases.negatives[~seen])
        detail = f"{int(seen.sum())} test cases whose pair occurs in training dropped"
        out = out._with(
            _record("drop_seen_test_cases", task, len(cases), len(kept), detail),
            **{f"{task}_test": kept},
        )
    return out


def filter_negatives(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, seed: int = 0
) -> GroupDataset:
    """Replace listed negatives that are positives of their entity, or repeated in their list.

    A negative is replaced when it is the case's own test item, another test or training
    positive of the same entity, or a repeat within its list. Replacements are drawn uniformly
    from the entity's non-positive items not already in the list, so every list keeps its length.
    """
    rng = np.random.default_rng(seed)
    out = dataset
    for task in tasks:
        cases = out.cases(task, "test")
        n_items = out.n_items
        positives = np.unique(
            np.concatenate([out.train(task).keys(n_items), cases.as_interactions().keys(n_items)])
        )
        negs = cases.negatives.copy()
        keys = cases.entity[:, None] * np.int64(n_items) + negs
        bad = np.isin(keys, positives)
        order = np.argsort(negs, axis=1, kind="stable")
        sorted_negs = np.take_along_axis(negs, order, axis=1)
        repeat_sorted = np.zeros_like(bad)
        repeat_sorted[:, 1:] = sorted_negs[:, 1:] == sorted_negs[:, :-1]
        repeat = np.zeros_like(bad)
        np.put_along_axis(repeat, order, repeat_sorted, axis=1)
        bad |= repeat
        n_bad = int(bad.sum())
        for row in np.flatnonzero(bad.any(axis=1)):
            taken = set(negs[row][~bad[row]].tolist())
            entity_pos = positives[(positives // n_items) == cases.entity[row]] % n_items
            forbidden = taken | set(entity_pos.tolist())
            need = int(bad[row].sum())
            fresh: list[int] = []
            while len(fresh) < need:
                draw = int(rng.integers(n_items))
                if draw not in forbidden:
                    forbidden.add(draw)
                    fresh.append(draw)
            negs[row, bad[row]] = fresh
        new_cases = replace(cases, negatives=negs)
        out = out._with(
            _record(
                "filter_negatives",
                task,
                cases.negatives.size,
                negs.size,
                f"{n_bad} listed negatives replaced",
            ),
            **{f"{task}_test": new_cases},
        )
    return out


def clean(
    dataset: GroupDataset, steps: Iterable[Callable[[GroupDataset], GroupDataset]]
) -> GroupDataset:
    """Apply cleaning steps in order; ``dataset.log_frame()`` then shows what each changed."""
    for fn in steps:
        dataset = fn(dataset)
    return dataset


def benchmark_clean(dataset: GroupDataset) -> GroupDataset:
    """What the original loaders do: drop rating-0 rows and merge repeated pairs.

    The AGREE and ConsRec loaders keep a row only if its rating is positive and store training
    pairs in a sparse matrix, so repeated pairs count once. Test files and negatives are
    untouched, so results stay comparable with published numbers.
    """
    return clean(dataset, [drop_zero_ratings, deduplicate])
