"""Tests for grouprec.aggregation: a hand-computed toy for every rule, then properties.

The toy (three members, four items, scores on a 0-10 scale) is worked out by hand in the
comments above each expected value. The property tests compare the vectorised, batched rules
with slow reference versions written one group at a time in exact rational arithmetic, and
check invariances: member order, padding, one-member groups.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grouprec import aggregation as agg
from grouprec.aggregation import (
    RULES,
    aggregate,
    approval,
    average,
    average_without_misery,
    borda,
    fairness_greedy,
    fairness_greedy_list,
    least_misery,
    most_pleasure,
    multiplicative,
    plurality,
    plurality_list,
    top_k,
)

#            item 0  item 1  item 2  item 3
#   Ann         2       6       8       6
#   Ben         7       9       4       3
#   Cat         8       5       6       1
TOY = np.array([[2, 6, 8, 6], [7, 9, 4, 3], [8, 5, 6, 1]], dtype=np.float64)

KINDS = ["numpy-float64", "numpy-float32", "torch-float64", "torch-float32"]


def as_kind(x: np.ndarray, kind: str):
    lib, dtype = kind.split("-")
    x = x.astype(dtype)
    return torch.from_numpy(x) if lib == "torch" else x


def to_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else x


def check_kind(result, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """The result has the caller's array kind, float dtype and the expected shape."""
    lib, dtype = kind.split("-")
    assert isinstance(result, torch.Tensor if lib == "torch" else np.ndarray)
    assert str(result.dtype).endswith(dtype)
    assert tuple(result.shape) == shape
    return to_numpy(result).astype(np.float64)


def rtol(kind: str) -> float:
    return 1e-6 if kind.endswith("32") else 1e-12


