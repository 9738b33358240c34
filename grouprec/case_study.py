"""Case study: the whole group-recommendation pipeline on one dataset, end to end.

For every seed: load and clean the data (the pipeline of chapter 1), carve a validation split,
select each model's hyperparameters on validation NDCG@10, refit, and evaluate the selected
model once on the group test cases (tie-aware, against the published negative lists). The table
reports the mean over seeds.

The validation negatives are drawn like the benchmark's own lists (from every item, so some are
items the group already has; ``split_validation(..., negatives="any")``). Validation then asks
the same question as the test: should a model rank items the group already consumed below new
ones? Each model's "filter consumed items" switch (:class:`SeenFilter`) is chosen on validation.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from grouprec import data as D
from grouprec.baselines import EASE, ItemKNN, Popularity
from grouprec.evaluation import evaluate, select
from grouprec.preference import BPRRecommender

METRICS = ("HR@5", "NDCG@5", "HR@10", "NDCG@10")

#: Best published tie-aware numbers (group task, 100 listed negatives, mean of 3 seeds), from the
#: archived logs of the RecSys 2026 reproducibility artifact of Ma & Cheng; those runs picked
#: their best epoch on the test set.
PUBLISHED = {
    "camra2011": pd.DataFrame(
        {"HR@5": [0.644, 0.634, 0.606], "NDCG@5": [0.438, 0.431, 0.400]},
        index=["CubeRec", "ConsRec", "AGREE"],
    ),
    "mafengwo": pd.DataFrame(
        {"HR@5": [0.868, np.nan], "NDCG@5": [0.758, 0.767]}, index=["ConsRec", "CubeRec"]
    ),
}
GOAL = {"camra2011": (0.644, 0.438), "mafengwo": (0.868, 0.767)}


class SeenFilter:
    """Wrap a recommender so that items the entity already consumed score ``-inf``.

    Parameters
    ----------
    model : Recommender
        Any model of the common interface.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.name = f"{getattr(model, 'name', type(model).__name__)}"

    def fit(self, dataset: D.GroupDataset, task: str) -> SeenFilter:
        self.model.fit(dataset, task)
        return self.use_seen(dataset, task)

    def use_seen(self, dataset: D.GroupDataset, task: str = "group") -> SeenFilter:
        """Take the consumed items from ``dataset`` for an already fitted model."""
        self.seen_ = dataset.train_matrix(task).tocsr()
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c); consumed items get ``-inf``."""
        scores = np.array(self.model.score(entities, items), dtype=np.float64)  # (n, c)
        rows = np.repeat(np.asarray(entities), items.shape[1])
        seen = np.asarray(self.seen_[rows, np.asarray(items).ravel()]).reshape(items.shape) > 0
        scores[seen] = -np.inf
        return scores


@dataclass
class ModelSpec:
    """A model family: how to build one, and the grid searched on validation."""

    name: str
    factory: Callable
    grid: dict
    quick_grid: dict = field(default_factory=dict)


def model_specs(quick: bool = False) -> list[ModelSpec]:
    """The models of the case study, simple baselines first."""
    specs = [
        ModelSpec("Popularity", Popularity, {"alpha": [0.0, 0.5, 1.0]}),
        ModelSpec(
            "ItemKNN",
            ItemKNN,
            {"k": [20, 100], "alpha": [0.5, 1.0]},
            {"k": [100], "alpha": [0.5, 1.0]},
        ),
        ModelSpec(
            "EASE",
            EASE,
            {"lam": [300.0, 1000.0, 3000.0], "alpha": [0.5, 1.0]},
            {"lam": [1000.0], "alpha": [0.5, 1.0]},
        ),
        ModelSpec(
            "MF-BPR",
            lambda seed=0, **p: BPRRecommender(model="mf", seed=seed, **p),
            {"d": [32, 64], "epochs": [30]},
            {"d": [32], "epochs": [10]},
        ),
    ]
    try:  # the learned aggregation of chapter 6
        from grouprec.aggregation import AGREERecommender

        specs.append(
            ModelSpec("AGREE", AGREERecommender, {"epochs": [20]}, {"epochs": [5]}),
        )
    except ImportError:  # pragma: no cover - present in the full package
        pass
    try:  # the GAN recommender of chapter 8
        from grouprec.gan_recommender import CFGANRecommender

        specs.append(ModelSpec("CFGAN", CFGANRecommender, {}, {}))
    except ImportError:  # pragma: no cover
        pass
    if quick:
        for spec in specs:
            spec.grid = spec.quick_grid or spec.grid
    return specs


def prepare(dataset: D.GroupDataset, seed: int) -> tuple[D.GroupDataset, D.GroupDataset]:
    """Chapter 1's pipeline: the cleaned data, and a copy with a validation split whose
    negatives are drawn like the benchmark's lists."""
    clean = D.remove_test_leakage(D.benchmark_clean(dataset))
    return clean, D.split_validation(clean, seed=seed, negatives="any")


