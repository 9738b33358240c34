"""The one evaluation protocol: training never depends on the test file, every model family is
selected and early-stopped on the same validation candidates, and the corrected reading drops
what it says it drops."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from grouprec import case_study as CS
from grouprec import data as D
from grouprec import protocol as P
from grouprec import training as T
from grouprec.baselines import Popularity
from grouprec.evaluation import ConsumedFilter, evaluate


@pytest.fixture(scope="module")
def shop_raw(tmp_path_factory):
    from grouprec import synthetic

    folder = tmp_path_factory.mktemp("shop") / "shop"
    data = synthetic.generate_ecommerce(n_users=200, n_items=240, n_groups=80, seed=3)
    return D.load_dataset(synthetic.write_ecommerce(data, folder))


def scrambled_test(dataset: D.GroupDataset, seed: int = 9) -> D.GroupDataset:
    """``dataset`` with other test cases: other items (half of them training pairs of their
    entity) and other negatives, for both tasks."""
    rng = np.random.default_rng(seed)
    changes = {}
    for task in ("user", "group"):
        test = dataset.cases(task, "test")
        train = dataset.train(task)
        items = rng.integers(dataset.n_items, size=len(test))
        for row, e in enumerate(test.entity[::2]):
            mine = train.item[train.entity == e]
            if len(mine):
                items[2 * row] = mine[0]
        negatives = rng.integers(dataset.n_items, size=test.negatives.shape)
        changes[f"{task}_test"] = replace(test, item=items, negatives=negatives)
    return replace(dataset, **changes)


def same_training(a: D.GroupDataset, b: D.GroupDataset) -> None:
    for task in ("user", "group"):
        for field in ("entity", "item", "rating"):
            np.testing.assert_array_equal(
                getattr(a.train(task), field), getattr(b.train(task), field)
            )
        if getattr(a, f"{task}_val") is not None:
            for field in ("entity", "item", "negatives"):
                np.testing.assert_array_equal(
                    getattr(a.cases(task, "val"), field), getattr(b.cases(task, "val"), field)
                )


def test_training_and_validation_never_read_the_test_file(shop_raw):
    other = scrambled_test(shop_raw)
    same_training(P.training_data(shop_raw), P.training_data(other))
    for seed in (0, 1):
        same_training(
            P.validation_data(P.training_data(shop_raw), seed),
            P.validation_data(P.training_data(other), seed),
        )
    # the pipeline of earlier chapters did read it: removing leaked pairs changes training
    a, b = D.remove_test_leakage(shop_raw), D.remove_test_leakage(other)
    assert len(a.group_train) != len(b.group_train)


def test_case_study_selection_and_refit_do_not_depend_on_the_test_file(shop_raw):
    """Scrambling the test cases changes test metrics only: the same hyperparameters, refit
    epochs and fitted models come out."""
    run = dict(seeds=(0,), quick=True, progress=False, models=["EASE", "AGREE"])
    a = CS.run_case_study(shop_raw, **run)
    b = CS.run_case_study(scrambled_test(shop_raw), **run)
    cols = ["model", "reading", "params", "refit_epochs"]
    assert a.per_seed[cols].equals(b.per_seed[cols])
    users = np.arange(shop_raw.n_groups)
    for name in run["models"]:
        np.testing.assert_array_equal(
            a.models[name].score_all(users), b.models[name].score_all(users)
        )
    assert not np.allclose(a.table["HR@10"].to_numpy(), b.table["HR@10"].to_numpy())


def test_every_neural_family_stops_early_on_the_same_validation_candidates(shop_raw, monkeypatch):
    """MF-BPR, AGREE, the consensus model and CFGAN hand the training loop the protocol's validation cases of the
    group task, and CFGAN ranks them unfiltered, as select() ranks every model."""
    seen = []
    original = T.ranking_val_fn

    def spy(cases, *args, **kwargs):
        seen.append(cases)
        return original(cases, *args, **kwargs)

    # Wherever a model module imported the validation function, the spy replaces it.
    for name, module in list(sys.modules.items()):
        if name.startswith("grouprec") and getattr(module, "ranking_val_fn", None) is original:
            monkeypatch.setattr(module, "ranking_val_fn", spy)
    ds = P.validation_data(P.training_data(shop_raw), seed=0)
    specs = {s.name: s for s in CS.model_specs(quick=True)}
    neural = [s.name for s in specs.values() if s.neural]
    assert neural == ["MF-BPR", "AGREE", "Consensus", "CFGAN"]
    for name in neural:
        model = specs[name].factory(seed=0).fit(ds, "group")
        assert model.history_.best_epoch is not None, name  # it stopped on validation
        if name == "CFGAN":
            assert not model.filter_consumed
    assert len(seen) == len(neural)

    def rows(cases):  # the cases as sorted rows (entity, item, negatives...): order aside
        table = np.column_stack([cases.entity, cases.item, cases.negatives])
        return table[np.lexsort(table.T[::-1])]

    for cases in seen:
        np.testing.assert_array_equal(rows(cases), rows(ds.group_val))


def test_validation_is_drawn_like_the_published_test(shop_raw):
    """Held-out pairs leave training; negatives come from every item but the held-out one, so
    some are items the entity consumed, as in the benchmark's lists."""
    train = P.training_data(shop_raw)
    ds = P.validation_data(train, seed=0)
    val = ds.group_val
    keys = val.as_interactions().keys(ds.n_items)
    assert not np.isin(keys, ds.group_train.keys(ds.n_items)).any()
    assert (val.negatives != val.item[:, None]).all()
    consumed = ds.train_matrix("group").tocsr()
    hits = np.asarray(consumed[val.entity[:, None], val.negatives].todense()) > 0
    assert hits.any()


