"""The simulation: items with their words and prices, users' browsing and purchases, groups
and their choices under the planted rule, and the leave-one-out test split.

Every component draws from its own random stream (:data:`~grouprec.synthetic.model.STREAMS`),
so the same arguments give the same data, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from grouprec.checks import check_choice, check_integer, check_real
from grouprec.constants import DEFAULT_SEED, N_NEGATIVES
from grouprec.synthetic.model import (
    ALPHA,
    BETA_WORDS,
    CATALOGUE,
    ETA_WEIGHTS,
    FRIENDS_MAX,
    FRIENDS_MIN,
    FRIENDS_P,
    GENERIC_ADJECTIVES,
    GENERIC_TAILS,
    HOUSEHOLD_P,
    HOUSEHOLD_SIZES,
    KAPPA_FRIENDS,
    KAPPA_HOUSEHOLD,
    LAMBDA_BAR,
    LOG_PRICE_MEAN,
    LOG_PRICE_SD,
    MEAN_BROWSE,
    MEAN_GROUP_EXTRA,
    MIN_PURCHASES_FOR_TEST,
    P_BUY,
    P_GENERIC_ADJECTIVE,
    P_SECOND_CATEGORY,
    P_TAIL,
    RATING_LEVELS,
    RHO,
    RULES,
    S_MU,
    S_PRICE,
    SIGMA_B,
    SIGMA_P,
    SIGMA_Q,
    SIGMA_Y,
    SLOTS,
    STREAMS,
    TAU_BROWSE,
    SyntheticData,
    _blocks,
    _gumbel_top,
    _rate,
    _utility,
)

__all__ = ["generate_ecommerce"]


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
        "n_users": check_integer("n_users", n_users, 20),
        "n_items": check_integer("n_items", n_items, 2 * (N_NEGATIVES + 1)),
        "n_groups": check_integer("n_groups", n_groups, 1),
        "n_categories": check_integer("n_categories", n_categories, 1, len(CATALOGUE)),
        "dim": check_integer("dim", dim, 2),
        "rule": check_choice("rule", rule, RULES),
        "household_share": check_real("household_share", household_share, 0.0, 1.0),
        "group_temperature": check_real(
            "group_temperature", group_temperature, 0.0, 100.0, open_low=True
        ),
        "seed": check_integer("seed", seed, 0),
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

    # Users: p_u (a mixture of one or two centroids plus noise) and ψ_u.
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
