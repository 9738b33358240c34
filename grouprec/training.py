"""The training loop every neural model in grouprec goes through.

One function, :func:`fit`, trains any ``nn.Module``: the caller says how to compute the loss of a
batch (``loss_fn(model, batch) -> scalar tensor``) and where batches come from; :func:`fit` does
the rest the same way for every chapter: seeding, device placement, the optimiser, a
``tqdm.auto`` progress bar, validation after every epoch, early stopping on a validation metric
with the best weights restored (Prechelt, 1998), and a :class:`History` of losses and metrics
for plotting. Its epoch loop is :func:`train_epochs`, which the GAN recommenders of
:mod:`grouprec.gan_recommender` use directly with an epoch function of their own: one loop, one
early stopping, one way of keeping the best weights (of several modules at once) for every model.

Batches come from either

* a callable ``make_batches(epoch, rng) -> iterable of batches``, called once per epoch with the
  epoch number (from 1) and a ``numpy.random.Generator`` owned by :func:`fit`, so that shuffling
  and negative sampling are reproducible from the seed; :class:`TripletBatches` is the one used
  for pairwise ranking losses; or
* a re-iterable such as a ``torch.utils.data.DataLoader``, iterated once per epoch.

A batch is a tensor, or a tuple, list or dict of tensors; :func:`fit` moves it to the device,
which is the CPU unless one is asked for (:func:`select_device`; ``device="auto"`` picks a GPU
when the machine has one).

:func:`ranking_val_fn` turns held-out cases (:class:`grouprec.data.EvalCases`) into the
``val_fn`` that :func:`fit` calls, and :func:`save_checkpoint` / :func:`load_checkpoint` store a
model's weights with its constructor arguments and any metadata, exactly.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from grouprec.constants import DEFAULT_KS, DEFAULT_SEED
from grouprec.data import EvalCases, Interactions, NegativeSampler
from grouprec.metrics import sampled_metrics

__all__ = [
    "History",
    "check_id_tensor",
    "explain_bad_ids",
    "TripletBatches",
    "fit",
    "load_checkpoint",
    "ranking_val_fn",
    "read_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "train_epochs",
]

#: Optimisers known by name; any ``torch.optim`` class (or a callable with its signature) works too.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}

Batch = Any  # a tensor, or a tuple / list / dict of tensors
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
ValFn = Callable[[nn.Module], Mapping[str, float]]


# --------------------------------------------------------------------------------------------
# Seeds and devices
# --------------------------------------------------------------------------------------------


def check_size(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``.

    Raises ``ValueError`` naming the argument ``name`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


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


@contextmanager
def explain_bad_ids(**ids: tuple[Tensor, int]) -> Iterator[None]:
    """Run a block of embedding lookups; if one fails, say which ids were wrong.

    ``with explain_bad_ids(u=(u, n_users), i=(i, n_items)): ...`` checks nothing while the block
    succeeds, so a training step makes no host synchronisation for it. When the block raises an
    ``IndexError`` or ``RuntimeError`` (what an out-of-range id or a float tensor makes a lookup
    raise on the CPU), each named tensor is checked with :func:`check_id_tensor`, whose error
    names the argument and the first bad id; otherwise the original error propagates. On an
    accelerator a bad id fails inside the device instead: the recommenders therefore check ids
    once, on NumPy arrays, where ``fit`` and ``score`` receive them
    (:meth:`grouprec.base.BaseRecommender._check_ids`).
    """
    try:
        yield
    except (IndexError, RuntimeError):
        for name, (tensor, n) in ids.items():
            check_id_tensor(name, tensor, n)
        raise


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and all GPUs)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    # The legacy global generator is what third-party code draws from when it is not handed a
    # Generator; grouprec itself always passes an explicit numpy.random.Generator.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)  # also seeds every CUDA device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to train on: the CPU unless another one is asked for.

    Results do not depend on whether the machine has a GPU unless a device is asked for: the
    default is the CPU everywhere in grouprec, and ``"auto"`` opts in to an accelerator.

    Parameters
    ----------
    prefer : str or torch.device, optional
        None (the default) or ``"cpu"``: the CPU. ``"auto"``: CUDA if available, else Apple
        MPS, else the CPU. ``"cuda"``, ``"cuda:1"`` or ``"mps"``: that device; when it names a
        device this machine does not have, the error says so (no silent fallback).
    """
    if prefer is None:
        return torch.device("cpu")
    if isinstance(prefer, str) and prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"prefer={prefer!r} is not a device name: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"prefer={prefer!r}, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"prefer={prefer!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"prefer={prefer!r}, but Apple MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"prefer={prefer!r}: use 'cpu', 'cuda', 'mps' or 'auto'")
    return device


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