def test_corrected_reading_drops_seen_pairs_and_filters_consumed_items(shop_raw):
    train = P.training_data(shop_raw)
    test = train.group_test
    # plant: make the first five test cases training pairs of their group
    items = test.item.copy()
    for row in range(5):
        g = test.entity[row]
        items[row] = train.group_train.item[train.group_train.entity == g][0]
    planted = replace(train, group_test=replace(test, item=items))
    seen = D.seen_test_cases(planted, "group")
    assert seen[:5].all() and seen.sum() >= 5
    kept = D.drop_seen_test_cases(planted, ("group",))
    assert len(kept.group_test) == len(test) - seen.sum()
    assert kept.log[-1]["step"] == "drop_seen_test_cases"
    assert f"{int(seen.sum())} test cases" in kept.log[-1]["detail"]
    same_training(kept, planted)  # training untouched
    model = Popularity().fit(planted, "group")
    got = P.evaluate_reading(model, planted, P.CORRECTED)
    want = evaluate(ConsumedFilter.wrap(model, planted, "group"), kept, "group", "test").iloc[0]
    for m in ("HR@5", "NDCG@5", "HR@10", "NDCG@10"):
        assert got[m] == pytest.approx(want[m])
    assert got["cases"] == len(kept.group_test) and got["dropped"] == seen.sum()
    plain = P.evaluate_reading(model, planted, P.AS_PUBLISHED)
    assert plain["cases"] == len(test) and plain["dropped"] == 0
    assert P.under_reading(model, planted, P.AS_PUBLISHED) is model


def test_under_reading_uses_a_gans_own_switch(shop_raw):
    ds = P.validation_data(P.training_data(shop_raw), seed=0)
    gan = [s for s in CS.model_specs(quick=True) if s.name == "CFGAN"][0]
    model = gan.factory(epochs=1).fit(ds, "group")
    filtered = P.under_reading(model, ds, P.CORRECTED)
    plain = P.under_reading(model, ds, P.AS_PUBLISHED)
    assert filtered.filter_consumed and not plain.filter_consumed
    assert filtered.G_ is model.G_ is plain.G_  # the same fitted network, no refit
    assert isinstance(
        P.under_reading(Popularity().fit(ds, "group"), ds, P.CORRECTED), ConsumedFilter
    )


def test_camra2011_corrected_reading_drops_the_571_seen_group_pairs(camra):
    train = P.training_data(camra)
    assert int(D.seen_test_cases(train, "group").sum()) == 571
    assert len(train.group_test) == 1450
    same_training(train, P.training_data(scrambled_test(camra)))
