"""Tests for the case study and its command line."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from grouprec import case_study as CS
from grouprec import data as D
from grouprec.__main__ import main
from grouprec.baselines import ItemKNN, Popularity
from grouprec.evaluation import ConsumedFilter, evaluate
from grouprec.training import History


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    from grouprec import synthetic

    folder = tmp_path_factory.mktemp("shop") / "shop"
    data = synthetic.generate_ecommerce(n_users=200, n_items=240, n_groups=80, seed=3)
    return synthetic.write_ecommerce(data, folder)


def test_quick_end_to_end_on_synthetic_data(shop_dir, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(
        [
            "case-study",
            "--dataset",
            str(shop_dir),
            "--quick",
            "--seeds",
            "0",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "group task, shop" in printed
    assert "the same models without the filter" in printed
    assert "against the published goal (tie-aware, mean of 3 seeds), with the filter" in printed
    assert "against the published goal (tie-aware, mean of 3 seeds), without the filter" in printed
    assert "seconds per model" in printed and "total time" in printed
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "shop"
    names = ["Popularity", "ItemKNN", "EASE", "MF-BPR", "AGREE", "CFGAN"]
    assert [r["model"] for r in doc["results"]] == names
    assert [r["model"] for r in doc["results_without_filter"]] == names
    assert list(doc["seconds_per_model"]) == names and doc["total_seconds"] > 0
    selected = {row["model"]: row for row in doc["selected"]}
    assert [row["model"] for row in doc["selected"]] == names  # one seed: one row each
    assert selected["EASE"]["params"]["lam"] == 1000.0 and selected["EASE"]["refit_epochs"] is None
    assert 1 <= selected["AGREE"]["refit_epochs"] <= 4  # its best epoch of at most 4
    assert all(isinstance(row["filter_consumed"], bool) for row in doc["selected"])
    for row in doc["results"] + doc["results_without_filter"]:
        assert set(row) == {"model", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "train_seconds"}
        assert 0.0 <= row["NDCG@5"] <= row["HR@5"] <= row["HR@10"] <= 1.0


def test_case_study_is_deterministic(shop_dir):
    a = CS.run_case_study(shop_dir, seeds=(1,), quick=True, progress=False, models=["ItemKNN"])
    b = CS.run_case_study(shop_dir, seeds=(1,), quick=True, progress=False, models=["ItemKNN"])
    np.testing.assert_array_equal(
        a.table[list(CS.METRICS)].to_numpy(), b.table[list(CS.METRICS)].to_numpy()
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["case-study"], "the following arguments are required: --dataset"),
        (["case-study", "--dataset", "x", "--seeds", "a"], "invalid int value: 'a'"),
        (["case-study", "--dataset", "x", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_model_and_dataset(shop_dir, tmp_path, capsys):
    assert main(["case-study", "--dataset", str(shop_dir), "--models", "Nope"]) == 2
    assert "unknown models ['Nope']" in capsys.readouterr().err
    assert main(["case-study", "--dataset", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "dataset 'nope' not found" in capsys.readouterr().err


def _with_consumed_negatives(dataset: D.GroupDataset) -> D.GroupDataset:
    """``dataset`` with each group test case's first negative replaced by one of the group's
    training items, as about 5% of the benchmark's listed negatives are."""
    test = dataset.group_test
    train = dataset.train_matrix("group").tocsr()
    negatives = test.negatives.copy()
    for row, g in enumerate(test.entity):
        consumed = train.indices[train.indptr[g] : train.indptr[g + 1]]
        if len(consumed):
            negatives[row, 0] = consumed[row % len(consumed)]
    return replace(dataset, group_test=replace(test, negatives=negatives))


