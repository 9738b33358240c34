"""Tests for the case study and its command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grouprec import case_study as CS
from grouprec import data as D
from grouprec.__main__ import main
from grouprec.baselines import Popularity


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
            "--models",
            "Popularity",
            "ItemKNN",
            "EASE",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "group task, shop" in printed and "against the published goal" in printed
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "shop"
    assert [r["model"] for r in doc["results"]] == ["Popularity", "ItemKNN", "EASE"]
    for row in doc["results"]:
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


def test_seen_filter_hides_consumed_items(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    model = CS.SeenFilter(Popularity()).fit(ds, "group")
    scores = model.score(np.array([0, 1]), np.array([[0, 1, 4], [2, 3, 5]]))
    # group 0 consumed items 0 and 1; group 1 consumed 2 and 3 (rating 0 rows count as rows)
    assert np.isinf(scores[0, :2]).all() and np.isfinite(scores[0, 2])
    assert np.isinf(scores[1, :2]).all() and np.isfinite(scores[1, 2])
