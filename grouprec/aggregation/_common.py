"""Helpers shared by the two group recommenders, :class:`~grouprec.aggregation.RuleRecommender`
and :class:`~grouprec.aggregation.AGREERecommender`: scoring groups in chunks of similar size
within a memory budget, and checking the members of a group composed on the spot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from grouprec.base import check_ids

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


def _check_members(
    members: Sequence[int] | np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``members`` and ``items`` of a ``score_members`` call, checked: two non-empty id lists."""
    ids, _ = check_ids(members, None, n_users, n_items, "user", name="members")
    items, _ = check_ids(items, None, n_items, n_items, "item", name="items")
    if ids.ndim != 1 or len(ids) == 0 or items.ndim != 1 or len(items) == 0:
        raise ValueError(
            f"members and items must be non-empty 1-d id lists; got shapes {ids.shape} "
            f"and {items.shape}"
        )
    return ids, items
