"""Command line: ``python -m grouprec COMMAND ...`` (``--help`` lists the commands).

Every command's arguments, its printing and its exit codes live here; the library modules it
calls take plain keyword arguments and print nothing of their own. The commands:

- ``info``: statistics and data audit of a dataset (:mod:`grouprec.data`);
- ``case-study``: the full case study, headless (:func:`grouprec.case_study.run_case_study`);
- ``fetch``: download a benchmark dataset (:func:`grouprec.fetch.fetch_dataset`);
- ``synthetic``: the synthetic e-commerce dataset (:func:`grouprec.synthetic.generate_ecommerce`,
  :func:`grouprec.synthetic.write_ecommerce`);
- ``synthetic-large``: a large synthetic group dataset (:mod:`grouprec.synthetic_large`);
- ``ddp``: AGREE trained data-parallel (:mod:`grouprec.distributed`), launched by ``torchrun``
  (``torchrun --nproc_per_node N -m grouprec ddp ...``); ``python -m grouprec.distributed`` runs
  the same command under its own name (:func:`ddp_main`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from grouprec import __version__
from grouprec.constants import DATA_ENV

#: The program name of ``python -m grouprec.distributed`` (what torchrun launches).
DDP_PROG = "torchrun --nproc_per_node N -m grouprec.distributed"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m grouprec``."""
    parser = argparse.ArgumentParser(
        prog="python -m grouprec",
        description="Group recommendation with deep models and GANs: data, models, case study.",
    )
    parser.add_argument("--version", action="version", version=f"grouprec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="statistics and data audit of a dataset")
    info.add_argument("dataset", help="a dataset name (camra2011, mafengwo) or a folder path")
    info.add_argument("--data-dir", help="folder holding named datasets (default: $GROUPREC_DATA)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_info)

    p = sub.add_parser("case-study", help="the full group-recommendation case study, headless")
    _case_study_arguments(p)
    p.set_defaults(handler=_case_study)

    p = sub.add_parser("fetch", help="download a benchmark dataset and verify its checksums")
    _fetch_arguments(p)
    p.set_defaults(handler=_fetch)

    p = sub.add_parser("synthetic", help="generate the synthetic e-commerce dataset")
    _synthetic_arguments(p)
    p.set_defaults(handler=_synthetic)

    p = sub.add_parser(
        "synthetic-large", help="generate a large synthetic group dataset (chapter 10)"
    )
    _synthetic_large_arguments(p)
    p.set_defaults(handler=_synthetic_large)

    p = sub.add_parser(
        "ddp",
        help="train AGREE data-parallel under torchrun (chapter 10)",
        description=_DDP_DESCRIPTION,
    )
    _ddp_arguments(p)
    p.set_defaults(handler=_ddp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from grouprec.data import FILES, audit, load_dataset, members_beyond_users

    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    stats = dataset.stats()
    table = audit(dataset)
    if args.json:
        stats["audit"] = [
            {"task": t, "check": c, "count": int(n)} for t, c, n in table.itertuples(index=False)
        ]
        print(json.dumps(stats, indent=2))
        return 0
    print(f"dataset {stats['name']} ({dataset.path})")
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        if key != "name":
            print(
                f"  {key:<{width}}  {value:,}"
                if isinstance(value, int)
                else f"  {key:<{width}}  {value}"
            )
    print("\naudit (counts of known defects; the files are left unchanged):")
    print(table.to_string(index=False))
    beyond = members_beyond_users(dataset)
    if beyond["n_ids"]:
        groups = beyond["groups"]
        listed = ", ".join(str(g) for g in groups[:5]) + (", ..." if len(groups) > 5 else "")
        print(
            f"\nwarning: {beyond['n_ids']:,} member id(s) in {FILES['members']} "
            f"({beyond['n_memberships']:,} membership(s), in group(s) {listed}; largest "
            f"{beyond['largest']:,}) lie above every user id in the user files; they enlarge "
            f"the user table from {beyond['n_users_without']:,} to {beyond['n_users_with']:,} "
            "rows (n_users). A typo? The data is loaded unchanged."
        )
    return 0


# --------------------------------------------------------------------------------------------
# case-study
# --------------------------------------------------------------------------------------------


def _case_study_arguments(parser: argparse.ArgumentParser) -> None:
    from grouprec import fetch

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
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="PyTorch threads on the CPU (default: 1; the models are small, and more threads "
        "mostly wait for each other: on two cores one thread trains AGREE several times faster)",
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
    from grouprec import data as D
    from grouprec import fetch

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


def _case_study(args: argparse.Namespace) -> int:
    """``python -m grouprec case-study``: a benchmark missing from the data directory is
    downloaded first (see :func:`_find_or_fetch`) unless ``--no-download``; the total time
    excludes the download."""
    import pandas as pd

    from grouprec import case_study
    from grouprec import protocol as P
    from grouprec.training import select_device

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
    if args.threads < 1:
        print(f"error: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    import torch

    print(f"neural models train on: {device} ({args.threads} CPU thread(s))", flush=True)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = case_study.run_case_study(
            folder, seeds=args.seeds, quick=args.quick, models=args.models, device=str(device)
        )
    finally:
        torch.set_num_threads(threads)  # the caller's setting, when called in-process
    with pd.option_context("display.width", 140, "display.precision", 4):
        n_seeds = len(args.seeds)
        print(
            f"\ngroup task, {result.dataset}: test metrics of validation-selected models, "
            f"mean and standard deviation over seeds {list(args.seeds)}"
        )
        print("\nas published (tie-aware, listed negatives, no filter):")
        print(result.table.round(4).to_string())
        print(
            f"\ncorrected ({result.dropped} test cases whose pair occurs in training dropped, "
            "consumed items excluded from the candidates):"
        )
        print(result.table_corrected.round(4).to_string())
        print("\nselected on validation (per seed: hyperparameters, refit epochs):")
        published = result.per_seed[result.per_seed["reading"] == P.AS_PUBLISHED.name]
        for model, part in published.groupby("model", sort=False):
            for _, row in part.iterrows():
                epochs = (
                    ""
                    if pd.isna(row["refit_epochs"])
                    else f", refit epochs {row['refit_epochs']:.0f}"
                )
                print(f"  {model:<10} seed {row['seed']}: {row['params']}{epochs}")
        if len(result.table) >= 2:
            for name in result.tables():
                c = result.comparison(name)
                verdict = (
                    f"{c['winner']} is ahead"
                    if c["winner"]
                    else "no winner: the difference is within the seeds' spread or the interval"
                )
                print(
                    f"\n{name}, best against runner-up on {c['metric']}: {c['best']} "
                    f"{c['best_mean']:.4f} vs {c['runner_up']} {c['runner_up_mean']:.4f}; paired "
                    f"difference {c['difference']:+.4f} (95% interval {c['interval_95'][0]:+.4f} "
                    f"to {c['interval_95'][1]:+.4f}), seed sd {c['seed_sd']:.4f}: {verdict}"
                )
        print(
            f"\nas published, beside the published figures (which picked their epoch on the "
            f"test set; ours are means of {n_seeds} seeds selected on validation):"
        )
        print(result.goal().round(4).to_string())
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


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------


def _fetch_arguments(parser: argparse.ArgumentParser) -> None:
    from grouprec import fetch

    parser.add_argument("name", choices=tuple(fetch.DATASETS), help="dataset to download")
    parser.add_argument(
        "--data-dir", help=f"folder to download into (default: ${DATA_ENV}, else ~/.cache/grouprec)"
    )
    parser.add_argument(
        "--base-url", help=f"serve the files from this address instead of {fetch.DEFAULT_BASE_URL}"
    )
    timeout = inspect.signature(fetch.fetch_dataset).parameters["timeout"].default
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds per connection (default: %(default)s)",
    )


def _fetch(args: argparse.Namespace) -> int:
    """``python -m grouprec fetch``: exit code 1 when the download or a checksum fails."""
    from grouprec import fetch

    try:
        folder = fetch.fetch_dataset(
            args.name, data_dir=args.data_dir, base_url=args.base_url, timeout=args.timeout
        )
    except fetch.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(fetch.DATASETS[args.name].files)} files verified in {folder}")
    return 0


# --------------------------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------------------------


def _synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    from grouprec import synthetic

    defaults = {
        name: param.default
        for name, param in inspect.signature(synthetic.generate_ecommerce).parameters.items()
    }
    helps = {
        "seed": "random seed",
        "rule": "planted group aggregation rule",
        "n_users": "number of users",
        "n_items": "number of items",
        "n_groups": "number of groups",
        "n_categories": f"number of item categories, at most {len(synthetic.CATALOGUE)}",
        "dim": "dimension d of the latent vectors",
        "household_share": "fraction of groups that are households",
        "group_temperature": "temperature of group choices (lower: closer to the rule's top)",
    }
    parser.add_argument("outdir", help="folder to write (replaced if it holds an earlier output)")
    for name, text in helps.items():
        default = defaults[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            default=default,
            choices=synthetic.RULES if name == "rule" else None,
            help=f"{text} (default: %(default)s)",
        )


def _synthetic(args: argparse.Namespace) -> int:
    """``python -m grouprec synthetic``."""
    from grouprec import synthetic

    data = synthetic.generate_ecommerce(
        n_users=args.n_users,
        n_items=args.n_items,
        n_groups=args.n_groups,
        n_categories=args.n_categories,
        dim=args.dim,
        rule=args.rule,
        household_share=args.household_share,
        group_temperature=args.group_temperature,
        seed=args.seed,
    )
    folder = synthetic.write_ecommerce(data, args.outdir)
    size = sum((folder / name).stat().st_size for name in synthetic.FILES)
    print(
        f"wrote {folder}: {data.n_users} users, {data.n_items} items, {data.n_groups} groups "
        f"(rule {data.rule}), {len(data.user_train)} user and {len(data.group_train)} group "
        f"training rows, {len(data.user_test)} + {len(data.group_test)} test cases, "
        f"{size / 1e6:.2f} MB"
    )
    return 0


# --------------------------------------------------------------------------------------------
# synthetic-large
# --------------------------------------------------------------------------------------------


def _synthetic_large_arguments(parser: argparse.ArgumentParser) -> None:
    from grouprec.synthetic_large import generate_large

    parser.add_argument("folder", help="folder to write, e.g. data/large_synthetic")
    for name, param in inspect.signature(generate_large).parameters.items():
        kind = float if isinstance(param.default, float) else int
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=param.default,
            help=f"see grouprec.synthetic_large.generate_large (default {param.default})",
        )


def _synthetic_large(args: argparse.Namespace) -> int:
    """``python -m grouprec synthetic-large``."""
    from grouprec.synthetic_large import generate_large, write_large

    names = inspect.signature(generate_large).parameters
    t0 = time.perf_counter()
    data = generate_large(**{name: getattr(args, name) for name in names})
    folder = write_large(data, args.folder)
    print(
        f"wrote {folder}: {data.params['n_users']:,} users, {data.params['n_groups']:,} groups, "
        f"{data.params['n_items']:,} items, {len(data.user_train):,} user and "
        f"{len(data.group_train):,} group training pairs in {time.perf_counter() - t0:.1f} s"
    )
    return 0


# --------------------------------------------------------------------------------------------
# ddp: torchrun --nproc_per_node N -m grouprec ddp --dataset PATH
#      (or -m grouprec.distributed --dataset PATH, the same command under its own name)
# --------------------------------------------------------------------------------------------

_DDP_DESCRIPTION = "Train AGREE data-parallel (DistributedDataParallel) on a group dataset."


def _ddp_arguments(p: argparse.ArgumentParser) -> None:
    from grouprec.aggregation import AGREERecommender
    from grouprec.constants import N_NEGATIVES

    defaults = AGREERecommender()
    p.add_argument("--dataset", required=True, help="a dataset name or folder (load_dataset)")
    p.add_argument("--data-dir", help="folder holding named datasets (default: $GROUPREC_DATA)")
    p.add_argument("--task", choices=("group", "user"), default="group")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="global batch")
    p.add_argument("--lr", type=float, default=defaults.lr)
    # --dim, not --d: torchrun's own parser would take --d for an abbreviation of its options.
    p.add_argument("--dim", type=int, default=defaults.d, help="embedding width d")
    p.add_argument("--n-neg", type=int, default=defaults.n_neg)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--float64", action="store_true", help="train in float64 (default: float32)")
    p.add_argument("--no-validation", action="store_true", help="train without validation")
    p.add_argument(
        "--val-negatives", type=int, default=N_NEGATIVES, help="negatives per validation case"
    )
    p.add_argument("--device", default=None, help="cpu (default), cuda or auto")
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: from the device")
    p.add_argument("--world-size", type=int, help="expected number of processes (a check)")
    p.add_argument("--checkpoint", help="file rank 0 writes the trained model to")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_ddp_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m grouprec.distributed`` (the ``ddp`` command's)."""
    parser = argparse.ArgumentParser(prog=DDP_PROG, description=_DDP_DESCRIPTION)
    _ddp_arguments(parser)
    return parser


def _ddp(args: argparse.Namespace) -> int:
    """Train AGREE on this rank; rank 0 prints the history and the time."""
    import torch
    import torch.distributed as dist

    from grouprec import protocol as P
    from grouprec.aggregation import AGREERecommender
    from grouprec.data import load_dataset, split_validation
    from grouprec.distributed import fit_distributed, init_distributed

    try:
        ctx = init_distributed(args.device, args.backend, args.world_size)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dataset = P.training_data(load_dataset(args.dataset, data_dir=args.data_dir))
    if not args.no_validation:  # the protocol's validation (P.validation_data), any count
        dataset = split_validation(
            dataset, seed=args.seed, negatives="any", n_negatives=args.val_negatives
        )
    rec = AGREERecommender(
        d=args.dim,
        epochs=args.epochs,
        lr=args.lr,
        n_neg=args.n_neg,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    t0 = time.perf_counter()
    fit_distributed(
        rec,
        dataset,
        args.task,
        ctx=ctx,
        checkpoint=args.checkpoint,
        optimizer=args.optimizer,
        dtype=torch.float64 if args.float64 else torch.float32,
    )
    seconds = time.perf_counter() - t0
    if ctx.is_main:
        pairs = len(dataset.group_train) + len(dataset.user_train)
        frame = rec.history_.to_frame()
        print(frame.to_string(float_format=lambda x: f"{x:.4f}"))
        print(
            f"{ctx.world_size} process(es), backend {ctx.backend or 'none'}, device "
            f"{ctx.device}: {len(frame)} epoch(s) of {pairs:,} pairs in {seconds:.1f} s"
        )
        if args.checkpoint:
            print(f"checkpoint: {Path(args.checkpoint)}")
    if ctx.distributed:
        dist.destroy_process_group()
    return 0


def ddp_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m grouprec.distributed`` (what ``torchrun`` launches); returns
    the exit code. The ``ddp`` command under that module's name: its own program name in the
    usage line, and an error in loading the dataset ends with its traceback, as it always has
    under that name."""
    return _ddp(build_ddp_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
