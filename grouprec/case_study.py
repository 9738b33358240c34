"""Case study: the whole group-recommendation pipeline on one dataset, end to end.

For every seed: load and clean the data (the pipeline of chapter 1), carve a validation split,
select each model's hyperparameters on validation NDCG@10, refit on train + validation, and
evaluate the selected model once on the group test cases (tie-aware, against the published
negative lists). The table reports the mean over seeds.

The validation negatives are drawn like the benchmark's own lists (from every item, so some are
items the group already has; ``split_validation(..., negatives="any")``). Validation then asks
the same question as the test: should a model rank items the group already consumed below new
ones? Each model's "filter consumed items" switch (:class:`grouprec.evaluation.ConsumedFilter`,
or a GAN's own ``filtered``) is chosen on validation; the same refitted models are also reported
without the filter, for a like-for-like comparison with published models that do not filter.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from grouprec import data as D
from grouprec import fetch
from grouprec.aggregation import AGREERecommender
from grouprec.baselines import EASE, ItemKNN, Popularity
from grouprec.constants import DATA_ENV
from grouprec.evaluation import ConsumedFilter, Recommender, evaluate, select
from grouprec.gan_recommender import CFGANRecommender
from grouprec.preference import BPRRecommender
from grouprec.training import select_device

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


@dataclass
class ModelSpec:
    """A model family: how to build one, and the grid searched on validation."""

    name: str
    factory: Callable
    grid: dict
    quick_grid: dict = field(default_factory=dict)


def model_specs(quick: bool = False) -> list[ModelSpec]:
    """The models of the case study, simple baselines first.

    AGREE and CFGAN use the settings of chapters 06 and 08, selected there on validation; their
    grids here search only what those chapters found to depend on the dataset (AGREE's user-loss
    weight, CFGAN's weight of the group's own row in its condition).
    """
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
        ModelSpec(  # the learned aggregation of chapter 06
            "AGREE",
            partial(
                AGREERecommender,
                d=32,
                attention_dim=16,
                hidden=8,
                lr=0.01,
                n_neg=2,
                batch_size=4096,
                patience=3,
            ),
            {"user_weight": [0.1, 1.0], "epochs": [10]},
            {"user_weight": [1.0], "epochs": [4]},
        ),
        ModelSpec(  # the GAN recommender of chapter 08
            "CFGAN",
            partial(
                CFGANRecommender,
                hidden=(64,),
                s_pm=0.1,
                s_zr=0.1,
                alpha_zr=0.1,
                lr=5e-3,
                batch_size=128,
                patience=6,
                train_rows="all",
            ),
            {"alpha": [1.0, 0.5], "epochs": [15]},
            {"alpha": [1.0], "epochs": [4]},
        ),
    ]
    if quick:
        for spec in specs:
            spec.grid = spec.quick_grid or spec.grid
    return specs


def prepare(dataset: D.GroupDataset, seed: int) -> tuple[D.GroupDataset, D.GroupDataset]:
    """Chapter 1's pipeline: the cleaned data, and a copy with a validation split whose
    negatives are drawn like the benchmark's lists."""
    clean = D.remove_test_leakage(D.benchmark_clean(dataset))
    return clean, D.split_validation(clean, seed=seed, negatives="any")


def with_and_without_filter(
    model: Recommender, dataset: D.GroupDataset, task: str = "group"
) -> tuple[Recommender, Recommender]:
    """The fitted ``model`` with consumed items filtered out, and without.

    GAN recommenders filter their own output (``filtered(True)`` / ``filtered(False)`` give both
    versions of the same fitted model); any other model is wrapped in
    :class:`grouprec.evaluation.ConsumedFilter` with the consumed items of ``dataset``.
    """
    if hasattr(model, "filtered"):
        return model.filtered(True), model.filtered(False)
    return ConsumedFilter.wrap(model, dataset, task), model


