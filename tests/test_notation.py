"""One notation: book/notation.md is the single table of symbols, and every chapter's box agrees.

Each chapter opens with a "Symbols used here" box that repeats, word for word, the rows of
``book/notation.md`` it uses (``scripts/symbol_boxes.py`` writes them). These tests fail when a
box drifts from the table, when a chapter has no box, when the table defines a symbol twice (a
chapter-only symbol may not reuse a book-wide one), and when a symbol the book retired because it
meant two things comes back into a chapter's text.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("symbol_boxes", ROOT / "scripts" / "symbol_boxes.py")
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

#: Symbols that once had two meanings in the book, and what replaced them. The source article's
#: formulas, quoted in "What the source text gets wrong" callouts, are exempt.
RETIRED = {
    r"g_\theta": r"\operatorname{enc}_\theta (the item encoder; g is a group)",
    r"g_{uij}": r"\delta_{uij} (the BPR gradient; g is a group)",
    r"\lambda_u": r"\psi_u (price sensitivity; \lambda is the L2 weight)",
    r"m_i": r"o_i (whether an item's free parts are used; m counts negatives)",
    r"\mathbf{g}_g": r"\mathbf{a}_g(j) (AGREE's group for candidate j; bold g is the gradient)",
    r"\mathbf{h}_g(j)": r"\mathbf{a}_g(j) (AGREE's group for candidate j; h_g is a group's history)",
    r"\mathbf{Z}_M": r"\mathbf{E}_M (the consensus member view; bold z is the GAN noise)",
    r"\mathbf{Z}_I": r"\mathbf{E}_I (the consensus item view; bold z is the GAN noise)",
    r"\mathbf{Z}_G": r"\mathbf{E}_G (the consensus group view; bold z is the GAN noise)",
    r"\mathbf{z}_g": r"\tilde{\mathbf{e}}_g (the fused consensus group; bold z is the GAN noise)",
    r"\mathbf{z}_{v,g}": r"\mathbf{e}_{v,g} (row g of the view E_v; bold z is the GAN noise)",
}
SOURCE_CALLOUT = re.compile(r"```\{admonition\} What the source text gets wrong.*?\n```", re.S)


def markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text("utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def test_the_table_defines_each_symbol_once():
    book, local = S.notation_rows()
    assert len(book) > 40 and len(local) > 5
    assert not set(book) & set(local)


def test_the_table_rejects_a_symbol_defined_twice(tmp_path):
    page = tmp_path / "notation.md"
    page.write_text(
        "## Scores\n\n| $d$ | the embedding dimension | |\n\n"
        "## Symbols of one chapter\n\n| $d$ | a discount | 02 |\n",
        "utf-8",
    )
    with pytest.raises(ValueError, match=r"notation.md:7: \$d\$ is defined twice"):
        S.notation_rows(page)


def test_every_chapter_has_a_box():
    assert sorted(S.CHAPTERS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_box_repeats_the_table(path):
    cells = json.loads(path.read_text("utf-8"))["cells"]
    index = S.box_index(cells)
    assert index is not None, f"{path.name} has no '{S.TITLE}' box"
    expected = S.render(path.stem, S.CHAPTERS[path.stem])
    assert "".join(cells[index]["source"]) == expected, (
        f"{path.name}: its box differs from notation.md; run `python scripts/symbol_boxes.py`"
    )


def test_a_chapter_only_symbol_is_used_by_its_chapters():
    _, local = S.notation_rows()
    for chapter, symbols in S.CHAPTERS.items():
        for symbol in symbols:
            if symbol in local:
                assert chapter[:2] in local[symbol][1], (chapter, symbol)


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.stem)
def test_retired_symbols_stay_retired(path):
    for text in markdown(path):
        text = SOURCE_CALLOUT.sub("", text)
        for symbol, replacement in RETIRED.items():
            # whole symbols only: \sum_i does not hold m_i
            pattern = r"(?<![A-Za-z\\])" + re.escape(symbol) + r"(?![A-Za-z{])"
            assert not re.search(pattern, text), f"{path.name}: {symbol}; use {replacement}"
