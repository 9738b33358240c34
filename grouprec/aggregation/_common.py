"""Helpers shared by two group recommenders, :class:`~grouprec.aggregation.RuleRecommender`
and :class:`~grouprec.aggregation.AGREERecommender`: scoring groups in chunks of similar size
within a memory budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

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
