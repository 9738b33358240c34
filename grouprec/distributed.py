"""Data-parallel training: AGREE on several processes with ``DistributedDataParallel``.

Each of the N processes (ranks) holds a full replica of the model of chapter 6
(:class:`grouprec.aggregation.AGREE`). Every rank draws the *same* global batches, batch order
and negatives from one generator seeded identically everywhere (:class:`JointBatches` through
:func:`grouprec.training.fit`), and keeps only its own contiguous slice of each global batch
(:func:`shard_batch`). Backpropagation gives each rank the gradient of its own part of the
loss; ``DistributedDataParallel`` averages the gradients over the ranks with an all-reduce
while the backward pass runs (Li et al., 2020), so every replica takes the same optimiser step.

With rank r holding :math:`b^r_G` of the batch's :math:`B_G` group rows and :math:`b^r_U` of its
:math:`B_U` user rows, rank r minimises

.. math:: \\ell_r = N \\left( \\frac{b^r_G}{B_G} \\mathcal{L}^r_{\\mathcal{G}} +
   \\beta \\frac{b^r_U}{B_U} \\mathcal{L}^r_{\\mathcal{U}} \\right),

where :math:`\\mathcal{L}^r_{\\mathcal{G}}` and :math:`\\mathcal{L}^r_{\\mathcal{U}}` are the mean
BPR losses of its own rows (:func:`grouprec.aggregation.agree_step_loss`). The mean of
:math:`\\ell_r` over the N ranks is exactly the one-process loss
:math:`\\mathcal{L}_{\\mathcal{G}} + \\beta \\mathcal{L}_{\\mathcal{U}}` of the global
batch, and so is the mean of their gradients: N processes take the steps one process takes on
the same global batches, up to the order of float additions (the reduction order of the
all-reduce). This holds without dropout; with dropout each rank draws its own masks.

Validation, early stopping, checkpoints and the progress bar belong to rank 0. Rank 0 computes
the validation metrics and broadcasts them, so every rank takes the same stop decision and
keeps the same best weights.

Launch with ``torchrun`` (backend gloo on CPUs, NCCL on GPUs, chosen from the device)::

    torchrun --nproc_per_node 2 -m grouprec.distributed --dataset data/large_synthetic

or as one plain process (``python -m grouprec.distributed ...``), which trains without a process
group; ``torchrun ... -m grouprec ddp --dataset ...`` is the same command (its arguments and
printing live in :mod:`grouprec.__main__`). :func:`launch_local` starts N local processes from
Python, as torchrun would.

References
----------
Li, S., Zhao, Y., Varma, R., Salpekar, O., Noordhuis, P., Li, T., Paszke, A., Smith, J.,
Vaughan, B., Damania, P. and Chintala, S. (2020). PyTorch Distributed: experiences on
accelerating data parallel training. *Proceedings of the VLDB Endowment*, 13(12), 3005-3018.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from grouprec.aggregation import AGREERecommender, JointBatches, agree_step_loss
from grouprec.data import GroupDataset
from grouprec.training import ValFn, fit, save_checkpoint, select_device

__all__ = [
    "ENV_VARS",
    "DistContext",
    "LossModule",
    "ShardedBatches",
    "fit_distributed",
    "init_distributed",
    "launch_local",
    "loss_module",
    "call_module",
    "shard_batch",
    "sharded_agree_loss",
]

#: The rendezvous environment ``torchrun`` sets in every process it starts.
ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_HOW = "launch with `torchrun --nproc_per_node N -m grouprec.distributed --dataset PATH ...`"


# --------------------------------------------------------------------------------------------
# The process group
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size``, its device and backend.

    ``backend`` is None for a single process trained without a process group.
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one that validates, logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group joins this process with others."""
        return self.backend is not None


def _read_env(env: Mapping[str, str]) -> dict[str, int] | None:
    present = [k for k in ENV_VARS if k in env]
    if not present:
        return None
    missing = [k for k in ENV_VARS if k not in env]
    if missing:
        raise RuntimeError(
            f"the rendezvous environment is incomplete: {', '.join(present)} set but "
            f"{', '.join(missing)} not; {_HOW}"
        )
    values = {}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"):
        try:
            values[key] = int(env[key])
        except ValueError:
            raise RuntimeError(f"{key}={env[key]!r} is not an integer; {_HOW}") from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise RuntimeError(
            f"RANK={values['RANK']} is not in 0..WORLD_SIZE-1={values['WORLD_SIZE'] - 1}"
        )
    return values


