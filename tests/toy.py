"""A toy group dataset whose right answers are known, shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grouprec.data import EvalCases, GroupDataset, Interactions, split_validation

N_USERS, N_ITEMS, N_GROUPS = 40, 30, 12


def two_tastes(seed: int = 0, validation: bool = True) -> GroupDataset:
    """Users in two tastes (items 0-14 or 15-29), groups of 2-4 users of one taste, item features
    that tell the tastes apart, and a validation split unless ``validation`` is False."""
    rng = np.random.default_rng(seed)
    taste = np.arange(N_USERS) % 2  # (U,)
    users, items = [], []
    for u in range(N_USERS):
        liked = rng.choice(15, size=6, replace=False) + 15 * taste[u]
        users += [u] * len(liked)
        items += list(liked)
    members = tuple(
        np.sort(rng.choice(np.flatnonzero(taste == g % 2), size=2 + g % 3, replace=False))
        for g in range(N_GROUPS)
    )
    g_ent, g_item = [], []
    for g in range(N_GROUPS):
        liked = rng.choice(15, size=5, replace=False) + 15 * (g % 2)
        g_ent += [g] * len(liked)
        g_item += list(liked)

    def cases(n: int) -> EvalCases:
        entity = np.arange(n, dtype=np.int64)
        item = (entity % 2) * 15 + (entity // 2) % 15  # an item of the entity's taste
        negatives = np.stack([(1 - entity % 2) * 15 + k for k in range(5)], axis=1)
        return EvalCases(entity, item.astype(np.int64), negatives.astype(np.int64))

    def pairs(entity, item, test: EvalCases) -> Interactions:
        entity, item = np.asarray(entity, np.int64), np.asarray(item, np.int64)
        keep = ~np.isin(entity * N_ITEMS + item, test.entity * N_ITEMS + test.item)
        return Interactions(entity[keep], item[keep])

    kind = np.arange(N_ITEMS) // 15  # the taste each item belongs to
    features = pd.DataFrame(
        {
            "item": np.arange(N_ITEMS),
            "category": np.where(kind == 0, "kitchen", "garden"),
            "tags": [
                ("cheap|" if i % 3 else "premium|") + ("red" if i % 2 else "blue")
                for i in range(N_ITEMS)
            ],
            "price": 5.0 + rng.gamma(2.0, 10.0, size=N_ITEMS),
            "description": [
                ("a kettle for tea" if k == 0 else "a hose for plants") + f" model {i % 4}"
                for i, k in enumerate(kind)
            ],
        }
    )
    user_test, group_test = cases(N_USERS), cases(N_GROUPS)
    ds = GroupDataset(
        name="toy",
        n_users=N_USERS,
        n_items=N_ITEMS,
        n_groups=N_GROUPS,
        group_members=members,
        user_train=pairs(users, items, user_test),
        user_test=user_test,
        group_train=pairs(g_ent, g_item, group_test),
        group_test=group_test,
        item_features=features,
    )
    return split_validation(ds, seed=seed, n_negatives=8) if validation else ds