def epoch_to_device(array: np.ndarray | Tensor, device: torch.device | str) -> Tensor:
    """One epoch's array (of ids, say) as a tensor on ``device``, in one copy.

    Towards a CUDA device the copy goes through pinned memory without blocking the host, so the
    epoch's first steps can be queued while it is under way; on the CPU the tensor is returned
    as it is (a NumPy array without a copy).
    """
    tensor = torch.as_tensor(array)
    device = torch.device(device)
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


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


# --------------------------------------------------------------------------------------------
# Batches for pairwise ranking losses
# --------------------------------------------------------------------------------------------


class TripletBatches:
    """One epoch of ``(entity, positive, negatives)`` batches for pairwise losses such as BPR.

    Every epoch visits each training pair once, in a fresh random order, and draws ``n_neg``
    negatives for every pair in one vectorised call to
    :meth:`grouprec.data.NegativeSampler.sample`. Call it as ``batches(epoch, rng)``; :func:`fit`
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
        called with one (:func:`fit` passes its own), else on the CPU. The epoch is drawn on the
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
        self.entity = torch.as_tensor(train.entity, dtype=torch.int64)
        self.item = torch.as_tensor(train.item, dtype=torch.int64)
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


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def ranking_val_fn(
    cases: EvalCases,
    score: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 1024,
) -> ValFn:
    """A ``val_fn`` for :func:`fit`: rank each held-out item among its listed negatives.

    Parameters
    ----------
    cases : EvalCases
        Validation cases, e.g. ``dataset.user_val``; never the test split.
    score : callable, optional
        ``score(model, entities (B,), items (B, c)) -> (B, c)`` scores. By default
        ``model(entities[:, None], items)``, for models whose forward broadcasts.
    ks : tuple of int
        Cut-offs of HR@k and NDCG@k.
    batch_size : int
        Cases scored at once.

    Returns
    -------
    callable
        ``val_fn(model) -> {"HR@5": ..., "NDCG@5": ..., ...}`` from
        :func:`grouprec.metrics.sampled_metrics`, ties counted by their expected rank.
    """
    if cases is None or len(cases) == 0:
        raise ValueError("cases is empty; call grouprec.data.split_validation(dataset) first")
    entities = torch.as_tensor(cases.entity, dtype=torch.int64)  # (n,)
    items = torch.as_tensor(cases.candidates(), dtype=torch.int64)  # (n, 1 + m)

    def default_score(model: nn.Module, e: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return model(e[:, None], i)

    score_fn = default_score if score is None else score

    on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}  # the cases, moved once

    def val_fn(model: nn.Module) -> dict[str, float]:
        device = _model_device(model)
        if device not in on_device:
            on_device[device] = (entities.to(device), items.to(device))
        e_all, i_all = on_device[device]
        was_training = model.training
        model.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(entities), batch_size):
                e = e_all[start : start + batch_size]
                i = i_all[start : start + batch_size]
                parts.append(score_fn(model, e, i).float())
        model.train(was_training)
        scores = torch.cat(parts).cpu().numpy()  # (n, 1 + m), one copy to the host
        return sampled_metrics(scores[:, 0], scores[:, 1:], ks=ks)

    return val_fn


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclass
class History:
    """What happened during :func:`fit`, one entry per epoch (epochs are numbered from 1).

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch (weighted by batch size).
    val : list of dict
        Validation metrics after each epoch; empty without a ``val_fn``.
    best_epoch : int or None
        Epoch whose weights the model holds at the end (best monitored metric), or None when
        there was no validation.
    seconds : float
        Wall-clock time of the whole run, validation included.
    epoch_seconds : list of float
        Wall-clock time of each epoch, validation included.
    monitor : str or None
        The metric early stopping watched.
    stopped_early : bool
        True when training ended before ``epochs`` because the metric stopped improving.
    """

    loss: list[float] = field(default_factory=list)
    val: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    monitor: str | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.loss)

    @property
    def best(self) -> dict[str, float]:
        """Validation metrics of the best epoch (empty without validation)."""
        if self.best_epoch is None or not self.val:
            return {}
        return dict(self.val[self.best_epoch - 1])

    def add_epoch(
        self,
        stats: Mapping[str, float],
        metrics: Mapping[str, float] | None,
        extra: Mapping[str, float],
        seconds: float,
    ) -> None:
        """Record one epoch (:func:`train_epochs` calls this): its training statistics (here
        ``loss``), its validation metrics (None without validation), the numbers of a callback
        (none in :func:`fit`) and its wall-clock time."""
        self.loss.append(stats["loss"])
        if metrics is not None:
            self.val.append(dict(metrics))
        self.epoch_seconds.append(seconds)

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch: ``loss``, every validation metric, ``seconds``; index ``epoch``."""
        frame = pd.DataFrame({"loss": self.loss})
        if self.val:
            frame = frame.join(pd.DataFrame(self.val))
        frame["seconds"] = self.epoch_seconds
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
        return frame


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


