"""Argument checks shared by every module: each one raises an error that names the argument.

Every check takes the argument's name first, then its value, then what the value must satisfy,
and returns the value in the form the caller works with (an ``int``, a ``float``, a tuple, an
int64 array), so that a constructor or function can write ``n = check_size("n", n)``. A check of
several arguments at once (:func:`check_ids`, :func:`check_members`) takes the name and value of
the first one first and names the others in its messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from grouprec.constants import ATTRIBUTE_COLUMNS, TASKS

if TYPE_CHECKING:  # grouprec.data imports this module: only the type is needed here
    from grouprec.data import GroupDataset

__all__ = [
    "check_choice",
    "check_counts",
    "check_disjoint",
    "check_float_tensor",
    "check_fraction",
    "check_id_tensor",
    "check_ids",
    "check_integer",
    "check_item_table",
    "check_ks",
    "check_logits",
    "check_members",
    "check_metric_names",
    "check_no_new_items",
    "check_number",
    "check_plain",
    "check_real",
    "check_same_shape",
    "check_shape",
    "check_size",
    "check_texts",
    "check_threshold",
    "check_top_k",
    "check_training_ids",
    "check_widths",
]


# --------------------------------------------------------------------------------------------
# Numbers and choices
# --------------------------------------------------------------------------------------------


def check_size(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``.

    Raises ``ValueError`` naming the argument ``name`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) in ``low..high`` (no upper bound
    without ``high``)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_number(
    name: str, value: Any, low: float, high: float, *, open_low: bool = False
) -> float:
    """``value`` as a float, if it is a number (not a bool) in ``[low, high]`` (``(low, high]``
    with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    inside = (value > low if open_low else value >= low) and value <= high
    if not inside or math.isnan(value):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")
    return value


def check_real(name: str, value: Any, low: float, high: float, open_low: bool = False) -> float:
    """``value`` as a float, if it is a finite real number in ``[low, high]`` (``(low, high]``
    with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value > high or value < low or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return float(value)


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float, if it is a number in [0, 1]; ``TypeError`` for a non-number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def check_threshold(name: str, value: float) -> float:
    """``value`` as a float, if it converts to one and is not NaN (infinities are allowed)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if math.isnan(number):
        raise ValueError(f"{name} must be a number; got nan")
    return number


def check_top_k(name: str, value: int, n_items: int) -> int:
    """``value`` as an int, if it is an integer between 1 and ``n_items``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 1 <= value <= n_items
    ):
        raise ValueError(
            f"{name} must be an integer between 1 and the number of items {n_items}; got {value!r}"
        )
    return int(value)


def check_ks(name: str, value: int | Iterable[int]) -> tuple[int, ...]:
    """Cut-offs ``k`` as a non-empty tuple of positive ints (one int counts as one cut-off)."""
    if isinstance(value, (int, np.integer)):
        value = (value,)
    out = tuple(value)
    for k in out:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{name} must hold positive integers, got {k!r} in {out!r}")
    if not out:
        raise ValueError(f"{name} must name at least one cut-off")
    return tuple(int(k) for k in out)


def check_widths(name: str, value: int | Sequence[int]) -> tuple[int, ...]:
    """Hidden layer widths as a non-empty tuple of positive ints (one int is one layer)."""
    if isinstance(value, (int, np.integer)):
        value = (int(value),)
    value = tuple(value)
    if not value:
        raise ValueError(f"{name} must list at least one layer width, got {value!r}")
    return tuple(check_size(f"{name}[{k}]", w) for k, w in enumerate(value))


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value``, if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_metric_names(name: str, value: str | Sequence[str], choices: Sequence[str]) -> tuple:
    """Metric names as a tuple in the order of ``choices``: ``"all"``, one name or several."""
    if value == "all":
        return tuple(choices)
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for m in out:
        if m not in choices:
            raise ValueError(f"{name} must be 'all' or a subset of {tuple(choices)}, got {m!r}")
    if not out:
        raise ValueError(f"{name} must name at least one metric")
    return tuple(m for m in choices if m in out)


def check_counts(name: str, value: Any) -> np.ndarray:
    """``value`` as an int64 array of non-negative integer counts."""
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer counts, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min()}")
    return arr.astype(np.int64)


def check_texts(name: str, value: Iterable[str]) -> list[str]:
    """``value`` as a list of str; one str (not a sequence of them) is a ``TypeError``."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be a sequence of str, not one str: {value[:40]!r}")
    texts = list(value)
    bad = next((k for k, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] must be a str, got {type(texts[bad]).__name__}")
    return texts


_PLAIN = (str, int, float, bool, type(None))


def check_plain(name: str, value: Any) -> None:
    """``value`` must load with ``torch.load(weights_only=True)``: plain Python values, tensors,
    and lists, tuples and dicts of them (checkpoint metadata)."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            check_plain(f"{name}[{k}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{name} has a key {k!r} of type {type(k).__name__}")
            check_plain(f"{name}[{k!r}]", v)
        return
    raise TypeError(
        f"{name} = {value!r} has type {type(value).__name__}; checkpoint metadata must be "
        "str, int, float, bool, None, tensors, or lists/tuples/dicts of them"
    )


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------


def check_id_tensor(name: str, ids: Tensor, n: int) -> None:
    """Raise a clear error unless ``ids`` is an integer tensor of ids in ``0..n-1``.

    ``TypeError`` for a tensor of another dtype (or no tensor), ``IndexError`` naming the first
    offending id otherwise.
    """
    if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32):
        got = ids.dtype if isinstance(ids, Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be an integer tensor of ids, got {got}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise IndexError(f"{name} holds id {bad}, outside 0..{n - 1}")


def check_float_tensor(name: str, x: Tensor) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_logits(name: str, s: Tensor) -> None:
    """Raise unless ``s`` is a non-empty floating-point tensor (of logits)."""
    if not isinstance(s, Tensor):
        raise TypeError(f"{name} must be a tensor of logits, got {type(s).__name__}")
    if not s.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits, got dtype {s.dtype}")
    if s.numel() == 0:
        raise ValueError(f"{name} is empty: a loss needs at least one logit")


def check_shape(name: str, x: Tensor, shape: tuple[int, ...], what: str = "shape") -> None:
    """Raise ``ValueError`` unless ``x`` has exactly ``shape`` (``what`` names it in the error)."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have {what} {tuple(shape)}, got {tuple(x.shape)}")


