"""Writing a generated dataset to files (atomically) and regenerating it from them; the command
line ``python -m grouprec synthetic`` (:mod:`grouprec.__main__`) writes with
:func:`write_ecommerce`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from grouprec.synthetic.model import (
    ETA_WEIGHTS,
    FORMAT_VERSION,
    RATING_LEVELS,
    SyntheticData,
)
from grouprec.synthetic.simulate import generate_ecommerce

__all__ = ["FILES", "regenerate", "write_ecommerce"]

#: Files written by :func:`write_ecommerce`.
FILES = (
    "groupMember.txt",
    "userRatingTrain.txt",
    "userRatingTest.txt",
    "userRatingNegative.txt",
    "groupRatingTrain.txt",
    "groupRatingTest.txt",
    "groupRatingNegative.txt",
    "itemAttributes.tsv",
    "userBrowse.txt",
    "groupRule.json",
)
RULE_FILE = "groupRule.json"


def _lines(rows) -> str:
    return "".join(f"{line}\n" for line in rows)


def _rating_lines(frame: pd.DataFrame, key: str) -> str:
    frame = frame.sort_values([key, "item"], kind="stable")
    return _lines(
        f"{e} {i} {r}" for e, i, r in zip(frame[key], frame["item"], frame["rating"], strict=True)
    )


def _negative_lines(test: pd.DataFrame, negatives: np.ndarray) -> str:
    return _lines(
        f"({e},{i}) " + " ".join(map(str, row))
        for e, i, row in zip(test["entity"], test["item"], negatives.tolist(), strict=True)
    )


def _rule_record(data: SyntheticData) -> dict:
    record = {
        "format_version": FORMAT_VERSION,
        "rule": data.rule,
        "equation": {
            "average": "R_gi = (1/|g|) sum_{u in g} r_ui",
            "least_misery": "R_gi = min_{u in g} r_ui",
            "most_pleasure": "R_gi = max_{u in g} r_ui",
            "weighted": "R_gi = sum_{u in g} w_gu r_ui",
        }[data.rule],
        "choice": "n_g items drawn without replacement with probability "
        "proportional to exp(R_gi / group_temperature)",
        "utility": "r_ui = p_u . q_i / sqrt(d) + b_i - lambda_u xi_i",
        "parameters": {
            "group_temperature": data.args["group_temperature"],
            "member_weights": f"w_g = softmax({ETA_WEIGHTS} z_g), z_gu ~ N(0, 1)",
            "rating_quantile_levels": list(RATING_LEVELS),
        },
        "generator": {
            "function": "grouprec.synthetic.generate_ecommerce",
            "arguments": data.args,
            "command": "python -m grouprec synthetic OUTDIR " + _cli_flags(data.args),
        },
        "counts": {"n_users": data.n_users, "n_items": data.n_items, "n_groups": data.n_groups},
    }
    if data.rule == "weighted":
        record["member_weights"] = [
            {"group": g, "members": m.tolist(), "weights": w.tolist()}
            for g, (m, w) in enumerate(zip(data.group_members, data.group_weights, strict=True))
        ]
    return record


def _rule_json(data: SyntheticData) -> str:
    """``groupRule.json``: indented, with one line per group's member weights."""
    record = _rule_record(data)
    weights = record.pop("member_weights", None)
    text = json.dumps(record, indent=1)
    if weights is not None:
        rows = ",\n  ".join(json.dumps(row) for row in weights)
        text = text[: -len("\n}")] + f',\n "member_weights": [\n  {rows}\n ]\n}}'
    return text + "\n"


def _cli_flags(args: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in args.items())


def _file_texts(data: SyntheticData) -> dict[str, str]:
    items = data.items.assign(price=data.items["price"].map(lambda x: f"{x:.2f}"))
    browse = data.browse_train.sort_values(["user", "order"], kind="stable")
    return {
        "groupMember.txt": _lines(
            f"{g} " + ",".join(map(str, m.tolist())) for g, m in enumerate(data.group_members)
        ),
        "userRatingTrain.txt": _rating_lines(data.user_train, "user"),
        "userRatingTest.txt": _rating_lines(data.user_test, "entity"),
        "userRatingNegative.txt": _negative_lines(data.user_test, data.user_negatives),
        "groupRatingTrain.txt": _rating_lines(data.group_train, "group"),
        "groupRatingTest.txt": _rating_lines(data.group_test, "entity"),
        "groupRatingNegative.txt": _negative_lines(data.group_test, data.group_negatives),
        "itemAttributes.tsv": items.to_csv(sep="\t", index=False, lineterminator="\n"),
        "userBrowse.txt": _lines(
            f"{u} {i}" for u, i in zip(browse["user"], browse["item"], strict=True)
        ),
        RULE_FILE: _rule_json(data),
    }


def write_ecommerce(data: SyntheticData, folder: str | os.PathLike) -> Path:
    """Write the dataset's files into ``folder`` atomically.

    Everything is written into a temporary folder next to ``folder`` and then renamed into
    place, so a reader never sees a half-written dataset. An existing ``folder`` is replaced
    only if it is empty or holds an earlier output (it has a ``groupRule.json``).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    FileExistsError
        ``folder`` exists and is neither empty nor an earlier output.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and (
        not folder.is_dir() or (any(folder.iterdir()) and not (folder / RULE_FILE).is_file())
    ):
        raise FileExistsError(
            f"{folder} exists and is not an earlier synthetic dataset (no {RULE_FILE}); "
            "choose another folder or remove it"
        )
    texts = _file_texts(data)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    old = None
    try:
        for name in FILES:
            (tmp / name).write_bytes(texts[name].encode("utf-8"))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset is ordinary data
        if folder.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent)
            )
            os.rmdir(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not folder.exists():
            os.replace(old, folder)  # put the earlier output back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def regenerate(folder: str | os.PathLike) -> SyntheticData:
    """Regenerate, with its ground truth, the dataset written in ``folder``.

    Reads the generator arguments from ``groupRule.json``; the generator is deterministic, so
    the result is the data in the files together with every latent variable.
    """
    path = Path(folder) / RULE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a synthetic dataset folder")
    record = json.loads(path.read_text())
    try:
        arguments = record["generator"]["arguments"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: no generator.arguments entry") from None
    return generate_ecommerce(**arguments)