def init_distributed(
    device: str | torch.device | None = None,
    backend: str | None = None,
    world_size: int | None = None,
    env: Mapping[str, str] | None = None,
) -> DistContext:
    """Join the process group described by the rendezvous environment, or run alone.

    Parameters
    ----------
    device : str or torch.device, optional
        As :func:`grouprec.training.select_device` reads it (the CPU by default); a CUDA device
        becomes ``cuda:LOCAL_RANK``, one GPU per process.
    backend : {"gloo", "nccl"}, optional
        Chosen from the device when None: NCCL for CUDA, gloo otherwise.
    world_size : int, optional
        The number of processes expected; an error when the environment says otherwise (for
        instance when it holds no rendezvous variables because torchrun did not start us).
    env : mapping, optional
        The environment to read (``os.environ`` by default).

    Raises
    ------
    RuntimeError
        The rendezvous variables are incomplete or disagree with ``world_size``.
    ValueError
        NCCL asked for without CUDA, an unknown backend, or more processes than GPUs.
    """
    env = os.environ if env is None else env
    values = _read_env(env)
    size = 1 if values is None else values["WORLD_SIZE"]
    if world_size is not None and world_size != size:
        where = (
            "no rendezvous variables are set (RANK, WORLD_SIZE, MASTER_ADDR, ...)"
            if values is None
            else f"WORLD_SIZE={size}"
        )
        raise RuntimeError(f"world_size={world_size} was asked for, but {where}; {_HOW}")
    base = select_device(device)
    if backend is None:
        backend = "nccl" if base.type == "cuda" else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl" and base.type != "cuda":
        raise ValueError(
            f"backend='nccl' needs CUDA devices, but device={str(base)!r}; use backend='gloo' "
            "on CPUs (or device='cuda')"
        )
    rank = 0 if values is None else values["RANK"]
    local_rank = 0 if values is None else values["LOCAL_RANK"]
    if base.type == "cuda":
        if values is not None and local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank}, but this machine has {torch.cuda.device_count()} "
                "CUDA device(s): start at most one process per GPU"
            )
        base = torch.device("cuda", local_rank if values is not None else base.index or 0)
        torch.cuda.set_device(base)
    if values is None:
        return DistContext(0, 0, 1, base, None)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=size)
    return DistContext(rank, local_rank, size, base, backend)


# --------------------------------------------------------------------------------------------
# Shards of the global batches, and their loss
# --------------------------------------------------------------------------------------------


