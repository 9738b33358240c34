"""How long one epoch of MF + BPR takes over all CAMRa2011 user training pairs.

One epoch = shuffle every training pair, draw its negatives in one vectorised call, and take one
Adam step per batch of (user, positive, negatives) triples, exactly as
:func:`grouprec.training.fit` trains (validation is left out: it is not part of an epoch's cost).
The first epoch is a warm-up and is not counted.

Run::

    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/bench_mf_epoch.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from grouprec.constants import DEFAULT_SEED
from grouprec.data import benchmark_clean, load_dataset, split_validation
from grouprec.preference import MF, NeuMF, bpr_step_loss
from grouprec.training import TripletBatches, fit, seed_everything


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="camra2011", help="dataset name or folder")
    parser.add_argument("--data-dir", help="folder holding named datasets ($GROUPREC_DATA)")
    parser.add_argument("--model", choices=("mf", "neumf"), default="mf")
    parser.add_argument("--d", type=int, default=32, help="embedding width")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--n-neg", type=int, default=1, help="negatives per positive pair")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args(argv)

    ds = split_validation(benchmark_clean(load_dataset(args.dataset, args.data_dir)), DEFAULT_SEED)
    train = ds.user_train
    seed_everything(DEFAULT_SEED)
    cls = MF if args.model == "mf" else NeuMF
    model = cls(ds.n_users, ds.n_items, d=args.d)
    batches = TripletBatches(train, ds.n_items, n_neg=args.n_neg, batch_size=args.batch_size)

    rng = np.random.default_rng(DEFAULT_SEED)
    start = time.perf_counter()
    for _ in batches(1, rng):
        pass
    sampling_s = time.perf_counter() - start

    history = fit(
        model,
        bpr_step_loss,
        batches,
        epochs=args.epochs + 1,
        lr=0.01,
        progress=False,
        device=args.device,
    )
    timed = history.epoch_seconds[1:]
    epoch_s = statistics.median(timed)
    print(f"dataset {ds.name}: {batches.n_pairs:,} user training pairs, {ds.n_items:,} items")
    print(
        f"model {args.model} (d={args.d}), batch size {args.batch_size}, "
        f"{args.n_neg} negative(s) per pair, {len(batches)} batches per epoch"
    )
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"shuffle + negative sampling alone: {sampling_s:.3f} s per epoch")
    print(
        f"epoch time over {len(timed)} epochs: median {epoch_s:.3f} s "
        f"(min {min(timed):.3f}, max {max(timed):.3f})"
    )
    print(f"throughput: {batches.n_pairs / epoch_s:,.0f} pairs per second")
    print(f"mean BPR loss of the last epoch: {history.loss[-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