def check_same_shape(name: str, x: Tensor, other_name: str, other: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` has the shape of ``other``."""
    check_shape(name, x, tuple(other.shape), f"the shape of {other_name}")


# --------------------------------------------------------------------------------------------
# Ids and datasets
# --------------------------------------------------------------------------------------------


def _integer_ids(name: str, ids: Any) -> np.ndarray:
    """``ids`` as an int64 array; ``ValueError`` for floats, booleans and other non-integers."""
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu" and arr.size:
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_ids(
    name: str,
    entities: np.ndarray,
    items: np.ndarray | None,
    n_entities: int,
    n_items: int,
    task: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check ids before scoring: ``entities`` (n,) and ``items`` (n, c) (or None), as int64.

    Raises ``ValueError`` naming the argument (``name`` for the first one, ``items`` for the
    second), its expected shape, dtype or range, and what it got: ids must be integers (an
    empty array may have any dtype), ``entities`` must lie in ``0..n_entities - 1`` and
    ``items`` in ``0..n_items - 1``.
    """
    entities = _integer_ids(name, entities)
    if entities.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {entities.shape}")
    if entities.size and (entities.min() < 0 or entities.max() >= n_entities):
        raise ValueError(
            f"{name} must lie in 0..{n_entities - 1} ({task} ids), "
            f"got {entities.min()}..{entities.max()}"
        )
    if items is None:
        return entities, None
    items = _integer_ids("items", items)
    if items.ndim != 2 or items.shape[0] != entities.shape[0]:
        raise ValueError(
            f"entities must have shape (n,) and items must have shape (n, c) with the same n; "
            f"got entities {entities.shape} and items {items.shape}"
        )
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"items must lie in 0..{n_items - 1}, got {items.min()}..{items.max()}")
    return entities, items


def check_members(
    name: str,
    members: Sequence[int] | np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``members`` and ``items`` of a ``score_members`` call, checked: two non-empty id lists."""
    ids, _ = check_ids(name, members, None, n_users, n_items, "user")
    items, _ = check_ids("items", items, None, n_items, n_items, "item")
    if ids.ndim != 1 or len(ids) == 0 or items.ndim != 1 or len(items) == 0:
        raise ValueError(
            f"{name} and items must be non-empty 1-d id lists; got shapes {ids.shape} "
            f"and {items.shape}"
        )
    return ids, items


def check_training_ids(name: str, dataset: GroupDataset) -> None:
    """Raise ``ValueError`` naming the table if a training pair holds an id out of range.

    Checked once, on the NumPy arrays, where ``fit`` receives them: the training steps then look
    ids up without checking them (a check there would wait for the device at every step).
    """
    from grouprec.data import GroupDataset  # grouprec.data imports this module

    if not isinstance(dataset, GroupDataset):  # a stand-in holding only what a model reads
        return
    for kind in TASKS:
        pairs = dataset.train(kind)
        sizes = {"entity": dataset.n_entities(kind), "item": dataset.n_items}
        for what, n in sizes.items():
            ids = np.asarray(getattr(pairs, what))
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise ValueError(
                    f"{name}.{kind}_train.{what} holds ids {ids.min()}..{ids.max()}, outside "
                    f"0..{n - 1} ({dataset.name!r}: n_{'items' if what == 'item' else kind + 's'}"
                    f" = {n})"
                )


def check_no_new_items(name: str, new: np.ndarray, dataset: GroupDataset, task: str) -> None:
    """Training and validation data must not mention an item that does not exist yet (an item
    marked True in ``new``)."""
    train = dataset.train(task)
    if new[train.item].any():
        k = int(np.argmax(new[train.item]))
        raise ValueError(
            f"{name} holds item {int(train.item[k])}, which has training interactions "
            f"({task} {int(train.entity[k])}); new items must be absent from training "
            "(see cold_start_split)"
        )
    val = getattr(dataset, f"{task}_val")
    if val is not None and len(val) and new[val.candidates()].any():
        raise ValueError(
            f"the {task} validation cases mention new items (as positives or negatives); "
            "validate on items that exist at training time (see cold_start_split)"
        )


def check_disjoint(
    task: str,
    split: str,
    relevant: sp.csr_matrix,
    known: sp.csr_matrix,
    entities: np.ndarray,
) -> None:
    """Full ranking excludes known items, so a held-out item that is also known is an error.

    ``relevant`` and ``known`` are (entities, items) indicator matrices of the ``task``'s
    ``split`` and of what is known (training, and validation for the test split).
    """
    overlap = sp.csr_matrix(relevant.multiply(known))
    overlap.eliminate_zeros()
    if overlap.nnz:
        rows, cols = overlap.nonzero()
        known_as = "training or validation" if split == "test" else "training"
        raise ValueError(
            f"{overlap.nnz} held-out pairs of the {task} {split} split are also {known_as} pairs "
            f"(first: {task} {entities[rows[0]]}, item {cols[0]}). Full ranking leaves out the "
            "items an entity is known to have, so these pairs cannot be ranked fairly; remove "
            "them from the training data first, with grouprec.data.remove_test_leakage(dataset)"
        )


def check_item_table(name: str, items: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """An item attribute table, checked and sorted by item id.

    ``items`` must be a DataFrame with the ``columns`` (some of
    :data:`grouprec.constants.ATTRIBUTE_COLUMNS`, ``"item"`` among them), one row per item id
    ``0..n-1`` and, when ``"price"`` is among ``columns``, positive prices.
    """
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(items).__name__}")
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the column(s) {missing}; it has {list(items.columns)} "
            f"(expected {list(ATTRIBUTE_COLUMNS)}, as in itemAttributes.tsv)"
        )
    ids = items["item"].to_numpy()
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name}['item'] must hold integer ids, got dtype {ids.dtype}")
    order = np.argsort(ids, kind="stable")
    expected_ids = np.arange(len(ids))
    if not np.array_equal(ids[order], expected_ids):
        seen = np.zeros(max(len(ids), int(ids.max()) + 1 if len(ids) else 0), dtype=np.int64)
        np.add.at(seen, ids[ids >= 0], 1)
        repeated = np.flatnonzero(seen > 1)[:5].tolist()
        absent = np.flatnonzero(seen[: len(ids)] == 0)[:5].tolist()
        raise ValueError(
            f"{name}['item'] must hold each id 0..{len(ids) - 1} exactly once (one row per "
            f"item); repeated ids (first 5): {repeated}, missing ids (first 5): {absent}"
        )
    if "price" in columns:
        price = pd.to_numeric(items["price"], errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(price) & (price > 0))
        if bad.any():
            k = int(np.argmax(bad))
            value = items["price"].iloc[k]
            value = value.item() if isinstance(value, np.generic) else value
            raise ValueError(
                f"{name}['price'] must be positive numbers; item {int(ids[k])} has {value!r}"
            )
    return items.iloc[order].reset_index(drop=True)