def shard_batch(batch: Mapping[str, Any], rank: int, world_size: int) -> dict[str, Any]:
    """Rank ``rank``'s contiguous slice of a global :class:`JointBatches` batch.

    Rows ``[B r / N, B (r + 1) / N)`` (integer division) of the B rows go to rank r, so the
    shards of all ranks partition the batch. The group rows come first in the batch and stay
    first in every shard.

    Returns
    -------
    dict
        ``entity``, ``pos``, ``neg`` (the rank's rows), ``n_groups`` (its group rows), the
        weights ``group_share`` :math:`N b^r_G / B_G` and ``user_share`` :math:`N b^r_U / B_U`
        of :func:`sharded_agree_loss` (0 when the batch has no row of that kind), and
        ``n_examples`` = B, so that :func:`grouprec.training.fit` weights the shard's loss by
        the size of the global batch.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in 0..{world_size - 1}, got {rank!r}")
    B, B_g = len(batch["entity"]), int(batch["n_groups"])
    lo, hi = B * rank // world_size, B * (rank + 1) // world_size
    b_g = max(0, min(hi, B_g) - lo)  # group rows in [lo, hi)
    b_u = (hi - lo) - b_g
    return {
        "entity": batch["entity"][lo:hi],
        "pos": batch["pos"][lo:hi],
        "neg": batch["neg"][lo:hi],
        "n_groups": b_g,
        "group_share": world_size * b_g / B_g if B_g else 0.0,
        "user_share": world_size * b_u / (B - B_g) if B > B_g else 0.0,
        "n_examples": B,
    }


class ShardedBatches:
    """This rank's shards of the global batches of ``batches``, as a ``make_batches`` callable.

    Every rank calls ``batches(epoch, rng)`` with an identically seeded ``rng``, so every rank
    draws the same global batches (order and negatives) and keeps its own slice of each.
    """

    def __init__(self, batches: JointBatches, rank: int, world_size: int) -> None:
        self.batches, self.rank, self.world_size = batches, int(rank), int(world_size)

    def __len__(self) -> int:
        return len(self.batches)

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        for batch in self.batches(epoch, rng):
            yield shard_batch(batch, self.rank, self.world_size)


def sharded_agree_loss(model: nn.Module, shard: Mapping[str, Any], user_weight: float) -> Tensor:
    """:math:`\\ell_r = N (b^r_G / B_G)\\, \\mathcal{L}^r_{\\mathcal{G}}
    + \\beta N (b^r_U / B_U)\\, \\mathcal{L}^r_{\\mathcal{U}}`, the rank's part of the global
    batch loss (see the module docstring).

    With one process (N = 1, both shares 1) this is :func:`agree_step_loss` of the batch.
    """
    n_g = shard["n_groups"]
    groups = {"entity": shard["entity"][:n_g], "pos": shard["pos"][:n_g], "neg": shard["neg"][:n_g]}
    users = {"entity": shard["entity"][n_g:], "pos": shard["pos"][n_g:], "neg": shard["neg"][n_g:]}
    L_G = agree_step_loss(model, {**groups, "n_groups": n_g})  # 0 without group rows
    beta_L_U = agree_step_loss(model, {**users, "n_groups": 0}, user_weight=user_weight)
    return shard["group_share"] * L_G + shard["user_share"] * beta_L_U


class LossModule(nn.Module):
    """``model`` and its loss as one module, so that DDP sees the whole step in ``forward``.

    DDP prepares its gradient all-reduce in its own ``forward``; AGREE's group scores
    (``model(...)``) and user scores (``model.score_users(...)``) must both run inside it.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> Tensor:
        return self.loss_fn(self.model, batch)


def call_module(module: nn.Module, batch: Any) -> Tensor:
    """The ``loss_fn`` of :func:`grouprec.training.fit` for a :func:`loss_module`: its output."""
    return module(batch)


def loss_module(
    model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], ctx: DistContext
) -> nn.Module:
    """``model`` and ``loss_fn`` as one module on ``ctx.device``, DDP-wrapped when ``ctx`` is
    distributed; train it with ``fit(module, call_module, ...)``."""
    module: nn.Module = LossModule(model.to(ctx.device), loss_fn)
    if ctx.distributed:
        # find_unused_parameters: a shard without group rows leaves the attention network and
        # E without gradient on its rank; DDP then counts zeros for them there.
        module = DistributedDataParallel(
            module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=True,
            broadcast_buffers=False,  # the member table never changes: no copy per step
        )
    return module


def _sum_stats(total: Tensor, count: int) -> tuple[Tensor, float]:
    """The epoch's loss total and example count summed over all ranks (one all-reduce)."""
    both = torch.stack([total, torch.tensor(float(count), dtype=total.dtype, device=total.device)])
    dist.all_reduce(both)
    return both[0], float(both[1])


