"""Synthetic e-commerce data with a planted group-decision rule.

The source article's case study (§4.3) is an e-commerce platform with browsing, purchase and
rating records, and items described by a category, tags, a price and a text. No public group
dataset has all of that, so this module generates one whose ground truth is known: every latent
vector, every user's utility for every item, and the rule by which each group turns its
members' utilities into a joint choice. A model trained on the files can then be checked
against the truth (did the attention weights recover the planted weights? which aggregation
rule explains the group choices best?).

Generative story
----------------
All randomness comes from one ``numpy.random.Generator`` per component, spawned from ``seed``,
so the same arguments give the same files byte for byte, and changing only ``rule`` changes only
the group choices (the users, items and groups stay identical, and the group choices reuse the
same random draws, so datasets generated under different rules form paired comparisons).

*Categories* k = 1..K. A latent centroid and a price level

    μ_k ~ N(0, s_μ² I_d),        m_k ~ N(log 25, 0.6²),        π ~ Dirichlet(α 1_K).

*Items* i = 1..I. A category, a latent vector, a quality (popularity) bias, a standardised
relative price (positively correlated with quality, ρ = 0.5) and the price itself

    c_i ~ Categorical(π),        q_i = μ_{c_i} + σ_q ε_i,        b_i ~ N(0, σ_b²),
    ξ_i = ρ b_i / σ_b + √(1 - ρ²) η_i,        price_i = exp(m_{c_i} + s_price ξ_i),

with ε_i ~ N(0, I_d), η_i ~ N(0, 1). Every vocabulary word ``v`` of the category (tags,
adjectives, nouns, uses) has a random direction a_v ~ N(0, I_d); the item's words are drawn with
probability ∝ exp(β a_v·δ_i / √d), where δ_i = (q_i - μ_{c_i}) / σ_q is the item's position
within its category. So the tags and the description carry signal about q_i beyond the
category, as real item text does. An item has 1-3 category tags plus ``premium`` (price in the
top 20% of its category), ``budget`` (bottom 20%) or ``bestseller`` (top 10% of b_i) when they
apply; its description is "[generic adjective] adjective noun for use[, generic tail]", 5-12
words. (:mod:`grouprec.synthetic_text` rewords these descriptions with seeded synonyms, for
experiments in which meaning and wording come apart; the generator's output is not affected.)

*Users* u = 1..U. A primary category a_u ~ Categorical(π) and, with probability 0.4, a second one
a'_u; a taste vector mixing their centroids, and a price sensitivity

    p_u = ω_u μ_{a_u} + (1 - ω_u) μ_{a'_u} + σ_p ε_u,   ω_u ~ U(0.5, 1)  (ω_u = 1 without a'_u),
    λ_u = λ̄ exp(0.5 ζ_u),   ζ_u ~ N(0, 1).

*Utility* of item i for user u (the ground truth a model should recover)

    r_ui = p_u·q_i / √d + b_i - λ_u ξ_i.

*Behaviour* follows the random-utility (logit) model (McFadden, 1974). User u browses
n_u = clip(round(20 exp(0.5 ζ'_u)), 3, I/2) distinct items, ζ'_u ~ N(0, 1), drawn without
replacement with probability ∝ exp(r_ui / τ_b). They are computed with the Gumbel-top-k trick
(Kool et al., 2019): the n_u largest r_ui / τ_b + G_ui, G ~ Gumbel(0, 1).
The user buys the k_u browsed items of largest r_ui, k_u = 1 + Binomial(n_u - 1, 0.3), and rates
each purchase from its noisy utility:

    y_ui = 1 + Σ_j 1[r_ui + σ_y ν_ui > t_j],   ν_ui ~ N(0, 1),

where t_1..t_4 are the 5%, 15%, 40% and 70% quantiles of r + σ_y ν over all purchases (a
skewed-positive rating distribution, as on real shops).

*Groups* are households (2-4 members, disjoint) and friend groups (3-8 members, overlapping).
A group grows from a random seed member; the others are drawn without replacement with
probability ∝ exp(κ cos(p_seed, p_v)) (homophily; κ is larger for friends, who share tastes, than
for households). Each group has member weights w_g = softmax(η z_g), z_gu ~ N(0, 1), so one
member tends to lead. The group's utility for item i follows the planted ``rule``
(Masthoff, 2011):

    average:        R_gi = (1 / |g|) Σ_{u∈g} r_ui
    least_misery:   R_gi = min_{u∈g} r_ui
    most_pleasure:  R_gi = max_{u∈g} r_ui
    weighted:       R_gi = Σ_{u∈g} w_gu r_ui      (a "leader" rule when w_g is concentrated)

and the group chooses n_g = 2 + Poisson(4) items drawn without replacement with probability
∝ exp(R_gi / τ_g) (Gumbel-top-k again; the order of the draws is a Plackett-Luce ranking, kept
in :attr:`SyntheticData.group_choices`). Group ratings map R_gi + σ_y ν to 1-5 like user ratings,
with thresholds from the group choices.

*Test split* (leave one out, as in the benchmarks): every user with at least 3 purchases and every
group holds out one positive chosen uniformly, with 100 distinct negatives drawn uniformly from
the items the user never browsed (purchases are browses) or the group never chose. The browse
events of held-out purchases are removed from ``userBrowse.txt``: they would reveal the answer.

Files (the AGREE format read by :func:`grouprec.data.load_dataset`, plus three)
---------------------------------------------------------------------------------
``groupMember.txt``, ``{user,group}Rating{Train,Test,Negative}.txt`` (``id item rating``, ratings
1-5), ``itemAttributes.tsv`` (item, category, tags separated by ``|``, price, description),
``userBrowse.txt`` (``user item``, in browsing order) and ``groupRule.json`` (the rule, its
parameters, the generator arguments and, for ``weighted``, each group's member weights).

References
----------
- D. McFadden. Conditional logit analysis of qualitative choice behavior. In P. Zarembka (ed.),
  Frontiers in Econometrics, 105-142. Academic Press, 1974.
- W. Kool, H. van Hoof, M. Welling. Stochastic beams and where to find them: the Gumbel-top-k
  trick for sampling sequences without replacement. ICML 2019.
- R. L. Plackett. The analysis of permutations. Applied Statistics 24(2), 193-202, 1975.
- J. Masthoff. Group recommender systems: combining individual models. In F. Ricci et al.
  (eds.), Recommender Systems Handbook, 677-702. Springer, 2011.
- D. Cao, X. He, L. Miao, Y. An, C. Yang, R. Hong. Attentive group recommendation. SIGIR 2018,
  645-654 (the file format).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import resources
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from grouprec.constants import DEFAULT_SEED, N_NEGATIVES

__all__ = [
    "CATALOGUE",
    "RULES",
    "SyntheticData",
    "add_cli_arguments",
    "aggregate",
    "generate_ecommerce",
    "regenerate",
    "run_cli",
    "write_ecommerce",
]

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
LAMBDA_BAR = 0.3  # λ̄, median price sensitivity
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
        User price sensitivities λ_u, shape (U,).
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
        """True utilities r_ui = p_u·q_i/√d + b_i - λ_u ξ_i, shape (len(users), I)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users, dtype=np.int64)
        return _utility(self.p[users], self.lam[users], self.q, self.b, self.xi)

    def group_utility(
        self, rule: str | None = None, weights: tuple[np.ndarray, ...] | None = None
    ) -> np.ndarray:
        """Group utilities R_gi under ``rule`` (the planted one unless given), shape (G, I).

        ``weights`` replaces the planted member weights of the ``weighted`` rule, so that
        learned weights can be scored against the same choices.
        """
        rule = self.rule if rule is None else _check_rule(rule)
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
    rule = _check_rule(rule)
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


