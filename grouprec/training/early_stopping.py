"""The epoch loop with early stopping, and the :class:`History` it records.

:func:`train_epochs` is the loop under :func:`grouprec.training.fit` and the GAN recommenders:
train an epoch, check its statistics, validate, keep the best weights, stop when the monitored
metric stops improving (Prechelt, 1998).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["History", "train_epochs"]


@dataclass
class History:
    """What happened during :func:`~grouprec.training.fit`, one entry per epoch (epochs are numbered from 1).

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
        (none in :func:`~grouprec.training.fit`) and its wall-clock time."""
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
    """The epoch loop under :func:`~grouprec.training.fit` and the GAN recommenders: train, check, validate, stop
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
        As in :func:`~grouprec.training.fit`.
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
