"""Varied wording for the synthetic shop's descriptions: same meaning, different words.

:func:`grouprec.synthetic.generate_ecommerce` writes every description from one small
vocabulary per category ("cast-iron frying pan for weekday dinners"), so two items that mean the
same thing also share their words, and word counts (TF-IDF) capture all there is to know. Real
catalogues are written by many people: one says "skillet" where another says "frying pan". This
module rewrites the descriptions of an item table so that meaning and wording come apart; it is
opt-in, and the generator's own output is unchanged.

The rewriting
-------------
Every description of the generator has the form "[generic adjective] a n for u[, tail]", with an
adjective ``a``, a noun ``n`` and a use ``u`` from the item's category (see
:mod:`grouprec.synthetic`). Each of those 216 catalogue phrases has ``V = 4`` wordings: variant 0
is the catalogue's own, variants 1-3 are synonyms or paraphrases (the table
``synthetic_paraphrases.json``, written by hand so that variants share as few words as the
language allows). For item ``i`` we draw, independently,

    t_i ~ U{0..3} (a sentence template),   v_i^a, v_i^n, v_i^u ~ U(S_i)   (one wording per slot),

with ``S_i = {0, 1, 2, 3}`` by default. With ``new_items`` given, the wordings are split between
two "house styles": items that exist at training time draw from ``{0, 1}`` and new items from
``{2, 3}``, so a new item shares the meaning of its slots with training items but, apart from
template words and the generic adjectives and tails, none of their words. That is the situation
where knowing what words *mean*, from pretraining on other text, can help, and where counting
words cannot. The generic adjective and the tail, which carry no information about the item, are
kept. All draws come from ``numpy.random.default_rng([seed, 10])``: the same items, seed and
``new_items`` give the same table.

What this can and cannot show: the paraphrases are exact synonyms chosen by hand, so a
pretrained encoder that knows English finds them; real descriptions differ in length, detail,
errors and language, and their words need not be interchangeable.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import TypeVar

import numpy as np
import pandas as pd

from grouprec.constants import DEFAULT_SEED
from grouprec.synthetic import CATALOGUE, GENERIC_ADJECTIVES, GENERIC_TAILS

#: Three alternative wordings of every adjective, noun and use of :data:`CATALOGUE`, per category.
PARAPHRASES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    category: {
        slot: {word: tuple(variants) for word, variants in words.items()}
        for slot, words in slots.items()
    }
    for category, slots in json.loads(
        resources.files("grouprec").joinpath("synthetic_paraphrases.json").read_text("utf-8")
    ).items()
}
#: The slots that are reworded.
TEXT_SLOTS = ("adjectives", "nouns", "uses")
#: Sentence templates: ``{g}`` is the generic adjective and a space (or nothing), ``{a}``, ``{n}``
#: and ``{u}`` the slot wordings. Template 0 is the generator's own sentence.
TEMPLATES = (
    "{g}{a} {n} for {u}",
    "{g}{n}, {a}, made for {u}",
    "perfect for {u}: a {g}{a} {n}",
    "{g}{a} {n}, ideal for {u}",
)
N_VARIANTS = 4  # the catalogue wording and its three paraphrases
_STREAM = 10  # second seed word: keeps these draws apart from the generator's streams

Table = TypeVar("Table")


def _parse(category: str, description: str) -> tuple[str, str, str, str, str]:
    """Split a generated description into (generic adjective, adjective, noun, use, tail)."""
    vocab = CATALOGUE.get(category)
    if vocab is None:
        raise ValueError(f"unknown category {category!r}; expected one of {list(CATALOGUE)}")
    head, _, tail = description.partition(", ")
    if tail and tail not in GENERIC_TAILS:
        raise ValueError(f"description {description!r} has an unknown tail {tail!r}")
    left, sep, use = head.partition(" for ")
    noun = next((n for n in vocab["nouns"] if left == n or left.endswith(" " + n)), None)
    if not sep or use not in vocab["uses"] or noun is None:
        raise ValueError(
            f"description {description!r} is not of the generator's form "
            f"'[generic] adjective noun for use[, tail]' with {category!r} words"
        )
    words = left[: -len(noun)].split()
    generic = words[0] if len(words) == 2 else ""
    if (
        len(words) not in (1, 2)
        or words[-1] not in vocab["adjectives"]
        or (generic and generic not in GENERIC_ADJECTIVES)
    ):
        raise ValueError(
            f"description {description!r} has no {category!r} adjective before {noun!r}"
        )
    return generic, words[-1], noun, use, tail


def vary_descriptions(
    items: pd.DataFrame, seed: int = DEFAULT_SEED, new_items: np.ndarray | None = None
) -> pd.DataFrame:
    """A copy of the item table ``items`` with every description reworded (see module docstring).

    Parameters
    ----------
    items : pd.DataFrame
        Item attributes written by :func:`grouprec.synthetic.generate_ecommerce`, with columns
        ``item``, ``category`` and ``description`` (other columns are kept as they are).
    seed : int
        Seed of the template and wording draws.
    new_items : array of int, optional
        Item ids (values of ``items["item"]``) described in the second house style; when given,
        the other items use the first. By default every item draws from all four wordings.

    Returns
    -------
    pd.DataFrame
        Same rows, columns and order; only ``description`` differs.
    """
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame, got {type(items).__name__}")
    missing = [c for c in ("item", "category", "description") if c not in items.columns]
    if missing:
        raise ValueError(f"items lacks the column(s) {missing}; it has {list(items.columns)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n = len(items)
    rng = np.random.default_rng([int(seed), _STREAM])
    template = rng.integers(len(TEMPLATES), size=n)  # (n,)
    if new_items is None:
        variant = rng.integers(N_VARIANTS, size=(n, len(TEXT_SLOTS)))  # (n, 3)
    else:
        ids = np.asarray(new_items)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"new_items must hold integer item ids, got dtype {ids.dtype}")
        unknown = np.setdiff1d(ids, items["item"].to_numpy())
        if unknown.size:
            raise ValueError(f"new_items holds ids not in items['item']: {unknown[:5].tolist()}")
        new = np.isin(items["item"].to_numpy(), ids)  # (n,)
        half = N_VARIANTS // 2
        variant = half * new[:, None] + rng.integers(half, size=(n, len(TEXT_SLOTS)))  # (n, 3)
    texts = []
    rows = zip(items["category"], items["description"], template, variant, strict=True)
    for category, description, t, v in rows:  # string assembly only; the draws are above
        generic, *slots, tail = _parse(str(category), str(description))
        words = [
            (word, *PARAPHRASES[category][slot][word])[k]
            for slot, word, k in zip(TEXT_SLOTS, slots, v, strict=True)
        ]
        text = TEMPLATES[t].format(
            g=f"{generic} " if generic else "", a=words[0], n=words[1], u=words[2]
        )
        texts.append(f"{text}, {tail}" if tail else text)
    out = items.copy()
    out["description"] = texts
    return out


def with_varied_descriptions(
    data: Table, seed: int = DEFAULT_SEED, new_items: np.ndarray | None = None
) -> Table:
    """A copy of a dataset (``SyntheticData`` or ``GroupDataset``) with reworded descriptions.

    ``SyntheticData`` keeps its table in ``items``, ``GroupDataset`` in ``item_features``; the
    rest of the dataset is shared, not copied. Arguments as in :func:`vary_descriptions`.
    """
    for field in ("items", "item_features"):
        table = getattr(data, field, None)
        if isinstance(table, pd.DataFrame):
            return dataclasses.replace(data, **{field: vary_descriptions(table, seed, new_items)})
    raise ValueError(
        f"{type(data).__name__} has no item table (items or item_features); it needs one written "
        "by grouprec.synthetic.generate_ecommerce"
    )