@dataclass
class CaseStudyResult:
    """Results of :func:`run_case_study`.

    ``table`` holds the test metrics of each model with the consumed-item filter chosen on
    validation (the fraction of seeds that chose it in ``filter_consumed``); ``table_unfiltered``
    the same refitted models evaluated without the filter. ``per_seed`` has one row per (model,
    seed): both sets of metrics (the unfiltered ones prefixed ``"unfiltered "``), the refit time
    ``train_seconds``, the whole time of the model for that seed ``seconds`` (selection, refit
    and test), the selected ``params`` and the ``refit_epochs``. ``models`` holds the refitted
    models of the last seed, unfiltered, by name, and ``data`` the cleaned dataset they were
    fitted on, for a closer look.
    """

    dataset: str
    table: pd.DataFrame  # mean over seeds, one row per model, validation-chosen filter
    per_seed: pd.DataFrame  # one row per (model, seed)
    table_unfiltered: pd.DataFrame = field(default_factory=pd.DataFrame)  # the same, no filter
    models: dict[str, Recommender] = field(default_factory=dict)  # last seed's refitted models
    data: D.GroupDataset | None = None  # what ``models`` were fitted on

    def to_json(self) -> dict:
        """The ``--json`` document: test metrics of validation-selected models, seed means.

        ``results`` has one row per model (``model``, the four metrics, ``train_seconds``) with
        the filter chosen on validation; ``results_without_filter`` has rows of the same format
        for the same models evaluated without the filter; ``seconds_per_model`` is each model's
        whole time (selection, refit and test) summed over the seeds; ``selected`` has one row
        per (model, seed) with the selected ``params``, the epochs of the refit ``refit_epochs``
        (the best validation epoch of an early-stopped model; None for models without epochs)
        and whether the filter was chosen (``filter_consumed``).
        """
        selected = [
            {
                "model": row["model"],
                "seed": int(row["seed"]),
                "params": json.loads(row["params"]),
                "refit_epochs": None if pd.isna(row["refit_epochs"]) else int(row["refit_epochs"]),
                "filter_consumed": bool(row["filter_consumed"]),
            }
            for _, row in self.per_seed.iterrows()
        ]
        return {
            "dataset": self.dataset,
            "results": _json_rows(self.table),
            "results_without_filter": _json_rows(self.table_unfiltered),
            "seconds_per_model": {k: float(v) for k, v in self.seconds_per_model().items()},
            "selected": selected,
        }

    def seconds_per_model(self) -> pd.Series:
        """Wall-clock seconds of each model (selection, refit and test), summed over the seeds."""
        return self.per_seed.groupby("model", sort=False)["seconds"].sum()

    def goal(self, filtered: bool = True) -> pd.DataFrame:
        """The best model's HR@5 and NDCG@5 against the published goal.

        ``filtered=False`` judges the models evaluated without the consumed-item filter.
        """
        table = self.table if filtered else self.table_unfiltered
        best = table.sort_values("NDCG@5", ascending=False).iloc[0]
        hr, ndcg = GOAL.get(self.dataset, (np.nan, np.nan))
        return pd.DataFrame(
            {"ours (" + str(best.name) + ")": [best["HR@5"], best["NDCG@5"]], "goal": [hr, ndcg]},
            index=["HR@5", "NDCG@5"],
        ).assign(reached=lambda f: f.iloc[:, 0] >= f["goal"])


def _json_rows(table: pd.DataFrame) -> list[dict]:
    return [
        {
            "model": model,
            **{m: float(row[m]) for m in METRICS},
            "train_seconds": float(row["train_seconds"]),
        }
        for model, row in table.iterrows()
    ]