def _sample_negatives(
    entities: np.ndarray, positives: sp.csr_matrix, rng: np.random.Generator
) -> np.ndarray:
    """``N_NEGATIVES`` distinct items per entity, uniform over the items outside its positives.

    ``positives`` is a binary (n_entities, I) matrix. Each row sorts fresh uniform keys with the
    positives' keys set to +inf, so its first 100 items are a uniform sample without replacement.
    """
    n, n_items = len(entities), positives.shape[1]
    out = np.empty((n, N_NEGATIVES), dtype=np.int64)
    for rows in _blocks(n, n_items):
        keys = rng.random((rows.stop - rows.start, n_items))  # (B, I)
        hit = positives[entities[rows]].tocoo()
        keys[hit.row, hit.col] = np.inf  # never among the first: positives sort last
        out[rows] = np.argsort(keys, axis=1, kind="stable")[:, :N_NEGATIVES]
    return out


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_real(name: str, value, low: float, high: float, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value > high or value < low or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return float(value)


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def generate_ecommerce(
    n_users: int = 1000,
    n_items: int = 500,
    n_groups: int = 300,
    n_categories: int = 12,
    dim: int = 16,
    rule: str = "weighted",
    household_share: float = 0.5,
    group_temperature: float = 0.3,
    seed: int = DEFAULT_SEED,
) -> SyntheticData:
    """Generate users, items, behaviour and groups following a planted aggregation rule.

    The generative story, with its equations, is in the module docstring.

    Parameters
    ----------
    n_users, n_items, n_groups : int
        Sizes of the id spaces.
    n_categories : int
        Number of item categories K (at most ``len(CATALOGUE)``).
    dim : int
        Dimension d of the latent vectors.
    rule : str
        The planted aggregation rule, one of :data:`RULES`.
    household_share : float
        Fraction of groups that are households; the rest are friend groups.
    group_temperature : float
        τ_g: how noisy group choices are around the top of the group utility.
    seed : int
        Seed of every random draw.

    Returns
    -------
    SyntheticData
        The data and its ground truth.
    """
    args = {
        "n_users": _check_int("n_users", n_users, 20),
        "n_items": _check_int("n_items", n_items, 2 * (N_NEGATIVES + 1)),
        "n_groups": _check_int("n_groups", n_groups, 1),
        "n_categories": _check_int("n_categories", n_categories, 1, len(CATALOGUE)),
        "dim": _check_int("dim", dim, 2),
        "rule": _check_rule(rule),
        "household_share": _check_real("household_share", household_share, 0.0, 1.0),
        "group_temperature": _check_real(
            "group_temperature", group_temperature, 0.0, 100.0, open_low=True
        ),
        "seed": _check_int("seed", seed, 0),
    }
    U, n_items, G, K, d = (
        args[k] for k in ("n_users", "n_items", "n_groups", "n_categories", "dim")
    )
    seeds = np.random.SeedSequence(args["seed"]).spawn(len(STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}

    # Categories: centroids μ_k, price levels m_k, popularity π.
    rng = rngs["categories"]
    categories = tuple(CATALOGUE)[:K]
    mu = S_MU * rng.standard_normal((K, d))  # (K, d)
    m = rng.normal(LOG_PRICE_MEAN, LOG_PRICE_SD, size=K)  # (K,)
    pi = rng.dirichlet(np.full(K, ALPHA))  # (K,)

    # Items: c_i, q_i, b_i, ξ_i, price_i.
    rng = rngs["items"]
    c = rng.choice(K, size=n_items, p=pi)  # (I,)
    q = mu[c] + SIGMA_Q * rng.standard_normal((n_items, d))  # (I, d)
    b = SIGMA_B * rng.standard_normal(n_items)  # (I,)
    xi = RHO * b / SIGMA_B + np.sqrt(1 - RHO**2) * rng.standard_normal(n_items)  # (I,)
    price = np.round(np.exp(m[c] + S_PRICE * xi), 2)  # (I,)
    items = _describe_items(rngs["words"], categories, mu, c, q, b, xi, d)
    items.insert(3, "price", price)

    # Users: p_u (a mixture of one or two centroids plus noise) and λ_u.
    rng = rngs["users"]
    a = rng.choice(K, size=U, p=pi)  # (U,) primary category
    a2 = rng.choice(K, size=U, p=pi)  # (U,) second category, used with probability 0.4
    omega = np.where(rng.random(U) < P_SECOND_CATEGORY, rng.uniform(0.5, 1.0, size=U), 1.0)
    p = omega[:, None] * mu[a] + (1 - omega[:, None]) * mu[a2]
    p = p + SIGMA_P * rng.standard_normal((U, d))  # (U, d)
    lam = LAMBDA_BAR * np.exp(0.5 * rng.standard_normal(U))  # (U,)

    browse, purchases = _user_behaviour(rngs["behaviour"], p, lam, q, b, xi)
    members, kind, weights = _form_groups(rngs["groups"], p, G, args["household_share"])
    # The group choices need group_utility(), so the data is built first with an empty split.
    data = SyntheticData(
        args=args,
        categories=categories,
        mu=mu,
        p=p,
        lam=lam,
        user_category=a.astype(np.int64),
        q=q,
        b=b,
        xi=xi,
        items=items,
        browse=browse,
        purchases=purchases,
        group_members=members,
        group_kind=kind,
        group_weights=weights,
        group_choices=pd.DataFrame(),
        user_test=pd.DataFrame(),
        user_negatives=np.empty((0, N_NEGATIVES), np.int64),
        group_test=pd.DataFrame(),
        group_negatives=np.empty((0, N_NEGATIVES), np.int64),
    )
    choices = _group_choices(rngs["choices"], data)
    return _split(rngs["split"], data, choices)


def _describe_items(rng, categories, mu, c, q, b, xi, d) -> pd.DataFrame:
    """Tags and descriptions drawn with probability ∝ exp(β a_v·δ_i/√d)."""
    n_items, K = len(c), len(categories)
    delta = (q - mu[c]) / SIGMA_Q  # (I, d) position within the category
    picks = {}
    for slot in SLOTS:
        A = rng.standard_normal((K, len(CATALOGUE[categories[0]][slot]), d))  # (K, L, d)
        logits = BETA_WORDS * np.einsum("id,ild->il", delta, A[c]) / np.sqrt(d)  # (I, L)
        keys = logits + rng.gumbel(size=logits.shape)
        picks[slot] = np.argsort(-keys, axis=1, kind="stable")  # (I, L), Gumbel-top-k order
    n_tags = 1 + rng.binomial(2, 0.4, size=n_items)  # 1-3 category tags
    generic_adj = np.where(
        rng.random(n_items) < P_GENERIC_ADJECTIVE,
        rng.integers(len(GENERIC_ADJECTIVES), size=n_items),
        -1,
    )
    tail = np.where(
        rng.random(n_items) < P_TAIL, rng.integers(len(GENERIC_TAILS), size=n_items), -1
    )

    # Derived tags: price relative to the category, and the most popular items.
    frame = pd.DataFrame({"c": c, "xi": xi})
    pct = frame.groupby("c")["xi"].rank(pct=True).to_numpy()
    bestseller = b >= np.quantile(b, 0.9)

    tags, descriptions = [], []
    for i in range(n_items):  # string assembly only; every random draw above is vectorised
        vocab = CATALOGUE[categories[c[i]]]
        t = [vocab["tags"][j] for j in picks["tags"][i, : n_tags[i]]]
        if pct[i] > 0.8:
            t.append("premium")
        elif pct[i] <= 0.2:
            t.append("budget")
        elif bestseller[i]:
            t.append("bestseller")
        tags.append("|".join(t))
        words = [] if generic_adj[i] < 0 else [GENERIC_ADJECTIVES[generic_adj[i]]]
        words += [
            vocab["adjectives"][picks["adjectives"][i, 0]],
            vocab["nouns"][picks["nouns"][i, 0]],
            "for",
            vocab["uses"][picks["uses"][i, 0]],
        ]
        text = " ".join(words)
        descriptions.append(text if tail[i] < 0 else f"{text}, {GENERIC_TAILS[tail[i]]}")
    return pd.DataFrame(
        {
            "item": np.arange(n_items, dtype=np.int64),
            "category": [categories[k] for k in c],
            "tags": tags,
            "description": descriptions,
        }
    )


def _user_behaviour(rng, p, lam, q, b, xi) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Browse by Gumbel-top-k of r/τ_b, buy the best browsed, rate from utility quantiles."""
    U, n_items = len(p), len(q)
    n_browse = np.clip(np.rint(MEAN_BROWSE * np.exp(0.5 * rng.standard_normal(U))), 3, n_items // 2)
    n_browse = n_browse.astype(np.int64)  # (U,)
    n_buy = 1 + rng.binomial(n_browse - 1, P_BUY)  # (U,), at most n_browse
    b_user, b_item, b_order, p_user, p_item, p_r = [], [], [], [], [], []
    for rows in _blocks(U, n_items):
        r = _utility(p[rows], lam[rows], q, b, xi)  # (B, I)
        keys = r / TAU_BROWSE + rng.gumbel(size=r.shape)
        order, keep = _gumbel_top(keys, n_browse[rows])  # (B, W)
        users = np.arange(rows.start, rows.stop)[:, None] + np.zeros_like(order)
        b_user.append(users[keep])
        b_item.append(order[keep])
        b_order.append(np.broadcast_to(np.arange(order.shape[1]), order.shape)[keep])
        # Purchases: the n_buy browsed items of largest utility.
        r_browsed = np.where(keep, np.take_along_axis(r, order, axis=1), -np.inf)  # (B, W)
        best = np.argsort(-r_browsed, axis=1, kind="stable")
        buy = np.arange(order.shape[1])[None, :] < n_buy[rows][:, None]
        p_user.append(users[buy])
        p_item.append(np.take_along_axis(order, best, axis=1)[buy])
        p_r.append(np.take_along_axis(r_browsed, best, axis=1)[buy])
    browse = pd.DataFrame(
        {
            "user": np.concatenate(b_user),
            "item": np.concatenate(b_item),
            "order": np.concatenate(b_order),
        }
    )
    r_buy = np.concatenate(p_r)
    noisy = r_buy + SIGMA_Y * rng.standard_normal(len(r_buy))
    t = np.quantile(noisy, RATING_LEVELS)
    purchases = pd.DataFrame(
        {"user": np.concatenate(p_user), "item": np.concatenate(p_item), "rating": _rate(noisy, t)}
    )
    return browse, purchases.sort_values(["user", "item"], kind="stable").reset_index(drop=True)


def _softmax_exact(x: np.ndarray) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` with the same bits on every machine.

    NumPy's vectorised ``exp`` and ``sum`` may differ in the last bit between CPUs and NumPy
    builds; the committed synthetic files must not. ``math.exp`` and the exactly rounded
    ``math.fsum`` do not depend on either.
    """
    e = [math.exp(float(v)) for v in x]
    total = math.fsum(e)
    return np.array([v / total for v in e])


def _form_groups(rng, p, G, household_share):
    """Households (disjoint) and friend groups, grown from a seed member by homophily."""
    U = len(p)
    p_hat = p / np.linalg.norm(p, axis=1, keepdims=True)  # (U, d) for cosine similarity
    is_household = np.zeros(G, dtype=bool)
    is_household[rng.permutation(G)[: int(round(household_share * G))]] = True
    size = np.where(
        is_household,
        rng.choice(HOUSEHOLD_SIZES, size=G, p=HOUSEHOLD_P),
        FRIENDS_MIN + rng.binomial(FRIENDS_MAX - FRIENDS_MIN, FRIENDS_P, size=G),
    )
    need = int(size[is_household].sum())
    if need > U:
        raise ValueError(
            f"n_groups={G} with household_share={household_share} asks for households with "
            f"{need} members in total, but households are disjoint and n_users={U}; "
            "lower n_groups or household_share, or raise n_users"
        )
    seed_keys = rng.random((G, U))  # seed member: the free user with the smallest key
    gumbel = rng.gumbel(size=(G, U))
    members = []
    free = np.ones(U, dtype=bool)
    for g in range(G):  # households must not overlap, so groups are formed one at a time
        pool = free if is_household[g] else np.ones(U, dtype=bool)
        seed_user = int(np.argmin(np.where(pool, seed_keys[g], np.inf)))
        kappa = KAPPA_HOUSEHOLD if is_household[g] else KAPPA_FRIENDS
        keys = kappa * (p_hat @ p_hat[seed_user]) + gumbel[g]  # (U,)
        keys[~pool] = -np.inf
        keys[seed_user] = -np.inf
        others = np.argsort(-keys, kind="stable")[: size[g] - 1]
        group = np.concatenate([[seed_user], others]).astype(np.int64)
        if is_household[g]:
            free[group] = False
        members.append(group)
    z = rng.standard_normal(int(size.sum()))
    splits = np.cumsum(size)[:-1]
    weights = tuple(_softmax_exact(ETA_WEIGHTS * zg) for zg in np.split(z, splits))
    kind = np.where(is_household, "household", "friends")
    return tuple(members), kind, weights


def _group_choices(rng, data: SyntheticData) -> pd.DataFrame:
    """Each group draws n_g items without replacement with probability ∝ exp(R_gi/τ_g)."""
    G, n_items = data.n_groups, data.n_items
    n_choose = np.minimum(2 + rng.poisson(MEAN_GROUP_EXTRA, size=G), n_items // 2)  # (G,)
    gumbel = rng.gumbel(size=(G, n_items))  # drawn before the rule is used: paired across rules
    R = data.group_utility()  # (G, I)
    order, keep = _gumbel_top(R / data.args["group_temperature"] + gumbel, n_choose)
    groups = np.arange(G)[:, None] + np.zeros_like(order)
    R_chosen = np.take_along_axis(R, order, axis=1)[keep]
    noisy = R_chosen + SIGMA_Y * rng.standard_normal(len(R_chosen))
    t = np.quantile(noisy, RATING_LEVELS)
    return pd.DataFrame(
        {
            "group": groups[keep],
            "item": order[keep],
            "rating": _rate(noisy, t),
            "order": np.broadcast_to(np.arange(order.shape[1]), order.shape)[keep],
        }
    )


def _split(rng, data: SyntheticData, choices: pd.DataFrame) -> SyntheticData:
    """Hold out one positive per eligible user and per group, with 100 negatives each."""
    purchases = data.purchases
    counts = np.bincount(purchases["user"], minlength=data.n_users)
    eligible = counts[purchases["user"]] >= MIN_PURCHASES_FOR_TEST
    user_test = _hold_out(rng, purchases[eligible], "user")
    group_test = _hold_out(rng, choices, "group")
    browsed = _indicator(data.browse, "user", data.n_users, data.n_items)
    chosen = _indicator(choices, "group", data.n_groups, data.n_items)
    user_negatives = _sample_negatives(user_test["entity"].to_numpy(), browsed, rng)
    group_negatives = _sample_negatives(group_test["entity"].to_numpy(), chosen, rng)
    return replace(
        data,
        group_choices=choices,
        user_test=user_test,
        user_negatives=user_negatives,
        group_test=group_test,
        group_negatives=group_negatives,
    )


def _hold_out(rng, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per entity, chosen uniformly: the smallest random key within the entity."""
    priority = rng.random(len(frame))
    order = np.lexsort((priority, frame[key].to_numpy()))
    first = np.ones(len(order), dtype=bool)
    ent_sorted = frame[key].to_numpy()[order]
    first[1:] = ent_sorted[1:] != ent_sorted[:-1]
    rows = frame.iloc[order[first]]
    return pd.DataFrame(
        {
            "entity": rows[key].to_numpy(np.int64),
            "item": rows["item"].to_numpy(np.int64),
            "rating": rows["rating"].to_numpy(np.int64),
        }
    )


def _indicator(frame: pd.DataFrame, key: str, n: int, n_items: int) -> sp.csr_matrix:
    """Binary (n, I) matrix with a 1 at every (entity, item) of ``frame``."""
    ones = np.ones(len(frame), dtype=np.int8)
    matrix = sp.csr_matrix((ones, (frame[key], frame["item"])), shape=(n, n_items))
    matrix.sum_duplicates()
    return matrix


# --------------------------------------------------------------------------------------------
# Writing, regenerating, command line
# --------------------------------------------------------------------------------------------

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


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``python -m grouprec synthetic`` to ``parser``."""
    defaults = {
        name: param.default
        for name, param in inspect.signature(generate_ecommerce).parameters.items()
    }
    helps = {
        "seed": "random seed",
        "rule": "planted group aggregation rule",
        "n_users": "number of users",
        "n_items": "number of items",
        "n_groups": "number of groups",
        "n_categories": f"number of item categories, at most {len(CATALOGUE)}",
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
            choices=RULES if name == "rule" else None,
            help=f"{text} (default: %(default)s)",
        )


def run_cli(args: argparse.Namespace) -> int:
    """Run ``python -m grouprec synthetic`` with parsed ``args``; returns the exit code."""
    data = generate_ecommerce(
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
    folder = write_ecommerce(data, args.outdir)
    size = sum((folder / name).stat().st_size for name in FILES)
    print(
        f"wrote {folder}: {data.n_users} users, {data.n_items} items, {data.n_groups} groups "
        f"(rule {data.rule}), {len(data.user_train)} user and {len(data.group_train)} group "
        f"training rows, {len(data.user_test)} + {len(data.group_test)} test cases, "
        f"{size / 1e6:.2f} MB"
    )
    return 0
