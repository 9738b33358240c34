"""Prose against outputs: every number a chapter's markdown quotes must be one the code shows.

nbval re-runs the code cells, but it cannot read prose: a sentence that says "576 leaked pairs"
beside a cell that prints 571 passes every other check. This test reads each committed notebook,
collects the numbers that its markdown cells quote (decimals, grouped thousands, and whole
numbers of three digits or more), and fails for each one that no stored output and no code cell
of the same notebook shows, also after rounding (0.6182 may be quoted as 0.618 or 0.62, 0.866 as
86.6%). Numbers that are not results are skipped: mathematics, inline code, links, citations,
references, years, and section or chapter numbers. What remains unexplained must be listed in
``QUOTED_ELSEWHERE`` with the reason it is not an output of the notebook.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

# The chapters and their worked solutions.
NOTEBOOKS = sorted(
    path
    for folder in ("notebooks", "solutions")
    for path in (Path(__file__).resolve().parents[1] / folder).glob("*.ipynb")
)

# A decimal (3.771, .5 is not used in prose), a whole number with grouped thousands (18,842), or a
# plain whole number of three or more digits (571). A trailing % is kept to allow percentages.
NUMBER = re.compile(
    r"(?<![\w.,/])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d{3,})(?![\w/]|\.\d|,\d{3})%?"
)
# Words after which a number names a part of the book or of a paper, not a result.
LOCATORS = re.compile(
    r"(?:section|sections|chapter|chapters|§|exercise|exercises|algorithm|eq\.|equation|"
    r"figure|table|cell|step|steps|version|torch|python|page|pages|pp\.)\s*$",
    re.IGNORECASE,
)
HIDE = [
    re.compile(r"```.*?```", re.S),  # code blocks
    re.compile(r"\$\$.*?\$\$", re.S),  # display mathematics
    re.compile(r"\$[^$\n]+\$"),  # inline mathematics
    re.compile(r"\{[a-z:]+\}`[^`]*`"),  # MyST roles: {cite}`...`, {doc}`...`
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"https?://\S+|doi:\S+|arXiv:\S+"),
]

# (notebook stem, quoted number) -> why the number is not among the notebook's outputs. Data
# counts listed here are checked against the data by test_quoted_data_counts below.
QUOTED_ELSEWHERE: dict[tuple[str, str], str] = {
    (
        "02_evaluation",
        "892",
    ): "rows of EASE's CAMRa2011 matrix, 602 users + 290 groups (checked below)",
    ("02_evaluation", "7,625"): "CAMRa2011 items with training data (checked below)",
    ("03_backprop", "101"): "the candidates of a case: the held-out item and 100 negatives",
    ("05_item_features", "130"): "'about 130': the largest price, 128.93, printed in cell 8",
    ("05_item_features", "995"): "Mafengwo's group test cases (checked below)",
    ("09_case_study", "0.01"): "AGREE's learning rate in grouprec.case_study.model_specs",
    ("09_case_study", "0.005"): "CFGAN's learning rate in grouprec.case_study.model_specs",
}


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def numbers_in(text: str) -> list[str]:
    """The numbers ``text`` quotes, as written (with their commas and a trailing %)."""
    return [m.group(0) for m in NUMBER.finditer(text)]


def _value(quoted: str) -> str:
    return quoted.rstrip("%").replace(",", "")


def shown_numbers(nb: dict) -> tuple[set[str], set[str]]:
    """Every number a code cell's source or stored output shows, as written and with all its
    roundings; and, separately, the exact values (``repr`` of the float) of those numbers."""
    shown: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        texts = [_text(cell["source"]).replace("_", "")]
        for out in cell.get("outputs", []):
            texts.append(_text(out.get("text", "")))
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/"):
                    texts.append(_text(data))
        for text in texts:
            # any decimal in an output counts, also one with fewer than three digits (0.05)
            for raw in re.findall(r"\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?", text):
                shown.add(raw.replace(",", ""))
    rounded, exact = set(), set()
    for s in shown:
        try:
            x = float(s)
        except ValueError:
            continue
        exact.add(repr(x))  # 6.00 quotes the output 6.0, and 0.630 the output 0.63
        decimals = len(s.split(".")[1]) if "." in s and "e" not in s else 0
        for k in range(decimals + 1):
            rounded.add(f"{x:.{k}f}")
            rounded.add(f"{100 * x:.{k}f}")  # 0.866 quoted as 86.6%
        if x == int(x):
            rounded.add(str(int(x)))
    return shown | rounded, exact


def quoted_numbers(nb: dict) -> list[tuple[int, str]]:
    """(cell index, number) for every result a markdown cell quotes."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = _text(cell["source"])
        text = re.split(r"^#+\s*(?:References|Further reading)", text, flags=re.M)[0]
        text = re.sub(r"^(#+\s*)[\d.]+", r"\1", text, flags=re.M)  # heading numbers
        for pattern in HIDE:
            text = pattern.sub(" ", text)
        for m in NUMBER.finditer(text):
            quoted = m.group(0)
            if LOCATORS.search(text[max(0, m.start() - 20) : m.start()]):
                continue
            value = _value(quoted)
            if "." not in value and 1900 <= int(value) <= 2030:
                continue  # a year
            found.append((index, quoted))
    return found