def _main_validates(val_fn: ValFn, ctx: DistContext) -> ValFn:
    """``val_fn`` on rank 0, its metrics broadcast to every rank: one stop decision for all."""

    def val(wrapper: nn.Module) -> dict[str, float]:
        model = wrapper.module.model if ctx.distributed else wrapper.model
        out = [dict(val_fn(model)) if ctx.is_main else None]
        if ctx.distributed:
            dist.broadcast_object_list(out, src=0)
        return out[0]

    return val


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def fit_distributed(
    recommender: AGREERecommender,
    dataset: GroupDataset,
    task: str = "group",
    *,
    ctx: DistContext | None = None,
    checkpoint: str | os.PathLike | None = None,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
    dtype: torch.dtype = torch.float32,
) -> AGREERecommender:
    """Train ``recommender`` on ``dataset`` as :meth:`AGREERecommender.fit` does, data-parallel.

    Call it in every process of the group (after :func:`init_distributed`, or with ``ctx``
    None to have it called with ``recommender.device``). Every rank builds the same initial
    model and batches (:meth:`AGREERecommender.prepare_fit`); :func:`grouprec.training.fit`
    then trains the DDP-wrapped model on this rank's shards. At the end every rank holds the
    same trained ``model_`` (the best validation epoch) and ``history_``; rank 0 writes
    ``checkpoint`` (:func:`grouprec.training.save_checkpoint`) when given one. ``optimizer``
    is passed to :func:`grouprec.training.fit` (Adam, as :meth:`AGREERecommender.fit` uses).
    ``dtype`` is the floating type of the parameters (float64 makes the rounding of one and N
    processes too small to flip a ReLU, for checks of equivalence).

    Adam divides each gradient by its running root mean square (plus ``eps``), so a parameter
    whose exact gradient is zero moves by ``lr`` times its rounding noise over that noise's root
    mean square plus ``eps``: AGREE's output bias :math:`b_2`, which BPR's score differences
    cancel, is one. Such parameters differ between one and N processes by at most ``lr`` per
    step, a bound that float32's rounding noise can approach and float64's stays far below
    (the noise is then small against ``eps``), without changing any score difference; with SGD
    every parameter agrees to float rounding.

    Returns
    -------
    AGREERecommender
        ``recommender``, fitted; its ``history_.loss`` is the loss of the global batches.
    """
    ctx = init_distributed(recommender.device) if ctx is None else ctx
    batches, val_fn = recommender.prepare_fit(dataset, task)
    model = recommender.model_.to(dtype)
    loss_fn = partial(sharded_agree_loss, user_weight=recommender.user_weight)
    wrapper = loss_module(model, loss_fn, ctx)
    recommender.history_ = fit(
        wrapper,
        call_module,
        ShardedBatches(batches, ctx.rank, ctx.world_size),
        epochs=recommender.epochs,
        lr=recommender.lr,
        optimizer=optimizer,
        weight_decay=recommender.weight_decay,
        val_fn=None if val_fn is None else _main_validates(val_fn, ctx),
        patience=recommender.patience,
        seed=recommender.seed,
        progress=recommender.progress and ctx.is_main,
        device=ctx.device,
        reduce_stats=_sum_stats if ctx.distributed else None,
    )
    if checkpoint is not None and ctx.is_main:
        save_checkpoint(
            model,
            checkpoint,
            world_size=ctx.world_size,
            task=task,
            best_epoch=recommender.history_.best_epoch,
            loss=list(recommender.history_.loss),
        )
    if ctx.distributed:
        dist.barrier()  # the checkpoint exists before any rank goes on
    return recommender


# --------------------------------------------------------------------------------------------
# Launching N local processes from Python
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, fn: Callable, world_size: int, port: int, args: tuple, queue) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # One process per share of the cores, as torchrun's OMP_NUM_THREADS=1 intends.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        result = fn(*args)
        if rank == 0:
            # Plain pickle, by value: torch's queue would share tensors through file
            # descriptors that close when this process ends.
            queue.put(pickle.dumps(result))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch_local(fn: Callable[..., Any], world_size: int, *args: Any) -> Any:
    """Run ``fn(*args)`` in ``world_size`` new local processes, as ``torchrun`` would.

    Each process gets the rendezvous environment (``RANK``, ``WORLD_SIZE``, ...) and a share
    of the CPU threads; ``fn`` must be importable (defined at a module's top level) and call
    :func:`init_distributed` (or :func:`fit_distributed`). Returns rank 0's return value.
    An exception in any process is raised here.
    """
    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size!r}")
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(
        _worker,
        args=(fn, world_size, _free_port(), args, queue),
        nprocs=world_size,
        join=True,
        start_method="spawn",
    )
    return pickle.loads(queue.get())


# --------------------------------------------------------------------------------------------
# Command line: torchrun --nproc_per_node N -m grouprec.distributed --dataset PATH
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m grouprec.distributed``; returns the exit code.

    The arguments and the printing are those of ``python -m grouprec ddp``
    (:func:`grouprec.__main__.ddp_main`), where every command's command line lives.
    """
    from grouprec.__main__ import ddp_main

    return ddp_main(argv)


if __name__ == "__main__":
    sys.exit(main())
