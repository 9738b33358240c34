"""How long one epoch of AGREE + BPR takes over all CAMRa2011 group and user training pairs.

One epoch = shuffle every group and user training pair together, draw 6 negatives for each (the
setting of the original AGREE code) in two vectorised calls, and take one Adam step per mixed
batch, exactly as :class:`grouprec.aggregation.AGREERecommender` trains through
:func:`grouprec.training.fit` (validation is left out: it is not part of an epoch's cost). The
forward pass is vectorised over the batch and over padded member lists: no Python loop runs per
pair or per member. The shuffle and the negatives are drawn with NumPy on the CPU whatever the
device (so that every device trains on the same numbers), and each epoch's arrays are moved to the
device in one copy.

Each device named gets one warm-up epoch (first-touch memory, thread pools, CUDA kernels), then
``--epochs`` timed ones; on CUDA the device is synchronised before and after the timed epochs, so
their time includes all the work queued. Two numbers of pairs are reported: positive pairs (each
group or user training pair) and BPR pairs (positive, negative), six per positive. Each device's
median epoch time is printed beside its goal (``GOALS``); wall time depends on what else runs on
the machine, so the CPU time of the process (all threads together) is printed too.

Run::

    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_agree_epoch.py --threads 2
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_agree_epoch.py --device cuda cpu
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_agree_epoch.py --published
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial

import numpy as np
import torch

from grouprec.aggregation import AGREERecommender, JointBatches, agree_step_loss
from grouprec.constants import DEFAULT_SEED
from grouprec.data import benchmark_clean, load_dataset, remove_test_leakage, split_validation
from grouprec.training import fit, seed_everything, select_device

#: Seconds per epoch each kind of device should stay under: the CPU with two threads
#: (``--threads 2``), one GPU (an NVIDIA H200).
GOALS = {"cpu": 2.5, "cuda": 0.1}


def _devices(names: list[str]) -> list[str]:
    """The devices to time: ``all`` is the CPU plus CUDA where this machine has it."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out += ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epochs(model, loss_fn, batches, device: torch.device, epochs: int) -> dict[str, float]:
    """Median, min and max wall time of ``epochs`` epochs after a warm-up, and CPU time."""
    train = partial(fit, model, loss_fn, batches, lr=0.01, progress=False, device=device)
    train(epochs=1)  # warm-up
    _synchronize(device)
    cpu_start = time.process_time()
    history = train(epochs=epochs)
    _synchronize(device)
    timed = history.epoch_seconds  # each epoch ends by reading its mean loss: all work is done
    return {
        "median": statistics.median(timed),
        "min": min(timed),
        "max": max(timed),
        "cpu": (time.process_time() - cpu_start) / epochs,
        "loss": history.loss[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="camra2011", help="dataset name or folder")
    parser.add_argument("--data-dir", help="folder holding named datasets ($GROUPREC_DATA)")
    parser.add_argument(
        "--published",
        action="store_true",
        help="train on the files as published (no cleaning, no validation split), as the "
        "original AGREE code does; by default the book's standard pipeline is used",
    )
    parser.add_argument("--d", type=int, default=32, help="embedding width")
    parser.add_argument("--batch-size", type=int, default=4096, help="positive pairs per batch")
    parser.add_argument("--n-neg", type=int, default=6, help="negatives per positive pair")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's own choice)"
    )
    parser.add_argument(
        "--device",
        nargs="+",
        default=["all"],
        help="devices to time, one after the other: cpu, cuda, mps, or all (the CPU, and CUDA "
        "where available; the default)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    ds = load_dataset(args.dataset, args.data_dir)
    if not args.published:
        ds = split_validation(remove_test_leakage(benchmark_clean(ds)), DEFAULT_SEED)
    recommender = AGREERecommender(d=args.d, n_neg=args.n_neg, batch_size=args.batch_size)
    batches = JointBatches(
        ds.group_train, ds.user_train, ds.n_items, n_neg=args.n_neg, batch_size=args.batch_size
    )
    loss_fn = partial(agree_step_loss, user_weight=recommender.user_weight)

    rng = np.random.default_rng(DEFAULT_SEED)
    start = time.perf_counter()
    for _ in batches(1, rng):
        pass
    sampling_s = time.perf_counter() - start

    n_pos = batches.n_pairs
    n_bpr = n_pos * args.n_neg
    S = recommender.build(ds).members.shape[1]
    print(
        f"dataset {ds.name} ({'files as published' if args.published else 'standard pipeline'}): "
        f"{len(ds.group_train):,} group + {len(ds.user_train):,} user training pairs = "
        f"{n_pos:,} positive pairs, {n_bpr:,} BPR pairs with {args.n_neg} negatives each"
    )
    print(
        f"AGREE d={args.d}, attention {recommender.attention_dim}, prediction hidden "
        f"{recommender.hidden}; member table {ds.n_groups} x {S}; batch size "
        f"{args.batch_size}, {len(batches)} batches per epoch"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"shuffle + negative sampling alone (NumPy, CPU): {sampling_s:.3f} s per epoch")
    for name in _devices(args.device):
        device = select_device(name)
        seed_everything(DEFAULT_SEED)
        model = recommender.build(ds)
        t = time_epochs(model, loss_fn, batches, device, args.epochs)
        goal = GOALS.get(device.type)
        verdict = (
            ""
            if goal is None
            else f"; goal {goal:g} s -> {'met' if t['median'] <= goal else 'missed'}"
        )
        print(
            f"{name:>5}: epoch {t['median']:.3f} s median of {args.epochs} "
            f"(min {t['min']:.3f}, max {t['max']:.3f}), CPU time {t['cpu']:.3f} s{verdict}; "
            f"{n_bpr / t['median']:,.0f} BPR pairs/s; last mean loss {t['loss']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
