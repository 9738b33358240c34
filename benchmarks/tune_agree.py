"""Which training settings suit AGREE (or the consensus model)? A validation-only search, as the
case study would run it.

The case study (:mod:`grouprec.case_study`) trains AGREE and the consensus model with fixed
settings and a small grid, and selects the number of epochs. This script asks, on the protocol's
validation cases alone (:func:`grouprec.protocol.validation_data`; the test file is never
scored), how learning rate, negatives per pair, embedding size, batch size, dropout, weight decay,
AGREE's layer sizes and its user-loss weight change the best validation NDCG@10 and the epoch at
which it is reached, for a few seeds each (each seed draws its own validation split and its own
initial weights). What it prints is what may justify a change of the case study's grid.

Run::

    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/tune_agree.py --dataset mafengwo
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/tune_agree.py --dataset camra2011 \
        --seeds 0 --lr 0.01 0.005
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/tune_agree.py --model consensus \
        --lr 0.002 --batch-size 4096 --weight-decay 0 1e-4
    GROUPREC_DATA=/path/to/data .venv/bin/python benchmarks/tune_agree.py --dataset camra2011 \
        --seeds 0 1 2 --lr 0.01 --weight-decay 1e-4 --user-weight 1 8

The last one is the search behind the case study's grid for AGREE's user-loss weight: on
CAMRa2011 (seeds 0-2) it found a mean validation NDCG@10 of 0.454 for weight 1 and 0.494 for 8;
the same search on Mafengwo found 0.722 for 1 and 0.694 for 4.

Each fit trains up to ``--epochs`` epochs with the case study's patience; a setting costs about
one AGREE fit of the case study per seed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from functools import partial

import pandas as pd
import torch

from grouprec import protocol as P
from grouprec.aggregation import AGREERecommender, ConsensusRecommender
from grouprec.data import load_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mafengwo", help="camra2011 or mafengwo")
    parser.add_argument("--model", default="agree", choices=["agree", "consensus"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.01, 0.005, 0.002])
    parser.add_argument("--n-neg", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--d", type=int, nargs="+", default=[32])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[2048])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0], help="AGREE only")
    parser.add_argument("--weight-decay", type=float, nargs="+", default=[0.0])
    parser.add_argument("--attention-dim", type=int, nargs="+", default=[16], help="AGREE only")
    parser.add_argument("--hidden", type=int, nargs="+", default=[8], help="AGREE only")
    parser.add_argument("--user-weight", type=float, nargs="+", default=[1.0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    # The searched axes, named as the recommenders' parameters; AGREE has three more.
    axes = {
        "lr": args.lr,
        "n_neg": args.n_neg,
        "d": args.d,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "user_weight": args.user_weight,
    }
    if args.model == "agree":  # the case study's architecture and patience
        axes |= {
            "dropout": args.dropout,
            "attention_dim": args.attention_dim,
            "hidden": args.hidden,
        }
        build = partial(AGREERecommender, patience=6)
    else:  # the consensus model has no dropout
        build = partial(ConsensusRecommender, layers=1, patience=5)

    train = P.training_data(load_dataset(args.dataset))
    rows = []
    for seed in args.seeds:
        data = P.validation_data(train, seed)
        for values in itertools.product(*axes.values()):
            params = dict(zip(axes, values, strict=True))
            model = build(epochs=args.epochs, seed=seed, **params)
            t0 = time.perf_counter()
            model.fit(data, "group")
            best = model.history_.best
            rows.append(
                {
                    "seed": seed,
                    **params,
                    "best epoch": model.history_.best_epoch,
                    "val NDCG@10": best[P.SELECTION_METRIC],
                    "val HR@10": best.get("HR@10", float("nan")),
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1))
            sys.stdout.flush()
    table = pd.DataFrame(rows)
    summary = table.groupby(list(axes)).agg(
        val_ndcg10=("val NDCG@10", "mean"),
        val_ndcg10_sd=("val NDCG@10", "std"),
        best_epoch=("best epoch", "mean"),
        seconds=("seconds", "mean"),
    )
    print(f"\n{args.model}, {args.dataset}, group validation (mean over seeds {args.seeds}):")
    print(summary.sort_values("val_ndcg10", ascending=False).round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
