"""Item-feature stage: item vectors from side information, and cold-start items (``05_item_features``).

Matrix factorisation (:mod:`grouprec.preference`) learns one free vector per item from that item's
interactions, so an item with none has nothing to learn from. When the catalogue describes every
item (a category, tags, a price, a text), a network can map those attributes to the item's vector
instead, and a new item is scored from its description on the day it arrives. This module builds
that hybrid model in four parts.

* :class:`ItemFeaturizer` turns the attribute table (``dataset.item_features``: item, category,
  tags separated by ``|``, price, description) into a feature vector ``f_i`` per item: category
  one-hot, tags multi-hot, the logarithm of the price standardised and cut into quantile
  buckets, and the description as TF-IDF weights (Salton & Buckley, 1988), implemented here
  with numpy.
* :class:`ItemEncoder` is the MLP ``g_θ`` that maps ``f_i`` to a vector in the users' space, and
  :class:`HybridMF` scores a pair as

      ŷ_ui = p_u · q_i + β_i,     q_i = g_θ(f_i) + m_i e_i,     β_i = w_βᵀ f_i + m_i b_i,

  where ``e_i`` and ``b_i`` are an optional free vector and bias per item (a correction on top of
  the content, as in collaborative topic regression, Wang & Blei, 2011) and ``m_i`` is 0 for items
  that did not exist during training, so those are scored from their features alone. During
  training ``m_i`` is also set to 0 at random, with probability ``id_dropout``, so that the
  content path learns to rank on its own (DropoutNet, Volkovs et al., 2017). The user enters
  through ``p_u`` only. :class:`HybridRecommender` trains it with BPR through
  :func:`grouprec.training.fit`, for users or for groups.
* :class:`ContentRecommender` is the simple baseline: the cosine between an entity's profile (the
  sum of the feature vectors of its training items) and each item's features.
* :func:`cold_start_split` hides a random set of items from training to measure all of this, and
  :func:`silhouette_score` and :func:`linear_probe_r2` compare learned item vectors with the
  planted structure of the synthetic data (Rousseeuw, 1987).

References
----------
- G. Salton, C. Buckley. Term-weighting approaches in automatic text retrieval. Information
  Processing & Management 24(5), 513-523, 1988.
- C. Wang, D. M. Blei. Collaborative topic modeling for recommending scientific articles. KDD 2011.
- M. Volkovs, G. Yu, T. Poutanen. DropoutNet: addressing cold start in recommender systems.
  NeurIPS 2017.
- Z. Gantner, L. Drumond, C. Freudenthaler, S. Rendle, L. Schmidt-Thieme. Learning
  attribute-to-feature mappings for cold-start recommendations. ICDM 2010.
- P. J. Rousseeuw. Silhouettes: a graphical aid to the interpretation and validation of cluster
  analysis. Journal of Computational and Applied Mathematics 20, 53-65, 1987.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from grouprec.base import BaseRecommender
from grouprec.baselines import history
from grouprec.constants import DEFAULT_SEED, TASKS
from grouprec.data import EvalCases, GroupDataset, Interactions, NegativeSampler
from grouprec.preference import bpr_step_loss
from grouprec.training import (
    History,
    TripletBatches,
    check_id_tensor,
    check_size,
    fit,
    ranking_val_fn,
    seed_everything,
    select_device,
)

__all__ = [
    "BLOCKS",
    "ColdStartSplit",
    "ContentRecommender",
    "HybridMF",
    "HybridRecommender",
    "ItemEncoder",
    "ItemFeaturizer",
    "ItemPoolSampler",
    "cold_start_split",
    "inverse_document_frequency",
    "linear_probe_r2",
    "normalise_blocks",
    "silhouette_score",
    "term_counts",
    "tokenize",
]

#: Feature blocks an :class:`ItemFeaturizer` can build, in the order of its columns.
BLOCKS = ("category", "tags", "price", "text")

#: Columns the item attribute table must have.
ATTRIBUTE_COLUMNS = ("item", "category", "tags", "price", "description")

_PRICE_MODES = ("zscore", "bucket", "both")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

# Scores computed per forward call when scoring candidate lists.
_SCORE_CELLS = 1 << 17


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


def _check_items(items: pd.DataFrame, blocks: Sequence[str]) -> pd.DataFrame:
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame, got {type(items).__name__}")
    needed = ["item"] + [
        {"category": "category", "tags": "tags", "price": "price", "text": "description"}[b]
        for b in blocks
    ]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise ValueError(
            f"items lacks the column(s) {missing}; it has {list(items.columns)} "
            f"(expected {list(ATTRIBUTE_COLUMNS)}, as in itemAttributes.tsv)"
        )
    ids = items["item"].to_numpy()
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"items['item'] must hold integer ids, got dtype {ids.dtype}")
    order = np.argsort(ids, kind="stable")
    expected = np.arange(len(ids))
    if not np.array_equal(ids[order], expected):
        seen = np.zeros(max(len(ids), int(ids.max()) + 1 if len(ids) else 0), dtype=np.int64)
        np.add.at(seen, ids[ids >= 0], 1)
        repeated = np.flatnonzero(seen > 1)[:5].tolist()
        absent = np.flatnonzero(seen[: len(ids)] == 0)[:5].tolist()
        raise ValueError(
            f"items['item'] must hold each id 0..{len(ids) - 1} exactly once (one row per item); "
            f"repeated ids (first 5): {repeated}, missing ids (first 5): {absent}"
        )
    if "price" in blocks:
        price = pd.to_numeric(items["price"], errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(price) & (price > 0))
        if bad.any():
            k = int(np.argmax(bad))
            value = items["price"].iloc[k]
            value = value.item() if isinstance(value, np.generic) else value
            raise ValueError(
                f"items['price'] must be positive numbers; item {int(ids[k])} has {value!r}"
            )
    return items.iloc[order].reset_index(drop=True)


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
        items = _check_items(items, self.blocks)
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
        items = _check_items(items, self.blocks)
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
# The models
# --------------------------------------------------------------------------------------------


class ItemEncoder(nn.Module):
    """``g_θ``: an MLP from item features ``f_i`` (n_features,) to a vector (d,).

    ReLU hidden layers and a linear output layer: the output is a point anywhere in the users'
    space, positive or negative in each coordinate, as an embedding must be free to be.

    Parameters
    ----------
    n_features : int
        Width of ``f_i``.
    d : int
        Width of the output.
    hidden : sequence of int
        Widths of the hidden layers (empty: a linear map).
    """

    def __init__(self, n_features: int, d: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = check_size("n_features", n_features)
        for k, out in enumerate(hidden):
            layers += [nn.Linear(width, check_size(f"hidden[{k}]", out)), nn.ReLU()]
            width = int(out)
        layers.append(nn.Linear(width, check_size("d", d)))
        self.mlp = nn.Sequential(*layers)

    def forward(self, f: Tensor) -> Tensor:
        """Vectors (..., d) of feature rows ``f`` (..., n_features)."""
        return self.mlp(f)


class HybridMF(nn.Module):
    """Matrix factorisation whose item vectors come from item features, plus optional free ids.

    ``ŷ_ui = p_u · q_i + β_i`` with ``q_i = g_θ(f_i) + m_i e_i`` and ``β_i = w_βᵀ f_i + m_i b_i``.

    ``m_i`` is 1 for items that existed during training (``known``) and 0 for the others, so a
    new item is scored from its features alone. In training mode ``m_i`` is also set to 0 with
    probability ``id_dropout``, independently for every item occurrence of a batch, so that the
    feature path ``g_θ`` learns to rank without the free vectors. Unlike ordinary dropout nothing
    is rescaled: a dropped item is scored exactly as a new item would be.

    With ``n_features = 0`` the model is plain matrix factorisation (``q_i = m_i e_i``); with
    ``use_ids = False`` it has no free item parameters (``q_i = g_θ(f_i)``).

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id spaces (for the group task, ``n_users`` counts groups).
    n_features : int
        Width of the item features (0: no features).
    d : int
        Embedding width.
    hidden : sequence of int
        Hidden widths of the encoder :class:`ItemEncoder`.
    use_ids : bool
        Learn the free vector ``e_i`` and bias ``b_i`` of each known item.
    id_dropout : float
        Probability ``ρ`` of scoring a known item by its features alone during training.
    init_std : float
        Standard deviation of the normal initialisation of ``P`` (and of ``E`` without features;
        with features ``E`` starts at 0, so the model starts from the content alone).
    features : Tensor, optional
        The feature matrix ``F`` (n_items, n_features); a buffer, saved with the weights.
    known : Tensor, optional
        Boolean (n_items,): the items that exist during training (by default all); a buffer.

    Attributes
    ----------
    P : nn.Embedding
        Entity vectors (n_users, d).
    encoder : ItemEncoder or None
        ``g_θ``.
    w_beta : nn.Linear or None
        The feature bias ``w_βᵀ f_i``.
    E, b : nn.Embedding or None
        Free item vectors (n_items, d) and biases (n_items, 1).
    config : dict
        The constructor arguments except the buffers (stored in checkpoints).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_features: int,
        d: int = 32,
        hidden: Sequence[int] = (64,),
        use_ids: bool = True,
        id_dropout: float = 0.5,
        init_std: float = 0.1,
        features: Tensor | None = None,
        known: Tensor | None = None,
    ) -> None:
        super().__init__()
        n_features = check_size("n_features", n_features, minimum=0)
        if not (0.0 <= float(id_dropout) <= 1.0):
            raise ValueError(f"id_dropout must lie in [0, 1], got {id_dropout!r}")
        if n_features == 0 and not use_ids:
            raise ValueError("with n_features=0 the model needs use_ids=True: it has nothing else")
        if n_features == 0 and id_dropout > 0:
            raise ValueError(
                f"id_dropout={id_dropout} needs item features to fall back on; "
                "with n_features=0 set id_dropout=0"
            )
        # features and known are buffers, saved in the state dict, so the config leaves them out.
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "n_features": n_features,
            "d": check_size("d", d),
            "hidden": [int(w) for w in hidden],
            "use_ids": bool(use_ids),
            "id_dropout": float(id_dropout),
            "init_std": float(init_std),
        }
        self.id_dropout = float(id_dropout)
        self.P = nn.Embedding(n_users, d)
        nn.init.normal_(self.P.weight, std=init_std)
        F = torch.zeros(n_items, n_features) if features is None else features
        if tuple(F.shape) != (n_items, n_features):
            raise ValueError(
                f"features must have shape (n_items, n_features) = ({n_items}, {n_features}), "
                f"got {tuple(F.shape)}"
            )
        # detach: the features are data, not a parameter to learn.
        self.register_buffer("features", F.detach().to(torch.float32).clone())  # (I, n_f)
        m = torch.ones(n_items, dtype=torch.bool) if known is None else known
        if tuple(m.shape) != (n_items,) or m.dtype != torch.bool:
            raise ValueError(
                f"known must be a bool tensor of shape ({n_items},), got {m.dtype} {tuple(m.shape)}"
            )
        self.register_buffer("known", m.clone())  # (I,)
        if n_features:
            self.encoder: ItemEncoder | None = ItemEncoder(n_features, d, hidden)
            self.w_beta: nn.Linear | None = nn.Linear(n_features, 1)
        else:
            self.encoder = self.w_beta = None
        if use_ids:
            self.E: nn.Embedding | None = nn.Embedding(n_items, d)
            self.b: nn.Embedding | None = nn.Embedding(n_items, 1)
            if n_features:
                nn.init.zeros_(self.E.weight)  # a correction on top of the content: starts at 0
            else:
                nn.init.normal_(self.E.weight, std=init_std)
            nn.init.zeros_(self.b.weight)
        else:
            self.E = self.b = None

    def content_vectors(self, i: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``g_θ(f_i)`` (..., d) and ``w_βᵀ f_i`` (...) of items ``i`` (all items if None)."""
        if self.encoder is None:
            raise RuntimeError("this model has no item features (n_features=0)")
        if i is None:
            f = self.features  # (I, n_f)
            return self.encoder(f), self.w_beta(f)[:, 0]
        # Encode each distinct item once, then gather: candidate lists repeat items a lot. The
        # gather is an embedding lookup because its backward pass sums the gradients of repeated
        # items in a fixed order on the CPU (indexing with [inv] does not with several threads).
        uniq, inv = torch.unique(i, return_inverse=True)  # (n_uniq,), i.shape
        f = self.features[uniq]  # (n_uniq, n_f)
        out = torch.cat([self.encoder(f), self.w_beta(f)], dim=-1)  # (n_uniq, d + 1)
        rows = nn.functional.embedding(inv, out)  # (..., d + 1)
        return rows[..., :-1], rows[..., -1]

    def item_vectors(self, i: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``q_i`` (..., d) and ``β_i`` (...) of items ``i`` (all items if None).

        In training mode the free part of each item occurrence is dropped with probability
        ``id_dropout``; in evaluation mode it is kept for every known item.
        """
        n_items = self.known.shape[0]
        idx = torch.arange(n_items, device=self.known.device) if i is None else i
        check_id_tensor("i", idx, n_items)
        if self.encoder is not None:
            q_i, beta_i = self.content_vectors(i)
        else:
            dtype = self.P.weight.dtype
            q_i = torch.zeros((*idx.shape, self.P.embedding_dim), dtype=dtype, device=idx.device)
            beta_i = torch.zeros(idx.shape, dtype=dtype, device=idx.device)
        if self.E is not None:
            m_i = self.known[idx].to(q_i.dtype)  # (...): 0 for items unknown in training
            if self.training and self.id_dropout > 0:
                keep = torch.rand(idx.shape, device=idx.device) >= self.id_dropout
                m_i = m_i * keep.to(q_i.dtype)
            q_i = q_i + m_i[..., None] * self.E(idx)
            beta_i = beta_i + m_i * self.b(idx)[..., 0]
        return q_i, beta_i

    def forward(self, u: Tensor, i: Tensor) -> Tensor:
        """Scores ``ŷ_ui`` for ids ``u`` and ``i`` of broadcastable shapes.

        ``u`` (B,) with ``i`` (B,) gives (B,); ``u`` (B, 1) with ``i`` (B, c) gives (B, c).
        """
        check_id_tensor("u", u, self.P.num_embeddings)
        p_u = self.P(u)  # (..., d)
        q_i, beta_i = self.item_vectors(i)  # (..., d), (...)
        return (p_u * q_i).sum(-1) + beta_i


# --------------------------------------------------------------------------------------------
# Negatives from a pool of items
# --------------------------------------------------------------------------------------------


class ItemPoolSampler:
    """Uniform negatives drawn from a pool of items, never a positive of the entity.

    The same interface as :class:`grouprec.data.NegativeSampler` (pass it to
    :class:`grouprec.training.TripletBatches`), for when only some items may serve as negatives:
    in a cold-start experiment, the items that exist at training time.

    Parameters
    ----------
    positives : Interactions
        Pairs that must never be drawn as negatives of their entity.
    n_items : int
        Size of the item id space.
    pool : array of int
        The items negatives are drawn from.
    """

    def __init__(self, positives: Interactions, n_items: int, pool: np.ndarray) -> None:
        self.n_items = int(n_items)
        self.pool = np.unique(np.asarray(pool, dtype=np.int64))
        if self.pool.size == 0:
            raise ValueError("pool is empty: there is no item to draw negatives from")
        if self.pool[0] < 0 or self.pool[-1] >= self.n_items:
            raise ValueError(
                f"pool must hold item ids in 0..{self.n_items - 1}, got "
                f"{self.pool[0]}..{self.pool[-1]}"
            )
        self._positives = NegativeSampler(positives, self.n_items)
        # Distinct positives of each entity inside the pool: an entity owning the whole pool
        # would make rejection sampling loop for ever.
        keys = np.unique(positives.keys(self.n_items))
        in_pool = np.isin(keys % self.n_items, self.pool)
        self._n_pos = np.bincount(keys[in_pool] // self.n_items)

    def is_positive(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array shaped like ``items``: True where the item is a positive of its entity."""
        return self._positives.is_positive(entities, items)

    def sample(self, entities: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_neg`` negatives per entity from the pool (with replacement), shape (n, n_neg)."""
        entities = np.asarray(entities, dtype=np.int64)
        n_pos = np.zeros(len(entities), dtype=np.int64)
        inside = entities < len(self._n_pos)
        n_pos[inside] = self._n_pos[entities[inside]]
        if np.any(n_pos >= self.pool.size):
            bad = int(entities[np.argmax(n_pos >= self.pool.size)])
            raise ValueError(f"entity {bad} has every pool item as a positive; no negative exists")
        out = self.pool[rng.integers(self.pool.size, size=(len(entities), n_neg))]
        rejected = self.is_positive(entities, out)
        while rejected.any():
            out[rejected] = self.pool[rng.integers(self.pool.size, size=int(rejected.sum()))]
            rows = np.nonzero(rejected)[0]
            rejected[rejected] = self.is_positive(entities[rows], out[rejected])
        return out


def _distinct_from_pool(
    entities: np.ndarray,
    positives: Interactions,
    n_items: int,
    pool: np.ndarray,
    m: int,
    rng: np.random.Generator,
    what: str,
) -> np.ndarray:
    """``m`` distinct items per entity (n, m), uniform over the pool items that are not its positives.

    Each row sorts fresh uniform keys over the pool with the entity's positives set to +inf, so its
    first ``m`` items are a uniform sample without replacement.
    """
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    sampler = NegativeSampler(positives, n_items)
    out = np.empty((len(entities), m), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, pool.size))
    for start in range(0, len(entities), step):
        e = entities[start : start + step]
        taken = sampler.is_positive(e, np.broadcast_to(pool, (len(e), pool.size)))  # (B, P)
        free = pool.size - taken.sum(axis=1)
        if len(e) and free.min() < m:
            k = int(np.argmin(free))
            raise ValueError(
                f"{what}: entity {int(e[k])} has only {int(free[k])} pool items that are not its "
                f"positives, fewer than n_negatives={m}; lower n_negatives or frac"
            )
        keys = rng.random((len(e), pool.size))
        keys[taken] = np.inf  # positives sort last, never among the first m
        out[start : start + step] = pool[np.argsort(keys, axis=1, kind="stable")[:, :m]]
    return out


# --------------------------------------------------------------------------------------------
# Recommenders
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


def _check_no_new_items(dataset: GroupDataset, task: str, new: np.ndarray) -> None:
    """Training and validation data must not mention an item that does not exist yet."""
    train = dataset.train(task)
    if new[train.item].any():
        k = int(np.argmax(new[train.item]))
        raise ValueError(
            f"new_items holds item {int(train.item[k])}, which has training interactions "
            f"({task} {int(train.entity[k])}); new items must be absent from training "
            "(see cold_start_split)"
        )
    val = getattr(dataset, f"{task}_val")
    if val is not None and len(val) and new[val.candidates()].any():
        raise ValueError(
            f"the {task} validation cases mention new items (as positives or negatives); "
            "validate on items that exist at training time (see cold_start_split)"
        )


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


class HybridRecommender(BaseRecommender):
    """:class:`HybridMF` trained with BPR, behind the common recommender interface.

    ``fit`` builds the item features from ``dataset.item_features`` with ``featurizer``, fitted
    on the items that exist at training time (all but ``new_items``), then trains on
    ``dataset.train(task)`` with negatives drawn uniformly from the existing items, stopping early
    on NDCG@10 over the validation cases when the dataset has them. For ``task="group"`` the
    entities are groups, each with its own vector ``p_g``.

    Three models share this code, so that a comparison changes one thing at a time:
    ``use_features=False`` is matrix factorisation ("MF"), ``use_ids=False`` scores from the
    features alone ("Features only"), and both together make the hybrid ("Hybrid").

    Parameters
    ----------
    d : int
        Embedding width.
    hidden : sequence of int
        Hidden widths of the item encoder.
    use_features, use_ids : bool
        Which item parts to use (see above).
    id_dropout : float
        Probability of scoring a known item by its features alone during training (hybrid only).
    featurizer : ItemFeaturizer, optional
        Settings of the features (copied, then fitted in ``fit``); by default ``ItemFeaturizer()``.
    new_items : array of int, optional
        Items that do not exist at training time: never drawn as negatives, scored from their
        features alone (and all alike by MF, which knows nothing about them).
    epochs, lr, n_neg, batch_size, weight_decay, patience, init_std, seed, device, progress
        As in :class:`grouprec.preference.BPRRecommender` (``device``: the CPU by default). The
        random ``id_dropout`` is drawn on the training device, so a GPU run with
        ``id_dropout > 0`` differs from a CPU run with the same seed.

    Attributes
    ----------
    model_ : HybridMF
        The trained module (best validation epoch).
    featurizer_ : ItemFeaturizer or None
        The fitted featurizer.
    history_ : History
        Loss and validation curves.
    task_ : str
        The task fitted.
    """

    def __init__(
        self,
        d: int = 32,
        hidden: Sequence[int] = (64,),
        use_features: bool = True,
        use_ids: bool = True,
        id_dropout: float = 0.5,
        featurizer: ItemFeaturizer | None = None,
        new_items: np.ndarray | None = None,
        epochs: int = 50,
        lr: float = 0.01,
        n_neg: int = 1,
        batch_size: int = 1024,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        init_std: float = 0.1,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        if not (use_features or use_ids):
            raise ValueError("use_features and use_ids are both False: the model has no items")
        self.d = check_size("d", d)
        self.hidden = tuple(int(h) for h in hidden)
        self.use_features = bool(use_features)
        self.use_ids = bool(use_ids)
        if not (0.0 <= float(id_dropout) <= 1.0):
            raise ValueError(f"id_dropout must lie in [0, 1], got {id_dropout!r}")
        self.id_dropout = float(id_dropout)
        self.featurizer = featurizer
        self.new_items = None if new_items is None else np.asarray(new_items, dtype=np.int64)
        self.epochs = check_size("epochs", epochs)
        self.lr = lr
        self.n_neg = check_size("n_neg", n_neg)
        self.batch_size = check_size("batch_size", batch_size)
        self.weight_decay = weight_decay
        self.patience = patience
        self.init_std = init_std
        self.seed = seed
        self.device = device
        self.progress = progress

    @property
    def name(self) -> str:
        """Label in results tables: ``"Hybrid"``, ``"Features only"`` or ``"MF"``."""
        if self.use_features and self.use_ids:
            return "Hybrid"
        return "Features only" if self.use_features else "MF"

    def fit(self, dataset: GroupDataset, task: str) -> HybridRecommender:
        """Train on ``dataset``'s training pairs for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        n_items = dataset.n_items
        new = _new_item_mask(self.new_items, n_items)
        _check_no_new_items(dataset, task, new)
        exists = np.flatnonzero(~new)
        F = None
        self.featurizer_: ItemFeaturizer | None = None
        if self.use_features:
            items = _item_table(dataset)
            self.featurizer_ = copy.deepcopy(self.featurizer or ItemFeaturizer())
            F = self.featurizer_.fit_transform(items, fit_items=exists)  # (I, n_f)
        seed_everything(self.seed)  # the initial weights depend on the seed
        self.model_ = HybridMF(
            dataset.n_entities(task),
            n_items,
            0 if F is None else F.shape[1],
            d=self.d,
            hidden=self.hidden,
            use_ids=self.use_ids,
            id_dropout=self.id_dropout if (self.use_ids and self.use_features) else 0.0,
            init_std=self.init_std,
            features=F,
            known=torch.from_numpy(~new),
        )
        train = dataset.train(task)
        sampler = ItemPoolSampler(train, n_items, exists)
        batches = TripletBatches(train, n_items, self.n_neg, self.batch_size, sampler=sampler)
        val = getattr(dataset, f"{task}_val")
        self.history_: History = fit(
            self.model_,
            bpr_step_loss,
            batches,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fn=ranking_val_fn(val) if val is not None and len(val) else None,
            patience=self.patience,
            seed=self.seed,
            progress=self.progress,
            device=select_device(self.device),
        )
        self.model_.eval()
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for entities (n,) (users or groups)."""
        entities, items = self._check_ids(entities, items)
        entities = np.ascontiguousarray(entities)
        items = np.ascontiguousarray(items)  # a copy of a broadcast view: writable
        model = self.model_
        device = model.P.weight.device
        e = torch.as_tensor(entities, dtype=torch.int64)
        i = torch.as_tensor(items, dtype=torch.int64)
        step = max(1, _SCORE_CELLS // max(1, items.shape[1]))  # rows per forward call
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(e), step):
                stop = start + step
                y = model(e[start:stop, None].to(device), i[start:stop].to(device))  # (rows, c)
                out.append(y.float().cpu())
        if not out:
            return np.zeros(items.shape, dtype=np.float32)
        return torch.cat(out).numpy()

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        model = self.model_
        device = model.P.weight.device
        model.eval()
        with torch.no_grad():
            e = torch.as_tensor(entities, device=device)
            Q, beta = model.item_vectors()  # (I, d), (I,)
            return (model.P(e) @ Q.T + beta).float().cpu().numpy()  # (n, I)


class ContentRecommender(BaseRecommender):
    """Content-based baseline: cosine between an entity's feature profile and each item.

    The profile of entity ``e`` is the sum of the feature vectors of its history items,
    ``π_e = Σ_i h_ei x_i`` with ``h_e`` from :func:`grouprec.baselines.history` (for groups,
    ``alpha`` mixes the group's own items with its members'), and ``x_i`` the item's features with
    each block scaled to unit length (:func:`normalise_blocks`). The score is
    ``cos(π_e, x_i)``. Nothing is learned from the interactions beyond the profile, so every item
    with a description, new or not, is scored the same way.

    Parameters
    ----------
    featurizer : ItemFeaturizer, optional
        Settings of the features (copied and fitted in ``fit``); by default ``ItemFeaturizer()``.
    alpha : float
        For groups: weight of the group's own history against its members' (see ``history``).
    new_items : array of int, optional
        Items that do not exist at training time: the featurizer is fitted without them.
    """

    name = "Content profile"

    def __init__(
        self,
        featurizer: ItemFeaturizer | None = None,
        alpha: float = 1.0,
        new_items: np.ndarray | None = None,
    ) -> None:
        self.featurizer = featurizer
        self.alpha = alpha
        self.new_items = None if new_items is None else np.asarray(new_items, dtype=np.int64)

    def fit(self, dataset: GroupDataset, task: str) -> ContentRecommender:
        """Build the profiles of every entity of ``task`` and score every item."""
        self._start_fit(dataset, task)
        new = _new_item_mask(self.new_items, dataset.n_items)
        _check_no_new_items(dataset, task, new)
        items = _item_table(dataset)
        self.featurizer_ = copy.deepcopy(self.featurizer or ItemFeaturizer())
        F = self.featurizer_.fit_transform(items, fit_items=np.flatnonzero(~new))  # (I, n_f)
        X = normalise_blocks(F, self.featurizer_.blocks_)  # (I, n_f)
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        H = sp.csr_matrix(history(dataset, task, self.alpha))  # (n_e, I)
        profile = np.asarray(H @ X)  # (n_e, n_f)
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        self.scores_ = profile @ X.T  # (n_e, I); 0 for an entity without history
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for entities (n,)."""
        entities, items = self._check_ids(entities, items)
        return self.scores_[entities[:, None], items]

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        return self.scores_[entities]


# --------------------------------------------------------------------------------------------
# The cold-start protocol
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStartSplit:
    """A dataset whose cold items are hidden from training, with cases to choose and to test on.

    The items fall into three disjoint sets: warm items, which exist at training time, and two
    sets of cold items, which do not: one to choose hyperparameters on (validation), one to
    report on (test). Every case ranks its positive against ``n_negatives`` items of its own
    shelf: a cold case against cold items of the same set, a warm case against warm items.

    Attributes
    ----------
    dataset : GroupDataset
        The warm data: training pairs and validation cases without any cold item, and as its test
        split the original test cases whose item is warm. Item features cover every item.
    cold_val_items, cold_test_items : np.ndarray
        The cold item ids of each set, sorted.
    cold_val, cold_test : dict of str to EvalCases
        Per task, every distinct (entity, cold item) pair of the original data with an item of
        the set: from the training and validation splits for ``cold_val``, from every split for
        ``cold_test``.
    n_negatives : int
        Negatives per case, never an item the entity interacted with.
    """

    dataset: GroupDataset
    cold_val_items: np.ndarray
    cold_test_items: np.ndarray
    cold_val: dict[str, EvalCases] = field(default_factory=dict)
    cold_test: dict[str, EvalCases] = field(default_factory=dict)
    n_negatives: int = 50

    @property
    def cold_items(self) -> np.ndarray:
        """Every item that does not exist at training time (both cold sets), sorted."""
        return np.union1d(self.cold_val_items, self.cold_test_items)

    @property
    def warm_items(self) -> np.ndarray:
        """The items that exist at training time, sorted."""
        return np.setdiff1d(np.arange(self.dataset.n_items), self.cold_items)

    def cases(self, task: str, kind: str, split: str = "test") -> EvalCases:
        """Cases of ``task`` whose item is ``kind`` ("warm" or "cold"), for ``split``."""
        if kind not in ("warm", "cold"):
            raise ValueError(f"kind must be 'warm' or 'cold', got {kind!r}")
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        if kind == "warm":
            return self.dataset.cases(task, split)
        cases = self.cold_val if split == "val" else self.cold_test
        if task not in cases:
            raise ValueError(f"no cold cases for task {task!r}; the split has {list(cases)}")
        return cases[task]

    def evaluation_dataset(self, kind: str) -> GroupDataset:
        """The warm dataset with the ``kind`` cases as its val and test splits, for ``evaluate``.

        Use it for evaluation only: a model fitted on it would early-stop on those cases.
        """
        if kind not in ("warm", "cold"):
            raise ValueError(f"kind must be 'warm' or 'cold', got {kind!r}")
        if kind == "warm":
            return self.dataset
        changes: dict[str, Any] = {}
        for task in self.cold_test:
            changes[f"{task}_test"] = self.cold_test[task]
            changes[f"{task}_val"] = self.cold_val.get(task)
        return replace(self.dataset, **changes)


def _all_positives(dataset: GroupDataset, task: str, splits: Sequence[str]) -> Interactions:
    parts = []
    for split in splits:
        if split == "train":
            parts.append(dataset.train(task))
        else:
            cases = getattr(dataset, f"{task}_{split}")
            if cases is not None and len(cases):
                parts.append(cases.as_interactions())
    return Interactions(
        np.concatenate([p.entity for p in parts]), np.concatenate([p.item for p in parts])
    )


def _shelf_cases(
    known: Interactions,
    shelf: np.ndarray,
    n_items: int,
    m: int,
    rng: np.random.Generator,
    what: str,
) -> EvalCases:
    """Every distinct pair of ``known`` whose item is on ``shelf``, with ``m`` shelf negatives."""
    on_shelf = np.isin(known.item, shelf)
    keys = np.unique(known.keys(n_items)[on_shelf])  # sorted by entity, then item
    entity, item = keys // n_items, keys % n_items
    return EvalCases(entity, item, _distinct_from_pool(entity, known, n_items, shelf, m, rng, what))


def cold_start_split(
    dataset: GroupDataset,
    frac: float = 0.15,
    val_frac: float = 0.15,
    n_negatives: int = 50,
    seed: int = 0,
    tasks: Iterable[str] = TASKS,
) -> ColdStartSplit:
    """Hide random items from training, as if they were added to the catalogue afterwards.

    1. Draw ``round(frac * n_items)`` cold test items and ``round(val_frac * n_items)`` cold
       validation items, uniformly at random and disjoint. The rest are warm.
    2. Remove every training pair with a cold item (users' and groups'), and every validation case
       whose positive is cold; the remaining validation cases get fresh negatives from the warm
       items, so that early stopping never meets a cold item.
    3. Cold test cases: every distinct (entity, item) pair of the original training, validation
       and test data with a cold test item. Cold validation cases: the same from the training and
       validation data only, with a cold validation item, so that choosing hyperparameters never
       reads the test split. Warm test cases: the original test cases whose item is warm.
    4. Every case ranks its positive against ``n_negatives`` distinct items of its own shelf (the
       warm items, the cold validation items or the cold test items) that the entity never
       interacted with: in any split for test cases, in training and validation for validation
       cases. All shelves use the same number of negatives, so their metrics share one chance
       level.

    Parameters
    ----------
    dataset : GroupDataset
        Cleaned data with a test split, usually with a validation split too.
    frac, val_frac : float
        Shares of the items made cold for testing and for validation (``val_frac`` may be 0).
    n_negatives : int
        Negatives per case; at most a shelf's size minus an entity's positives on it.
    seed : int
        Seeds the choice of items and every negative.
    tasks : iterable of str
        Tasks whose data is split.

    Returns
    -------
    ColdStartSplit
    """
    if not (0.0 < float(frac) < 1.0) or not (0.0 <= float(val_frac) < 1.0):
        raise ValueError(
            f"frac must lie in (0, 1) and val_frac in [0, 1); got frac={frac!r}, "
            f"val_frac={val_frac!r}"
        )
    m = check_size("n_negatives", n_negatives)
    tasks = tuple(tasks)
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"tasks must be drawn from {TASKS}, got {task!r}")
    rng = np.random.default_rng(seed)
    n_items = dataset.n_items
    n_test, n_val = int(round(float(frac) * n_items)), int(round(float(val_frac) * n_items))
    if n_test < 1 or n_test + n_val >= n_items:
        raise ValueError(
            f"frac={frac} and val_frac={val_frac} make {n_test} + {n_val} of {n_items} items "
            "cold; at least one must be cold for testing and one must stay warm"
        )
    order = rng.permutation(n_items)
    test_items = np.sort(order[:n_test]).astype(np.int64)
    val_items = np.sort(order[n_test : n_test + n_val]).astype(np.int64)
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[order[: n_test + n_val]] = True
    warm = np.flatnonzero(~is_cold)
    out = dataset
    cold_val: dict[str, EvalCases] = {}
    cold_test: dict[str, EvalCases] = {}
    for task in tasks:
        train = dataset.train(task)
        val = getattr(dataset, f"{task}_val")
        test = dataset.cases(task, "test")
        everything = _all_positives(dataset, task, ("train", "val", "test"))
        # Validation sees training and validation positives only: the test split stays hidden.
        seen = _all_positives(dataset, task, ("train", "val"))
        cold_test[task] = _shelf_cases(everything, test_items, n_items, m, rng, f"{task} cold test")
        if n_val:
            cold_val[task] = _shelf_cases(seen, val_items, n_items, m, rng, f"{task} cold val")
        keep = ~is_cold[test.item]
        w_entity = test.entity[keep]
        warm_test = EvalCases(
            w_entity,
            test.item[keep],
            _distinct_from_pool(w_entity, everything, n_items, warm, m, rng, f"{task} warm test"),
            None if test.rating is None else test.rating[keep],
        )
        warm_train = train.select(~is_cold[train.item])
        changes: dict[str, Any] = {f"{task}_train": warm_train, f"{task}_test": warm_test}
        n_warm_val = 0
        if val is not None:
            keep_v = ~is_cold[val.item]
            v_entity = val.entity[keep_v]
            changes[f"{task}_val"] = EvalCases(
                v_entity,
                val.item[keep_v],
                _distinct_from_pool(v_entity, seen, n_items, warm, m, rng, f"{task} warm val"),
                None if val.rating is None else val.rating[keep_v],
            )
            n_warm_val = int(keep_v.sum())
        removed = len(train) - len(warm_train)
        record = {
            "step": "cold_start_split",
            "task": task,
            "before": len(train),
            "after": len(warm_train),
            "changed": removed,
            "detail": (
                f"{n_test} cold test + {n_val} cold validation items (seed {seed}); {removed} "
                f"training rows with them removed; cases: {len(cold_test[task])} cold test, "
                f"{len(cold_val[task]) if n_val else 0} cold validation, {len(warm_test)} warm "
                f"test, {n_warm_val} warm validation; {m} negatives each, from its own shelf"
            ),
        }
        out = out._with(record, **changes)
    return ColdStartSplit(out, val_items, test_items, cold_val, cold_test, m)


# --------------------------------------------------------------------------------------------
# Comparing learned item vectors with planted structure
# --------------------------------------------------------------------------------------------


def silhouette_score(
    X: Tensor | np.ndarray, labels: np.ndarray, metric: str = "euclidean"
) -> float:
    """Mean silhouette of the points ``X`` (n, d) grouped by ``labels`` (n,) (Rousseeuw, 1987).

    For point ``i`` in cluster ``A``: ``a_i`` is its mean distance to the other points of ``A``,
    ``b_i`` the smallest mean distance to the points of another cluster, and
    ``s_i = (b_i - a_i) / max(a_i, b_i)``, with ``s_i = 0`` when ``A`` has one point. Values near
    1 mean tight, well-separated clusters; near 0, overlapping ones.

    Parameters
    ----------
    metric : {"euclidean", "cosine"}
        The distance: Euclidean, or ``1 - cos`` between the vectors.
    """
    X = X.detach().cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)  # values only
    X = X.astype(np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and labels (n,); got {X.shape} and {labels.shape}")
    _, y = np.unique(labels, return_inverse=True)
    K = int(y.max()) + 1 if y.size else 0
    if K < 2 or K >= len(y):
        raise ValueError(f"the silhouette needs 2 <= clusters < points; got {K} and {len(y)}")
    if metric == "euclidean":
        sq = (X**2).sum(1)
        D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0))  # (n, n)
        np.fill_diagonal(D, 0.0)
    elif metric == "cosine":
        norm = np.linalg.norm(X, axis=1, keepdims=True)
        Xn = np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)
        D = 1.0 - Xn @ Xn.T
        np.fill_diagonal(D, 0.0)
    else:
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    L = np.eye(K)[y]  # (n, K) one-hot of the clusters
    sums = D @ L  # (n, K): total distance from each point to each cluster
    size = L.sum(0)  # (K,)
    own = size[y] - 1  # other points in the point's own cluster
    a = np.divide(sums[np.arange(len(y)), y], own, out=np.zeros(len(y)), where=own > 0)
    mean_other = sums / size[None, :]
    mean_other[np.arange(len(y)), y] = np.inf
    b = mean_other.min(1)
    s = np.where(own > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def linear_probe_r2(
    X: Tensor | np.ndarray,
    Y: Tensor | np.ndarray,
    fit_rows: np.ndarray,
    eval_rows: np.ndarray | None = None,
) -> float:
    """How well a linear map of ``X`` recovers ``Y``: R² of a least-squares fit, pooled over columns.

    Learned embeddings are identified only up to an invertible linear map (``p_u·q_i`` does not
    change when ``q_i → A q_i`` and ``p_u → A⁻ᵀ p_u``), so they are compared with the true vectors
    through the best affine map ``Y ≈ X W + c``, fitted on ``fit_rows`` and scored on
    ``eval_rows`` (by default the same rows):
    ``R² = 1 - Σ ‖y_i - ŷ_i‖² / Σ ‖y_i - ȳ‖²``, with ``ȳ`` the mean over the scored rows.

    Parameters
    ----------
    X : (n, k) learned vectors.
    Y : (n, d) true vectors.
    fit_rows, eval_rows : int or bool arrays selecting rows.
    """
    X = X.detach().cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)  # values only
    Y = Y.detach().cpu().numpy() if isinstance(Y, Tensor) else np.asarray(Y)  # values only
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be (n, k) and (n, d) with the same n; got {X.shape}, {Y.shape}"
        )
    eval_rows = fit_rows if eval_rows is None else eval_rows
    X1 = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)  # (n, k + 1): the intercept
    W, *_ = np.linalg.lstsq(X1[fit_rows], Y[fit_rows], rcond=None)  # (k + 1, d)
    Y_eval = Y[eval_rows]
    residual = ((Y_eval - X1[eval_rows] @ W) ** 2).sum()
    total = ((Y_eval - Y_eval.mean(0)) ** 2).sum()
    if total == 0:
        raise ValueError("Y is constant on eval_rows; R² is undefined")
    return float(1.0 - residual / total)
