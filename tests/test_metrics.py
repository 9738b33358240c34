"""Tests for grouprec.metrics: hand-computed cases, brute force over tie orders, properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grouprec import metrics as M

ALL = "all"
KS = (1, 2, 3, 5)


def log2(x):
    return np.log2(float(x))


# ---------------------------------------------------------------- hand-computed: one relevant item

# The positive scores 0.5; one negative scores higher (g = 1), two tie with it (t = 2), so its
# 0-based rank is 1, 2 or 3 with probability 1/3 each.
POS = np.array([0.5])
NEG = np.array([[0.9, 0.5, 0.1, 0.5]])


def test_count_ties_toy():
    g, t = M.count_ties(POS, NEG)
    assert g.tolist() == [1] and t.tolist() == [2]
    g, t = M.count_ties(POS, NEG, neg_mask=[[True, False, True, True]])
    assert g.tolist() == [1] and t.tolist() == [1]


def test_sampled_toy_expected():
    out = M.sampled_metrics(POS, NEG, ks=(1, 2, 3, 5), metrics=ALL)
    assert out["HR@1"] == 0.0
    assert out["HR@2"] == pytest.approx(1 / 3)
    assert out["HR@3"] == pytest.approx(2 / 3)
    assert out["HR@5"] == 1.0
    assert out["NDCG@2"] == pytest.approx((1 / log2(3)) / 3)
    assert out["NDCG@5"] == pytest.approx((1 / log2(3) + 1 / log2(4) + 1 / log2(5)) / 3)
    assert out["Precision@2"] == pytest.approx(1 / 6)
    assert out["Recall@3"] == pytest.approx(2 / 3)
    assert out["MRR"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_sampled_toy_bounds():
    opt = M.sampled_metrics(POS, NEG, ks=(1, 2, 3), ties="optimistic", metrics=ALL)
    pes = M.sampled_metrics(POS, NEG, ks=(1, 2, 3), ties="pessimistic", metrics=ALL)
    # optimistic rank 1, pessimistic rank 3
    assert (opt["HR@1"], opt["HR@2"], opt["HR@3"]) == (0.0, 1.0, 1.0)
    assert (pes["HR@1"], pes["HR@2"], pes["HR@3"]) == (0.0, 0.0, 0.0)
    assert opt["NDCG@2"] == pytest.approx(1 / log2(3))
    assert opt["MRR"] == pytest.approx(1 / 2) and pes["MRR"] == pytest.approx(1 / 4)
    assert pes["Precision@3"] == 0.0 and opt["Precision@3"] == pytest.approx(1 / 3)


def test_count_level_functions_match_sampled():
    g, t = np.array([0, 1, 7, 3]), np.array([0, 2, 0, 9])
    assert M.hit_at_k(g, t, 5).tolist() == pytest.approx([1, 1, 0, 0.2])
    assert M.ndcg_at_k(g, t, 1).tolist() == pytest.approx([1, 0, 0, 0])
    # g = 3, t = 9: ranks 3..12 equally likely, ranks 3 and 4 fall inside the top 5
    assert M.ndcg_at_k(g, t, 5)[3] == pytest.approx((1 / log2(5) + 1 / log2(6)) / 10)
    assert M.reciprocal_rank(g, t).tolist() == pytest.approx(
        [1, (1 / 2 + 1 / 3 + 1 / 4) / 3, 1 / 8, sum(1 / r for r in range(4, 14)) / 10]
    )
    assert M.precision_at_k(g, t, 5).tolist() == pytest.approx([0.2, 0.2, 0, 0.04])
    assert M.recall_at_k(g, t, 5).tolist() == M.hit_at_k(g, t, 5).tolist()


def test_contract_keys_and_defaults():
    rng = np.random.default_rng(0)
    out = M.sampled_metrics(rng.random(7), rng.random((7, 100)))
    assert list(out) == ["HR@5", "NDCG@5", "HR@10", "NDCG@10"]
    assert all(isinstance(v, float) for v in out.values())
    assert M.metric_names((5, 10), ALL) == [
        "HR@5",
        "NDCG@5",
        "Precision@5",
        "Recall@5",
        "HR@10",
        "NDCG@10",
        "Precision@10",
        "Recall@10",
        "MRR",
    ]


def test_torch_input_equals_numpy_and_keeps_float32_ties():
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 4, 20).astype(np.float32)
    neg = rng.integers(0, 4, (20, 9)).astype(np.float32)
    a = M.sampled_metrics(pos, neg, ks=(1, 3), metrics=ALL)
    b = M.sampled_metrics(torch.from_numpy(pos), torch.from_numpy(neg), ks=(1, 3), metrics=ALL)
    c = M.sampled_metrics(
        torch.from_numpy(pos).requires_grad_(), torch.from_numpy(neg), ks=(1, 3), metrics=ALL
    )
    assert a == b == c


def test_per_case_values():
    out = M.sampled_metrics([3.0, 0.0], [[1.0, 2.0], [1.0, 2.0]], ks=(1,), per_case=True)
    assert out["HR@1"].tolist() == [1.0, 0.0]
    assert out["NDCG@1"].shape == (2,)


# ---------------------------------------------------------------- hand-computed: full ranking


def test_full_ranking_toy_no_ties():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    relevant = np.array([[False, True, False, True, False, False]])
    exclude = np.array([[True, False, False, False, False, False]])  # item 0 is a training item
    # candidates 1..5 in score order: relevant items 1 and 3 at ranks 0 and 2
    out = M.full_ranking_metrics(scores, relevant, exclude, ks=(1, 2, 3), metrics=ALL)
    assert out["HR@1"] == 1.0
    assert out["Precision@2"] == 0.5 and out["Recall@2"] == 0.5
    assert out["Recall@3"] == 1.0 and out["Precision@3"] == pytest.approx(2 / 3)
    assert out["NDCG@3"] == pytest.approx((1 + 1 / log2(4)) / (1 + 1 / log2(3)))
    assert out["NDCG@1"] == 1.0
    assert out["MRR"] == 1.0
    # without the exclusion, item 0 outranks both
    out = M.full_ranking_metrics(scores, relevant, None, ks=(1,), metrics=ALL)
    assert out["HR@1"] == 0.0 and out["MRR"] == 0.5


def test_full_ranking_toy_ties():
    # three candidates tie at the top, two of them relevant: the first slot is relevant with
    # probability 2/3; otherwise the second is.
    scores = np.array([[1.0, 1.0, 1.0, 0.0]])
    relevant = np.array([[True, True, False, False]])
    out = M.full_ranking_metrics(scores, relevant, ks=(1, 2), metrics=ALL)
    assert out["HR@1"] == pytest.approx(2 / 3)
    assert out["HR@2"] == pytest.approx(1.0)
    assert out["MRR"] == pytest.approx(2 / 3 + 1 / 3 * 1 / 2)
    assert out["Precision@1"] == pytest.approx(2 / 3)
    assert out["NDCG@2"] == pytest.approx(2 / 3)
    opt = M.full_ranking_metrics(scores, relevant, ks=(1, 2), ties="optimistic", metrics=ALL)
    pes = M.full_ranking_metrics(scores, relevant, ks=(1, 2), ties="pessimistic", metrics=ALL)
    assert opt["NDCG@2"] == 1.0 and opt["MRR"] == 1.0
    assert pes["HR@1"] == 0.0 and pes["MRR"] == 0.5 and pes["Recall@2"] == 0.5


def test_full_ranking_sparse_and_torch_inputs():
    rng = np.random.default_rng(2)
    s = rng.integers(0, 3, (6, 9)).astype(float)
    rel = np.zeros((6, 9), bool)
    rel[np.arange(6), rng.integers(0, 9, 6)] = True
    exc = (rng.random((6, 9)) < 0.3) & ~rel
    a = M.full_ranking_metrics(s, rel, exc, ks=(1, 4), metrics=ALL)
    b = M.full_ranking_metrics(
        torch.tensor(s), sp.csr_matrix(rel), sp.csr_matrix(exc), ks=(1, 4), metrics=ALL
    )
    assert a == b


# ---------------------------------------------------------------- brute force over tie orders


def brute_force(s, rel, cand, ks):
    """Every metric over all tie-breaking orders: (mean, min, max)."""
    idx = np.flatnonzero(cand)
    values: dict[str, list[float]] = {}
    n_rel = int(rel.sum())
    for perm in itertools.permutations(idx):
        order = np.array(perm)
        if np.any(s[order][:-1] < s[order][1:]):
            continue  # not a ranking consistent with the scores
        pos = np.flatnonzero(rel[order])
        for k in ks:
            hits = int((pos < k).sum())
            dcg = float((1 / np.log2(pos[pos < k] + 2)).sum())
            idcg = float((1 / np.log2(np.arange(min(k, n_rel)) + 2)).sum())
            values.setdefault(f"HR@{k}", []).append(float(hits > 0))
            values.setdefault(f"NDCG@{k}", []).append(dcg / idcg)
            values.setdefault(f"Precision@{k}", []).append(hits / k)
            values.setdefault(f"Recall@{k}", []).append(hits / n_rel)
        values.setdefault("MRR", []).append(1 / (pos.min() + 1))
    return {k: (np.mean(v), min(v), max(v)) for k, v in values.items()}


@st.composite
def small_ranking(draw):
    n = draw(st.integers(2, 6))
    s = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=float)
    rel = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    rel[draw(st.integers(0, n - 1))] = True
    exc = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) & ~rel
    return s, rel, exc


@settings(max_examples=150, deadline=None)
@given(small_ranking())
def test_full_ranking_equals_brute_force(case):
    s, rel, exc = case
    truth = brute_force(s, rel, ~exc, KS)
    for ties, col in (("expected", 0), ("pessimistic", 1), ("optimistic", 2)):
        got = M.full_ranking_metrics(s[None], rel[None], exc[None], KS, ties, metrics=ALL)
        for key, v in got.items():
            assert v == pytest.approx(truth[key][col], abs=1e-12), (ties, key)


@settings(max_examples=150, deadline=None)
@given(small_ranking())
def test_full_with_one_relevant_equals_sampled(case):
    s, rel, exc = case
    i = int(np.flatnonzero(rel)[0])
    rel = np.zeros_like(rel)
    rel[i] = True
    negatives = s[~exc & ~rel]
    if len(negatives) == 0:
        return
    for ties in M.TIES:
        full = M.full_ranking_metrics(s[None], rel[None], exc[None], KS, ties, metrics=ALL)
        samp = M.sampled_metrics(s[i : i + 1], negatives[None], KS, ties, metrics=ALL)
        assert full.keys() == samp.keys()
        for key in full:
            assert full[key] == pytest.approx(samp[key], abs=1e-12)


# ---------------------------------------------------------------- properties

scores_strategy = st.integers(1, 12).flatmap(
    lambda m: st.tuples(
        hnp.arrays(np.int64, st.integers(1, 8), elements=st.integers(0, 3)),
        st.just(m),
        st.integers(0, 2**32 - 1),
    )
)


def _sampled_case(pos, m, seed):
    rng = np.random.default_rng(seed)
    neg = rng.integers(0, 4, (len(pos), m)).astype(float)
    return pos.astype(float), neg


@settings(max_examples=200, deadline=None)
@given(scores_strategy, st.integers(1, 15))
def test_expected_between_bounds_and_in_unit_interval(data, k):
    pos, neg = _sampled_case(*data)
    out = {t: M.sampled_metrics(pos, neg, (k,), t, metrics=ALL, per_case=True) for t in M.TIES}
    for key in out["expected"]:
        lo, mid, hi = out["pessimistic"][key], out["expected"][key], out["optimistic"][key]
        assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12), key
        for v in (lo, mid, hi):
            assert np.all((v >= 0) & (v <= 1)), key


@settings(max_examples=100, deadline=None)
@given(scores_strategy, st.integers(1, 15))
def test_full_ranking_bounds_and_unit_interval(data, k):
    pos, neg = _sampled_case(*data)
    s = np.concatenate([pos[:, None], neg], axis=1)  # (n, 1 + m)
    rng = np.random.default_rng(int(pos.sum()) + k)
    rel = rng.random(s.shape) < 0.3
    rel[:, 0] = True
    out = {
        t: M.full_ranking_metrics(s, rel, None, (k,), t, metrics=ALL, per_case=True) for t in M.TIES
    }
    for key in out["expected"]:
        lo, mid, hi = out["pessimistic"][key], out["expected"][key], out["optimistic"][key]
        assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12), key
        assert np.all((lo >= 0) & (hi <= 1 + 1e-12)), key


@settings(max_examples=100, deadline=None)
@given(scores_strategy, st.integers(0, 2**32 - 1))
def test_invariant_to_order_of_negatives(data, seed):
    pos, neg = _sampled_case(*data)
    perm = np.random.default_rng(seed).permutation(neg.shape[1])
    for ties in M.TIES:
        a = M.sampled_metrics(pos, neg, (1, 5), ties, metrics=ALL, per_case=True)
        b = M.sampled_metrics(pos, neg[:, perm], (1, 5), ties, metrics=ALL, per_case=True)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(1, 250), st.floats(-1e6, 1e6, allow_nan=False))
def test_all_tied_hit_ratio_is_k_over_m_plus_1(m, k, value):
    pos = np.full(3, value)
    neg = np.full((3, m), value)
    out = M.sampled_metrics(pos, neg, (k,), per_case=True)
    np.testing.assert_allclose(out[f"HR@{k}"], min(k, m + 1) / (m + 1), rtol=0, atol=1e-15)
    assert M.sampled_metrics(pos, neg, (k,), "optimistic")[f"HR@{k}"] == 1.0
    assert M.sampled_metrics(pos, neg, (k,), "pessimistic")[f"HR@{k}"] == float(k > m)


def test_positive_first_stable_argsort_is_the_optimistic_bound():
    """The inflated protocol: test item at index 0, stable sort breaks ties in its favour."""
    rng = np.random.default_rng(3)
    s = rng.integers(0, 3, (500, 101)).astype(float)  # column 0: the test item
    rank = np.argmax(np.argsort(-s, axis=1, kind="stable") == 0, axis=1)
    for k in (1, 5, 10):
        hr = float((rank < k).mean())
        ndcg = float(np.where(rank < k, 1 / np.log2(rank + 2), 0).mean())
        opt = M.sampled_metrics(s[:, 0], s[:, 1:], (k,), "optimistic")
        assert opt[f"HR@{k}"] == pytest.approx(hr) and opt[f"NDCG@{k}"] == pytest.approx(ndcg)
        assert M.sampled_metrics(s[:, 0], s[:, 1:], (k,))[f"HR@{k}"] < hr


def test_expected_matches_simulated_random_tie_breaking():
    rng = np.random.default_rng(4)
    s = rng.integers(0, 3, (300, 20)).astype(float)
    expected = M.sampled_metrics(s[:, 0], s[:, 1:], (3,), metrics=ALL)
    draws = []
    for _ in range(400):
        noise = rng.random(s.shape)
        order = np.lexsort((noise, -s), axis=1)
        rank = np.argmax(order == 0, axis=1)
        draws.append(((rank < 3).mean(), (1 / (rank + 1)).mean()))
    sim_hr, sim_rr = np.mean(draws, axis=0)
    assert sim_hr == pytest.approx(expected["HR@3"], abs=3e-3)
    assert sim_rr == pytest.approx(expected["MRR"], abs=3e-3)


# ---------------------------------------------------------------- bad input


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"neg_scores contains NaN \(first at index \(1, 0\)\)"):
        M.sampled_metrics([1.0, 2.0], [[0.0], [np.nan]])
    with pytest.raises(ValueError, match="pos_scores must have 1 dimension"):
        M.sampled_metrics([[1.0]], [[0.0]])
    with pytest.raises(ValueError, match="pos_scores has 2 cases but neg_scores has 1 rows"):
        M.sampled_metrics([1.0, 2.0], [[0.0]])
    with pytest.raises(ValueError, match="ties must be one of"):
        M.sampled_metrics([1.0], [[0.0]], ties="random")
    with pytest.raises(ValueError, match="ks must hold positive integers, got 0"):
        M.sampled_metrics([1.0], [[0.0]], ks=(0, 5))
    with pytest.raises(ValueError, match="metrics must be 'all' or a subset"):
        M.sampled_metrics([1.0], [[0.0]], metrics=("AUC",))
    with pytest.raises(ValueError, match="no cases"):
        M.sampled_metrics(np.zeros(0), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="relevant row 1 has no relevant item"):
        M.full_ranking_metrics(np.zeros((2, 3)), [[1, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="exclude must have shape"):
        M.full_ranking_metrics(np.zeros((1, 3)), [[1, 0, 0]], exclude=[[0, 0]])
    with pytest.raises(TypeError, match="g must hold integer counts"):
        M.hit_at_k(np.array([0.5]), np.array([0]), 5)


# ---------------------------------------------------------------- lists, satisfaction, fairness


def test_top_k_excludes_and_breaks_ties_at_random():
    scores = np.array([[5.0, 1.0, 1.0, 1.0, 9.0]])
    exclude = np.array([[False, False, False, False, True]])
    top = M.top_k(scores, 2, exclude, seed=0)
    assert top[0, 0] == 0 and top[0, 1] in (1, 2, 3)
    np.testing.assert_array_equal(top, M.top_k(scores, 2, exclude, seed=0))
    many = M.top_k(np.tile(scores, (3000, 1)), 2, np.tile(exclude, (3000, 1)), seed=1)
    share = np.bincount(many[:, 1], minlength=5)[1:4] / 3000
    np.testing.assert_allclose(share, 1 / 3, atol=0.04)
    with pytest.raises(ValueError, match="row 0 has 4 candidates, fewer than k=5"):
        M.top_k(scores, 5, exclude)


def test_member_ndcg_and_group_satisfaction_toy():
    # group 0 = users 0, 1; group 1 = users 2 and (padding); user 3 has no held-out item
    lists = np.array([[10, 11, 12], [13, 14, 15]])
    ids = np.array([[0, 1], [2, 3]])
    mask = np.array([[True, True], [True, True]])
    rel = sp.csr_matrix(
        (np.ones(4), ([0, 1, 1, 2], [10, 12, 99, 50])), shape=(4, 100)
    )  # user 0: {10}; user 1: {12, 99}; user 2: {50}; user 3: nothing
    sat = M.member_ndcg(lists, ids, mask, rel)
    assert sat[0, 0] == 1.0
    assert sat[0, 1] == pytest.approx((1 / log2(4)) / (1 + 1 / log2(3)))
    assert sat[1, 0] == 0.0 and np.isnan(sat[1, 1])
    out = M.group_satisfaction(lists, ids, mask, rel)
    assert out["Sat-mean@3"] == pytest.approx(((1 + sat[0, 1]) / 2 + 0) / 2)
    assert out["Sat-min@3"] == pytest.approx(sat[0, 1] / 2)
    x = np.array([1.0, sat[0, 1]])
    assert out["Jain@3"] == pytest.approx(x.sum() ** 2 / (2 * (x**2).sum()))
    assert out["groups"] == 2 and out["groups_with_hits"] == 1


def test_jain_index_values():
    j = M.jain_index(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2, 1, np.nan]]))
    assert j[0] == 1.0 and j[1] == pytest.approx(1 / 3) and np.isnan(j[2])
    assert j[3] == pytest.approx(9 / 10)


def test_coverage_and_novelty_toy():
    lists = np.array([[0, 1], [1, 2]])
    assert M.coverage(lists, 10) == pytest.approx(0.3)
    counts = np.array([3, 1, 0, 0])  # of N = 3 entities
    expected = -np.mean(np.log2(np.array([4, 2, 2, 1]) / 4))
    assert M.novelty(lists, counts, 3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="outside 0..9"):
        M.coverage(np.array([[10]]), 10)
