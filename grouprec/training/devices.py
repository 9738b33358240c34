"""Seeds and devices: what makes a run reproducible and where it runs.

:func:`seed_everything` seeds every generator a run draws from, and :func:`preserved_rng` (or the
decorator :func:`keeps_global_rng`) gives them back their state afterwards, so that a model's
``seed`` fixes its own run without reseeding the caller's process; :func:`select_device` says where
training happens (the CPU unless another device is asked for), :func:`epoch_to_device` moves an
epoch's arrays there in one copy, and :func:`explain_bad_ids` turns a failed embedding lookup
into an error that names the bad ids.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from grouprec.checks import check_id_tensor

__all__ = [
    "epoch_to_device",
    "explain_bad_ids",
    "keeps_global_rng",
    "preserved_rng",
    "seed_everything",
    "select_device",
]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def explain_bad_ids(**ids: tuple[Tensor, int]) -> Iterator[None]:
    """Run a block of embedding lookups; if one fails, say which ids were wrong.

    ``with explain_bad_ids(u=(u, n_users), i=(i, n_items)): ...`` checks nothing while the block
    succeeds, so a training step makes no host synchronisation for it. When the block raises an
    ``IndexError`` or ``RuntimeError`` (what an out-of-range id or a float tensor makes a lookup
    raise on the CPU), each named tensor is checked with :func:`grouprec.checks.check_id_tensor`, whose error
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


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block, then give the global generators back the state they had before it.

    Python's ``random``, NumPy's legacy global generator and PyTorch's (on the CPU and on every
    CUDA device in use) are restored, whatever the block seeded or drew. A recommender's ``fit`` runs
    inside it: its ``seed`` decides its initial weights and its draws, and a notebook's random
    numbers after the fit are the same as if the fit had not happened.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    # The CUDA generators exist once CUDA is initialised; before that there is no state to keep.
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def keeps_global_rng(fn: F) -> F:
    """Decorate a function (a recommender's ``fit``) to run inside :func:`preserved_rng`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with preserved_rng():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
