"""How long one epoch of AGREE + BPR takes over all CAMRa2011 group and user training pairs.

One epoch = shuffle every group and user training pair together, draw 6 negatives for each (the
setting of the original AGREE code) in two vectorised calls, and take one Adam step per mixed
batch, exactly as :class:`grouprec.aggregation.AGREERecommender` trains through
:func:`grouprec.training.fit` (validation is left out: it is not part of an epoch's cost). The
forward pass is vectorised over the batch and over padded member lists: no Python loop runs per
pair or per member. One warm-up epoch is not counted.

Two numbers of pairs are reported: positive pairs (each group or user training pair) and BPR
pairs (positive, negative), six per positive; the target of 6 s per epoch is about 250,000 BPR
pairs per second on the files as published. Wall time depends on what else runs on the machine,
so the CPU time of the process (all threads together) is printed too.

Run::

    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_agree_epoch.py
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_agree_epoch.py --threads 1
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
from grouprec.training import fit, seed_everything

#: Seconds per epoch the benchmark should stay under on two CPU cores.
TARGET_SECONDS = 6.0


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
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    ds = load_dataset(args.dataset, args.data_dir)
    if not args.published:
        ds = split_validation(remove_test_leakage(benchmark_clean(ds)), DEFAULT_SEED)
    recommender = AGREERecommender(d=args.d, n_neg=args.n_neg, batch_size=args.batch_size)
    seed_everything(DEFAULT_SEED)
    model = recommender.build(ds)
    batches = JointBatches(
        ds.group_train, ds.user_train, ds.n_items, n_neg=args.n_neg, batch_size=args.batch_size
    )
    loss_fn = partial(agree_step_loss, user_weight=recommender.user_weight)

    rng = np.random.default_rng(DEFAULT_SEED)
    start = time.perf_counter()
    for _ in batches(1, rng):
        pass
    sampling_s = time.perf_counter() - start

    train = partial(fit, model, loss_fn, batches, lr=0.01, progress=False, device=args.device)
    train(epochs=1)  # warm-up: first-touch memory, thread pools
    cpu_start = time.process_time()
    history = train(epochs=args.epochs)
    cpu_s = (time.process_time() - cpu_start) / args.epochs

    timed = history.epoch_seconds
    epoch_s = statistics.median(timed)
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
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"shuffle + negative sampling alone: {sampling_s:.3f} s per epoch")
    print(
        f"epoch time over {len(timed)} epochs: median {epoch_s:.3f} s "
        f"(min {min(timed):.3f}, max {max(timed):.3f}); CPU time {cpu_s:.3f} s per epoch"
    )
    print(
        f"throughput: {n_bpr / epoch_s:,.0f} BPR pairs per second "
        f"({n_pos / epoch_s:,.0f} positive pairs per second)"
    )
    verdict = "met" if epoch_s < TARGET_SECONDS else "missed"
    print(f"target: an epoch under {TARGET_SECONDS:.0f} s -> {verdict}")
    print(f"mean loss of the last epoch: {history.loss[-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
