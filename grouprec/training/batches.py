"""Where batches come from and how they reach the device.

:class:`TripletBatches` draws one epoch of ``(entity, positive, negatives)`` batches for pairwise
ranking losses; the private helpers below turn any batch source that
:func:`grouprec.training.fit` accepts into the batches of one epoch (drawn ahead in a background
thread on an accelerator) and move a batch to the device.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from grouprec.data import Interactions, NegativeSampler
from grouprec.training.devices import epoch_to_device

__all__ = ["Batch", "TripletBatches"]

Batch = Any  # a tensor, or a tuple / list / dict of tensors


class TripletBatches:
    """One epoch of ``(entity, positive, negatives)`` batches for pairwise losses such as BPR.

    Every epoch visits each training pair once, in a fresh random order, and draws ``n_neg``
    negatives for every pair in one vectorised call to
    :meth:`grouprec.data.NegativeSampler.sample`. Call it as ``batches(epoch, rng)``; :func:`~grouprec.training.fit`
    does.

    Parameters
    ----------
    train : Interactions
        The observed pairs; an entity is a user or a group.
    n_items : int
        Size of the item id space.
    n_neg : int
        Negatives drawn per positive pair.
    batch_size : int
        Pairs per batch; the last batch of an epoch may be smaller.
    sampler : NegativeSampler, optional
        Decides what counts as a negative; by default, any item that is not a training positive
        of the entity.

    Yields
    ------
    tuple of torch.Tensor
        ``entity`` (B,), ``pos`` (B,) and ``neg`` (B, n_neg), all int64, on ``device`` when
        called with one (:func:`~grouprec.training.fit` passes its own), else on the CPU. The epoch is drawn on the
        CPU with NumPy and moved in one copy per array, not one per batch.
    """

    def __init__(
        self,
        train: Interactions,
        n_items: int,
        n_neg: int = 1,
        batch_size: int = 4096,
        sampler: NegativeSampler | None = None,
    ) -> None:
        if len(train) == 0:
            raise ValueError("train has no interactions to make batches from")
        if int(n_neg) < 1:
            raise ValueError(f"n_neg must be at least 1, got {n_neg!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        # Copies: the dataset's arrays are read-only, and a tensor sharing them could be written.
        self.entity = torch.tensor(train.entity, dtype=torch.int64)
        self.item = torch.tensor(train.item, dtype=torch.int64)
        self.n_items = int(n_items)
        self.n_neg = int(n_neg)
        self.batch_size = int(batch_size)
        self.sampler = sampler if sampler is not None else NegativeSampler(train, n_items)

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(len(self.entity) / self.batch_size)

    @property
    def n_pairs(self) -> int:
        """Positive pairs per epoch."""
        return len(self.entity)

    def __call__(
        self, epoch: int, rng: np.random.Generator, device: torch.device | str | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.from_numpy(rng.permutation(self.n_pairs))
        entity = self.entity[order]  # (N,)
        pos = self.item[order]  # (N,)
        neg = torch.from_numpy(self.sampler.sample(entity.numpy(), self.n_neg, rng))  # (N, n_neg)
        if device is not None:  # the whole epoch in one copy per array; batches are views
            entity, pos, neg = (epoch_to_device(t, device) for t in (entity, pos, neg))
        for start in range(0, self.n_pairs, self.batch_size):
            stop = start + self.batch_size
            yield entity[start:stop], pos[start:stop], neg[start:stop]


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        # non_blocking only towards an accelerator: a copy *to* the CPU that does not block could
        # still be under way when the loss reads it.
        return batch.to(device, non_blocking=device.type != "cpu")
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(batch).to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _takes_device(batches: Any) -> bool:
    """Whether ``make_batches`` accepts a ``device`` keyword (then it moves whole epochs)."""
    if not callable(batches):
        return False
    try:
        return "device" in inspect.signature(batches).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _batch_size(batch: Batch) -> int:
    """Number of examples a batch counts for in the epoch's mean loss: the length of its first
    tensor, or the int under the key ``"n_examples"`` of a dict batch that has one (a shard of a
    larger batch counts for the whole batch, see :mod:`grouprec.distributed`)."""
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        if isinstance(batch.get("n_examples"), int):
            return batch["n_examples"]
        batch = list(batch.values())
    if isinstance(batch, (tuple, list)):
        for value in batch:
            if isinstance(value, (torch.Tensor, np.ndarray)):
                return _batch_size(value)
    return 1


class _Prefetcher:
    """The batches of each epoch, the next epoch's drawn in a background thread.

    ``prefetcher(epoch)`` returns ``draw(epoch)``'s batches. When enabled, it first starts
    ``draw(epoch + 1)`` (up to epoch ``last``) in one worker thread, materialised as a list, so
    that NumPy's shuffling and sampling overlap the steps of ``epoch``; the draws still happen
    one after the other, in epoch order, from the same generator. Use it as a context manager:
    leaving it waits for a draw under way.
    """

    def __init__(self, draw: Callable[[int], Iterable[Batch]], enabled: bool, last: int) -> None:
        self.draw, self.last = draw, last
        self.pool = ThreadPoolExecutor(max_workers=1) if enabled else None
        self.pending: dict[int, Future] = {}

    def __call__(self, epoch: int) -> Iterable[Batch]:
        if self.pool is None:
            return self.draw(epoch)
        current = self.pending.pop(epoch, None)
        if current is None:
            current = self.pool.submit(lambda: list(self.draw(epoch)))
        if epoch < self.last:  # queued behind this epoch's draw: the order stays the same
            self.pending[epoch + 1] = self.pool.submit(lambda: list(self.draw(epoch + 1)))
        return current.result()

    def __enter__(self) -> _Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _epoch_batches(
    batches: Any, epoch: int, rng: np.random.Generator, device: torch.device | None = None
) -> Iterable[Batch]:
    if callable(batches):
        out = batches(epoch, rng) if device is None else batches(epoch, rng, device=device)
    else:
        out = batches
    if not isinstance(out, Iterable):
        raise TypeError(
            f"batches must be an iterable of batches or a callable make_batches(epoch, rng) "
            f"returning one; got {type(out).__name__}"
        )
    if not callable(batches) and isinstance(out, Iterator) and epoch > 1:
        raise TypeError(
            "batches is a one-shot iterator (e.g. a generator) and was used up by epoch 1; "
            "pass a re-iterable (a list, a DataLoader) or a callable make_batches(epoch, rng)"
        )
    return out
