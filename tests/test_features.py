"""Tests for grouprec.features: featurizer, TF-IDF, hybrid model, cold-start split, structure scores."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from grouprec import data as D
from grouprec.data import Interactions
from grouprec.evaluation import evaluate
from grouprec.features import (
    ContentRecommender,
    HybridMF,
    HybridRecommender,
    ItemEncoder,
    ItemFeaturizer,
    ItemPoolSampler,
    cold_start_split,
    inverse_document_frequency,
    linear_probe_r2,
    normalise_blocks,
    silhouette_score,
    term_counts,
    tokenize,
)
from grouprec.training import load_checkpoint, read_checkpoint, save_checkpoint

SYNTHETIC = Path(__file__).resolve().parents[1] / "data" / "synthetic_ecommerce"


@pytest.fixture(scope="module")
def synth():
    """The committed synthetic shop, through the standard pipeline of every chapter."""
    ds = D.load_dataset(SYNTHETIC)
    return D.split_validation(D.remove_test_leakage(D.benchmark_clean(ds)), seed=0)


@pytest.fixture(scope="module")
def split(synth):
    return cold_start_split(synth, seed=0)


def tiny_items() -> pd.DataFrame:
    """Three items whose feature matrix is worked out by hand in the tests."""
    return pd.DataFrame(
        {
            "item": [0, 1, 2],
            "category": ["books", "toys", "books"],
            "tags": ["fiction|premium", "puzzles", "fiction"],
            "price": [10.0, 20.0, 40.0],
            "description": ["a red book", "a red kite, a gift", "a book"],
        }
    )


# ---------------------------------------------------------------- text


def test_tokenize_keeps_hyphenated_words_and_drops_punctuation():
    text = "Cast-iron frying pan, for Sunday's baking!"
    assert tokenize(text) == ["cast-iron", "frying", "pan", "for", "sunday's", "baking"]
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize(3.0)


def test_term_counts_and_idf_by_hand():
    docs = [["a", "b", "a"], ["b", "c"], ["b", "zzz"]]
    tf = term_counts(docs, ["a", "b", "c"])  # "zzz" is outside the vocabulary: not counted
    np.testing.assert_array_equal(tf, [[2, 1, 0], [0, 1, 1], [0, 1, 0]])
    idf = inverse_document_frequency(tf)
    # a and c occur in one document of three, b in all three: ln(3/1), ln(3/3) = 0, ln(3/1)
    np.testing.assert_allclose(idf, [np.log(3), 0.0, np.log(3)], rtol=0, atol=1e-15)


def test_idf_rejects_words_found_nowhere():
    with pytest.raises(ValueError, match="occur in no document"):
        inverse_document_frequency(np.array([[1.0, 0.0]]))


# ---------------------------------------------------------------- the featurizer


def test_featurizer_matches_a_hand_computed_matrix():
    fz = ItemFeaturizer(n_price_buckets=2)
    X = fz.fit_transform(tiny_items())
    assert X.dtype == torch.float32 and X.shape == (3, fz.n_features)
    assert fz.feature_names_ == [
        "category=books",
        "category=toys",
        "tag=fiction",
        "tag=premium",
        "tag=puzzles",
        "log_price_z",
        "price_bucket=0 [0.00, 20.00)",
        "price_bucket=1 [20.00, inf)",
        "word=a",
        "word=book",
        "word=gift",
        "word=kite",
        "word=red",
    ]
    z = (np.log([10, 20, 40]) - np.log(20)) / np.log([10, 20, 40]).std()
    # TF-IDF, N = 3: "a" is in every description (idf 0); "book" and "red" in two, the others
    # in one. Rows are then scaled to unit length.
    l2, l3 = np.log(3 / 2), np.log(3)
    tfidf = np.array(
        [
            [0, l2, 0, 0, l2],
            [0, 0, l3, l3, l2],
            [0, l2, 0, 0, 0],
        ]
    )
    tfidf /= np.linalg.norm(tfidf, axis=1, keepdims=True)
    expected = np.concatenate(
        [
            [[1, 0], [0, 1], [1, 0]],
            [[1, 1, 0], [0, 0, 1], [1, 0, 0]],
            z[:, None],
            [[1, 0], [0, 1], [0, 1]],  # the median log price is the bucket edge: 20 goes up
            tfidf,
        ],
        axis=1,
    )
    np.testing.assert_allclose(X.numpy(), expected, rtol=0, atol=1e-6)
    assert {k: (s.start, s.stop) for k, s in fz.blocks_.items()} == {
        "category": (0, 2),
        "tags": (2, 5),
        "price": (5, 8),
        "text": (8, 13),
    }


def test_featurizer_fits_its_statistics_on_fit_items_only():
    items = tiny_items()
    fz = ItemFeaturizer(price="zscore").fit(items, fit_items=[0, 2])
    assert fz.categories_ == ["books"]  # "toys" belongs to item 1 only
    assert fz.tags_ == ["fiction", "premium"]
    assert fz.vocabulary_ == ["a", "book", "red"]
    X = fz.transform(items).numpy()
    z = X[:, fz.blocks_["price"]][:, 0]
    assert abs(z[[0, 2]].mean()) < 1e-6 and abs(z[[0, 2]].std() - 1) < 1e-6
    # Item 1: an unseen category, an unseen tag, and "kite", "a", "gift" -> 2 unseen words.
    assert fz.unknown_ == {"categories": 1, "tags": 1, "words": 2}
    assert X[1, fz.blocks_["category"]].sum() == 0


def test_featurizer_is_deterministic_and_ignores_row_order(synth):
    items = synth.item_features
    X1 = ItemFeaturizer().fit_transform(items)
    shuffled = items.sample(frac=1.0, random_state=0)
    X2 = ItemFeaturizer().fit_transform(shuffled)
    assert torch.equal(X1, X2)
    assert X1.shape[0] == synth.n_items


def test_featurizer_blocks_can_be_chosen():
    fz = ItemFeaturizer(blocks=("text", "category"), price="bucket").fit(tiny_items())
    assert list(fz.blocks_) == ["category", "text"]  # always in the order of BLOCKS
    assert fz.n_features == 2 + 5


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns="tags"), r"lacks the column\(s\) \['tags'\]"),
        (lambda t: t.assign(item=[0, 1, 1]), "exactly once"),
        (lambda t: t.assign(price=[10.0, 0.0, 3.0]), "item 1 has 0.0"),
    ],
)
def test_featurizer_rejects_bad_tables(change, message):
    with pytest.raises(ValueError, match=message):
        ItemFeaturizer().fit(change(tiny_items()))


def test_featurizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="blocks must be distinct names"):
        ItemFeaturizer(blocks=("colour",))
    with pytest.raises(ValueError, match="price must be one of"):
        ItemFeaturizer(price="log")
    with pytest.raises(RuntimeError, match="call fit"):
        ItemFeaturizer().transform(tiny_items())


def test_normalise_blocks_gives_unit_blocks():
    fz = ItemFeaturizer().fit(tiny_items())
    X = normalise_blocks(fz.transform(tiny_items()), fz.blocks_)
    for cols in fz.blocks_.values():
        np.testing.assert_allclose(np.linalg.norm(X[:, cols], axis=1), 1.0, atol=1e-12)


# ---------------------------------------------------------------- the models


def hybrid(n_users=4, n_items=6, n_features=5, **kwargs) -> HybridMF:
    g = torch.Generator().manual_seed(0)
    F = torch.rand(n_items, n_features, generator=g)
    torch.manual_seed(0)
    model = HybridMF(n_users, n_items, n_features, d=3, hidden=(7,), features=F, **kwargs)
    with torch.no_grad():  # non-zero free parts, so that a wrong mask cannot hide
        if model.E is not None:
            model.E.weight.normal_(generator=g)
            model.b.weight.normal_(generator=g)
    return model


def test_item_encoder_shapes():
    enc = ItemEncoder(5, 3, hidden=(8, 4))
    assert enc(torch.zeros(2, 7, 5)).shape == (2, 7, 3)
    assert len([m for m in enc.mlp if isinstance(m, torch.nn.Linear)]) == 3
    assert ItemEncoder(5, 3, hidden=())(torch.zeros(4, 5)).shape == (4, 3)


def test_hybrid_forward_shapes_and_formula_in_float64():
    model = hybrid().double().eval()
    u = torch.tensor([0, 3, 1])
    i = torch.tensor([[0, 5], [2, 2], [4, 1]])
    y = model(u[:, None], i)  # (3, 2)
    assert y.shape == (3, 2) and model(u, i[:, 0]).shape == (3,)
    with torch.no_grad():
        f = model.features[i]  # (3, 2, n_f)
        q = model.encoder(f) + model.E(i)  # every item is known
        beta = model.w_beta(f)[..., 0] + model.b(i)[..., 0]
        expected = (model.P(u)[:, None, :] * q).sum(-1) + beta
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=1e-12)


def test_new_items_are_scored_from_features_alone():
    known = torch.tensor([True, True, True, False, True, False])
    model = hybrid(known=known).eval()
    u, i = torch.tensor([[0], [1]]), torch.tensor([[3, 5, 0], [3, 5, 0]])
    before = model(u, i).detach()
    with torch.no_grad():
        model.E.weight[[3, 5]] += 10.0  # the free parts of the new items must not matter
        model.b.weight[[3, 5]] += 10.0
    after = model(u, i).detach()
    torch.testing.assert_close(after[:, :2], before[:, :2], rtol=0, atol=0)
    q, beta = model.content_vectors(torch.tensor([3, 5]))
    torch.testing.assert_close(
        before[0, :2], (model.P.weight[0] * q).sum(-1) + beta, rtol=0, atol=1e-6
    )
    assert (before[:, 0] != before[:, 1]).all()  # two new items, two different scores


def test_plain_mf_gives_every_new_item_the_same_score():
    known = torch.tensor([True, True, False, False, True, False])
    model = HybridMF(3, 6, 0, d=4, id_dropout=0.0, known=known).eval()
    y = model(torch.arange(3)[:, None], torch.tensor([[2, 3, 5]] * 3)).detach()
    assert torch.equal(y, torch.zeros(3, 3))  # MF knows nothing about them: a three-way tie


def test_id_dropout_acts_in_training_mode_only():
    model = hybrid(id_dropout=1.0)
    u, i = torch.tensor([0, 1, 2]), torch.tensor([1, 4, 4])
    q, beta = model.content_vectors(i)
    content_only = (model.P(u) * q).sum(-1) + beta
    model.train()
    torch.testing.assert_close(model(u, i), content_only, rtol=0, atol=1e-6)
    model.eval()
    assert not torch.allclose(model(u, i), content_only)  # the free parts are back


def test_hybrid_rejects_inconsistent_arguments():
    with pytest.raises(ValueError, match="needs use_ids=True"):
        HybridMF(2, 3, 0, use_ids=False)
    with pytest.raises(ValueError, match="needs item features"):
        HybridMF(2, 3, 0, id_dropout=0.5)
    with pytest.raises(ValueError, match=r"features must have shape .*\(3, 4\)"):
        HybridMF(2, 3, 4, features=torch.zeros(3, 5))
    with pytest.raises(IndexError, match="id 9"):
        hybrid()(torch.tensor([0]), torch.tensor([9]))


def test_hybrid_checkpoint_round_trip(tmp_path):
    model = hybrid(known=torch.tensor([True] * 5 + [False]))
    path = save_checkpoint(model, tmp_path / "hybrid.pt")
    restored = HybridMF(**read_checkpoint(path)["meta"]["config"])
    load_checkpoint(restored, path)
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key  # buffers included


# ---------------------------------------------------------------- negatives from a pool


def test_pool_sampler_draws_pool_items_that_are_not_positives():
    positives = Interactions(np.array([0, 0, 1]), np.array([2, 3, 2]))
    sampler = ItemPoolSampler(positives, n_items=10, pool=np.array([2, 3, 4, 5]))
    rng = np.random.default_rng(0)
    entities = np.repeat([0, 1, 2], 200)
    out = sampler.sample(entities, 3, rng)  # (600, 3)
    assert out.shape == (600, 3)
    assert np.isin(out, [2, 3, 4, 5]).all()
    assert not sampler.is_positive(entities, out).any()
    assert set(np.unique(out[entities == 0])) == {4, 5}
    assert set(np.unique(out[entities == 2])) == {2, 3, 4, 5}


def test_pool_sampler_refuses_an_entity_that_owns_the_pool():
    positives = Interactions(np.array([0, 0]), np.array([1, 2]))
    sampler = ItemPoolSampler(positives, n_items=5, pool=np.array([1, 2]))
    with pytest.raises(ValueError, match="entity 0 has every pool item"):
        sampler.sample(np.array([0]), 1, np.random.default_rng(0))


# ---------------------------------------------------------------- the cold-start split


def _keys(e, i, n_items):
    return np.asarray(e, dtype=np.int64) * n_items + np.asarray(i)


def test_cold_start_split_hides_cold_items_from_training(synth, split):
    n = synth.n_items
    cold, val_cold, test_cold = split.cold_items, split.cold_val_items, split.cold_test_items
    assert len(test_cold) == len(val_cold) == round(0.15 * n)
    assert not np.intersect1d(val_cold, test_cold).size
    assert np.array_equal(np.union1d(split.warm_items, cold), np.arange(n))
    for task in ("user", "group"):
        warm = split.dataset
        assert not np.isin(warm.train(task).item, cold).any()
        assert not np.isin(warm.cases(task, "val").candidates(), cold).any()
        assert not np.isin(warm.cases(task, "test").candidates(), cold).any()
        # Warm training keeps every original training row with a warm item.
        original = synth.train(task)
        assert len(warm.train(task)) == int((~np.isin(original.item, cold)).sum())


def test_cold_cases_cover_every_pair_and_rank_against_their_own_shelf(synth, split):
    n = synth.n_items
    for task in ("user", "group"):
        parts = [synth.train(task), synth.cases(task, "val"), synth.cases(task, "test")]
        e = np.concatenate([p.entity for p in parts])
        i = np.concatenate([p.item for p in parts])
        all_keys = _keys(e, i, n)
        for which, shelf, sources in (
            ("test", split.cold_test_items, 3),
            ("val", split.cold_val_items, 2),  # training and validation pairs only
        ):
            cases = split.cases(task, "cold", which)
            src_e = np.concatenate([p.entity for p in parts[:sources]])
            src_i = np.concatenate([p.item for p in parts[:sources]])
            on_shelf = np.isin(src_i, shelf)
            expected = np.unique(_keys(src_e[on_shelf], src_i[on_shelf], n))
            assert np.array_equal(_keys(cases.entity, cases.item, n), expected)
            neg = cases.negatives
            assert neg.shape == (len(cases), split.n_negatives)
            assert np.isin(neg, shelf).all()
            assert (np.sort(neg, axis=1)[:, 1:] != np.sort(neg, axis=1)[:, :-1]).all()
            # A negative is never an item the entity interacted with in a split the case may see.
            seen = all_keys if which == "test" else np.unique(_keys(src_e, src_i, n))
            assert not np.isin(_keys(cases.entity[:, None], neg, n), seen).any()


def test_cold_start_split_is_deterministic_and_logged(synth, split):
    again = cold_start_split(synth, seed=0)
    other = cold_start_split(synth, seed=1)
    assert np.array_equal(again.cold_test_items, split.cold_test_items)
    assert np.array_equal(
        again.cases("user", "cold").negatives, split.cases("user", "cold").negatives
    )
    assert not np.array_equal(other.cold_test_items, split.cold_test_items)
    log = split.dataset.log_frame()
    assert list(log["step"].tail(2)) == ["cold_start_split", "cold_start_split"]
    assert "cold test" in log["detail"].iloc[-1]


def test_cold_start_validation_does_not_depend_on_the_test_split(synth, split):
    # Fewer test cases change what the test shelves draw, never the validation shelves:
    # selection cannot depend on the test split.
    half = {}
    for task in ("user", "group"):
        test = synth.cases(task, "test")
        keep = np.arange(len(test)) % 2 == 0
        half[f"{task}_test"] = dataclasses.replace(
            test,
            entity=test.entity[keep],
            item=test.item[keep],
            negatives=test.negatives[keep],
            rating=None if test.rating is None else test.rating[keep],
        )
    fewer = dataclasses.replace(synth, **half)
    other = cold_start_split(fewer, seed=0)
    assert len(other.cold_test["group"]) < len(split.cold_test["group"])
    for task in ("user", "group"):
        for mine, theirs in (
            (other.cold_val[task], split.cold_val[task]),
            (other.dataset.cases(task, "val"), split.dataset.cases(task, "val")),
        ):
            assert np.array_equal(mine.entity, theirs.entity)
            assert np.array_equal(mine.item, theirs.item)
            assert np.array_equal(mine.negatives, theirs.negatives)


def test_cold_start_split_rejects_bad_fractions(synth):
    with pytest.raises(ValueError, match="frac must lie in"):
        cold_start_split(synth, frac=0.0)
    with pytest.raises(ValueError, match="at least one must be cold"):
        cold_start_split(synth, frac=0.6, val_frac=0.5)
    with pytest.raises(ValueError, match="fewer than n_negatives=450"):
        cold_start_split(synth, n_negatives=450)


def test_evaluation_dataset_swaps_in_the_cold_cases(split):
    cold = split.evaluation_dataset("cold")
    assert cold.user_test is split.cold_test["user"]
    assert cold.group_val is split.cold_val["group"]
    assert split.evaluation_dataset("warm") is split.dataset
    with pytest.raises(ValueError, match="kind must be"):
        split.cases("user", "lukewarm")


# ---------------------------------------------------------------- the recommenders


def quick(split, **kwargs) -> HybridRecommender:
    params = dict(d=16, n_neg=4, lr=0.01, epochs=12, patience=None, batch_size=512)
    params.update(kwargs)
    return HybridRecommender(new_items=split.cold_items, **params)


@pytest.fixture(scope="module")
def fitted_hybrid(split):
    return quick(split, hidden=()).fit(split.dataset, "user")


def test_hybrid_recommender_scores_cold_items_from_their_features(split, fitted_hybrid):
    cases = split.cases("user", "cold")
    s = fitted_hybrid.score(cases.entity[:50], cases.candidates()[:50])  # (50, 51), cold items
    assert s.shape == (50, 1 + split.n_negatives) and np.isfinite(s).all()
    assert (s.std(axis=1) > 0).all()  # the cold items are told apart ...
    users = np.unique(cases.entity)[:2]
    items = np.broadcast_to(split.cold_test_items[:10], (2, 10))
    pair = fitted_hybrid.score(users, items)
    assert not np.allclose(pair[0], pair[1])  # ... and differently for different users
    chance = evaluate(
        quick(split, use_features=False).fit(split.dataset, "user"),
        split.evaluation_dataset("cold"),
        task="user",
    )["HR@10"].iloc[0]
    assert chance == pytest.approx(10 / (1 + split.n_negatives))  # MF: every cold item ties
    hr = evaluate(fitted_hybrid, split.evaluation_dataset("cold"), task="user")["HR@10"].iloc[0]
    assert hr > 2 * chance  # far above chance on items it never saw in training


def test_hybrid_recommender_is_deterministic_given_the_seed(split, fitted_hybrid):
    cases = split.cases("user", "cold")
    e, c = cases.entity[:40], cases.candidates()[:40]
    again = quick(split, hidden=()).fit(split.dataset, "user")
    np.testing.assert_array_equal(again.score(e, c), fitted_hybrid.score(e, c))
    other = quick(split, hidden=(), seed=1).fit(split.dataset, "user")
    assert not np.array_equal(other.score(e, c), fitted_hybrid.score(e, c))


def test_hybrid_recommender_score_all_agrees_with_score(split, fitted_hybrid):
    users = np.array([0, 7, 42])
    items = np.broadcast_to(np.arange(split.dataset.n_items), (3, split.dataset.n_items))
    np.testing.assert_allclose(
        fitted_hybrid.score_all(users), fitted_hybrid.score(users, items), rtol=0, atol=1e-5
    )


def test_hybrid_recommender_serves_groups(split):
    model = quick(split, epochs=3).fit(split.dataset, "group")
    assert model.model_.P.num_embeddings == split.dataset.n_groups
    cases = split.cases("group", "cold")
    assert model.score(cases.entity, cases.candidates()).shape == (len(cases), 51)


def test_hybrid_recommender_names_and_errors(synth, split):
    assert [
        quick(split, **kw).name for kw in ({}, {"use_ids": False}, {"use_features": False})
    ] == [
        "Hybrid",
        "Features only",
        "MF",
    ]
    with pytest.raises(ValueError, match="which has training interactions"):
        HybridRecommender(new_items=synth.user_train.item[:1], epochs=1).fit(synth, "user")
    no_features = D.load_dataset(SYNTHETIC)
    object.__setattr__(no_features, "item_features", None)
    with pytest.raises(ValueError, match="has no item features"):
        HybridRecommender(epochs=1).fit(no_features, "user")
    with pytest.raises(RuntimeError, match="call fit"):
        HybridRecommender().score(np.array([0]), np.array([[0]]))
    with pytest.raises(ValueError, match="items must lie in"):
        quick(split, epochs=1).fit(split.dataset, "user").score(np.array([0]), np.array([[10**6]]))


def test_content_recommender_is_a_cosine_with_the_profile(split):
    model = ContentRecommender(new_items=split.cold_items).fit(split.dataset, "user")
    X = normalise_blocks(
        model.featurizer_.transform(split.dataset.item_features), model.featurizer_.blocks_
    )
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    u = int(split.dataset.user_train.entity[0])
    history = split.dataset.user_train.item[split.dataset.user_train.entity == u]
    profile = X[np.unique(history)].sum(0)
    items = np.arange(20)
    cos = X[items] @ profile / np.linalg.norm(profile)
    np.testing.assert_allclose(model.score(np.array([u]), items[None, :])[0], cos, atol=1e-12)
    # Its vocabulary comes from the warm items only.
    assert model.featurizer_.n_fit_docs_ == len(split.warm_items)


# ---------------------------------------------------------------- structure scores


def test_silhouette_by_hand():
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    # a_i = 1 for every point; b_i = 10.5, 9.5, 9.5, 10.5; s_i = 1 - a_i / b_i
    expected = np.mean([1 - 1 / 10.5, 1 - 1 / 9.5, 1 - 1 / 9.5, 1 - 1 / 10.5])
    assert silhouette_score(X, np.array([0, 0, 1, 1])) == pytest.approx(expected, abs=1e-12)
    # A point alone in its cluster scores 0.
    lone = silhouette_score(np.array([[0.0], [1.0], [5.0]]), np.array([0, 0, 1]))
    assert lone == pytest.approx((1 - 1 / 5 + 1 - 1 / 4 + 0) / 3, abs=1e-12)


def silhouette_by_definition(X, labels, distance):
    """Rousseeuw's definition, one point at a time: the slow reference."""
    s = []
    for i in range(len(X)):
        same = [j for j in range(len(X)) if labels[j] == labels[i] and j != i]
        if not same:
            s.append(0.0)
            continue
        a = np.mean([distance(X[i], X[j]) for j in same])
        b = min(
            np.mean([distance(X[i], X[j]) for j in range(len(X)) if labels[j] == other])
            for other in set(labels) - {labels[i]}
        )
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_silhouette_agrees_with_its_definition(metric):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)) + np.repeat(np.eye(4)[:3] * 2, [14, 13, 13], axis=0)
    labels = list(np.repeat(["a", "b", "c"], [14, 13, 13]))
    labels[5] = "d"  # a cluster of one point
    distance = {
        "euclidean": lambda x, y: np.linalg.norm(x - y),
        "cosine": lambda x, y: 1 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)),
    }[metric]
    ours = silhouette_score(X, np.array(labels), metric=metric)
    assert ours == pytest.approx(silhouette_by_definition(X, labels, distance), abs=1e-12)


def test_silhouette_rejects_a_single_cluster():
    with pytest.raises(ValueError, match="2 <= clusters"):
        silhouette_score(np.zeros((3, 2)), np.zeros(3))


def test_linear_probe_r2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    A = rng.normal(size=(5, 3))
    fit_rows, eval_rows = np.arange(100), np.arange(100, 200)
    assert linear_probe_r2(X, X @ A + 2.0, fit_rows, eval_rows) == pytest.approx(1.0, abs=1e-12)
    noise = rng.normal(size=(200, 3))
    assert linear_probe_r2(X, noise, fit_rows, eval_rows) < 0.05
    noisy = X @ A + 0.1 * noise  # a little noise: R² a little below 1
    assert 0.95 < linear_probe_r2(X, noisy, fit_rows, eval_rows) < 1.0
