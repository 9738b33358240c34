"""Checkpoints: a model's weights with its constructor arguments and metadata, stored exactly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grouprec.checks import check_plain
from grouprec.training.devices import _model_device

__all__ = ["load_checkpoint", "read_checkpoint", "save_checkpoint"]

_FORMAT = "grouprec-checkpoint"


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
    check_plain("meta", meta)
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