def unexplained(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    shown, exact = shown_numbers(nb)
    problems = []
    for index, quoted in quoted_numbers(nb):
        value = _value(quoted)
        # a quoted 0.5770 must be the value 0.577 exactly, not any number that rounds to 0.577
        if value in shown or repr(float(value)) in exact or (path.stem, quoted) in QUOTED_ELSEWHERE:
            continue
        problems.append(f"markdown cell {index} quotes {quoted}, which no output or code shows")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_quoted_number_is_shown_by_the_code(path):
    problems = unexplained(path)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_a_contradicting_number_is_caught(tmp_path):
    """The check itself: a markdown number that disagrees with the output fails, roundings pass."""

    def notebook(prose: str) -> Path:
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "source": "print(n, hr)",
                    "outputs": [{"output_type": "stream", "text": "571 removed, HR@5 0.6182\n"}],
                },
                {"cell_type": "markdown", "source": prose},
            ]
        }
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps(nb))
        return path

    assert unexplained(notebook("Section 2.2 removes 571 pairs; HR@5 is 0.618 (61.8%)")) == []
    assert unexplained(notebook("See $x = 0.123$, `f(576)` and Cao et al. (2018).")) == []
    assert len(unexplained(notebook("It removes 576 leaked pairs."))) == 1
    assert len(unexplained(notebook("HR@5 reaches 0.6183."))) == 1
    assert len(unexplained(notebook("About 18,842 pairs per second."))) == 1
    assert len(unexplained(notebook("HR@5 reaches 0.6180."))) == 1  # not 0.6182 padded


def test_quoted_data_counts(camra, mafengwo):
    """The data counts that the chapters quote without printing them."""
    from grouprec.protocol import training_data

    train = training_data(camra)  # the course's training data: the test file is not read
    users, groups = train.train_matrix("user"), train.train_matrix("group")
    assert users.shape[0] + groups.shape[0] == 892
    assert len(np.union1d(users.nonzero()[1], groups.nonzero()[1])) == 7625
    assert len(mafengwo.group_test.entity) == 995


def test_every_exception_is_still_quoted():
    """An entry of QUOTED_ELSEWHERE whose number the chapter no longer quotes is stale."""
    quoted = {
        (path.stem, number)
        for path in NOTEBOOKS
        for _, number in quoted_numbers(json.loads(path.read_text(encoding="utf-8")))
    }
    assert not set(QUOTED_ELSEWHERE) - quoted


EXERCISE = re.compile(r"\n(?=\d+\. )")


CHAPTERS = [p for p in NOTEBOOKS if p.parent.name == "notebooks"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_is_marked_by_difficulty_and_has_a_hint(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [_text(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    sections = [c.split("## Exercises", 1)[1] for c in cells if "## Exercises" in c]
    assert sections, f"{path.name} has no exercises"
    text = sections[0].split("\n## ", 1)[0]
    items = EXERCISE.split(text)[1:]
    assert items, f"{path.name}: no numbered exercise"
    for number, item in enumerate(items, 1):
        assert re.match(r"\d+\. ★{1,3} ", item), f"{path.name} exercise {number}: no ★ mark"
        assert "*Hint:*" in item, f"{path.name} exercise {number}: no hint"
