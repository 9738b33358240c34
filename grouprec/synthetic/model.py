"""The generative model of the synthetic e-commerce data: its constants, the container of a
generated dataset with its ground truth (:class:`SyntheticData`), and the group aggregation rules
(:func:`aggregate`). The equations are in :mod:`grouprec.synthetic`'s docstring.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from grouprec.checks import check_choice

__all__ = ["CATALOGUE", "RULES", "SyntheticData", "aggregate"]

#: Aggregation rules a group can follow.
RULES = ("average", "least_misery", "most_pleasure", "weighted")

# -- fixed constants of the generative story (symbols as in the module docstring) ------------
S_MU = 0.7  # s_μ, scale of the category centroids
SIGMA_Q = 0.6  # σ_q, spread of items around their centroid
SIGMA_P = 0.5  # σ_p, spread of users around their taste mixture
SIGMA_B = 0.5  # σ_b, item quality bias
RHO = 0.5  # ρ, correlation of relative price with quality
S_PRICE = 0.35  # s_price, spread of log price within a category
LOG_PRICE_MEAN, LOG_PRICE_SD = float(np.log(25.0)), 0.6  # category price levels m_k
ALPHA = 5.0  # α, Dirichlet concentration of category popularity π
LAMBDA_BAR = 0.3  # ψ̄, median price sensitivity
P_SECOND_CATEGORY = 0.4  # chance that a user has a second favourite category
BETA_WORDS = 3.0  # β, how strongly an item's latent vector picks its words
TAU_BROWSE = 1.0  # τ_b, browsing temperature
MEAN_BROWSE = 20.0  # median number of items a user browses
P_BUY = 0.3  # chance that each browse after the first turns into a purchase
SIGMA_Y = 0.25  # σ_y, rating noise
RATING_LEVELS = (0.05, 0.15, 0.40, 0.70)  # quantile levels of the rating thresholds t_1..t_4
KAPPA_HOUSEHOLD, KAPPA_FRIENDS = 1.0, 4.0  # κ, homophily of group formation
HOUSEHOLD_SIZES, HOUSEHOLD_P = (2, 3, 4), (0.4, 0.35, 0.25)
FRIENDS_MIN, FRIENDS_MAX, FRIENDS_P = 3, 8, 0.3  # size = 3 + Binomial(5, 0.3)
ETA_WEIGHTS = 1.5  # η, concentration of member weights
MEAN_GROUP_EXTRA = 4.0  # n_g = 2 + Poisson(4)
MIN_PURCHASES_FOR_TEST = 3
FORMAT_VERSION = 1

#: Vocabulary per category: tags, adjectives, nouns and uses (6 of each; equal sizes keep the
#: word choice one batched matrix product). Tags are unique within a category; a few are shared
#: between categories, as on real shops. The table is package data, ``synthetic_catalogue.json``.
CATALOGUE: dict[str, dict[str, tuple[str, ...]]] = {
    category: {slot: tuple(words) for slot, words in slots.items()}
    for category, slots in json.loads(
        resources.files("grouprec").joinpath("synthetic_catalogue.json").read_text("utf-8")
    ).items()
}
SLOTS = ("tags", "adjectives", "nouns", "uses")
GENERIC_ADJECTIVES = ("classic", "durable", "everyday", "handy", "stylish", "sturdy")
GENERIC_TAILS = (
    "a great gift",
    "loved by customers",
    "new this season",
    "back in stock",
    "a customer favourite",
    "in recyclable packaging",
)
P_GENERIC_ADJECTIVE, P_TAIL = 0.3, 0.5
# Independent random streams, one per component; append new names at the end only, so that
# existing streams (and the files they produce) stay unchanged.
STREAMS = ("categories", "items", "words", "users", "behaviour", "groups", "choices", "split")
MAX_BLOCK = 1 << 22  # largest (rows x items) block materialised at once


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset together with its ground truth.

    Attributes
    ----------
    args : dict
        The arguments of :func:`generate_ecommerce` that produced it.
    categories : tuple of str
        Category names, indexed by category id k.
    mu : np.ndarray
        Category centroids μ, shape (K, d).
    p : np.ndarray
        User taste vectors p_u, shape (U, d).
    lam : np.ndarray
        User price sensitivities ψ_u, shape (U,).
    user_category : np.ndarray
        Primary category a_u of each user, shape (U,).
    q : np.ndarray
        Item latent vectors q_i, shape (I, d).
    b : np.ndarray
        Item quality biases b_i, shape (I,).
    xi : np.ndarray
        Standardised relative prices ξ_i, shape (I,).
    items : pd.DataFrame
        The item attributes: item, category, tags (``|``-separated), price, description.
    browse : pd.DataFrame
        Every browse event (user, item, order), including those of held-out purchases.
    purchases : pd.DataFrame
        Every purchase (user, item, rating), including held-out ones.
    group_members : tuple of np.ndarray
        Member user ids of each group, seed member first.
    group_kind : np.ndarray
        ``"household"`` or ``"friends"`` per group, shape (G,).
    group_weights : tuple of np.ndarray
        Member weights w_g (sum to 1), aligned with ``group_members``; used by ``weighted``.
    group_choices : pd.DataFrame
        Every group choice (group, item, rating, order); ``order`` is the Plackett-Luce rank.
    user_test, group_test : pd.DataFrame
        Held-out positives (entity, item, rating), one row per test case.
    user_negatives, group_negatives : np.ndarray
        Shape (n_cases, 100): the negatives of each test case, row-aligned with the test frames.
    """

    args: dict
    categories: tuple[str, ...]
    mu: np.ndarray
    p: np.ndarray
    lam: np.ndarray
    user_category: np.ndarray
    q: np.ndarray
    b: np.ndarray
    xi: np.ndarray
    items: pd.DataFrame
    browse: pd.DataFrame
    purchases: pd.DataFrame
    group_members: tuple[np.ndarray, ...]
    group_kind: np.ndarray
    group_weights: tuple[np.ndarray, ...]
    group_choices: pd.DataFrame
    user_test: pd.DataFrame
    user_negatives: np.ndarray
    group_test: pd.DataFrame
    group_negatives: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.p.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.q.shape[0])

    @property
    def n_groups(self) -> int:
        return len(self.group_members)

    @property
    def rule(self) -> str:
        return str(self.args["rule"])

    def utility(self, users: np.ndarray | None = None) -> np.ndarray:
        """True utilities v_ui = p_u·q_i/√d + b_i - ψ_u ξ_i, shape (len(users), I)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users, dtype=np.int64)
        return _utility(self.p[users], self.lam[users], self.q, self.b, self.xi)

    def group_utility(
        self, rule: str | None = None, weights: tuple[np.ndarray, ...] | None = None
    ) -> np.ndarray:
        """Group utilities R_gi under ``rule`` (the planted one unless given), shape (G, I).

        ``weights`` replaces the planted member weights of the ``weighted`` rule, so that
        learned weights can be scored against the same choices.
        """
        rule = self.rule if rule is None else check_choice("rule", rule, RULES)
        weights = self.group_weights if weights is None else weights
        sizes = [len(m) for m in self.group_members]
        if [len(w) for w in weights] != sizes:
            raise ValueError(
                "weights must hold one array per group, each as long as the group "
                f"({self.n_groups} groups of sizes {sizes[:5]}...)"
            )
        ids, mask = _padded(self.group_members)
        w = np.zeros(ids.shape)
        w[mask] = np.concatenate(weights)
        out = np.empty((self.n_groups, self.n_items))
        for rows in _blocks(self.n_groups, ids.shape[1] * self.n_items):
            r = self.utility(ids[rows].ravel()).reshape(len(ids[rows]), ids.shape[1], -1)
            out[rows] = aggregate(r, mask[rows], rule, w[rows])
        return out

    @property
    def user_train(self) -> pd.DataFrame:
        """Purchases minus the held-out ones: the rows of ``userRatingTrain.txt``."""
        return _minus(self.purchases, "user", self.user_test)

    @property
    def group_train(self) -> pd.DataFrame:
        """Group choices minus the held-out ones: the rows of ``groupRatingTrain.txt``."""
        return _minus(self.group_choices, "group", self.group_test)

    @property
    def browse_train(self) -> pd.DataFrame:
        """Browse events minus those of held-out purchases: the rows of ``userBrowse.txt``."""
        return _minus(self.browse, "user", self.user_test)


def _minus(frame: pd.DataFrame, key: str, test: pd.DataFrame) -> pd.DataFrame:
    held = pd.MultiIndex.from_arrays([test["entity"], test["item"]])
    rows = pd.MultiIndex.from_arrays([frame[key], frame["item"]])
    return frame[~rows.isin(held)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def aggregate(
    r: np.ndarray, mask: np.ndarray, rule: str, w: np.ndarray | None = None
) -> np.ndarray:
    """Aggregate member utilities into group utilities.

    Parameters
    ----------
    r : np.ndarray
        Member utilities, shape (G, S, I); padded member slots may hold anything.
    mask : np.ndarray
        Shape (G, S), bool; True marks a real member.
    rule : str
        One of :data:`RULES`.
    w : np.ndarray, optional
        Member weights, shape (G, S), zero on padding; required by ``weighted``.

    Returns
    -------
    np.ndarray
        Group utilities R, shape (G, I).
    """
    rule = check_choice("rule", rule, RULES)
    m = mask[:, :, None]  # (G, S, 1)
    if rule == "average":
        return np.where(m, r, 0.0).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    if rule == "least_misery":
        return np.where(m, r, np.inf).min(axis=1)
    if rule == "most_pleasure":
        return np.where(m, r, -np.inf).max(axis=1)
    if w is None:
        raise ValueError("rule 'weighted' needs member weights w, got None")
    return np.einsum("gs,gsi->gi", np.where(mask, w, 0.0), np.where(m, r, 0.0))


def _utility(p: np.ndarray, lam: np.ndarray, q: np.ndarray, b: np.ndarray, xi: np.ndarray):
    d = p.shape[1]
    return p @ q.T / np.sqrt(d) + b[None, :] - lam[:, None] * xi[None, :]  # (U, I)


def _blocks(n_rows: int, row_width: int) -> Iterator[slice]:
    """Row slices whose blocks have at most MAX_BLOCK entries (bounded memory)."""
    step = max(1, MAX_BLOCK // max(1, row_width))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _padded(lists: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([len(x) for x in lists], dtype=np.int64)
    width = int(sizes.max()) if len(sizes) else 0
    ids = np.zeros((len(lists), width), dtype=np.int64)
    mask = np.arange(width)[None, :] < sizes[:, None]  # (G, S)
    if len(lists):
        ids[mask] = np.concatenate(lists)
    return ids, mask


def _gumbel_top(keys: np.ndarray, k: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the largest entries of each row, best first, and a mask of the first k[row]."""
    order = np.argsort(-keys, axis=1, kind="stable")
    width = int(np.max(k)) if np.size(k) else 0
    order = order[:, :width]
    keep = np.arange(width)[None, :] < np.broadcast_to(np.asarray(k), (keys.shape[0],))[:, None]
    return order, keep


def _rate(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Ratings 1-5: one plus the number of thresholds t_j exceeded."""
    return 1 + (x[:, None] > thresholds[None, :]).sum(axis=1)
