"""Tests for grouprec.explorer: set the widgets' values, read the explorer's result.

The explorer's lists are checked against the rules applied by hand to the base model's scores,
its satisfaction measure against a hand-computed toy, and its attention weights against the
attention model's own.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import grouprec.data as D  # noqa: E402
from grouprec.aggregation import RULES, AGREERecommender, aggregate  # noqa: E402
from grouprec.baselines import EASE  # noqa: E402
from grouprec.explorer import ATTENTION, GroupExplorer, parse_members  # noqa: E402

SYNTHETIC = "data/synthetic_ecommerce"


@pytest.fixture(scope="module")
def shop():
    return D.split_validation(D.load_dataset(SYNTHETIC), seed=0)


@pytest.fixture
def tiny(tiny_dir):
    return D.benchmark_clean(D.load_dataset(tiny_dir))


@pytest.fixture(scope="module")
def agree(shop):
    torch.set_num_threads(1)
    return AGREERecommender(epochs=3, n_neg=2, batch_size=512, device="cpu").fit(shop, "group")


@pytest.fixture
def explorer(shop, tiny, agree):
    models = {
        "synthetic_ecommerce": EASE(lam=100.0).fit(shop, "user"),
        "tiny": EASE().fit(tiny, "user"),
    }
    return GroupExplorer({"synthetic_ecommerce": shop, "tiny": tiny}, models, agree, k=10)


def scaled(scores: np.ndarray) -> np.ndarray:
    lo = scores.min(1, keepdims=True)
    return (scores - lo) / (scores.max(1, keepdims=True) - lo)


def test_starts_on_the_first_group_with_the_average(explorer, shop):
    r = explorer.current_result
    assert r is not None and explorer.current_error is None
    assert (r.dataset, r.group, r.strategy, r.k) == ("synthetic_ecommerce", 0, "average", 10)
    assert r.members.tolist() == shop.members(0).tolist()
    assert list(r.table["rank"]) == list(range(1, 11))
    assert explorer.strategy.options == (*RULES, ATTENTION)


def test_each_rule_lists_what_the_rule_computes_by_hand(explorer, shop):
    explorer.group.value = 11
    ds_members = shop.members(11)
    cand = explorer.candidates("synthetic_ecommerce", ds_members, 11)
    base = explorer.model("synthetic_ecommerce").full(ds_members)[:, cand]  # (n, c)
    rho = scaled(base)
    for rule in ("average", "least_misery", "most_pleasure", "borda"):
        explorer.strategy.value = rule
        r = explorer.current_result
        R = aggregate(rho, None, rule)
        expected = cand[np.argsort(-R, kind="stable")[:10]]
        assert r.table["item"].tolist() == expected.tolist(), rule
        np.testing.assert_allclose(r.table["group score"], np.sort(R)[::-1][:10])
        for j, u in enumerate(ds_members):  # each member's scaled score of each listed item
            np.testing.assert_allclose(r.table[f"u{u}"], rho[j][np.searchsorted(cand, expected)])


def test_slider_and_group_choice_change_the_list(explorer, shop):
    explorer.k_slider.value = 4
    assert len(explorer.current_result.table) == 4
    explorer.group.value = 42
    r = explorer.current_result
    assert r.group == 42 and r.members.tolist() == shop.members(42).tolist()
    assert explorer.members.value == ", ".join(str(u) for u in shop.members(42))
    # Items the group or a member already has are never listed.
    seen = set(shop.group_train.item[shop.group_train.entity == 42])
    for u in shop.members(42):
        seen |= set(shop.user_train.item[shop.user_train.entity == u])
    assert not seen & set(r.table["item"])
    assert {"category", "price", "description", "held out"} <= set(r.table.columns)


def test_composed_groups_and_input_errors(explorer, shop):
    explorer.mode.value = "compose"
    assert explorer.group.disabled and not explorer.members.disabled
    explorer.members.value = "5, 17 5"
    r = explorer.current_result
    assert r.group is None and r.members.tolist() == [5, 17]
    assert "held out" not in r.table.columns
    explorer.members.value = "5, seventeen"
    assert explorer.current_result is None
    assert "'seventeen' is not a user id" in explorer.current_error
    assert "seventeen" in explorer.status.value
    explorer.members.value = "5, 1000"
    assert "user 1000 does not exist" in explorer.current_error
    explorer.members.value = "5"
    assert explorer.current_error is None and explorer.current_result.members.tolist() == [5]


def test_attention_shows_the_models_weights(explorer, shop, agree):
    explorer.group.value = int(np.argmax(shop.group_sizes))
    explorer.strategy.value = ATTENTION
    r = explorer.current_result
    g = r.group
    assert r.say is None and r.attention.shape == (10, len(r.members))
    np.testing.assert_allclose(r.attention.sum(axis=1), 1.0, atol=1e-5)
    items = r.table["item"].to_numpy()
    alpha = agree.attention_weights(np.full(10, g), items)[:, : len(r.members)]  # (10, n)
    np.testing.assert_allclose(r.attention.to_numpy(), alpha, atol=1e-6)
    y = agree.score(np.array([g]), items[None])[0]
    np.testing.assert_allclose(r.table["group score"], y, atol=1e-5)
    assert np.all(np.diff(r.table["group score"]) <= 0)
    fig = explorer.figure(r)
    heights = [p.get_height() for p in fig.axes[1].patches]
    np.testing.assert_allclose(sum(heights), 10.0, atol=1e-4)  # every item's weights sum to 1
    plt.close(fig)


def test_switching_dataset_resets_groups_and_strategies(explorer, tiny):
    explorer.strategy.value = "borda"
    explorer.dataset.value = "tiny"
    assert explorer.strategy.options == tuple(RULES)  # no attention model for this dataset
    assert explorer.strategy.value == "borda"
    assert [v for _, v in explorer.group.options] == list(range(tiny.n_groups))
    # The tiny catalogue has fewer unseen items than K = 10: the error says so.
    assert explorer.current_result is None and "candidates" in explorer.current_error
    explorer.k_slider.value = 1
    assert explorer.current_result is not None and len(explorer.current_result.table) == 1


def test_satisfaction_is_the_share_of_the_members_own_best(explorer):
    rho = np.array([[1.0, 0.5, 0.0, 0.25], [0.0, 0.2, 1.0, 0.6]])
    # List = columns 1 and 3: member 0 gets 0.5 + 0.25 of their best 1 + 0.5,
    # member 1 gets 0.2 + 0.6 of their best 1 + 0.6.
    np.testing.assert_allclose(explorer.satisfaction(rho, np.array([1, 3])), [0.5, 0.5])
    np.testing.assert_allclose(explorer.satisfaction(rho, np.array([0])), [1.0, 0.0])


def test_most_pleasure_fully_satisfies_someone(explorer):
    explorer.strategy.value = "most_pleasure"
    explorer.k_slider.value = 1
    for g in (3, 8, 13):
        explorer.group.value = g
        assert explorer.current_result.satisfaction.max() == pytest.approx(1.0)


def test_least_misery_minimum_is_never_below_the_average_rules(explorer):
    """With K = 1, least misery maximises the worst member's scaled score by construction."""
    explorer.k_slider.value = 1
    for g in (3, 8, 13):
        explorer.group.value = g
        explorer.strategy.value = "least_misery"
        r = explorer.current_result
        lm = r.table[list(r.satisfaction.index)].to_numpy().min()
        explorer.strategy.value = "average"
        r = explorer.current_result
        avg = r.table[list(r.satisfaction.index)].to_numpy().min()
        assert lm >= avg - 1e-12