def _make_optimizer(
    optimizer: str | Callable[..., torch.optim.Optimizer],
    params: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float,
) -> torch.optim.Optimizer:
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        optimizer = OPTIMIZERS[optimizer.lower()]
    if not callable(optimizer):
        raise TypeError(f"optimizer must be a name or a torch.optim class, got {optimizer!r}")
    return optimizer(params, lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch] | Callable[[int, np.random.Generator], Iterable[Batch]],
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
    val_fn: ValFn | None = None,
    monitor: str = "NDCG@10",
    patience: int | None = 5,
    min_delta: float = 0.0,
    restore_best: bool = True,
    max_grad_norm: float | None = None,
    seed: int | None = DEFAULT_SEED,
    progress: bool = True,
    device: str | torch.device | None = None,
    prefetch: bool | None = None,
    reduce_stats: Callable[[Tensor, int], tuple[Tensor, float]] | None = None,
) -> History:
    """Train ``model`` by minimising ``loss_fn`` over ``batches``, with early stopping.

    Each epoch: put the model in training mode, take one optimiser step per batch, then (with a
    ``val_fn``) compute validation metrics in evaluation mode without gradients. The epoch whose
    ``monitor`` metric is highest is remembered with a copy of its weights; training stops after
    ``patience`` epochs without an improvement larger than ``min_delta``, and the remembered
    weights are put back.

    Parameters
    ----------
    model : nn.Module
        The model; it is moved to ``device`` (the CPU by default) and trained in place.
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``; ``batch`` is already on the device.
    batches : iterable or callable
        A re-iterable of batches (e.g. a ``DataLoader``), iterated once per epoch, or a callable
        ``make_batches(epoch, rng)`` returning the batches of one epoch (see
        :class:`TripletBatches`).
    epochs : int
        Largest number of passes over the batches.
    lr, weight_decay : float
        Learning rate and L2 penalty of the optimiser.
    optimizer : str or callable
        A name in :data:`OPTIMIZERS`, or a ``torch.optim`` class (or ``functools.partial`` of
        one), called as ``optimizer(params, lr=lr, weight_decay=weight_decay)``.
    val_fn : callable, optional
        ``val_fn(model) -> dict`` of validation metrics (see :func:`ranking_val_fn`).
    monitor : str
        Key of the ``val_fn`` result to maximise.
    patience : int or None
        Epochs without improvement before stopping; None never stops early.
    min_delta : float
        Smallest increase of ``monitor`` that counts as an improvement.
    restore_best : bool
        Load the best epoch's weights at the end (needs a ``val_fn``).
    max_grad_norm : float, optional
        Clip the gradient norm to this value before each step.
    seed : int or None
        Seeds Python, NumPy and PyTorch at the start (dropout, sampling) and the generator passed
        to ``make_batches``; None leaves the global generators as they are.
    progress : bool
        Show a ``tqdm`` progress bar over epochs.
    device : str or torch.device, optional
        Where to train, as :func:`select_device` reads it: the CPU by default (None), so that
        results do not depend on the machine; ``"cuda"``, ``"mps"`` or ``"auto"`` to opt in to
        an accelerator. Batches are moved there; ``make_batches`` may build them on the CPU.
    prefetch : bool or None
        Draw the next epoch's batches (``make_batches``) in a background thread while the
        device runs this epoch's steps. None: on an accelerator only, where the host is
        otherwise idle; the CPU's cores are busy with the steps themselves. The batches and so
        the results are the same either way: the epochs are still drawn one after the other
        from the same generator.
    reduce_stats : callable, optional
        ``reduce_stats(total, count) -> (total, count)``, applied to an epoch's loss total (a
        float64 tensor, the sum of batch loss times batch size) and example count before their
        ratio is taken; in data-parallel training, a sum over the processes
        (:mod:`grouprec.distributed`). None uses this process's numbers.

    Returns
    -------
    History
        Losses, validation metrics, the best epoch and timings.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs!r}")
    if not (lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be at least 1 or None, got {patience!r}")
    device = select_device(device)
    if seed is not None:
        seed_everything(seed)
    rng = np.random.default_rng(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    opt = _make_optimizer(optimizer, params, lr, weight_decay)
    # A make_batches that takes a device moves each epoch there at once (TripletBatches does);
    # the batches of any other source are moved one by one.
    epoch_device = device if _takes_device(batches) else None
    if prefetch is None:
        prefetch = device.type != "cpu"
    ahead = _Prefetcher(
        lambda epoch: _epoch_batches(batches, epoch, rng, epoch_device),
        enabled=bool(prefetch) and callable(batches),
        last=int(epochs),
    )

    def one_epoch(epoch: int) -> dict[str, float]:
        model.train()
        # The statistics stay on the device during the epoch: no step waits for the host.
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for batch in ahead(epoch):
            batch = _to_device(batch, device)  # a no-op for a batch already there
            loss = loss_fn(model, batch)
            if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                raise TypeError(
                    f"loss_fn must return a scalar tensor, got "
                    f"{type(loss).__name__} of shape {getattr(loss, 'shape', None)}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            n = _batch_size(batch)
            # detach: the running total is a record, not part of any graph to differentiate.
            total += loss.detach().double() * n
            count += n
        if count == 0:
            raise ValueError(f"batches yielded no batch in epoch {epoch}")
        if reduce_stats is not None:
            total, count = reduce_stats(total, count)
        return {"loss": float(total) / count}  # one device-to-host copy per epoch

    def validate() -> Mapping[str, float]:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = val_fn(model)
        model.train(was_training)
        return metrics

    with ahead:
        return train_epochs(
            one_epoch,
            epochs=epochs,
            state={"model": model},
            val_fn=None if val_fn is None else validate,
            monitor=monitor,
            patience=patience,
            min_delta=min_delta,
            restore_best=restore_best,
            lr=lr,
            progress=progress,
            desc=type(model).__name__,
            postfix=("loss", monitor),
        )


def train_epochs(
    one_epoch: Callable[[int], Mapping[str, float]],
    *,
    epochs: int,
    state: Mapping[str, nn.Module],
    val_fn: Callable[[], Mapping[str, float]] | None = None,
    monitor: str = "NDCG@10",
    patience: int | None = 5,
    min_delta: float = 0.0,
    restore_best: bool = True,
    callback: Callable[[int], Mapping[str, float]] | None = None,
    history: History | None = None,
    lr: float | None = None,
    progress: bool = True,
    desc: str | None = None,
    postfix: Sequence[str] = ("loss",),
    postfix_format: str = ".4f",
) -> History:
    """The epoch loop under :func:`fit` and the GAN recommenders: train, check, validate, stop
    early, keep the best weights.

    Each epoch (numbered from 1): ``one_epoch(epoch)`` trains and returns the epoch's statistics
    (its mean loss, say), which must be finite; then ``val_fn()`` returns validation metrics. The
    epoch whose ``monitor`` metric is highest is remembered with a copy of the weights of every
    module in ``state``; training stops after ``patience`` epochs without an improvement larger
    than ``min_delta``, and the remembered weights are put back. ``callback(epoch)``, after the
    validation, returns more numbers to record.

    Parameters
    ----------
    one_epoch : callable
        ``one_epoch(epoch) -> dict`` of the epoch's training statistics, as floats.
    epochs : int
        Largest number of epochs.
    state : dict of str to nn.Module
        The modules whose weights make up the model (a GAN's generator and discriminator).
    val_fn : callable, optional
        ``val_fn() -> dict`` of validation metrics; without it every epoch is run and the last
        weights kept.
    monitor, patience, min_delta, restore_best
        As in :func:`fit`.
    callback : callable, optional
        ``callback(epoch) -> dict`` of numbers recorded with the epoch.
    history : History, optional
        Where the epochs are recorded with ``history.add_epoch(stats, metrics, extra, seconds)``
        (a :class:`History` by default).
    lr : float, optional
        Named in the error about a non-finite statistic.
    progress : bool
        Show a ``tqdm`` progress bar over epochs, labelled ``desc``, showing the numbers named in
        ``postfix`` formatted with ``postfix_format``.

    Returns
    -------
    History
        ``history``, with the epochs, the best epoch and the run's time filled in.
    """
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs!r}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be at least 1 or None, got {patience!r}")
    history = History() if history is None else history
    history.monitor = monitor if val_fn is not None else None
    best_value = -math.inf
    best_state: dict[str, dict[str, torch.Tensor]] | None = None
    waited = 0
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        stats = dict(one_epoch(epoch))
        for key, value in stats.items():
            if not math.isfinite(value):
                hint = "" if lr is None else f"; try a smaller learning rate (now {lr})"
                raise FloatingPointError(f"{key} is {value} in epoch {epoch}{hint}")
        metrics = None
        stop = False
        if val_fn is not None:
            metrics = {k: float(v) for k, v in dict(val_fn()).items()}
            if monitor not in metrics:
                raise KeyError(
                    f"monitor={monitor!r} is not among the validation metrics {sorted(metrics)}"
                )
            value = metrics[monitor]
            if value > best_value + min_delta or best_state is None:
                best_value = value
                history.best_epoch = epoch
                best_state = {k: copy.deepcopy(m.state_dict()) for k, m in state.items()}
                waited = 0
            else:
                waited += 1
                stop = patience is not None and waited >= patience
        extra = {} if callback is None else {k: float(v) for k, v in callback(epoch).items()}
        history.add_epoch(stats, metrics, extra, time.perf_counter() - t0)
        shown = {**stats, **(metrics or {}), **extra}
        bar.set_postfix({k: format(v, postfix_format) for k, v in shown.items() if k in postfix})
        if stop:
            history.stopped_early = epoch < epochs
            break
    bar.close()
    if restore_best and best_state is not None:
        for key, module in state.items():
            module.load_state_dict(best_state[key])
    history.seconds = time.perf_counter() - start
    return history


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

_FORMAT = "grouprec-checkpoint"
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Metadata must load with ``torch.load(weights_only=True)``: plain Python values."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            _check_plain(v, f"{where}[{k}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key {k!r} of type {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} = {value!r} has type {type(value).__name__}; checkpoint metadata must be "
        "str, int, float, bool, None, tensors, or lists/tuples/dicts of them"
    )


def save_checkpoint(model: nn.Module, path: str | os.PathLike, **meta: Any) -> Path:
    """Write the model's weights, its constructor arguments and ``meta`` to ``path``.

    The constructor arguments are ``model.config`` (a dict) when the model has one; every model
    in grouprec does, so that it can be rebuilt as ``cls(**meta["config"])``.

    Returns
    -------
    Path
        The file written (parent folders are created).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    config = getattr(model, "config", None)
    if config is not None and "config" not in meta:
        meta = {"config": dict(config), **meta}
    _check_plain(meta, "meta")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # detach: the stored tensors are values, not part of the model's autograd graph.
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": _FORMAT,
        "version": 1,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "state_dict": state,
        "meta": meta,
    }
    torch.save(payload, path)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The raw content of a checkpoint: ``class``, ``state_dict`` and ``meta``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable grouprec checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a grouprec checkpoint (see save_checkpoint)")
    return payload


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the metadata.

    Raises
    ------
    ValueError
        The file holds another class, other constructor arguments, or weights of other shapes.
    """
    payload = read_checkpoint(path)
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if payload["class"] != cls:
        raise ValueError(f"{path} holds a {payload['class']}, but model is a {cls}")
    meta = payload["meta"]
    config = getattr(model, "config", None)
    if config is not None and "config" in meta and dict(config) != meta["config"]:
        raise ValueError(
            f"{path} was saved from {type(model).__name__}(**{meta['config']}), "
            f"but model is {type(model).__name__}(**{dict(config)})"
        )
    device = _model_device(model)
    try:
        model.load_state_dict({k: v.to(device) for k, v in payload["state_dict"].items()})
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit the model: {exc}") from None
    return meta