# --------------------------------------------------------------------------------------------
# Hand-computed toy, one test per rule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_average_toy(kind):
    R = check_kind(average(as_kind(TOY, kind)), kind, (4,))
    # item 0: (2 + 7 + 8) / 3 = 17/3; item 1: (6 + 9 + 5) / 3 = 20/3;
    # item 2: (8 + 4 + 6) / 3 = 18/3 = 6; item 3: (6 + 3 + 1) / 3 = 10/3
    np.testing.assert_allclose(R, [17 / 3, 20 / 3, 6, 10 / 3], rtol=rtol(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_least_misery_toy(kind):
    R = check_kind(least_misery(as_kind(TOY, kind)), kind, (4,))
    # column minima: min(2, 7, 8) = 2, min(6, 9, 5) = 5, min(8, 4, 6) = 4, min(6, 3, 1) = 1
    np.testing.assert_array_equal(R, [2, 5, 4, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_most_pleasure_toy(kind):
    R = check_kind(most_pleasure(as_kind(TOY, kind)), kind, (4,))
    # column maxima: max(2, 7, 8) = 8, max(6, 9, 5) = 9, max(8, 4, 6) = 8, max(6, 3, 1) = 6
    np.testing.assert_array_equal(R, [8, 9, 8, 6])


@pytest.mark.parametrize("kind", KINDS)
def test_multiplicative_toy(kind):
    R = check_kind(multiplicative(as_kind(TOY, kind)), kind, (4,))
    # products: 2 * 7 * 8 = 112, 6 * 9 * 5 = 270, 8 * 4 * 6 = 192, 6 * 3 * 1 = 18;
    # the rule returns their cube roots (geometric means), which rank the items the same way
    np.testing.assert_allclose(R**3, [112, 270, 192, 18], rtol=10 * rtol(kind))
    np.testing.assert_allclose(R, np.cbrt([112, 270, 192, 18]), rtol=rtol(kind))
    assert list(top_k(R)) == [1, 2, 0, 3]  # 270 > 192 > 112 > 18


def test_multiplicative_zero_vetoes_and_no_underflow():
    # One zero makes the product 0 whatever the others say.
    assert multiplicative(np.array([[0.0, 1.0], [9.0, 1.0]]))[0] == 0.0
    # 48 members: the raw product 0.1**48 = 1e-48 underflows float32 to 0 for both items,
    # and 0.2**48 = 2.8e-34 would barely survive; the geometric means stay 0.1 and 0.2.
    r = np.tile(np.array([[0.1, 0.2]], dtype=np.float32), (48, 1))
    assert np.prod(r, axis=0)[0] == 0.0
    np.testing.assert_allclose(multiplicative(r), [0.1, 0.2], rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_average_without_misery_toy(kind):
    R = check_kind(average_without_misery(as_kind(TOY, kind), threshold=4), kind, (4,))
    # misery threshold 4: item 0 has Ann's 2 < 4 -> out; item 3 has Cat's 1 < 4 -> out;
    # item 2's lowest score is Ben's 4, equal to the threshold -> not misery, keeps 18/3 = 6;
    # item 1 keeps its average 20/3
    np.testing.assert_allclose(R, [-np.inf, 20 / 3, 6, -np.inf], rtol=rtol(kind))
    assert list(top_k(R)) == [1, 2, 0, 3]  # excluded items tie at -inf, listed by index


@pytest.mark.parametrize("kind", KINDS)
def test_borda_toy(kind):
    R = check_kind(borda(as_kind(TOY, kind)), kind, (4,))
    # four items: points 3, 2, 1, 0 from best to worst
    # Ann: 8 (item 2) -> 3; 6, 6 (items 1, 3) share positions worth 2 and 1 -> 1.5 each;
    #      2 (item 0) -> 0
    # Ben: 9 (item 1) -> 3, 7 (item 0) -> 2, 4 (item 2) -> 1, 3 (item 3) -> 0
    # Cat: 8 (item 0) -> 3, 6 (item 2) -> 2, 5 (item 1) -> 1, 1 (item 3) -> 0
    # item 0: 0 + 2 + 3 = 5; item 1: 1.5 + 3 + 1 = 5.5; item 2: 3 + 1 + 2 = 6;
    # item 3: 1.5 + 0 + 0 = 1.5
    np.testing.assert_array_equal(R, [5, 5.5, 6, 1.5])


@pytest.mark.parametrize("kind", KINDS)
def test_approval_toy(kind):
    R = check_kind(approval(as_kind(TOY, kind), threshold=7), kind, (4,))
    # approve when score >= 7: Ann approves item 2 (8); Ben approves items 0 (7, equal to the
    # threshold) and 1 (9); Cat approves item 0 (8). Counts: 2, 1, 1, 0
    np.testing.assert_array_equal(R, [2, 1, 1, 0])


@pytest.mark.parametrize("kind", KINDS)
def test_plurality_toy(kind):
    # Round 1: favourites Ann -> item 2, Ben -> item 1, Cat -> item 0: votes 1, 1, 1, 0.
    #          A three-way tie, broken by Borda count (5, 5.5, 6, 1.5 above): item 2.
    # Round 2: free items 0, 1, 3. Ann likes items 1 and 3 equally (6): half a vote each;
    #          Ben -> item 1; Cat -> item 0. Votes: item 0: 1, item 1: 1.5, item 3: 0.5 -> item 1.
    # Round 3: free items 0, 3. Ann -> item 3 (6 > 2); Ben -> item 0 (7 > 3); Cat -> item 0.
    #          Votes 2 to 1 -> item 0. Round 4: item 3.
    ranking = to_numpy(plurality_list(as_kind(TOY, kind)))
    np.testing.assert_array_equal(ranking, [2, 1, 0, 3])
    # score form: position p of the 4-long list scores 4 + 1 - p -> item 2: 5, item 1: 4,
    # item 0: 3, item 3: 2
    R = check_kind(plurality(as_kind(TOY, kind)), kind, (4,))
    np.testing.assert_array_equal(R, [3, 4, 5, 2])
    # a two-long list: items 2 and 1 score 3 and 2, the others 0
    R2 = check_kind(plurality(as_kind(TOY, kind), k=2), kind, (4,))
    np.testing.assert_array_equal(R2, [0, 2, 3, 0])
    np.testing.assert_array_equal(to_numpy(plurality_list(as_kind(TOY, kind), k=2)), [2, 1])


def test_plurality_tied_favourites_share_one_vote():
    #           item 0  item 1  item 2
    #   Ann        5       5       0      favourites 0 and 1: half a vote each
    #   Ben        5       5       0      likewise
    #   Cat        0       1       4      one vote for item 2
    # Round 1 votes: item 0: 1, item 1: 1, item 2: 1. Were Ann and Ben each to give a whole vote
    # to both of their favourites, items 0 and 1 would win with 2 votes; split, all three tie
    # and Borda decides: item 0: 1.5 + 1.5 + 0 = 3, item 1: 1.5 + 1.5 + 1 = 4,
    # item 2: 0 + 0 + 2 = 2 -> item 1.
    # Round 2: Ann and Ben now give item 0 a whole vote each (2), Cat votes item 2 (1) -> item 0.
    r = np.array([[5, 5, 0], [5, 5, 0], [0, 1, 4]], dtype=float)
    np.testing.assert_array_equal(plurality_list(r), [1, 0, 2])


@pytest.mark.parametrize("kind", KINDS)
def test_fairness_greedy_toy(kind):
    # Relevance: each member's scores scaled to [0, 1] over the four items.
    #   Ann (2..8):  (2-2)/6 = 0,   (6-2)/6 = 2/3, (8-2)/6 = 1,   (6-2)/6 = 2/3
    #   Ben (3..9):  (7-3)/6 = 2/3, (9-3)/6 = 1,   (4-3)/6 = 1/6, (3-3)/6 = 0
    #   Cat (1..8):  (8-1)/7 = 1,   (5-1)/7 = 4/7, (6-1)/7 = 5/7, (1-1)/7 = 0
    # Step 1 (nothing listed): least-satisfied member per item: item 0: min(0, 2/3, 1) = 0;
    #   item 1: min(2/3, 1, 4/7) = 4/7; item 2: min(1, 1/6, 5/7) = 1/6; item 3: 0 -> item 1.
    #   Cumulative relevance now (2/3, 1, 4/7).
    # Step 2: item 0: min(2/3 + 0, 1 + 2/3, 4/7 + 1) = 2/3;
    #   item 2: min(2/3 + 1, 1 + 1/6, 4/7 + 5/7) = 7/6; item 3: min(4/3, 1, 4/7) = 4/7 -> item 2.
    ranking = to_numpy(fairness_greedy_list(as_kind(TOY, kind), k=2))
    np.testing.assert_array_equal(ranking, [1, 2])
    # Score form: listed items score k + 1 - p = 3, 2; the others their mean relevance:
    # item 0: (0 + 2/3 + 1) / 3 = 5/9; item 3: (2/3 + 0 + 0) / 3 = 2/9
    R = check_kind(fairness_greedy(as_kind(TOY, kind), k=2), kind, (4,))
    np.testing.assert_allclose(R, [5 / 9, 3, 2, 2 / 9], rtol=rtol(kind))
    # Step 3: cumulative (5/3, 7/6, 9/7); item 0: min(5/3, 7/6 + 2/3, 9/7 + 1) = 5/3,
    #   item 3: min(5/3 + 2/3, 7/6, 9/7) = 7/6 -> item 0, then item 3.
    full = to_numpy(fairness_greedy_list(as_kind(TOY, kind), k=4))
    np.testing.assert_array_equal(full, [1, 2, 0, 3])


def test_fairness_greedy_protects_the_worst_off_member_but_is_myopic():
    # Scores already span [0, 1] for both members, so relevance = score.
    #           item 0  item 1  item 2  item 3
    #   Ann       1.0     0.9     0.0     0.5
    #   Ben       0.0     0.2     1.0     0.4
    r = np.array([[1.0, 0.9, 0.0, 0.5], [0.0, 0.2, 1.0, 0.4]])
    # Average: 0.5, 0.55, 0.5, 0.45 -> top two items 1, 0 (item 0 before item 2 by index);
    # Ben gets 0.2 + 0.0 = 0.2 from them.
    np.testing.assert_array_equal(top_k(average(r), 2), [1, 0])
    # Greedy max-min. Step 1: min(1, 0) = 0, min(0.9, 0.2) = 0.2, min(0, 1) = 0,
    # min(0.5, 0.4) = 0.4 -> item 3; totals (0.5, 0.4).
    # Step 2: item 0: min(1.5, 0.4) = 0.4; item 1: min(1.4, 0.6) = 0.6; item 2: min(0.5, 1.4)
    # = 0.5 -> item 1; Ben now has 0.6, three times what the average list gives him.
    # Step 3: item 0: min(2.4, 0.6) = 0.6; item 2: min(1.4, 1.6) = 1.4 -> item 2, then item 0.
    np.testing.assert_array_equal(fairness_greedy_list(r, k=4), [3, 1, 2, 0])
    # Myopia: the pair {1, 2} gives (0.9, 1.2), a worst-off total of 0.9 > 0.6, but greedy
    # commits to item 3 first.
    pair = [1, 2]
    greedy = list(fairness_greedy_list(r, k=2))
    assert r[:, pair].sum(1).min() > r[:, greedy].sum(1).min()


def test_fairness_greedy_tie_breaks():
    #           item 0  item 1  item 2
    #   Ann       0       0       1
    #   Ben       0       1       0
    # Step 1: every item leaves someone at 0, a three-way tie on the minimum. Mean relevance
    # 0, 0.5, 0.5 removes item 0; items 1 and 2 still tie, and the lower index wins: item 1.
    r = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(fairness_greedy_list(r, k=3), [1, 2, 0])


def test_fairness_greedy_indifferent_member_does_not_steer():
    # Ben scores everything 5: any list serves him equally, so the list is Ann's ranking.
    r = np.array([[3.0, 9.0, 1.0, 7.0], [5.0, 5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(fairness_greedy_list(r, k=4), [1, 3, 0, 2])


def test_top_k_breaks_ties_by_index():
    R = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_k(R, 3), [[1, 2, 4], [0, 1, 2]])
    np.testing.assert_array_equal(top_k(R[0]), [1, 2, 4, 0, 3])
    assert isinstance(top_k(torch.from_numpy(R), 2), torch.Tensor)


# --------------------------------------------------------------------------------------------
# Batching, array kinds and the dispatcher
# --------------------------------------------------------------------------------------------

PARAMS = {
    "average_without_misery": {"threshold": 4.0},
    "approval": {"threshold": 5.0},
    "fairness_greedy": {"k": 2},
}


def run(rule: str, scores, mask=None):
    return aggregate(scores, mask, rule, **PARAMS.get(rule, {}))


def test_registry_lists_every_rule():
    assert set(RULES) == {
        "average",
        "least_misery",
        "most_pleasure",
        "multiplicative",
        "average_without_misery",
        "borda",
        "approval",
        "plurality",
        "fairness_greedy",
    }
    assert all(RULES[name] is getattr(agg, name) for name in RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_aggregate_dispatches(rule):
    expected = RULES[rule](TOY, None, **PARAMS.get(rule, {}))
    np.testing.assert_array_equal(run(rule, TOY), expected)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_batch_with_masks_equals_groups_one_by_one(rule):
    # Group 0 is the toy; group 1 has two members in slots 0 and 2 and a garbage slot 1.
    second = np.array([[1, 4, 9, 2], [np.nan, -7, np.inf, 1e300], [6, 6, 0, 3]], dtype=float)
    scores = np.stack([TOY, second])
    mask = np.array([[True, True, True], [True, False, True]])
    batch = run(rule, scores, mask)
    assert batch.shape == (2, 4)
    np.testing.assert_array_equal(batch[0], run(rule, TOY))
    np.testing.assert_array_equal(batch[1], run(rule, second[[0, 2]]))
    np.testing.assert_array_equal(batch[1], run(rule, second, mask[1]))  # one group, (S,) mask


@pytest.mark.parametrize("rule", sorted(RULES))
def test_numpy_and_torch_agree(rule):
    rng = np.random.default_rng(0)
    scores = rng.random((5, 4, 7))
    mask = rng.random((5, 4)) < 0.7
    mask[:, 0] = True
    from_numpy = run(rule, scores, mask)
    from_torch = run(rule, torch.from_numpy(scores), torch.from_numpy(mask))
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float64
    np.testing.assert_array_equal(from_numpy, from_torch.numpy())


def test_integer_scores_and_lists_are_accepted():
    ratings = TOY.astype(np.int64)
    assert average(ratings).dtype == np.float64
    np.testing.assert_allclose(average(ratings), average(TOY))
    np.testing.assert_allclose(average(TOY.tolist()), average(TOY))
    np.testing.assert_allclose(average(torch.from_numpy(ratings)).numpy(), average(TOY))
    np.testing.assert_allclose(average(TOY, np.array([1, 1, 1])), average(TOY))  # 0/1 mask


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_shape_errors():
    with pytest.raises(ValueError, match=r"shape \(G, S, I\) or.*got \(4,\)"):
        average(np.ones(4))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\).*got \(2, 4\)"):
        average(np.ones((2, 3, 4)), np.ones((2, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(3,\)"):
        average(np.ones((3, 4)), np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="no candidate items"):
        average(np.ones((2, 3, 0)))


def test_empty_group_is_named():
    mask = np.array([[True, False], [False, False], [False, False]])
    with pytest.raises(ValueError, match=r"group 1 has no real members.*\(and 1 more\)"):
        average(np.ones((3, 2, 4)), mask)
    with pytest.raises(ValueError, match="the group has no real members"):
        borda(np.ones((2, 4)), np.zeros(2, dtype=bool))


def test_non_finite_scores_of_real_members_are_named():
    scores = np.ones((2, 3, 4))
    scores[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"scores\[1, 2, 3\] = nan belongs to a real member"):
        average(scores)
    mask = np.ones((2, 3), dtype=bool)
    mask[1, 2] = False
    np.testing.assert_array_equal(average(scores, mask), np.ones((2, 4)))  # padded: ignored
    with pytest.raises(ValueError, match=r"scores\[1, 0\] = -inf"):
        least_misery(np.array([[0.0, 1.0], [-np.inf, 2.0]]))


def test_multiplicative_rejects_negative_scores():
    scores = np.ones((2, 3, 4))
    scores[0, 2, 1] = -0.5
    with pytest.raises(ValueError, match=r"non-negative.*scores\[0, 2, 1\] = -0.5"):
        multiplicative(scores)
    mask = np.ones((2, 3), dtype=bool)
    mask[0, 2] = False
    np.testing.assert_array_equal(multiplicative(scores, mask), np.ones((2, 4)))


def test_bad_parameters():
    with pytest.raises(ValueError, match="threshold must be a number; got nan"):
        approval(TOY, threshold=float("nan"))
    with pytest.raises(TypeError, match="threshold must be a number"):
        average_without_misery(TOY, threshold="high")
    with pytest.raises(TypeError, match="threshold"):
        aggregate(TOY, None, "approval")
    for k in (0, 5, 2.5, True, None):
        with pytest.raises(ValueError, match=r"k must be an integer between 1 and .* 4"):
            fairness_greedy(TOY, k=k)
    with pytest.raises(ValueError, match="k must be an integer"):
        top_k(average(TOY), 5)
    with pytest.raises(ValueError, match="unknown aggregation rule 'median'.*'average'"):
        aggregate(TOY, None, "median")


def test_bad_dtypes():
    with pytest.raises(ValueError, match="mask must be boolean"):
        average(np.ones((2, 3, 4)), np.ones((2, 3)) * 0.5)
    with pytest.raises(ValueError, match="mask must be boolean"):
        average(np.ones((2, 3, 4)), np.full((2, 3), 2))
    with pytest.raises(TypeError, match="real numbers"):
        average(np.ones((3, 4)) * 1j)
    with pytest.raises(TypeError, match="real numbers"):
        average(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="nan"):
        top_k(np.array([1.0, np.nan]))


# --------------------------------------------------------------------------------------------
# Properties, against exact one-group-at-a-time references
# --------------------------------------------------------------------------------------------


def ref_borda(r: np.ndarray) -> np.ndarray:
    """Borda points by counting: items below, plus half of the other items tied with it."""
    n, n_items = r.shape
    return np.array(
        [
            sum((r[s] < r[s, i]).sum() + ((r[s] == r[s, i]).sum() - 1) / 2 for s in range(n))
            for i in range(n_items)
        ]
    )


def ref_plurality(r: np.ndarray) -> list[int]:
    """Sequential plurality with split votes, counted afresh each round in exact fractions."""
    n, n_items = r.shape
    points = ref_borda(r)
    free, ranking = list(range(n_items)), []
    while free:
        votes = dict.fromkeys(free, Fraction(0))
        for s in range(n):
            best = max(r[s, i] for i in free)
            favourites = [i for i in free if r[s, i] == best]
            for i in favourites:
                votes[i] += Fraction(1, len(favourites))
        choice = max(free, key=lambda i: (votes[i], points[i], -i))
        ranking.append(choice)
        free.remove(choice)
    return ranking


def ref_fairness(r: np.ndarray, k: int) -> list[int]:
    """Greedy max-min list in exact fractions (scores are exact binary floats)."""
    n, n_items = r.shape
    rho = []
    for s in range(n):
        lo, hi = Fraction(r[s].min()), Fraction(r[s].max())
        rho.append([(Fraction(x) - lo) / (hi - lo) if hi > lo else Fraction(1) for x in r[s]])
    C = [Fraction(0)] * n
    free, ranking = list(range(n_items)), []
    for _ in range(k):
        # best by the least-satisfied member's total, then by total relevance, then lowest index
        keys = {
            i: (min(C[s] + rho[s][i] for s in range(n)), sum(rho[s][i] for s in range(n)), -i)
            for i in free
        }
        choice = max(free, key=keys.__getitem__)
        ranking.append(choice)
        free.remove(choice)
        C = [C[s] + rho[s][choice] for s in range(n)]
    return ranking


# Small integers make ties common, which is where rules differ most; quarters keep every value
# an exact binary float, so the references in fractions see exactly the same numbers.
GRID = st.integers(0, 24).map(lambda x: x / 4)
CONTINUOUS = st.floats(0, 10, allow_subnormal=False)


@st.composite
def batches(draw, values=GRID, max_groups=3, max_slots=5, max_items=6):
    """Scores (G, S, I) and a mask (G, S) with at least one real member per group."""
    G = draw(st.integers(1, max_groups))
    S = draw(st.integers(1, max_slots))
    n_items = draw(st.integers(1, max_items))
    r = draw(hnp.arrays(np.float64, (G, S, n_items), elements=values))
    m = draw(hnp.arrays(np.bool_, (G, S)))
    first = draw(st.lists(st.integers(0, S - 1), min_size=G, max_size=G))
    m[np.arange(G), first] = True
    return r, m


def every_rule(scores, mask) -> dict[str, np.ndarray]:
    """Every rule's output; plurality and fairness also as lists. Thresholds sit mid-scale."""
    n_items = np.shape(scores)[-1]
    k = min(3, n_items)
    out = {
        "average": average(scores, mask),
        "least_misery": least_misery(scores, mask),
        "most_pleasure": most_pleasure(scores, mask),
        "multiplicative": multiplicative(scores, mask),
        "average_without_misery": average_without_misery(scores, mask, threshold=2.5),
        "borda": borda(scores, mask),
        "approval": approval(scores, mask, threshold=2.5),
        "plurality": plurality(scores, mask),
        "plurality_list": plurality_list(scores, mask),
        "fairness_greedy": fairness_greedy(scores, mask, k=k),
        "fairness_greedy_list": fairness_greedy_list(scores, mask, k=k),
    }
    return {name: to_numpy(value) for name, value in out.items()}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """Lists and counts must match exactly; sums may differ in the last bits."""
    for name in a:
        if name.endswith("list") or name in ("approval", "borda", "plurality"):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12, err_msg=name)


@settings(max_examples=150, deadline=None)
@given(batches())
def test_rules_match_references_group_by_group(batch):
    r, m = batch
    got = every_rule(r, m)
    for g in range(r.shape[0]):
        x = r[g][m[g]]  # (n, I) the real members only
        k = min(3, x.shape[1])
        np.testing.assert_allclose(got["average"][g], x.mean(0), rtol=1e-12)
        np.testing.assert_array_equal(got["least_misery"][g], x.min(0))
        np.testing.assert_array_equal(got["most_pleasure"][g], x.max(0))
        with np.errstate(divide="ignore"):
            geometric = np.exp(np.log(x).mean(0))
        np.testing.assert_allclose(got["multiplicative"][g], geometric, rtol=1e-12)
        awm = np.where(x.min(0) >= 2.5, x.mean(0), -np.inf)
        np.testing.assert_allclose(got["average_without_misery"][g], awm, rtol=1e-12)
        np.testing.assert_array_equal(got["borda"][g], ref_borda(x))
        np.testing.assert_array_equal(got["approval"][g], (x >= 2.5).sum(0))
        np.testing.assert_array_equal(got["plurality_list"][g], ref_plurality(x))
        np.testing.assert_array_equal(got["fairness_greedy_list"][g], ref_fairness(x, k))


@settings(max_examples=100, deadline=None)
@given(st.one_of(batches(GRID), batches(CONTINUOUS)), st.randoms(use_true_random=False))
def test_member_order_does_not_matter(batch, random):
    r, m = batch
    perm = list(range(r.shape[1]))
    random.shuffle(perm)
    assert_same(every_rule(r, m), every_rule(r[:, perm], m[:, perm]))


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(batches(GRID), batches(CONTINUOUS)),
    st.integers(1, 4),
    st.randoms(use_true_random=False),
)
def test_padding_does_not_change_results(batch, extra, random):
    r, m = batch
    G, S, n_items = r.shape
    garbage = np.array([np.nan, np.inf, -np.inf, -1e300, 1e300, -3.0, 7.0])
    pad_r = garbage[np.arange(G * extra * n_items) % garbage.size].reshape(G, extra, n_items)
    slots = list(range(S + extra))
    random.shuffle(slots)  # padded slots land anywhere, real members keep their order
    order = np.argsort(slots, kind="stable")
    padded_r = np.concatenate([r, pad_r], axis=1)[:, order]
    padded_m = np.concatenate([m, np.zeros((G, extra), dtype=bool)], axis=1)[:, order]
    assert_same(every_rule(r, m), every_rule(padded_r, padded_m))


@settings(max_examples=100, deadline=None)
@given(st.one_of(batches(GRID), batches(CONTINUOUS)))
def test_least_misery_le_geometric_mean_le_average_le_most_pleasure(batch):
    r, m = batch
    lm, gm = least_misery(r, m), multiplicative(r, m)
    am, mp = average(r, m), most_pleasure(r, m)
    slack = 1e-12 * (1 + np.abs(mp))  # the mean of equal values may round above them
    assert np.all(lm <= gm) and np.all(gm <= am + slack)
    assert np.all(lm <= am + slack) and np.all(am <= mp + slack)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 8), elements=GRID))
def test_one_member_group_reproduces_that_members_ranking(x):
    r = x[None, :]  # (S=1, I)
    member = np.argsort(-x, kind="stable")  # the member's ranking, ties by item index
    same_order = np.sign(x[:, None] - x[None, :])  # (I, I) which item the member prefers
    for rule in ("average", "least_misery", "most_pleasure", "multiplicative", "borda"):
        R = RULES[rule](r)
        np.testing.assert_array_equal(np.sign(R[:, None] - R[None, :]), same_order, rule)
        np.testing.assert_array_equal(top_k(R), member, rule)
    n_items = x.size
    np.testing.assert_array_equal(plurality_list(r), member)
    np.testing.assert_array_equal(top_k(plurality(r)), member)
    np.testing.assert_array_equal(fairness_greedy_list(r, k=n_items), member)
    np.testing.assert_array_equal(top_k(fairness_greedy(r, k=min(2, n_items))), member)
    # Exceptions, by design: the threshold rules keep only part of the ranking.
    # Average without misery keeps the order of the items at or above the threshold and
    # excludes the rest, which then tie.
    np.testing.assert_array_equal(
        average_without_misery(r, threshold=2.5), np.where(x >= 2.5, x, -np.inf)
    )
    np.testing.assert_array_equal(average_without_misery(r, threshold=-math.inf), x)
    # Approval only splits approved from not approved.
    np.testing.assert_array_equal(approval(r, threshold=2.5), (x >= 2.5).astype(float))


@settings(max_examples=100, deadline=None)
@given(batches(CONTINUOUS))
def test_lists_are_permutations_and_score_forms_agree(batch):
    r, m = batch
    G, S, n_items = r.shape
    k = min(3, n_items)
    full = plurality_list(r, m)
    np.testing.assert_array_equal(np.sort(full, axis=1), np.tile(np.arange(n_items), (G, 1)))
    np.testing.assert_array_equal(top_k(plurality(r, m)), full)
    np.testing.assert_array_equal(plurality_list(r, m, k=k), full[:, :k])
    np.testing.assert_array_equal(top_k(plurality(r, m, k=k), k), full[:, :k])
    fair = fairness_greedy_list(r, m, k=k)
    assert all(len(set(row)) == k for row in fair.tolist())
    np.testing.assert_array_equal(top_k(fairness_greedy(r, m, k=k), k), fair)
    # Borda hands out 0 + 1 + ... + (I - 1) points per member.
    n = m.sum(1)
    np.testing.assert_allclose(borda(r, m).sum(1), n * n_items * (n_items - 1) / 2)


@settings(max_examples=50, deadline=None)
@given(batches(CONTINUOUS))
def test_float32_follows_float64(batch):
    r, m = batch
    for rule in ("average", "least_misery", "most_pleasure", "multiplicative", "borda"):
        low = RULES[rule](r.astype(np.float32), m)
        assert low.dtype == np.float32
        high = RULES[rule](r.astype(np.float32).astype(float), m)
        np.testing.assert_allclose(low, high, rtol=1e-5, atol=1e-6)  # scores lie in [0, 10]


def test_larger_batch_matches_references():
    # Many rounds of plurality and greedy steps, with ties (ratings) and without (continuous).
    rng = np.random.default_rng(7)
    G, S, n_items = 12, 9, 25
    mask = np.arange(S)[None, :] < rng.integers(1, S + 1, G)[:, None]
    for scores in (rng.integers(1, 6, (G, S, n_items)).astype(float), rng.random((G, S, n_items))):
        ranking = plurality_list(scores, mask)
        fair = fairness_greedy_list(scores, mask, k=8)
        for g in range(G):
            x = scores[g][mask[g]]
            assert ranking[g].tolist() == ref_plurality(x)
            assert fair[g].tolist() == ref_fairness(x, 8)
