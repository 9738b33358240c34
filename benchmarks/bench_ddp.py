"""Training pairs per second of AGREE with 1 and 2 processes (gloo, CPU), and on one GPU.

The data is the large synthetic group dataset of :mod:`grouprec.synthetic_large`, drawn in
memory: by default a fifth of the generator's default size (200,000 users, 20,000 groups, 10,000
items), so that the run, including each process's draw of an epoch's order and negatives, takes
about a minute on two cores; ``--users 1000000 --groups 100000 --items 50000`` gives the full
size. Pass ``--dataset FOLDER`` to read one written by ``python -m grouprec synthetic-large
FOLDER`` instead (parsing the files of the full size takes longer than the benchmark).

Each run takes ``--warmup`` steps that are not timed, then ``--steps`` timed steps of one
global batch each (``--batch-size`` positive pairs, with ``--n-neg`` negatives each), exactly as
:func:`grouprec.distributed.fit_distributed` trains: the 1-process run trains the plain model
in this process; the N-process runs start N processes (:func:`grouprec.distributed.launch_local`,
one CPU thread each when N equals the cores), each taking its 1/N shard of every global batch,
with DistributedDataParallel averaging the gradients. Drawing an epoch's order and negatives
happens before the first step and is not timed. With CUDA, one more run trains on one GPU.

The reported rate is positive training pairs per second of wall time. On a CPU the processes
share the machine's cores and memory bandwidth, and every step all-reduces the gradient of
every embedding table (dense, so a million user rows per step): expect fewer pairs per second
with two processes than with one on a small machine. Numbers depend on the machine.

Run::

    .venv/bin/python benchmarks/bench_ddp.py                 # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_ddp.py --users 1000000 --groups 100000 --items 50000
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import pandas as pd
import torch

from grouprec.aggregation import AGREERecommender
from grouprec.data import load_dataset
from grouprec.distributed import (
    ShardedBatches,
    call_module,
    init_distributed,
    launch_local,
    loss_module,
    sharded_agree_loss,
)
from grouprec.synthetic_large import generate_large
from grouprec.training import fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # timing only: wait for the queued kernels


def timed_run(dataset, params: dict, warmup: int, steps: int, env: dict | None = None) -> float:
    """Positive pairs per second over ``steps`` global batches after ``warmup`` ones.

    Runs in every process of the group (or alone, ``env={}``): the same pieces as
    :func:`grouprec.distributed.fit_distributed`, with the epoch cut to ``warmup + steps``
    batches and a clock read as each batch is asked for (after the previous step ended).
    """
    ctx = init_distributed(params.get("device"), env=env)
    rec = AGREERecommender(**params)
    batches, _ = rec.prepare_fit(dataset, "group")
    if len(batches) < warmup + steps:
        raise ValueError(
            f"an epoch has {len(batches)} batches, fewer than warmup + steps = {warmup + steps}"
        )
    module = loss_module(rec.model_, partial(sharded_agree_loss, user_weight=rec.user_weight), ctx)
    shards = ShardedBatches(batches, ctx.rank, ctx.world_size)
    clock: list[float] = []

    def cut(epoch, rng):
        for k, shard in enumerate(shards(epoch, rng)):
            if k == warmup + steps:
                break
            _sync(ctx.device)
            clock.append(time.perf_counter())
            yield shard
        _sync(ctx.device)
        clock.append(time.perf_counter())

    fit(module, call_module, cut, epochs=1, lr=rec.lr, seed=rec.seed, progress=False,
        device=ctx.device)  # fmt: skip
    return steps * rec.batch_size / (clock[-1] - clock[warmup])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", help="a folder written by `python -m grouprec synthetic-large`"
    )
    parser.add_argument("--users", type=int, default=200_000, help="users of the drawn data")
    parser.add_argument("--groups", type=int, default=20_000, help="groups of the drawn data")
    parser.add_argument("--items", type=int, default=10_000, help="items of the drawn data")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="CPU runs")
    parser.add_argument("--batch-size", type=int, default=8192, help="global batch (pairs)")
    parser.add_argument("--n-neg", type=int, default=4, help="negatives per positive pair")
    parser.add_argument("--dim", type=int, default=32, help="embedding width d")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per run")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU run")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    if args.dataset:
        dataset = load_dataset(args.dataset)
    else:
        dataset = generate_large(args.users, args.groups, args.items).to_dataset()
    pairs = len(dataset.user_train) + len(dataset.group_train)
    print(
        f"data: {dataset.n_users:,} users, {dataset.n_groups:,} groups, {dataset.n_items:,} "
        f"items, {pairs:,} training pairs ({time.perf_counter() - t0:.1f} s to get)"
    )
    params = dict(d=args.dim, batch_size=args.batch_size, n_neg=args.n_neg, epochs=1)
    rows = []
    for n in args.processes:
        if n == 1:  # plain training in this process, all its threads
            rate = timed_run(dataset, params, args.warmup, args.steps, env={})
            threads = torch.get_num_threads()
        else:
            rate = launch_local(timed_run, n, dataset, params, args.warmup, args.steps)
            threads = max(1, torch.get_num_threads() // n)
        rows.append({"run": f"CPU, {n} process(es)", "threads each": threads, "pairs/s": rate})
        print(f"{rows[-1]['run']}: {rate:,.0f} pairs/s", flush=True)
    if torch.cuda.is_available() and not args.no_gpu:
        rate = timed_run(dataset, {**params, "device": "cuda"}, args.warmup, args.steps, env={})
        rows.append({"run": f"GPU ({torch.cuda.get_device_name()})", "threads each": None,
                     "pairs/s": rate})  # fmt: skip
        print(f"{rows[-1]['run']}: {rate:,.0f} pairs/s", flush=True)
    table = pd.DataFrame(rows).set_index("run")
    print(table.to_string(float_format=lambda x: f"{x:,.0f}"))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
