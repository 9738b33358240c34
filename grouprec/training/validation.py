"""Validation during training: held-out cases turned into the ``val_fn`` of
:func:`grouprec.training.fit`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from grouprec.constants import DEFAULT_KS
from grouprec.data import EvalCases
from grouprec.metrics import sampled_metrics
from grouprec.training.devices import _model_device

__all__ = ["ValFn", "ranking_val_fn"]

ValFn = Callable[[nn.Module], Mapping[str, float]]


def ranking_val_fn(
    cases: EvalCases,
    score: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 1024,
) -> ValFn:
    """A ``val_fn`` for :func:`~grouprec.training.fit`: rank each held-out item among its listed negatives.

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
    entities = torch.tensor(cases.entity, dtype=torch.int64)  # (n,), a copy: cases are read-only
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