def run_case_study(
    dataset: str | D.GroupDataset,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    progress: bool = True,
    data_dir: str | None = None,
    models: Sequence[str] | None = None,
    device: str | None = None,
) -> CaseStudyResult:
    """Select, train and evaluate every model on the group task, for each seed.

    For each seed and model: :func:`grouprec.evaluation.select` fits one model per grid point
    on the training split and scores it on validation NDCG@10; the winner, as fitted there, also
    decides on validation whether filtering consumed items helps (no second fit). The selected
    hyperparameters are then refitted once on all training data (train + validation) and
    evaluated once on the test split, with the chosen filter and without any. The refit has no
    validation data to stop on, so a model that stopped early during selection (it has
    ``history_.best_epoch`` and its factory takes ``epochs``) is refitted for exactly its best
    epoch count.

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
    device : str, optional
        Where the neural models train, as :func:`grouprec.training.select_device` reads it: the
        CPU by default, ``"auto"`` for a GPU when there is one. Results on a GPU agree with the
        CPU's within float32 rounding, amplified by training, not bit for bit.
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
        fitted: dict[str, Recommender] = {}
        for spec in tqdm(specs, desc=f"{raw.name} seed {seed}", disable=not progress):
            begin = time.perf_counter()
            factory = _seeded(spec.factory, seed, device)
            built: list[tuple[dict, Recommender]] = []

            def make(_factory=factory, _built=built, **params):
                # select() builds one model per grid point; keep them so the winner is reused.
                _built.append((params, _factory(**params)))
                return _built[-1][1]

            params, _ = select(make, spec.grid, ds, "group", "NDCG@10", progress=False)
            chosen = next(model for p, model in built if p == params)
            # Filter consumed items or not: decided on validation, with the selected model.
            val = [
                evaluate(m, ds, "group", "val").iloc[0]["NDCG@10"]
                for m in with_and_without_filter(chosen, ds)
            ]
            use_filter = bool(val[0] > val[1])
            # Refit once on all training data (train + validation), then test once.
            refit = _refit_params(spec.factory, chosen, params)
            start = time.perf_counter()
            final = factory(**refit).fit(clean, "group")
            seconds = time.perf_counter() - start
            filtered, unfiltered = with_and_without_filter(final, clean)
            fitted[spec.name] = unfiltered
            test = evaluate(filtered if use_filter else unfiltered, clean, "group", "test")
            test_raw = evaluate(unfiltered, clean, "group", "test")
            rows.append(
                {
                    "model": spec.name,
                    "seed": seed,
                    **{m: float(test.iloc[0][m]) for m in METRICS},
                    **{f"unfiltered {m}": float(test_raw.iloc[0][m]) for m in METRICS},
                    "train_seconds": seconds,
                    "seconds": time.perf_counter() - begin,
                    "filter_consumed": use_filter,
                    "params": json.dumps(params, sort_keys=True),
                    "refit_epochs": refit.get("epochs"),
                }
            )
    per_seed = pd.DataFrame(rows)
    by_model = per_seed.groupby("model", sort=False)
    table = by_model[[*METRICS, "train_seconds"]].mean()
    table["filter_consumed"] = by_model["filter_consumed"].mean()
    unfiltered_columns = {f"unfiltered {m}": m for m in METRICS}
    table_unfiltered = (
        by_model[[*unfiltered_columns, "train_seconds"]].mean().rename(columns=unfiltered_columns)
    )
    return CaseStudyResult(raw.name, table, per_seed, table_unfiltered, fitted, clean)


def _seeded(factory: Callable, seed: int, device: str | None = None) -> Callable:
    """Pass ``seed`` (and ``device``, when given) to factories that take one (neural models),
    leave the others alone."""
    if "seed" in inspect.signature(factory).parameters:
        if device is not None:
            return lambda **p: factory(seed=seed, device=device, **p)
        return lambda **p: factory(seed=seed, **p)
    return factory


def _accepts(factory: Callable, name: str) -> bool:
    """Whether ``factory`` takes a keyword argument ``name`` (by name or through ``**kwargs``)."""
    parameters = inspect.signature(factory).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _refit_params(factory: Callable, model: Recommender, params: dict) -> dict:
    """The hyperparameters of the refit: ``params``, with ``epochs`` set to the epoch at which
    ``model`` (fitted during selection) stopped early, when it did and ``factory`` takes it."""
    best_epoch = getattr(getattr(model, "history_", None), "best_epoch", None)
    if best_epoch is None or not _accepts(factory, "epochs"):
        return dict(params)
    return {**params, "epochs": int(best_epoch)}


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
        "--device",
        default="auto",
        help="where the neural models train: auto (a GPU when there is one, else the CPU), "
        "cpu, cuda, cuda:N or mps (default: auto)",
    )
    parser.add_argument(
        "--data-dir",
        help=f"folder holding named datasets (default: ${DATA_ENV}, else ~/.cache/grouprec)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help=f"fail when a named dataset ({', '.join(fetch.DATASETS)}) is missing from the data "
        "directory, instead of downloading it there (pinned commit, SHA-256 verified)",
    )


def _find_or_fetch(
    name_or_path: str,
    data_dir: str | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The folder of dataset ``name_or_path`` for the command line; a missing benchmark is
    downloaded first.

    A folder path, or a name found in the data directory, is used as it is (see
    :func:`grouprec.data.find_dataset`). A benchmark name (a key of
    :data:`grouprec.fetch.DATASETS`) missing from the data directory is downloaded into it with
    :func:`grouprec.fetch.fetch_dataset` (files at a pinned commit, every SHA-256 checked),
    unless ``download`` is False; the folder written to is printed first.

    Raises
    ------
    FileNotFoundError
        The dataset is not there and was not (or could not be) downloaded. The message says
        where it looked, how to point the package at existing files and, when a download
        failed, why.
    """
    try:
        return D.find_dataset(name_or_path, data_dir)
    except FileNotFoundError as exc:
        if str(name_or_path) not in fetch.DATASETS:
            raise  # an unknown name or a folder path: nothing to download
        if not download:
            raise FileNotFoundError(
                f"{exc}. Nothing was downloaded (--no-download); without it, the files are "
                f"downloaded into {D.resolve_data_dir(data_dir) / str(name_or_path)}"
            ) from None
    name = str(name_or_path)
    root = D.resolve_data_dir(data_dir)
    source = fetch.DATASETS[name]
    size = sum(n_bytes for n_bytes, _ in source.files.values())
    print(
        f"{name} is not in the data directory {root}: downloading it into {root / name} "
        f"({len(source.files)} files, {size / 1e6:.1f} MB, from {source.repo} at commit "
        f"{source.commit[:10]}, SHA-256 verified; --no-download to stop this)",
        flush=True,
    )
    try:
        folder = fetch.fetch_dataset(name, data_dir=root, progress=progress)
    except fetch.FetchError as exc:
        reason = str(exc).rstrip()
        reason += "" if reason.endswith(".") else "."
        hint = (
            "Or pass --data-dir with that folder."
            if DATA_ENV in reason
            else f"If you have the files, set {DATA_ENV} or pass --data-dir with the folder "
            f"that holds {name}/."
        )
        raise FileNotFoundError(
            f"dataset {name!r} not found: {root / name} does not exist (data directory {root}), "
            f"and downloading it failed: {reason} {hint}"
        ) from None
    print(f"{name}: {len(source.files)} files downloaded and verified in {folder}", flush=True)
    return folder


