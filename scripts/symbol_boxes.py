"""Write each chapter's "Symbols used here" box from book/notation.md.

The book has one table of symbols, ``book/notation.md``. Each chapter opens with a short box that
repeats the rows it uses, word for word, so that a reader has them at hand; this script writes
those boxes, and ``tests/test_notation.py`` fails when a box and the table disagree. To change a
chapter's box, edit ``CHAPTERS`` (the symbol cells of the rows it uses, as written in
``notation.md``) and run ``python scripts/symbol_boxes.py``. Only the box's markdown cell
changes; nothing is re-executed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTATION = ROOT / "book" / "notation.md"
TITLE = "Symbols used here"

#: The symbols of each chapter, by the exact symbol cell of their row in notation.md.
CHAPTERS: dict[str, list[str]] = {
    "01_data": [
        r"$u,\ i,\ g$",
        r"$\mathcal{M}_g \subseteq \mathcal{U}$",
        r"$\mathbf{p}_u,\ \mathbf{q}_i \in \mathbb{R}^{d}$",
        r"$d$",
        r"$c_i$",
        r"$b_i$",
        r"$v_{ui},\ v_{gi}$",
        r"$\psi_u$",
        r"$\xi_i$",
        r"$\tau$",
        r"$w_{gu}$",
    ],
    "02_evaluation": [
        r"$u,\ i,\ g$",
        r"$e$",
        r"$\hat{y}_{ui},\ \hat{y}_{gi},\ \hat{y}_{ei}$",
        r"$K$",
        r"$m$",
        r"$\operatorname{rank}_e$",
        r"$\mathcal{R}_u$",
        r"$\mathcal{M}_g \subseteq \mathcal{U}$",
        r"$L_g$",
        r"$\mathcal{M}_g^+$",
        r"$\mathrm{sat}_u$",
        r"$J_g$",
        r"$\mathrm{HR@}K,\ \mathrm{NDCG@}K,\ \mathrm{MRR}$",
        r"$\mathbb{1}[\cdot]$",
        r"$\mathbb{E}[\cdot]$",
        r"$a$",
        r"$\hat{\mathbf{B}}$",
        r"$\boldsymbol{\Omega}$",
        r"$\mathbf{h}_e$",
        r"$\omega$",
        r"$\lambda$",
    ],
    "03_backprop": [
        r"$B$",
        r"$\mathbf{X}$",
        r"$M$",
        r"$\mathbf{A}^{(l-1)} \in \mathbb{R}^{B \times n_\text{in}}$",
        r"$\mathbf{W}^{(l)} \in \mathbb{R}^{n_\text{out} \times n_\text{in}},\ \mathbf{b}^{(l)} \in \mathbb{R}^{n_\text{out}}$",
        r"$\mathbf{Z}^{(l)} = \mathbf{A}^{(l-1)}\mathbf{W}^{(l)\top} + \mathbf{1}\mathbf{b}^{(l)\top}$",
        r"$\boldsymbol{\Delta}^{(l)} = \partial\mathcal{L}/\partial\mathbf{Z}^{(l)}$",
        r"$\mathcal{L}$",
        r"$s$",
        r"$\hat{y} = \sigma(s),\ y$",
        r"$\hat{x}_{uij} = \hat{y}_{ui} - \hat{y}_{uj}$",
        r"$\delta_{uij}$",
        r"$\eta$",
    ],
    "04_user_preferences": [
        r"$u,\ i,\ g$",
        r"$j$",
        r"$\mathbf{p}_u,\ \mathbf{q}_i \in \mathbb{R}^{d}$",
        r"$\mathbf{P} \in \mathbb{R}^{\lvert\mathcal{U}\rvert \times d},\ \mathbf{Q} \in \mathbb{R}^{\lvert\mathcal{I}\rvert \times d}$",
        r"$\beta_i$",
        r"$\hat{x}_{uij} = \hat{y}_{ui} - \hat{y}_{uj}$",
        r"$\sigma(x) = 1/(1+e^{-x})$",
        r"$\lambda$",
        r"$\eta$",
        r"$\mathbf{h}$",
    ],
    "05_item_features": [
        r"$\mathbf{f}_i$",
        r"$\mathbf{p}_u,\ \mathbf{q}_i \in \mathbb{R}^{d}$",
        r"$\beta_i$",
        r"$c_i$",
        r"$C$",
        r"$\operatorname{enc}_\theta$",
        r"$\mathbf{v}_i,\ o_i$",
        r"$b_i$",
        r"$\rho$",
        r"$\mathbf{x}_i$",
    ],
    "06_group_aggregation": [
        r"$\mathcal{M}_g \subseteq \mathcal{U}$",
        r"$\hat{y}_{ui},\ \hat{y}_{gi},\ \hat{y}_{ei}$",
        r"$\operatorname{agg}$",
        r"$\mathbf{e}_g \in \mathbb{R}^{d}$",
        r"$\alpha_{gu}$",
        r"$L_g$",
        r"$K$",
        r"$\mathbf{a}_g(j)$",
        r"$\mathbf{H}_U,\ \mathbf{H}_I$",
        r"$\mathbf{E}_M,\ \mathbf{E}_I,\ \mathbf{E}_G$",
        r"$\tilde{\mathbf{e}}_g$",
        r"$\mathcal{L}_{\mathcal{G}},\ \mathcal{L}_{\mathcal{U}}$",
        r"$\beta$",
        r"$\mathbf{h}$",
        r"$\lambda$",
    ],
    "07_gan_losses": [
        r"$G_\theta$",
        r"$D_\phi$",
        r"$\mathbf{z} \sim p_{\mathbf{z}}$",
        r"$p_{\text{data}},\ p_{G}$",
        r"$V(D_\phi, G_\theta)$",
        r"$D^{*}$",
        r"$\mathcal{L}_D,\ \mathcal{L}_G$",
        r"$s$",
        r"$B$",
    ],
    "08_gan_recommender": [
        r"$G_\theta$",
        r"$D_\phi$",
        r"$\mathbf{c}$",
        r"$\mathcal{L}_D,\ \mathcal{L}_G$",
        r"$e$",
        r"$\mathcal{I}_u^{+},\ \mathcal{I}_g^{+}$",
        r"$\mathbf{z} \sim p_{\mathbf{z}}$",
        r"$\mathbf{h}_e$",
        r"$\hat{\mathbf{B}}$",
    ],
    "09_case_study": [
        r"$u,\ i,\ g$",
        r"$\mathcal{M}_g \subseteq \mathcal{U}$",
        r"$K$",
        r"$\mathrm{HR@}K,\ \mathrm{NDCG@}K,\ \mathrm{MRR}$",
        r"$\operatorname{agg}$",
        r"$\alpha_{gu}$",
        r"$\omega$",
        r"$\hat{\mathbf{B}}$",
        r"$\boldsymbol{\Omega}$",
        r"$\lambda$",
        r"$\mathcal{L}_{\mathcal{G}},\ \mathcal{L}_{\mathcal{U}}$",
        r"$\beta$",
        r"$\mathbf{e}_g \in \mathbb{R}^{d}$",
    ],
    "10_large_models": [
        r"$\mathbf{p}_u,\ \mathbf{q}_i \in \mathbb{R}^{d}$",
        r"$\mathbf{f}_i$",
        r"$\mathbf{x}_i$",
        r"$\operatorname{enc}_\theta$",
        r"$\hat{y}_{ui},\ \hat{y}_{gi},\ \hat{y}_{ei}$",
        r"$B$",
        r"$\theta$",
        r"$\eta$",
        r"$N,\ r$",
        r"$\mathcal{S}_r,\ b_r$",
        r"$\epsilon_{64}$",
        r"$\mathcal{L}_{\mathcal{G}},\ \mathcal{L}_{\mathcal{U}}$",
    ],
}


def notation_rows(path: Path = NOTATION) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The rows of notation.md: {symbol: meaning} of the book-wide tables, and
    {symbol: (meaning, chapters)} of the section "Symbols of one chapter"."""
    book, local, section = {}, {}, ""
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if line.startswith("## "):
            section = line[3:].strip()
        if not line.startswith("| $"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        symbol, meaning = cells[0], cells[1]
        target = local if section == "Symbols of one chapter" else book
        if symbol in book or symbol in local:
            raise ValueError(f"{path}:{number}: {symbol} is defined twice")
        target[symbol] = (meaning, cells[2]) if target is local else meaning
    return book, local


def render(chapter: str, symbols: list[str]) -> str:
    """The markdown of one chapter's box."""
    book, local = notation_rows()
    number = chapter[:2]
    lines = [f"```{{admonition}} {TITLE}", ":class: tip", "", "| Symbol | Meaning |", "|---|---|"]
    for symbol in symbols:
        if symbol in book:
            meaning = book[symbol]
        elif symbol in local and number in local[symbol][1]:
            meaning = local[symbol][0]
        else:
            raise KeyError(f"{chapter}: {symbol} is not in notation.md for chapter {number}")
        lines.append(f"| {symbol} | {meaning} |")
    lines += ["", "Every symbol of the book: {doc}`../notation`.", "```"]
    return "\n".join(lines) + "\n"


def box_index(cells: list[dict]) -> int | None:
    """The index of the chapter's box cell, or None."""
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and TITLE in "".join(cell["source"]):
            return index
    return None


def main() -> int:
    for chapter, symbols in CHAPTERS.items():
        path = ROOT / "notebooks" / f"{chapter}.ipynb"
        nb = json.loads(path.read_text("utf-8"))
        text = render(chapter, symbols).splitlines(keepends=True)
        index = box_index(nb["cells"])
        if index is None:  # after the opening cell (title, introduction, objectives)
            cell_id = re.sub(r"[^a-z0-9]", "", chapter)[-6:] + "sym"
            nb["cells"].insert(
                1, {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}
            )
        elif nb["cells"][index]["source"] == text:
            continue
        else:
            nb["cells"][index]["source"] = text
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", "utf-8")
        print(f"wrote the box of {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
