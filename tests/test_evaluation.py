"""Tests for grouprec.evaluation: the interface, the runner, selection that cannot see the test."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
import torch

from grouprec import baselines as B
from grouprec import data as D
from grouprec import evaluation as E
from grouprec import metrics as M


def make_dataset(seed: int = 0, n_users=8, n_items=40, n_groups=4, n_train=6, n_test=2, m=10):
    """A small random dataset: pairs of users form groups; no leakage, clean negatives."""
    rng = np.random.default_rng(seed)
    members = tuple(np.array([2 * g, 2 * g + 1]) for g in range(n_groups))

    def block(n_ent):
        perms = np.stack([rng.permutation(n_items) for _ in range(n_ent)])  # (n, I)
        ent = np.arange(n_ent)
        train = D.Interactions(
            np.repeat(ent, n_train), perms[:, :n_train].ravel(), np.ones(n_ent * n_train, "f4")
        )
        test_items = perms[:, n_train : n_train + n_test]  # (n, n_test)
        pool = perms[:, n_train + n_test :]
        negs = np.stack([rng.choice(pool[e], m, replace=False) for e in ent for _ in range(n_test)])
        test = D.EvalCases(np.repeat(ent, n_test), test_items.ravel(), negs)
        return train, test

    user_train, user_test = block(n_users)
    group_train, group_test = block(n_groups)
    return D.GroupDataset(
        name="toy",
        n_users=n_users,
        n_items=n_items,
        n_groups=n_groups,
        group_members=members,
        user_train=user_train,
        user_test=user_test,
        group_train=group_train,
        group_test=group_test,
    )


def _pairs(cases: D.EvalCases) -> set[tuple[int, int]]:
    return set(zip(cases.entity.tolist(), cases.item.tolist(), strict=True))


class Lookup:
    """Scores by table: test items `test`, training items `train`, validation items `val`."""

    name = "Lookup"

    def __init__(self, test=1.0, train=0.0, val=0.0, other=0.0):
        self.w = dict(test=test, train=train, val=val, other=other)

    def fit(self, dataset, task):
        n, i = dataset.n_entities(task), dataset.n_items
        s = np.full((n, i), self.w["other"])
        tr = dataset.train(task)
        s[tr.entity, tr.item] = self.w["train"]
        val = getattr(dataset, f"{task}_val")
        if val is not None:
            s[val.entity, val.item] = self.w["val"]
        te = dataset.cases(task, "test")
        s[te.entity, te.item] = self.w["test"]
        self.s = s
        return self

    def score(self, entities, items):
        return self.s[np.asarray(entities)[:, None], items]


class Dot:
    """A dot-product model with fixed random embeddings (no score_all: uses the fallback)."""

    def __init__(self, d=8, seed=0):
        self.d, self.seed = d, seed

    def fit(self, dataset, task):
        rng = np.random.default_rng(self.seed)
        self.P = rng.normal(size=(dataset.n_entities(task), self.d))  # (n_entities, d)
        self.Q = rng.normal(size=(dataset.n_items, self.d))  # (n_items, d)
        return self

    def score(self, entities, items):
        return np.einsum("nd,ncd->nc", self.P[entities], self.Q[items])  # (n, c)


class DotAll(Dot):
    def score_all(self, entities):
        return self.P[entities] @ self.Q.T


# ---------------------------------------------------------------- interface


def test_baselines_and_toy_models_satisfy_the_protocol():
    for model in (B.Random(), B.Popularity(), B.ItemKNN(), B.EASE(), Dot(), Lookup()):
        assert isinstance(model, E.Recommender)
    assert not isinstance(object(), E.Recommender)
    assert E.model_name(B.EASE()) == "EASE" and E.model_name(Dot()) == "Dot"


# ---------------------------------------------------------------- the runner


@pytest.mark.parametrize("task", ["user", "group"])
@pytest.mark.parametrize("protocol", ["sampled", "full"])
def test_oracle_scores_perfectly(task, protocol):
    ds = make_dataset()
    model = Lookup(test=1.0).fit(ds, task)
    row = E.evaluate(model, ds, task, "test", protocol, ks=(1, 5), metrics="all")
    assert len(row) == 1
    n_cases = len(ds.cases(task, "test"))
    assert row["cases"].item() == (n_cases if protocol == "sampled" else n_cases // 2)
    assert row[["HR@1", "NDCG@5", "Recall@5", "MRR"]].to_numpy().tolist() == [[1.0] * 4]
    # full ranking: two held-out items per entity, both in the top 2
    expected_p1 = 1.0
    assert row["Precision@1"].item() == expected_p1


def test_table_columns():
    ds = make_dataset()
    row = E.evaluate(B.Random().fit(ds, "group"), ds, "group", name="coin")
    assert list(row.columns) == [
        "model",
        "dataset",
        "task",
        "split",
        "protocol",
        "ties",
        "cases",
        "HR@5",
        "NDCG@5",
        "HR@10",
        "NDCG@10",
    ]
    assert row["model"].item() == "coin" and row["dataset"].item() == "toy"


def test_constant_model_gets_the_tie_aware_value():
    ds = make_dataset(m=10)
    model = Lookup(test=0.0).fit(ds, "user")  # everything scores 0
    for ties, hr5 in (("expected", 5 / 11), ("optimistic", 1.0), ("pessimistic", 0.0)):
        row = E.evaluate(model, ds, "user", ties=ties, ks=(5,))
        assert row["HR@5"].item() == pytest.approx(hr5)


def test_full_ranking_excludes_training_items():
    ds = make_dataset()
    # Training items score highest; only their exclusion lets the test items rank first.
    model = Lookup(test=1.0, train=5.0).fit(ds, "group")
    full = E.evaluate(model, ds, "group", protocol="full", ks=(2,), metrics="all")
    assert full["Recall@2"].item() == 1.0
    # the same scores, with nothing excluded, are judged by hand
    cases = ds.group_test
    s = model.s[np.unique(cases.entity)]
    rel = np.zeros_like(s, dtype=bool)
    rel[np.searchsorted(np.unique(cases.entity), cases.entity), cases.item] = True
    assert M.full_ranking_metrics(s, rel, None, ks=(2,))["HR@2"] == 0.0


def test_full_ranking_on_test_also_excludes_validation_items():
    ds = D.split_validation(make_dataset(), seed=0, n_negatives=10)
    model = Lookup(test=1.0, train=-1.0, val=5.0).fit(ds, "user")
    assert E.evaluate(model, ds, "user", "test", "full", ks=(1,))["HR@1"].item() == 1.0
    # on the validation split, validation items are the relevant ones and test items are not
    # known to the protocol, so they stay candidates
    model = Lookup(test=9.0, train=-1.0, val=5.0).fit(ds, "user")
    row = E.evaluate(model, ds, "user", "val", "full", ks=(1, 3))
    assert row["HR@1"].item() == 0.0 and row["HR@3"].item() == 1.0


def test_full_ranking_refuses_test_pairs_that_are_training_pairs():
    ds = make_dataset()
    leak = D.Interactions(
        np.concatenate([ds.group_train.entity, [1]]),
        np.concatenate([ds.group_train.item, [ds.group_test.item[2]]]),
        None,
    )
    leaky = dataclasses.replace(ds, group_train=leak)
    model = Dot().fit(leaky, "group")
    E.evaluate(model, leaky, "group")  # the sampled protocol is defined: rank against the list
    with pytest.raises(ValueError, match=r"1 held-out pairs of the group test split .* group 1"):
        E.evaluate(model, leaky, "group", protocol="full")
    clean = D.remove_test_leakage(leaky, tasks=["group"])
    E.evaluate(model, clean, "group", protocol="full")


def test_full_ranking_matches_a_direct_computation():
    ds = make_dataset()
    model = DotAll().fit(ds, "user")
    per = E.case_metrics(model, ds, "user", protocol="full", ks=(3,), metrics="all")
    for e in (0, 5):
        s = model.P[e] @ model.Q.T
        train = set(ds.user_train.item[ds.user_train.entity == e].tolist())
        rel = set(ds.user_test.item[ds.user_test.entity == e].tolist())
        ranked = [i for i in np.argsort(-s) if i not in train]  # no ties in random scores
        pos = [r for r, i in enumerate(ranked) if i in rel]
        row = per[per.entity == e].iloc[0]
        assert row["Recall@3"] == pytest.approx(sum(p < 3 for p in pos) / 2)
        assert row["MRR"] == pytest.approx(1 / (pos[0] + 1))


def test_batching_and_fallback_do_not_change_results():
    ds = make_dataset()
    a = Dot().fit(ds, "group")
    b = DotAll().fit(ds, "group")
    for protocol in E.PROTOCOLS:
        r1 = E.evaluate(a, ds, "group", protocol=protocol, metrics="all", name="x")
        r2 = E.evaluate(b, ds, "group", protocol=protocol, metrics="all", batch_size=1, name="x")
        pd.testing.assert_frame_equal(r1, r2)


def test_torch_scores_are_accepted():
    class TorchDot(Dot):
        def score(self, entities, items):
            return torch.from_numpy(super().score(entities, items)).float().requires_grad_()

    ds = make_dataset()
    row = E.evaluate(TorchDot().fit(ds, "user"), ds, "user")
    ref = E.evaluate(Dot().fit(ds, "user"), ds, "user")
    assert row["NDCG@10"].item() == pytest.approx(ref["NDCG@10"].item())


def test_bad_models_and_arguments_are_named():
    ds = make_dataset()

    class Wrong(Dot):
        def score(self, entities, items):
            return super().score(entities, items)[:, :-1]

    class NaNs(Dot):
        def score(self, entities, items):
            return np.full(items.shape, np.nan)

    with pytest.raises(ValueError, match=r"Wrong.score returned shape \(\d+, 10\), expected"):
        E.evaluate(Wrong().fit(ds, "user"), ds, "user")
    with pytest.raises(ValueError, match="contains NaN"):
        E.evaluate(NaNs().fit(ds, "user"), ds, "user")
    with pytest.raises(ValueError, match="protocol must be one of"):
        E.evaluate(Dot().fit(ds, "user"), ds, "user", protocol="loo")
    with pytest.raises(ValueError, match="split_validation"):
        E.evaluate(Dot().fit(ds, "user"), ds, "user", split="val")


# ---------------------------------------------------------------- selection


class Spy(Dot):
    seen: list = []

    def __init__(self, d=8, seed=0):
        super().__init__(d, seed)

    def fit(self, dataset, task):
        Spy.seen.append((len(dataset.user_test), len(dataset.group_test)))
        return super().fit(dataset, task)


def test_select_never_shows_the_test_split():
    ds = D.split_validation(make_dataset(), seed=0, n_negatives=10)
    Spy.seen = []
    best, table = E.select(Spy, {"d": [2, 4], "seed": [0, 1, 2]}, ds, "user", progress=False)
    assert Spy.seen == [(0, 0)] * 6
    assert len(ds.user_test) == 16  # the caller's dataset is untouched
    assert list(table.columns) == ["d", "seed", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "fit_s"]
    assert table[["d", "seed"]].to_numpy().tolist() == [
        [2, 0],
        [2, 1],
        [2, 2],
        [4, 0],
        [4, 1],
        [4, 2],
    ]
    i = int(np.argmax(table["NDCG@10"].to_numpy()))
    assert best == {"d": int(table["d"][i]), "seed": int(table["seed"][i])}
    # each row is exactly what evaluate() gives on the validation split
    model = Spy(**best).fit(E.hide_test(ds), "user")
    assert E.evaluate(model, ds, "user", "val")["NDCG@10"].item() == table["NDCG@10"][i]
    with pytest.raises(ValueError, match="validation split only, got split='test'"):
        E.select(Spy, {"d": [2]}, ds, "user", split="test")


def test_select_picks_the_better_model():
    ds = D.split_validation(make_dataset(), seed=0, n_negatives=10)

    def factory(good):
        return Lookup(val=float(good))  # validation items score 1 only when good

    best, table = E.select(factory, {"good": [False, True]}, ds, "group", "HR@5", progress=False)
    assert best == {"good": True} and table["HR@5"].tolist()[1] == 1.0


def test_select_argument_errors():
    ds = make_dataset()
    with pytest.raises(ValueError, match="split_validation"):
        E.select(Dot, {"d": [2]}, ds, "user", progress=False)
    ds = D.split_validation(ds, n_negatives=10)
    with pytest.raises(ValueError, match="metric 'MRR' is not computed"):
        E.select(Dot, {"d": [2]}, ds, "user", "MRR", progress=False)
    with pytest.raises(ValueError, match=r"grid\['d'\] must be a sequence"):
        E.select(Dot, {"d": 2}, ds, "user", progress=False)


def test_hide_test_keeps_everything_else():
    ds = D.split_validation(make_dataset(), seed=0, n_negatives=10)
    blind = E.hide_test(ds)
    assert len(blind.user_test) == 0 and len(blind.group_test) == 0
    assert blind.group_test.negatives.shape == (0, 10)
    assert blind.user_val is ds.user_val and blind.group_train is ds.group_train
    assert blind.log[-1]["step"] == "hide_test"


# ---------------------------------------------------------------- lists beyond accuracy


def test_beyond_accuracy_matches_explicit_loops():
    ds = make_dataset()

    class ById:
        """Higher item id, higher score: each list is the k largest unseen ids."""

        def fit(self, dataset, task):
            return self

        def score(self, entities, items):
            return items.astype(float)

    k = 3
    row = E.beyond_accuracy(ById(), ds, "group", k=k).iloc[0]
    lists = {}
    for g in range(ds.n_groups):
        seen = set(ds.group_train.item[ds.group_train.entity == g].tolist())
        lists[g] = [i for i in range(ds.n_items - 1, -1, -1) if i not in seen][:k]
    items = {i for li in lists.values() for i in li}
    assert row[f"Coverage@{k}"] == pytest.approx(len(items) / ds.n_items)
    counts = np.zeros(ds.n_items)
    for u in range(ds.n_users):
        counts[np.unique(ds.user_train.item[ds.user_train.entity == u])] += 1
    bits = [-np.log2((counts[i] + 1) / (ds.n_users + 1)) for li in lists.values() for i in li]
    assert row[f"Novelty@{k}"] == pytest.approx(np.mean(bits))
    sats = []
    for g in range(ds.n_groups):
        per_member = []
        for u in ds.members(g):
            rel = set(ds.user_test.item[ds.user_test.entity == u].tolist())
            dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(lists[g]) if i in rel)
            per_member.append(dcg / sum(1 / np.log2(r + 2) for r in range(min(k, len(rel)))))
        sats.append(per_member)
    assert row[f"Sat-mean@{k}"] == pytest.approx(np.mean([np.mean(s) for s in sats]))
    assert row[f"Sat-min@{k}"] == pytest.approx(np.mean([np.min(s) for s in sats]))


# ---------------------------------------------------------------- real data


def test_dot_product_on_camra_group_test(camra):
    """The whole CAMRa2011 group test set (1,450 cases x 101 candidates); time printed only."""
    model = Dot(d=32).fit(camra, "group")
    start = time.perf_counter()
    row = E.evaluate(model, camra, "group", metrics="all")
    elapsed = time.perf_counter() - start
    print(f"dot-product evaluation of {row['cases'].item()} cases: {elapsed:.3f} s")
    assert row["cases"].item() == 1450
    assert 0.0 < row["HR@10"].item() < 1.0


def test_consumed_filter_wraps_any_model():
    ds = make_dataset(3)
    consumed = ds.train_matrix("user").toarray() > 0  # (U, I)
    users = np.arange(ds.n_users)
    items = np.tile(np.arange(ds.n_items), (ds.n_users, 1))
    popularity = B.Popularity().fit(ds, "user")
    wrapped = E.ConsumedFilter.wrap(popularity, ds, "user")
    s = wrapped.score(users, items)
    assert bool(np.isneginf(s[consumed]).all())
    np.testing.assert_array_equal(s[~consumed], popularity.score(users, items)[~consumed])
    np.testing.assert_array_equal(wrapped.score_all(users), s)
    assert wrapped.name == "Popularity" and E.model_name(wrapped) == "Popularity"
    # fit() fits the wrapped model first, then remembers the consumed items
    fresh = E.ConsumedFilter(B.Popularity()).fit(ds, "user")
    np.testing.assert_array_equal(fresh.score(users, items), s)
    # a model without score_all is scored through score()
    assert not hasattr(Lookup(), "score_all")
    lookup = E.ConsumedFilter(Lookup()).fit(ds, "user")
    np.testing.assert_array_equal(lookup.score_all(users), lookup.score(users, items))
    with pytest.raises(RuntimeError, match="not fitted"):
        E.ConsumedFilter(B.Popularity()).score(users, items)
    with pytest.raises(ValueError, match="task must be one of"):
        E.ConsumedFilter.wrap(popularity, ds, "household")


def test_consumed_filter_on_a_hand_written_dataset(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    model = E.ConsumedFilter(B.Popularity()).fit(ds, "group")
    scores = model.score(np.array([0, 1]), np.array([[0, 1, 4], [2, 3, 5]]))
    # group 0 consumed items 0 and 1; group 1 consumed 2 and 3 (rating 0 rows count as rows)
    assert np.isinf(scores[0, :2]).all() and np.isfinite(scores[0, 2])
    assert np.isinf(scores[1, :2]).all() and np.isfinite(scores[1, 2])