def test_parse_members_and_bad_arguments(shop, agree):
    assert parse_members(" 3;4 ,3 ", 10).tolist() == [3, 4]
    with pytest.raises(ValueError, match="at least one user id"):
        parse_members("  ", 10)
    with pytest.raises(ValueError, match="has no user-level recommender"):
        GroupExplorer({"synthetic_ecommerce": shop}, {})
    with pytest.raises(ValueError, match="unknown rules"):
        GroupExplorer(
            {"synthetic_ecommerce": shop},
            {"synthetic_ecommerce": EASE().fit(shop, "user")},
            rule_params={"dictator": {}},
        )
    explorer = GroupExplorer({"synthetic_ecommerce": shop}, lambda name, ds: EASE().fit(ds, "user"))
    assert ATTENTION not in explorer.strategy.options  # no attention model given
    with pytest.raises(ValueError, match="not available"):
        explorer.recommend("synthetic_ecommerce", [1, 2], ATTENTION, 5)


def test_draws_only_once_displayed(explorer, capsys):
    capsys.readouterr()
    explorer.strategy.value = "borda"  # not displayed yet: computed, not drawn
    assert explorer.current_result.strategy == "borda"
    assert capsys.readouterr().out == ""
    explorer._ipython_display_()  # what a notebook does with `explorer` as a cell's last line
    explorer.strategy.value = "average"
    drawn = capsys.readouterr().out  # outside a kernel the Output widget passes output through
    assert "group score" in drawn and "Figure" in drawn
