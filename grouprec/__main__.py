"""Command line: ``python -m grouprec COMMAND ...`` (``--help`` lists the commands)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from grouprec import __version__


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

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    from grouprec import case_study, fetch, synthetic, synthetic_large

    p = sub.add_parser("case-study", help="the full group-recommendation case study, headless")
    case_study.add_cli_arguments(p)
    p.set_defaults(handler=case_study.run_cli)

    p = sub.add_parser("fetch", help="download a benchmark dataset and verify its checksums")
    fetch.add_cli_arguments(p)
    p.set_defaults(handler=fetch.run_cli)

    p = sub.add_parser("synthetic", help="generate the synthetic e-commerce dataset")
    synthetic.add_cli_arguments(p)
    p.set_defaults(handler=synthetic.run_cli)

    p = sub.add_parser(
        "synthetic-large", help="generate a large synthetic group dataset (chapter 10)"
    )
    synthetic_large.add_cli_arguments(p)
    p.set_defaults(handler=synthetic_large.run_cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
