"""Tests for grouprec.baselines: closed forms against direct solves, histories, determinism."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from grouprec import baselines as B
from grouprec import data as D
from grouprec import evaluation as E


def toy_dataset() -> D.GroupDataset:
    """4 users, 5 items, 2 groups; item 4 appears in no training row."""
    user_train = D.Interactions(
        np.array([0, 0, 1, 1, 2, 3, 3]), np.array([0, 1, 1, 2, 3, 0, 2]), None
    )
    group_train = D.Interactions(np.array([0, 0, 1]), np.array([0, 3, 2]), None)
    cases = D.EvalCases(np.array([0, 1]), np.array([2, 1]), np.array([[0, 4], [4, 3]]))
    ucases = D.EvalCases(np.arange(4), np.array([2, 0, 0, 1]), np.array([[4], [4], [4], [4]]))
    return D.GroupDataset(
        name="toy",
        n_users=4,
        n_items=5,
        n_groups=2,
        group_members=(np.array([0, 1]), np.array([2, 3, 3])),  # user 3 listed twice
        user_train=user_train,
        user_test=ucases,
        group_train=group_train,
        group_test=cases,
    )


# ---------------------------------------------------------------- histories


def test_member_mean_counts_each_member_once():
    A = B.member_mean(toy_dataset()).toarray()
    np.testing.assert_allclose(A, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_history_mixes_group_and_members():
    ds = toy_dataset()
    x_g = np.array([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], float)
    members = np.array([[0.5, 1, 0.5, 0, 0], [0.5, 0, 0.5, 0.5, 0]])
    np.testing.assert_allclose(B.history(ds, "group", 1.0).toarray(), x_g)
    np.testing.assert_allclose(B.history(ds, "group", 0.0).toarray(), members)
    np.testing.assert_allclose(B.history(ds, "group", 0.25).toarray(), 0.25 * x_g + 0.75 * members)
    np.testing.assert_allclose(B.history(ds, "user").toarray(), ds.train_matrix("user").toarray())
    with pytest.raises(ValueError, match="group task only; got alpha=0.5 with task='user'"):
        B.history(ds, "user", 0.5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        B.EASE(alpha=1.5)


def test_training_rows_stack_users_then_groups():
    X = B.training_rows(toy_dataset())
    assert X.shape == (6, 5) and X.sum() == 10
    np.testing.assert_array_equal(X.toarray()[4], [1, 0, 0, 1, 0])


# ---------------------------------------------------------------- EASE


def ease_direct(X: np.ndarray, lam: float) -> np.ndarray:
    """Column by column: min ||x_j - X b||^2 + lam ||b||^2 with b_j = 0, a ridge regression of
    item j on all other items (Steck 2019, eq. 1), solved with numpy's general solver."""
    n = X.shape[1]
    out = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        Xo = X[:, others]
        out[others, j] = np.linalg.solve(Xo.T @ Xo + lam * np.eye(n - 1), Xo.T @ X[:, j])
    return out


@pytest.mark.parametrize("n_rows", [30, 4])  # more rows than items (Cholesky), fewer (Woodbury)
def test_ease_equals_a_direct_solve(n_rows):
    rng = np.random.default_rng(n_rows)
    X = (rng.random((n_rows, 8)) < 0.4).astype(float)
    X[:, 5] = 0.0  # an item with no training data
    X[0, [0, 1, 2, 3, 4, 6, 7]] = 1.0  # every other item has some
    for lam in (0.5, 3.0, 50.0):
        active, W = B.ease_weights(sp.csr_matrix(X), lam)
        assert 5 not in active and len(active) == 7
        full = np.zeros((8, 8))
        full[np.ix_(active, active)] = W
        np.testing.assert_allclose(full, ease_direct(X, lam), rtol=0, atol=1e-12)
        # the textbook closed form with a general inverse agrees too
        P = np.linalg.inv(X.T @ X + lam * np.eye(8))
        closed = np.eye(8) - P / np.diag(P)[None, :]
        np.testing.assert_allclose(full, closed, rtol=0, atol=1e-12)


def test_ease_model_scores_are_history_times_b():
    ds = toy_dataset()
    X = B.training_rows(ds).toarray()
    Bfull = ease_direct(X, 2.0)
    for task, alpha in (("user", 1.0), ("group", 1.0), ("group", 0.3)):
        model = B.EASE(lam=2.0, alpha=alpha).fit(ds, task)
        expected = B.history(ds, task, alpha).toarray() @ Bfull
        np.testing.assert_allclose(model.score_all(np.arange(2)), expected[:2], atol=1e-12)
        np.testing.assert_allclose(
            model.score(np.array([1, 0]), np.array([[4, 0], [2, 3]])),
            [[expected[1, 4], expected[1, 0]], [expected[0, 2], expected[0, 3]]],
            atol=1e-12,
        )


# ---------------------------------------------------------------- ItemKNN


def test_itemknn_hand_computed():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]], float))
    # co-occurrences [[3,2,2],[2,2,1],[2,1,2]]; norms sqrt(3), sqrt(2), sqrt(2)
    c01 = 2 / np.sqrt(6)
    _, S = B.itemknn_weights(X)
    np.testing.assert_allclose(S, [[0, c01, c01], [c01, 0, 0.5], [c01, 0.5, 0]])
    _, S = B.itemknn_weights(X, shrink=1.0)
    assert S[0, 1] == pytest.approx(2 / (np.sqrt(6) + 1)) and S[1, 2] == pytest.approx(1 / 3)
    # k = 1: column 0 keeps both (tied) neighbours; columns 1 and 2 keep item 0 only
    _, S = B.itemknn_weights(X, k=1)  # pruned: kept sparse
    assert sp.issparse(S) and S.nnz == 4
    np.testing.assert_allclose(S.toarray(), [[0, c01, c01], [c01, 0, 0], [c01, 0, 0]])


