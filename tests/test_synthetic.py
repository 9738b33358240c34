"""Tests for grouprec.synthetic: determinism, ranges, file format, split, the planted rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import spearmanr

from grouprec import synthetic as S
from grouprec.__main__ import main
from grouprec.data import load_dataset
from grouprec.synthetic import files

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "data" / "synthetic_ecommerce"
SMALL = {"n_users": 200, "n_items": 240, "n_groups": 60, "n_categories": 6, "dim": 8}


@pytest.fixture(scope="module")
def small() -> S.SyntheticData:
    return S.generate_ecommerce(**SMALL, seed=3)


@pytest.fixture(scope="module")
def small_dir(small, tmp_path_factory) -> Path:
    return S.write_ecommerce(small, tmp_path_factory.mktemp("synthetic") / "small")


@pytest.fixture(scope="module")
def by_rule() -> dict[str, S.SyntheticData]:
    """The default-size dataset under every rule, same seed (paired comparisons)."""
    return {rule: S.generate_ecommerce(rule=rule, seed=0) for rule in S.RULES}


def _read_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in S.FILES}


def _pairs(frame, key: str) -> set[tuple[int, int]]:
    return set(zip(frame[key].tolist(), frame["item"].tolist(), strict=True))


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = S.write_ecommerce(S.generate_ecommerce(**SMALL, seed=11), tmp_path / "a")
    b = S.write_ecommerce(S.generate_ecommerce(**SMALL, seed=11), tmp_path / "b")
    c = S.write_ecommerce(S.generate_ecommerce(**SMALL, seed=12), tmp_path / "c")
    assert sorted(p.name for p in a.iterdir()) == sorted(S.FILES)
    assert _read_bytes(a) == _read_bytes(b)
    different = [n for n in S.FILES if (a / n).read_bytes() != (c / n).read_bytes()]
    assert set(different) == set(S.FILES)


def test_changing_the_rule_changes_only_group_choices(tmp_path):
    a = _read_bytes(S.write_ecommerce(S.generate_ecommerce(**SMALL, seed=5), tmp_path / "a"))
    b = _read_bytes(
        S.write_ecommerce(
            S.generate_ecommerce(**SMALL, seed=5, rule="least_misery"), tmp_path / "b"
        )
    )
    same = {n for n in S.FILES if a[n] == b[n]}
    assert same == {
        "groupMember.txt",
        "userRatingTrain.txt",
        "userRatingTest.txt",
        "userRatingNegative.txt",
        "itemAttributes.tsv",
        "userBrowse.txt",
    }


# ------------------------------------------------------------------------------ contents


def test_latent_shapes_and_utility_formula(small):
    U, n_items, K, d = (SMALL[k] for k in ("n_users", "n_items", "n_categories", "dim"))
    assert small.p.shape == (U, d) and small.q.shape == (n_items, d) and small.mu.shape == (K, d)
    assert small.b.shape == small.xi.shape == (n_items,)
    assert small.lam.shape == (U,) and (small.lam > 0).all()
    assert small.categories == tuple(S.CATALOGUE)[:K]
    r = small.utility()
    assert r.shape == (U, n_items)
    u, i = 17, 101
    by_hand = small.p[u] @ small.q[i] / np.sqrt(d) + small.b[i] - small.lam[u] * small.xi[i]
    assert r[u, i] == pytest.approx(by_hand, abs=1e-12)
    np.testing.assert_allclose(small.utility(np.array([u, 3])), r[[u, 3]])


def test_items_have_category_tags_price_and_description(small):
    items = small.items
    assert list(items.columns) == ["item", "category", "tags", "price", "description"]
    assert items["item"].tolist() == list(range(small.n_items))
    assert set(items["category"]) <= set(small.categories)
    assert (items["price"] > 0).all()
    np.testing.assert_allclose(items["price"], items["price"].round(2))
    derived = {"premium", "budget", "bestseller"}
    for category, tags, text in items[["category", "tags", "description"]].itertuples(index=False):
        tag_list = tags.split("|")
        assert 1 <= len(tag_list) <= 4 and len(set(tag_list)) == len(tag_list)
        own = [t for t in tag_list if t not in derived]
        assert 1 <= len(own) <= 3 and set(own) <= set(S.CATALOGUE[category]["tags"])
        assert len(tag_list) - len(own) <= 1
        assert 5 <= len(text.split()) <= 12
        assert any(noun in text for noun in S.CATALOGUE[category]["nouns"])
    # The price tags follow the price within the category.
    xi = small.xi
    premium = items["tags"].str.contains("premium").to_numpy()
    budget = items["tags"].str.contains("budget").to_numpy()
    assert premium.any() and budget.any() and xi[premium].min() > xi[budget].max()


def test_item_text_carries_signal_beyond_the_category():
    data = S.generate_ecommerce(n_users=50, n_items=2000, n_groups=5, seed=1)
    delta = (data.q - data.mu[data.items["category"].map(data.categories.index)]) / S.SIGMA_Q
    delta /= np.linalg.norm(delta, axis=1, keepdims=True)
    same_cat = data.items["category"].to_numpy()[:, None] == data.items["category"].to_numpy()
    first_tag = data.items["tags"].str.split("|").str[0].to_numpy()
    same_tag = first_tag[:, None] == first_tag[None, :]
    off_diag = ~np.eye(data.n_items, dtype=bool)
    cos = delta @ delta.T
    with_tag = cos[same_cat & same_tag & off_diag].mean()
    without = cos[same_cat & ~same_tag].mean()
    assert with_tag > without + 0.07, (with_tag, without)


def test_behaviour_browse_purchase_rating(small):
    browse, purchases = small.browse, small.purchases
    assert not browse.duplicated(["user", "item"]).any()
    assert _pairs(purchases, "user") <= _pairs(browse, "user")
    n_browse = np.bincount(browse["user"], minlength=small.n_users)
    n_buy = np.bincount(purchases["user"], minlength=small.n_users)
    assert (n_buy >= 1).all() and (n_buy <= n_browse).all()
    assert set(purchases["rating"].unique()) == {1, 2, 3, 4, 5}
    # Purchases are the browsed items of largest utility.
    r = small.utility()
    bought = np.zeros_like(r, dtype=bool)
    bought[purchases["user"], purchases["item"]] = True
    seen = np.zeros_like(r, dtype=bool)
    seen[browse["user"], browse["item"]] = True
    worst_bought = np.where(bought, r, np.inf).min(axis=1)
    best_skipped = np.where(seen & ~bought, r, -np.inf).max(axis=1)
    assert (worst_bought > best_skipped).all()
    rho = spearmanr(purchases["rating"], r[purchases["user"], purchases["item"]]).statistic
    assert rho > 0.5


def test_groups_households_and_friends(small):
    sizes = np.array([len(m) for m in small.group_members])
    household = small.group_kind == "household"
    assert household.sum() == round(0.5 * small.n_groups)
    assert set(sizes[household]) <= {2, 3, 4} and set(sizes[~household]) <= set(range(3, 9))
    for m, w in zip(small.group_members, small.group_weights, strict=True):
        assert len(np.unique(m)) == len(m) and m.max() < small.n_users
        assert len(w) == len(m) and (w > 0).all() and w.sum() == pytest.approx(1.0)
    in_households = np.concatenate(
        [m for m, h in zip(small.group_members, household, strict=True) if h]
    )
    assert len(np.unique(in_households)) == len(in_households)  # households are disjoint


def test_groups_are_homophilous(by_rule):
    data = by_rule["average"]
    p_hat = data.p / np.linalg.norm(data.p, axis=1, keepdims=True)
    cos = p_hat @ p_hat.T

    def mean_within(kind: str) -> float:
        values = [
            cos[np.ix_(m, m)][np.triu_indices(len(m), 1)].mean()
            for m, k in zip(data.group_members, data.group_kind, strict=True)
            if k == kind
        ]
        return float(np.mean(values))

    random_pairs = cos[np.triu_indices(data.n_users, 1)].mean()
    assert mean_within("friends") > mean_within("household") > random_pairs + 0.05


# ------------------------------------------------------------------------------ aggregation


def test_aggregate_rules_on_a_hand_computed_case():
    # One group of two real members (and a padded slot holding junk), three items.
    r = np.array([[[1.0, 4.0, 2.0], [3.0, 0.0, 2.0], [99.0, 99.0, 99.0]]])  # (1, 3, 3)
    mask = np.array([[True, True, False]])
    w = np.array([[0.25, 0.75, 0.0]])
    np.testing.assert_allclose(S.aggregate(r, mask, "average"), [[2.0, 2.0, 2.0]])
    np.testing.assert_allclose(S.aggregate(r, mask, "least_misery"), [[1.0, 0.0, 2.0]])
    np.testing.assert_allclose(S.aggregate(r, mask, "most_pleasure"), [[3.0, 4.0, 2.0]])
    np.testing.assert_allclose(S.aggregate(r, mask, "weighted", w), [[2.5, 1.0, 2.0]])
    with pytest.raises(ValueError, match="weights"):
        S.aggregate(r, mask, "weighted")
    with pytest.raises(ValueError, match="rule"):
        S.aggregate(r, mask, "median")


def test_group_utility_matches_members_utilities(small):
    g = 7
    r = small.utility(small.group_members[g])  # (S, I)
    w = small.group_weights[g]
    np.testing.assert_allclose(small.group_utility("average")[g], r.mean(axis=0))
    np.testing.assert_allclose(small.group_utility("least_misery")[g], r.min(axis=0))
    np.testing.assert_allclose(small.group_utility("most_pleasure")[g], r.max(axis=0))
    np.testing.assert_allclose(small.group_utility("weighted")[g], w @ r)
    with pytest.raises(ValueError, match="weights"):
        small.group_utility("weighted", weights=small.group_weights[:-1])


def _choice_log_likelihood(data: S.SyntheticData, R: np.ndarray) -> float:
    """Mean Plackett-Luce log-likelihood of the ordered group choices under utilities R."""
    s = R / data.args["group_temperature"]  # (G, I)
    available = np.ones_like(s, dtype=bool)
    total = 0.0
    choices = data.group_choices
    for k in range(int(choices["order"].max()) + 1):
        step = choices[choices["order"] == k]
        g, i = step["group"].to_numpy(), step["item"].to_numpy()
        total += (s[g, i] - logsumexp(np.where(available[g], s[g], -np.inf), axis=1)).sum()
        available[g, i] = False
    return total / len(choices)


def test_planted_rule_drives_group_choices(by_rule):
    def chosen(rule: str, under: str) -> float:
        data = by_rule[rule]
        R = data.group_utility(under)
        return float(R[data.group_choices["group"], data.group_choices["item"]].mean())

    # Least misery picks items whose least happy member is happier than under averaging ...
    assert chosen("least_misery", "least_misery") > chosen("average", "least_misery") + 0.1
    # ... at the price of a lower average; most pleasure picks items someone loves.
    assert chosen("average", "average") > chosen("least_misery", "average") + 0.05
    assert chosen("most_pleasure", "most_pleasure") > chosen("average", "most_pleasure") + 0.1


def test_planted_rule_is_the_most_likely_explanation(by_rule):
    for rule, data in by_rule.items():
        loglik = {cand: _choice_log_likelihood(data, data.group_utility(cand)) for cand in S.RULES}
        assert max(loglik, key=loglik.get) == rule, (rule, loglik)
    data = by_rule["weighted"]
    rng = np.random.default_rng(0)
    wrong = tuple(rng.dirichlet(np.ones(len(m))) for m in data.group_members)
    true_ll = _choice_log_likelihood(data, data.group_utility("weighted"))
    assert true_ll > _choice_log_likelihood(data, data.group_utility("weighted", wrong)) + 0.1


def test_true_utility_ranks_held_out_items_high(by_rule):
    data = by_rule["weighted"]

    def hit_rate(scores, test, negatives) -> float:
        candidates = np.concatenate([test["item"].to_numpy()[:, None], negatives], axis=1)
        s = np.take_along_axis(scores, candidates, axis=1)
        rank = (s[:, 1:] > s[:, :1]).sum(axis=1)
        return float((rank < 10).mean())

    users = data.user_test["entity"].to_numpy()
    groups = data.group_test["entity"].to_numpy()
    # A random ranking hits 10 / 101 of the time.
    assert hit_rate(data.utility(users), data.user_test, data.user_negatives) > 0.8
    assert hit_rate(data.group_utility()[groups], data.group_test, data.group_negatives) > 0.7


# ------------------------------------------------------------------------------ split and files


def test_split_holds_out_one_positive_per_eligible_entity(small):
    n_buy = np.bincount(small.purchases["user"], minlength=small.n_users)
    assert small.user_test["entity"].tolist() == np.flatnonzero(n_buy >= 3).tolist()
    assert small.group_test["entity"].tolist() == list(range(small.n_groups))
    assert _pairs(small.user_test, "entity") <= _pairs(small.purchases, "user")
    assert _pairs(small.group_test, "entity") <= _pairs(small.group_choices, "group")
    assert not _pairs(small.user_test, "entity") & _pairs(small.user_train, "user")
    assert len(small.user_train) + len(small.user_test) == len(small.purchases)
    assert len(small.group_train) + len(small.group_test) == len(small.group_choices)
    assert set(small.group_train["group"]) == set(range(small.n_groups))
    assert len(small.browse_train) == len(small.browse) - len(small.user_test)


def test_files_follow_the_benchmark_format(small_dir):
    patterns = {
        "groupMember.txt": r"\d+ \d+(,\d+)+",
        "userRatingTrain.txt": r"\d+ \d+ [1-5]",
        "userRatingTest.txt": r"\d+ \d+ [1-5]",
        "groupRatingTrain.txt": r"\d+ \d+ [1-5]",
        "groupRatingTest.txt": r"\d+ \d+ [1-5]",
        "userRatingNegative.txt": r"\(\d+,\d+\)( \d+){100}",
        "groupRatingNegative.txt": r"\(\d+,\d+\)( \d+){100}",
        "userBrowse.txt": r"\d+ \d+",
        "itemAttributes.tsv": r"\d+\t[a-z]+\t[a-z|-]+\t\d+\.\d\d\t[^\t]+",
    }
    for name, pattern in patterns.items():
        raw = (small_dir / name).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw, name
        lines = raw.decode("utf-8").split("\n")[:-1]
        first = 2 if name.endswith(".tsv") else 1  # the .tsv file starts with a header
        for lineno, line in enumerate(lines[first - 1 :], start=first):
            assert re.fullmatch(pattern, line), f"{name}, line {lineno}: {line[:80]!r}"
    header = (small_dir / "itemAttributes.tsv").read_text().split("\n", 1)[0]
    assert header == "item\tcategory\ttags\tprice\tdescription"
    lines = (small_dir / "groupMember.txt").read_text().splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(60))


def test_files_load_with_the_data_stage(small, small_dir):
    ds = load_dataset(small_dir)
    assert (ds.n_users, ds.n_items, ds.n_groups) == (small.n_users, small.n_items, small.n_groups)
    for g in range(small.n_groups):
        np.testing.assert_array_equal(ds.members(g), small.group_members[g])
    train = small.user_train.sort_values(["user", "item"])
    np.testing.assert_array_equal(ds.user_train.entity, train["user"])
    np.testing.assert_array_equal(ds.user_train.item, train["item"])
    np.testing.assert_array_equal(ds.user_train.rating, train["rating"])
    assert len(ds.group_train) == len(small.group_train)
    np.testing.assert_array_equal(ds.user_test.item, small.user_test["item"])
    np.testing.assert_array_equal(ds.user_test.negatives, small.user_negatives)
    np.testing.assert_array_equal(ds.group_test.negatives, small.group_negatives)
    assert ds.item_features is not None
    assert ds.item_features["description"].tolist() == small.items["description"].tolist()
    np.testing.assert_allclose(ds.item_features["price"], small.items["price"])
    record = json.loads((small_dir / "groupRule.json").read_text())
    assert record["rule"] == "weighted" and record["generator"]["arguments"] == small.args
    for row, m, w in zip(
        record["member_weights"], small.group_members, small.group_weights, strict=True
    ):
        assert row["members"] == m.tolist() and row["weights"] == w.tolist()


def test_negatives_are_distinct_and_never_interacted(small_dir):
    ds = load_dataset(small_dir)
    browse = np.loadtxt(small_dir / "userBrowse.txt", dtype=np.int64)
    user_pos = {
        "user": set(zip(browse[:, 0].tolist(), browse[:, 1].tolist(), strict=True))
        | set(zip(ds.user_train.entity.tolist(), ds.user_train.item.tolist(), strict=True)),
        "group": set(
            zip(ds.group_train.entity.tolist(), ds.group_train.item.tolist(), strict=True)
        ),
    }
    for task in ("user", "group"):
        cases = ds.cases(task, "test")
        assert cases.negatives.shape == (len(cases), 100)
        assert all(len(set(row)) == 100 for row in cases.negatives.tolist())
        assert not (cases.negatives == cases.item[:, None]).any()
        for e, row in zip(cases.entity.tolist(), cases.negatives.tolist(), strict=True):
            assert not {(e, i) for i in row} & user_pos[task]
    # Held-out purchases are absent from the browse file (they would reveal the answer) ...
    test_pairs = set(zip(ds.user_test.entity.tolist(), ds.user_test.item.tolist(), strict=True))
    assert not test_pairs & user_pos["user"]
    # ... while every training purchase was browsed.
    train_pairs = set(zip(ds.user_train.entity.tolist(), ds.user_train.item.tolist(), strict=True))
    assert train_pairs <= set(zip(browse[:, 0].tolist(), browse[:, 1].tolist(), strict=True))


# ------------------------------------------------------------------------------ writing


def test_write_refuses_a_foreign_folder(tmp_path, small):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="groupRule.json"):
        S.write_ecommerce(small, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_write_replaces_an_earlier_output_atomically(tmp_path, small, monkeypatch):
    folder = S.write_ecommerce(S.generate_ecommerce(**SMALL, seed=1), tmp_path / "out")
    before = _read_bytes(folder)
    # A failure after some files are written leaves the earlier output intact, and no debris.
    monkeypatch.setattr(files, "FILES", (*S.FILES, "not_produced.txt"))  # where it is read
    with pytest.raises(KeyError):
        S.write_ecommerce(small, folder)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert _read_bytes(folder) == before
    S.write_ecommerce(small, folder)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert _read_bytes(folder) != before
    assert (
        json.loads((folder / "groupRule.json").read_text())["generator"]["arguments"]["seed"] == 3
    )


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_users": 5}, "n_users"),
        ({"n_users": 100.5}, "n_users"),
        ({"n_users": True}, "n_users"),
        ({"n_items": 150}, "n_items"),
        ({"n_groups": 0}, "n_groups"),
        ({"n_categories": 0}, "n_categories"),
        ({"n_categories": len(S.CATALOGUE) + 1}, "n_categories"),
        ({"dim": 1}, "dim"),
        ({"rule": "median"}, "rule"),
        ({"household_share": 1.5}, "household_share"),
        ({"household_share": float("nan")}, "household_share"),
        ({"group_temperature": 0.0}, "group_temperature"),
        ({"seed": -1}, "seed"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        S.generate_ecommerce(**{**SMALL, **kwargs})


def test_too_many_households_for_the_users():
    with pytest.raises(ValueError, match=r"n_groups=60 with household_share=1.0 .* n_users=40"):
        S.generate_ecommerce(**{**SMALL, "n_users": 40, "household_share": 1.0})


def test_regenerate_needs_a_rule_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="groupRule.json"):
        S.regenerate(tmp_path)


# ------------------------------------------------------------- CLI and the copy in data/


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["synthetic", str(out), "--seed", "4", "--rule", "least_misery", "--n-users", "100"]
    argv += ["--n-items", "210", "--n-groups", "20", "--n-categories", "3", "--dim", "4"]
    assert main(argv) == 0
    assert "20 groups (rule least_misery)" in capsys.readouterr().out
    record = json.loads((out / "groupRule.json").read_text())
    assert record["rule"] == "least_misery" and "member_weights" not in record
    expected = S.generate_ecommerce(
        n_users=100, n_items=210, n_groups=20, n_categories=3, dim=4, rule="least_misery", seed=4
    )
    assert record["generator"]["arguments"] == expected.args
    assert main(["synthetic", str(tmp_path / "bad"), "--n-items", "50"]) == 2
    assert "n_items must be >= 202, got 50" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_committed_copy_is_up_to_date(tmp_path):
    if not COMMITTED.is_dir():
        pytest.fail(f"{COMMITTED} is missing; regenerate it with the command in data/README.md")
    data = S.regenerate(COMMITTED)
    fresh = S.write_ecommerce(data, tmp_path / "fresh")
    assert _read_bytes(fresh) == _read_bytes(COMMITTED)
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(S.FILES)
    assert sum(p.stat().st_size for p in COMMITTED.iterdir()) < 2_000_000
    command = json.loads((COMMITTED / "groupRule.json").read_text())["generator"]["command"]
    readme = (REPO / "data" / "README.md").read_text()
    assert command.replace("OUTDIR", "data/synthetic_ecommerce") in readme