def run_cli(args: argparse.Namespace) -> int:
    """Run ``python -m grouprec case-study`` with parsed ``args``.

    A benchmark missing from the data directory is downloaded first (see
    :func:`_find_or_fetch`) unless ``args.no_download``; the total time excludes the download.
    """
    try:
        folder = _find_or_fetch(args.dataset, args.data_dir, download=not args.no_download)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        device = select_device(args.device)
    except ValueError as exc:
        print(f"error: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    print(f"neural models train on: {device}", flush=True)
    start = time.perf_counter()
    result = run_case_study(
        folder, seeds=args.seeds, quick=args.quick, models=args.models, device=str(device)
    )
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(
            f"\ngroup task, {result.dataset}: test metrics of validation-selected models, "
            f"mean over seeds {list(args.seeds)}"
        )
        print(
            "\nwith the consumed-item filter chosen on validation (filter_consumed: share of seeds):"
        )
        print(result.table.round(4).to_string())
        print("\nthe same models without the filter:")
        print(result.table_unfiltered.round(4).to_string())
        print("\nselected on validation (per seed: hyperparameters, refit epochs):")
        for model, part in result.per_seed.groupby("model", sort=False):
            for _, row in part.iterrows():
                epochs = (
                    ""
                    if pd.isna(row["refit_epochs"])
                    else f", refit epochs {row['refit_epochs']:.0f}"
                )
                print(f"  {model:<10} seed {row['seed']}: {row['params']}{epochs}")
        for filtered, label in ((True, "with the filter"), (False, "without the filter")):
            print(f"\nagainst the published goal (tie-aware, mean of 3 seeds), {label}:")
            print(result.goal(filtered).round(4).to_string())
        seconds = result.seconds_per_model()
        print("\nseconds per model (selection, refit and test; all seeds):")
        print(seconds.round(1).to_string())
    total = time.perf_counter() - start
    print(f"\ntotal time {total:.1f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({**result.to_json(), "total_seconds": total}, handle, indent=2)
        print(f"wrote {args.json}")
    return 0