@dataclass
class CaseStudyResult:
    """Results of :func:`run_case_study`."""

    dataset: str
    table: pd.DataFrame  # mean over seeds, one row per model
    per_seed: pd.DataFrame  # one row per (model, seed)

    def to_json(self) -> dict:
        """The ``--json`` document: test metrics of validation-selected models, seed means."""
        rows = []
        for model, row in self.table.iterrows():
            rows.append(
                {
                    "model": model,
                    **{m: float(row[m]) for m in METRICS},
                    "train_seconds": float(row["train_seconds"]),
                }
            )
        return {"dataset": self.dataset, "results": rows}

    def goal(self) -> pd.DataFrame:
        """The best model's HR@5 and NDCG@5 against the published goal."""
        best = self.table.sort_values("NDCG@5", ascending=False).iloc[0]
        hr, ndcg = GOAL.get(self.dataset, (np.nan, np.nan))
        return pd.DataFrame(
            {"ours (" + str(best.name) + ")": [best["HR@5"], best["NDCG@5"]], "goal": [hr, ndcg]},
            index=["HR@5", "NDCG@5"],
        ).assign(reached=lambda f: f.iloc[:, 0] >= f["goal"])


def run_case_study(
    dataset: str | D.GroupDataset,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    progress: bool = True,
    data_dir: str | None = None,
    models: Sequence[str] | None = None,
) -> CaseStudyResult:
    """Select, train and evaluate every model on the group task, for each seed.

    Parameters
    ----------
    dataset : str or GroupDataset
        A name or folder (see :func:`grouprec.data.load_dataset`), or loaded data.
    seeds : sequence of int
        One validation split and one training run per seed.
    quick : bool
        Smaller grids and fewer epochs.
    progress : bool
        Show progress bars.
    models : sequence of str, optional
        Names of the models to run (default: all of :func:`model_specs`).
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    raw = dataset if isinstance(dataset, D.GroupDataset) else D.load_dataset(dataset, data_dir)
    specs = model_specs(quick)
    if models is not None:
        known = {s.name for s in specs}
        unknown = sorted(set(models) - known)
        if unknown:
            raise ValueError(f"unknown models {unknown}; choose from {sorted(known)}")
        specs = [s for s in specs if s.name in set(models)]
    rows = []
    for seed in seeds:
        clean, ds = prepare(raw, seed)
        for spec in tqdm(specs, desc=f"{raw.name} seed {seed}", disable=not progress):
            factory = _seeded(spec.factory, seed)
            params, _ = select(factory, spec.grid, ds, "group", "NDCG@10", progress=False)
            # Filter consumed items or not: decided on validation too.
            model = factory(**params).fit(ds, "group")
            val_raw = evaluate(model, ds, "group", "val").iloc[0]["NDCG@10"]
            val_filtered = evaluate(SeenFilter(model).use_seen(ds), ds, "group", "val")
            use_filter = bool(val_filtered.iloc[0]["NDCG@10"] > val_raw)
            # Refit once on all training data (train + validation), then test once.
            start = time.perf_counter()
            final = factory(**params).fit(clean, "group")
            seconds = time.perf_counter() - start
            if use_filter:
                final = SeenFilter(final).use_seen(clean)
            test = evaluate(final, clean, "group", "test").iloc[0]
            rows.append(
                {
                    "model": spec.name,
                    "seed": seed,
                    **{m: float(test[m]) for m in METRICS},
                    "train_seconds": seconds,
                    "filter_consumed": use_filter,
                    "params": json.dumps(params, sort_keys=True),
                }
            )
    per_seed = pd.DataFrame(rows)
    table = per_seed.groupby("model", sort=False)[[*METRICS, "train_seconds"]].mean()
    table["filter_consumed"] = per_seed.groupby("model", sort=False)["filter_consumed"].mean()
    return CaseStudyResult(raw.name, table, per_seed)


def _seeded(factory: Callable, seed: int) -> Callable:
    """Pass ``seed`` to factories that take one (neural models), leave the others alone."""
    if "seed" in inspect.signature(factory).parameters:
        return lambda **p: factory(seed=seed, **p)
    return factory


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m grouprec case-study``."""
    parser.add_argument(
        "--dataset", required=True, help="dataset name (camra2011, mafengwo) or folder"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        metavar="SEED",
        help="seeds: one validation split and training run each (default: 0 1 2)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller grids, fewer epochs")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="run only these models")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--data-dir", help="folder holding named datasets (default: $GROUPREC_DATA)"
    )


def run_cli(args: argparse.Namespace) -> int:
    """Run ``python -m grouprec case-study`` with parsed ``args``."""
    start = time.perf_counter()
    result = run_case_study(
        args.dataset, seeds=args.seeds, quick=args.quick, data_dir=args.data_dir, models=args.models
    )
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(
            f"\ngroup task, {result.dataset}: test metrics of validation-selected models, "
            f"mean over seeds {list(args.seeds)}"
        )
        print(result.table.round(4).to_string())
        print("\nagainst the published goal (tie-aware, mean of 3 seeds):")
        print(result.goal().round(4).to_string())
    print(f"\ntotal time {time.perf_counter() - start:.1f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result.to_json(), handle, indent=2)
        print(f"wrote {args.json}")
    return 0
