"""Item attributes to feature vectors: :class:`ItemFeaturizer` and its TF-IDF text block.

:class:`ItemFeaturizer` turns the attribute table (``dataset.item_features``: item, category,
tags separated by ``|``, price, description) into a feature vector ``f_i`` per item: category
one-hot, tags multi-hot, the logarithm of the price standardised and cut into quantile buckets,
and the description as TF-IDF weights (Salton & Buckley, 1988), implemented here with numpy.
The helpers at the end (the item table, the mask of new items) serve both recommenders of the
chapter, :class:`~grouprec.features.HybridRecommender` and
:class:`~grouprec.features.ContentRecommender`.

References
----------
- G. Salton, C. Buckley. Term-weighting approaches in automatic text retrieval. Information
  Processing & Management 24(5), 513-523, 1988.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from grouprec.checks import check_item_table
from grouprec.constants import ATTRIBUTE_COLUMNS  # noqa: F401  (importable here, where it was defined)
from grouprec.data import GroupDataset

#: Feature blocks an :class:`ItemFeaturizer` can build, in the order of its columns.
BLOCKS = ("category", "tags", "price", "text")


_PRICE_MODES = ("zscore", "bucket", "both")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


# --------------------------------------------------------------------------------------------
# Text: tokens, term counts, inverse document frequency
# --------------------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text``; hyphenated words ("non-stick") stay whole, punctuation goes."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    return _TOKEN.findall(text.lower())


def term_counts(docs: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Term-frequency matrix ``tf`` (n_docs, V): how often each vocabulary word occurs in each doc.

    Words outside ``vocabulary`` are not counted.
    """
    index = {w: k for k, w in enumerate(vocabulary)}
    rows, cols = [], []
    for r, doc in enumerate(docs):
        for w in doc:
            k = index.get(w)
            if k is not None:
                rows.append(r)
                cols.append(k)
    tf = np.zeros((len(docs), len(index)), dtype=np.float64)
    np.add.at(tf, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
    return tf


def inverse_document_frequency(tf: np.ndarray) -> np.ndarray:
    """``idf_w = ln(N / df_w)`` (V,) from a term-frequency matrix of N documents.

    ``df_w`` is the number of documents containing word ``w``. A word found in every document gets
    weight 0: it says nothing about which document is which. Every word must occur at least once.
    """
    tf = np.asarray(tf)
    df = (tf > 0).sum(axis=0)  # (V,)
    if np.any(df == 0):
        raise ValueError(
            f"{int((df == 0).sum())} vocabulary words occur in no document; build the vocabulary "
            "from the same documents"
        )
    return np.log(tf.shape[0] / df)


# --------------------------------------------------------------------------------------------
# The featurizer
# --------------------------------------------------------------------------------------------


def attribute_columns(blocks: Sequence[str]) -> list[str]:
    """The columns of the item attribute table that the feature ``blocks`` read, ``item`` first."""
    return ["item"] + [
        {"category": "category", "tags": "tags", "price": "price", "text": "description"}[b]
        for b in blocks
    ]


def _split_tags(value: Any) -> list[str]:
    return [t.strip() for t in str(value).split("|") if t.strip()]


class ItemFeaturizer:
    """Item attributes → one dense feature vector ``f_i`` per item.

    Blocks of columns, in this order (each optional, see ``blocks``):

    * ``category``: one-hot over the categories of the fitted items;
    * ``tags``: multi-hot over their tags (``|``-separated in the table);
    * ``price``: ``z_i = (ln price_i - mean) / sd`` and/or a one-hot of ``n_price_buckets``
      quantile buckets of ``ln price``; the mean, sd and bucket edges come from the fitted items;
    * ``text``: TF-IDF of the description, ``tf_wi · ln(N / df_w)`` with a vocabulary and
      document frequencies from the fitted items, each row scaled to unit length.

    Everything is estimated in :meth:`fit` from the rows of ``fit_items`` only (by default all
    items), so that a cold-start experiment can keep the statistics of held-out items out of it.
    :meth:`transform` then encodes any item; a category, tag or word not seen in :meth:`fit` has
    no column and is counted in :attr:`unknown_`, never silently.

    Parameters
    ----------
    blocks : sequence of str
        Which blocks to build, a subset of :data:`BLOCKS`.
    price : {"zscore", "bucket", "both"}
        How the price is encoded.
    n_price_buckets : int
        Number of quantile buckets of the log price.
    min_df : int
        A word enters the vocabulary when at least this many fitted descriptions contain it.
    max_vocab : int, optional
        Keep only the most frequent words (by document frequency; ties alphabetically).
    sublinear_tf : bool
        Use ``1 + ln tf`` instead of the raw count ``tf`` for words that occur.

    Attributes
    ----------
    feature_names_ : list of str
        One name per column, e.g. ``"category=books"``, ``"tag=premium"``, ``"word=kettle"``.
    blocks_ : dict of str to slice
        The columns of each block.
    vocabulary_, idf_ : list of str, np.ndarray
        The text vocabulary and its inverse document frequencies.
    unknown_ : dict of str to int
        Values met by the last :meth:`transform` that have no column: categories, tag
        occurrences, word occurrences.
    """

    def __init__(
        self,
        blocks: Sequence[str] = BLOCKS,
        price: str = "both",
        n_price_buckets: int = 5,
        min_df: int = 1,
        max_vocab: int | None = None,
        sublinear_tf: bool = False,
    ) -> None:
        blocks = tuple(blocks)
        unknown = [b for b in blocks if b not in BLOCKS]
        if unknown or not blocks or len(set(blocks)) != len(blocks):
            raise ValueError(f"blocks must be distinct names from {BLOCKS}, got {blocks!r}")
        if price not in _PRICE_MODES:
            raise ValueError(f"price must be one of {_PRICE_MODES}, got {price!r}")
        for name, value in (("n_price_buckets", n_price_buckets), ("min_df", min_df)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if max_vocab is not None and (
            not isinstance(max_vocab, (int, np.integer)) or max_vocab < 1
        ):
            raise ValueError(f"max_vocab must be None or an integer >= 1, got {max_vocab!r}")
        # Sorted by BLOCKS so that the column order never depends on how the caller listed them.
        self.blocks = tuple(b for b in BLOCKS if b in blocks)
        self.price = price
        self.n_price_buckets = int(n_price_buckets)
        self.min_df = int(min_df)
        self.max_vocab = None if max_vocab is None else int(max_vocab)
        self.sublinear_tf = bool(sublinear_tf)

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {
            "blocks": self.blocks,
            "price": self.price,
            "n_price_buckets": self.n_price_buckets,
            "min_df": self.min_df,
            "max_vocab": self.max_vocab,
            "sublinear_tf": self.sublinear_tf,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def n_features(self) -> int:
        """Number of columns (after :meth:`fit`)."""
        self._check_fitted()
        return len(self.feature_names_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise RuntimeError("call fit(items) before using the featurizer")

    def _tf(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        tf = term_counts(docs, self.vocabulary_)
        if self.sublinear_tf:
            tf[tf > 0] = 1.0 + np.log(tf[tf > 0])
        return tf

    def fit(self, items: pd.DataFrame, fit_items: Iterable[int] | None = None) -> ItemFeaturizer:
        """Learn the columns and statistics from the rows of ``items`` listed in ``fit_items``.

        Parameters
        ----------
        items : pd.DataFrame
            The attribute table, one row per item id 0..n-1 (any row order).
        fit_items : array of int, optional
            Item ids whose rows the statistics come from; by default every item.
        """
        items = check_item_table("items", items, attribute_columns(self.blocks))
        if fit_items is None:
            rows = items
        else:
            fit_items = np.unique(np.asarray(list(fit_items), dtype=np.int64))
            if fit_items.size == 0:
                raise ValueError("fit_items is empty; there is nothing to fit on")
            if fit_items.min() < 0 or fit_items.max() >= len(items):
                raise ValueError(
                    f"fit_items must lie in 0..{len(items) - 1}, got "
                    f"{fit_items.min()}..{fit_items.max()}"
                )
            rows = items.iloc[fit_items]
        names: list[str] = []
        self.blocks_: dict[str, slice] = {}

        def add(block: str, columns: list[str]) -> None:
            self.blocks_[block] = slice(len(names), len(names) + len(columns))
            names.extend(columns)

        if "category" in self.blocks:
            self.categories_ = sorted({str(c) for c in rows["category"]})
            add("category", [f"category={c}" for c in self.categories_])
        if "tags" in self.blocks:
            self.tags_ = sorted({t for value in rows["tags"] for t in _split_tags(value)})
            add("tags", [f"tag={t}" for t in self.tags_])
        if "price" in self.blocks:
            log_price = np.log(rows["price"].to_numpy(np.float64))
            self.log_price_mean_ = float(log_price.mean())
            sd = float(log_price.std())
            self.log_price_sd_ = sd if sd > 0 else 1.0  # one price for all: z = 0
            columns = []
            if self.price in ("zscore", "both"):
                columns.append("log_price_z")
            if self.price in ("bucket", "both"):
                levels = np.arange(1, self.n_price_buckets) / self.n_price_buckets
                self.price_edges_ = np.quantile(log_price, levels)  # (n_price_buckets - 1,)
                bounds = np.exp(np.concatenate([[-np.inf], self.price_edges_, [np.inf]]))
                columns += [
                    f"price_bucket={k} [{lo:.2f}, {hi:.2f})"
                    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
                ]
            add("price", columns)
        if "text" in self.blocks:
            docs = [tokenize(str(t)) for t in rows["description"]]
            df: dict[str, int] = {}
            for doc in docs:
                for w in set(doc):
                    df[w] = df.get(w, 0) + 1
            words = sorted(
                (w for w, n in df.items() if n >= self.min_df), key=lambda w: (-df[w], w)
            )
            if self.max_vocab is not None:
                words = words[: self.max_vocab]
            self.vocabulary_ = sorted(words)
            self.idf_ = inverse_document_frequency(term_counts(docs, self.vocabulary_))
            self.n_fit_docs_ = len(docs)
            add("text", [f"word={w}" for w in self.vocabulary_])
        self.feature_names_ = names
        self.n_items_ = len(items)
        return self

    def transform(self, items: pd.DataFrame) -> Tensor:
        """Feature matrix (n_items, n_features), float32; row ``i`` describes item ``i``."""
        self._check_fitted()
        items = check_item_table("items", items, attribute_columns(self.blocks))
        n = len(items)
        parts = []
        self.unknown_ = {}
        if "category" in self.blocks:
            index = {c: k for k, c in enumerate(self.categories_)}
            k = np.array([index.get(str(c), -1) for c in items["category"]], dtype=np.int64)
            onehot = np.zeros((n, len(index)))
            onehot[np.flatnonzero(k >= 0), k[k >= 0]] = 1.0
            self.unknown_["categories"] = int((k < 0).sum())
            parts.append(onehot)
        if "tags" in self.blocks:
            index = {t: k for k, t in enumerate(self.tags_)}
            multihot = np.zeros((n, len(index)))
            missed = 0
            for r, value in enumerate(items["tags"]):
                for t in _split_tags(value):
                    if t in index:
                        multihot[r, index[t]] = 1.0
                    else:
                        missed += 1
            self.unknown_["tags"] = missed
            parts.append(multihot)
        if "price" in self.blocks:
            log_price = np.log(items["price"].to_numpy(np.float64))  # (n,)
            if self.price in ("zscore", "both"):
                parts.append(((log_price - self.log_price_mean_) / self.log_price_sd_)[:, None])
            if self.price in ("bucket", "both"):
                bucket = np.searchsorted(self.price_edges_, log_price, side="right")  # (n,)
                parts.append(np.eye(self.n_price_buckets)[bucket])
        if "text" in self.blocks:
            docs = [tokenize(str(t)) for t in items["description"]]
            tf = self._tf(docs)  # (n, V)
            tfidf = tf * self.idf_[None, :]
            norm = np.linalg.norm(tfidf, axis=1, keepdims=True)
            parts.append(np.divide(tfidf, norm, out=np.zeros_like(tfidf), where=norm > 0))
            known = set(self.vocabulary_)
            self.unknown_["words"] = sum(w not in known for doc in docs for w in doc)
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))

    def fit_transform(self, items: pd.DataFrame, fit_items: Iterable[int] | None = None) -> Tensor:
        """:meth:`fit`, then :meth:`transform` of every item."""
        return self.fit(items, fit_items).transform(items)


def normalise_blocks(X: Tensor | np.ndarray, blocks: dict[str, slice]) -> np.ndarray:
    """Scale each block of each row to unit length (all-zero blocks stay zero), float64.

    After this the category, the tags, the price and the text weigh the same in a dot product.
    """
    X = X.numpy() if isinstance(X, Tensor) else np.asarray(X)
    out = np.array(X, dtype=np.float64)
    for cols in blocks.values():
        part = out[:, cols]
        norm = np.linalg.norm(part, axis=1, keepdims=True)
        out[:, cols] = np.divide(part, norm, out=np.zeros_like(part), where=norm > 0)
    return out


# --------------------------------------------------------------------------------------------
# Helpers shared by the recommenders of this chapter
# --------------------------------------------------------------------------------------------


def _new_item_mask(new_items: np.ndarray | None, n_items: int) -> np.ndarray:
    new = np.zeros(n_items, dtype=bool)
    if new_items is not None:
        ids = np.asarray(new_items, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= n_items):
            raise ValueError(
                f"new_items must lie in 0..{n_items - 1}, got {ids.min()}..{ids.max()}"
            )
        new[ids] = True
    if new.all():
        raise ValueError("new_items lists every item; some items must exist at training time")
    return new


def _item_table(dataset: GroupDataset) -> pd.DataFrame:
    items = dataset.item_features
    if items is None:
        raise ValueError(
            f"dataset {dataset.name!r} has no item features (no itemAttributes.tsv); "
            "use use_features=False for plain matrix factorisation"
        )
    if len(items) != dataset.n_items:
        raise ValueError(
            f"dataset {dataset.name!r} describes {len(items)} items but has {dataset.n_items}"
        )
    return items
