"""The one training loop: :func:`fit` trains any ``nn.Module`` on a loss and a batch source."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from grouprec.constants import DEFAULT_SEED
from grouprec.training.batches import (
    Batch,
    _batch_size,
    _epoch_batches,
    _Prefetcher,
    _takes_device,
    _to_device,
)
from grouprec.training.devices import preserved_rng, seed_everything, select_device
from grouprec.training.early_stopping import History, train_epochs
from grouprec.training.validation import ValFn

__all__ = ["OPTIMIZERS", "LossFn", "fit"]

#: Optimisers known by name; any ``torch.optim`` class (or a callable with its signature) works too.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}

LossFn = Callable[[nn.Module, Batch], torch.Tensor]


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
        :class:`~grouprec.training.TripletBatches`).
    epochs : int
        Largest number of passes over the batches.
    lr, weight_decay : float
        Learning rate and L2 penalty of the optimiser.
    optimizer : str or callable
        A name in :data:`OPTIMIZERS`, or a ``torch.optim`` class (or ``functools.partial`` of
        one), called as ``optimizer(params, lr=lr, weight_decay=weight_decay)``.
    val_fn : callable, optional
        ``val_fn(model) -> dict`` of validation metrics (see :func:`~grouprec.training.ranking_val_fn`).
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
        to ``make_batches``, and gives the global generators back their state at the end
        (:func:`~grouprec.training.preserved_rng`); None draws from the global generators as
        they are.
    progress : bool
        Show a ``tqdm`` progress bar over epochs.
    device : str or torch.device, optional
        Where to train, as :func:`~grouprec.training.select_device` reads it: the CPU by default (None), so that
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
    # A seed fixes this run's draws; the caller's global generators get their state back after.
    with preserved_rng() if seed is not None else contextlib.nullcontext():
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