def test_itemknn_model_scores():
    ds = toy_dataset()
    X = B.training_rows(ds).toarray()
    co = X.T @ X
    norm = np.sqrt(np.diag(co))
    with np.errstate(invalid="ignore", divide="ignore"):
        S = np.nan_to_num(co / np.outer(norm, norm))
    np.fill_diagonal(S, 0)
    model = B.ItemKNN(alpha=0.5).fit(ds, "group")
    np.testing.assert_allclose(
        model.score_all(np.arange(2)), B.history(ds, "group", 0.5).toarray() @ S, atol=1e-12
    )


# ---------------------------------------------------------------- Popularity and Random


def test_popularity_shares_and_ties():
    ds = toy_dataset()
    user = B.Popularity().fit(ds, "user")
    np.testing.assert_allclose(user.score_all(np.array([0]))[0], [0.5, 0.5, 0.5, 0.25, 0])
    group = B.Popularity(alpha=0.5).fit(ds, "group")
    expected = 0.5 * np.array([0.5, 0, 0.5, 0.5, 0]) + 0.5 * np.array([0.5, 0.5, 0.5, 0.25, 0])
    np.testing.assert_allclose(group.score(np.array([1]), np.array([[0, 1, 2, 3, 4]]))[0], expected)


def test_random_is_seeded_uniform_and_batch_independent():
    ds = toy_dataset()
    r = B.Random(seed=3).fit(ds, "user")
    items = np.tile(np.arange(5), (4, 1))
    a = r.score(np.arange(4), items)
    b = np.concatenate([r.score(np.array([e]), items[:1]) for e in range(4)])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, r.score_all(np.arange(4)))
    assert not np.array_equal(a, B.Random(seed=4).fit(ds, "user").score(np.arange(4), items))
    big = B.Random(seed=0).fit(SimpleNamespace(n_entities=lambda task: 1000, n_items=1000), "user")
    s = big.score_all(np.arange(1000))  # (1000, 1000)
    assert s.min() >= 0 and s.max() < 1
    assert abs(s.mean() - 0.5) < 0.002 and np.unique(s).size == s.size


# ---------------------------------------------------------------- determinism and errors


@pytest.mark.parametrize(
    "make",
    [
        lambda: B.Random(seed=1),
        lambda: B.Popularity(alpha=0.5),
        lambda: B.ItemKNN(k=2, shrink=1.0, alpha=0.5),
        lambda: B.EASE(lam=3.0, alpha=0.5),
    ],
)
def test_baselines_are_deterministic(make):
    ds = toy_dataset()
    first = make().fit(ds, "group").score_all(np.arange(2))
    B.clear_cache()
    second = make().fit(ds, "group").score_all(np.arange(2))
    np.testing.assert_array_equal(first, second)
    a = E.evaluate(make().fit(ds, "group"), ds, "group", ks=(1, 2), metrics="all")
    b = E.evaluate(make().fit(ds, "group"), ds, "group", ks=(1, 2), metrics="all")
    assert a.equals(b)


def test_weights_are_shared_across_alpha_and_tasks_not_across_lambda():
    ds = toy_dataset()
    B.clear_cache()
    a = B.EASE(lam=2.0, alpha=1.0).fit(ds, "group")
    b = B.EASE(lam=2.0, alpha=0.0).fit(ds, "group")
    c = B.EASE(lam=2.0).fit(ds, "user")
    d = B.EASE(lam=5.0).fit(ds, "user")
    assert a.weights_ is b.weights_ is c.weights_ and d.weights_ is not a.weights_
    assert not a.weights_.flags.writeable


def test_errors_name_the_problem():
    ds = toy_dataset()
    with pytest.raises(RuntimeError, match=r"EASE\(lam=50.0\) is not fitted; call fit"):
        B.EASE(lam=50.0).score(np.array([0]), np.array([[0]]))
    model = B.Popularity().fit(ds, "group")
    with pytest.raises(ValueError, match=r"entities must lie in 0..1 \(group ids\), got 0..2"):
        model.score(np.array([0, 2]), np.array([[0], [1]]))
    with pytest.raises(ValueError, match=r"items must lie in 0..4, got 0..5"):
        model.score(np.array([0]), np.array([[0, 5]]))
    with pytest.raises(ValueError, match="task must be one of"):
        B.Random().fit(ds, "household")
    with pytest.raises(ValueError, match="lam must be a positive number, got 0"):
        B.EASE(lam=0)
    with pytest.raises(ValueError, match="k must be a positive integer or None, got 0"):
        B.ItemKNN(k=0)
    with pytest.raises(ValueError, match="alpha mixes group and member histories"):
        B.ItemKNN(alpha=0.5).fit(ds, "user")


# ---------------------------------------------------------------- real data


def test_baselines_on_mafengwo_validation(mafengwo):
    """Sanity on real data: the learned baselines beat Popularity, which beats Random."""
    ds = D.split_validation(D.benchmark_clean(mafengwo), seed=0)
    scores = {}
    for model in (B.Random(), B.Popularity(), B.ItemKNN(k=100), B.EASE(lam=100.0)):
        model.fit(E.hide_test(ds), "user")
        scores[model.name] = E.evaluate(model, ds, "user", "val")["NDCG@10"].item()
    assert scores["Random"] < scores["Popularity"] < min(scores["ItemKNN"], scores["EASE"])
    assert scores["Random"] == pytest.approx(0.045, abs=0.02)  # about (1/101) * sum of discounts