def test_tables_with_and_without_the_filter_evaluate_the_refitted_models(shop_dir):
    raw = _with_consumed_negatives(D.load_dataset(shop_dir))
    result = CS.run_case_study(
        raw, seeds=(0,), quick=True, progress=False, models=["Popularity", "ItemKNN"]
    )
    assert list(result.table_unfiltered.columns) == [*CS.METRICS, "train_seconds"]
    clean, _ = CS.prepare(raw, 0)
    for name, factory in (("Popularity", Popularity), ("ItemKNN", ItemKNN)):
        row = result.per_seed.set_index("model").loc[name]
        model = factory(**json.loads(row["params"])).fit(clean, "group")
        plain = evaluate(model, clean, "group", "test").iloc[0]
        filtered = evaluate(ConsumedFilter.wrap(model, clean, "group"), clean, "group", "test")
        chosen = filtered.iloc[0] if row["filter_consumed"] else plain
        for m in CS.METRICS:
            assert result.table_unfiltered.loc[name, m] == pytest.approx(plain[m])
            assert result.table.loc[name, m] == pytest.approx(chosen[m])
    # the planted consumed negatives make the filter matter, and validation chose it
    assert result.table["filter_consumed"].all()
    assert (result.table["NDCG@5"] > result.table_unfiltered["NDCG@5"]).all()
    assert list(result.models) == ["Popularity", "ItemKNN"] and result.data.name == clean.name
    assert not isinstance(result.models["ItemKNN"], ConsumedFilter)  # kept unfiltered
    goal = result.goal(filtered=False)
    assert goal.iloc[1, 0] == result.table_unfiltered["NDCG@5"].max()


def test_with_and_without_filter_uses_a_gans_own_switch(shop_dir):
    ds = D.split_validation(D.load_dataset(shop_dir), seed=0)
    popularity = Popularity().fit(ds, "group")
    filtered, plain = CS.with_and_without_filter(popularity, ds)
    assert isinstance(filtered, ConsumedFilter) and plain is popularity
    gan = [s for s in CS.model_specs(quick=True) if s.name == "CFGAN"][0]
    model = gan.factory(epochs=1).fit(ds, "group")
    filtered, plain = CS.with_and_without_filter(model, ds)
    assert filtered.filter_consumed and not plain.filter_consumed
    assert filtered.G_ is model.G_ is plain.G_  # the same fitted network, no refit


class _Stopped:
    """A model fitted during selection whose best validation epoch was ``best_epoch``."""

    def __init__(self, best_epoch):
        self.history_ = History(best_epoch=best_epoch)


def test_refit_uses_the_best_epoch_of_an_early_stopped_model():
    def with_epochs(epochs=30, d=8):
        return None

    def without_epochs(d=8):
        return None

    params = {"d": 16, "epochs": 30}
    assert CS._refit_params(with_epochs, _Stopped(4), params) == {"d": 16, "epochs": 4}
    assert CS._refit_params(lambda **p: None, _Stopped(4), {"d": 16}) == {"d": 16, "epochs": 4}
    assert CS._refit_params(partial(with_epochs, d=4), _Stopped(7), {}) == {"epochs": 7}
    assert CS._refit_params(without_epochs, _Stopped(4), {"d": 16}) == {"d": 16}
    assert CS._refit_params(with_epochs, _Stopped(None), params) == params  # no validation
    assert CS._refit_params(with_epochs, Popularity(), params) == params  # no history
    assert params == {"d": 16, "epochs": 30}  # not modified in place


def test_model_specs_use_the_chapter_settings():
    specs = {s.name: s for s in CS.model_specs()}
    assert list(specs) == ["Popularity", "ItemKNN", "EASE", "MF-BPR", "AGREE", "CFGAN"]
    agree = specs["AGREE"].factory(epochs=1)
    assert (agree.d, agree.attention_dim, agree.hidden, agree.lr, agree.n_neg) == (
        32,
        16,
        8,
        0.01,
        2,
    )
    assert (agree.batch_size, agree.patience) == (4096, 3)
    assert specs["AGREE"].grid == {"user_weight": [0.1, 1.0], "epochs": [10]}
    cfgan = specs["CFGAN"].factory()
    assert (cfgan.hidden, cfgan.s_pm, cfgan.s_zr, cfgan.alpha_zr, cfgan.lr) == (
        (64,),
        0.1,
        0.1,
        0.1,
        5e-3,
    )
    assert (cfgan.batch_size, cfgan.patience, cfgan.train_rows) == (128, 6, "all")
    assert specs["CFGAN"].grid == {"alpha": [1.0, 0.5], "epochs": [15]}
    quick = {s.name: s.grid for s in CS.model_specs(quick=True)}
    assert quick["AGREE"] == {"user_weight": [1.0], "epochs": [4]}
    assert quick["CFGAN"] == {"alpha": [1.0], "epochs": [4]}
