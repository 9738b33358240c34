"""Tests for the case study and its command line."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch
from loopback import closed_port, serve

from grouprec import case_study as CS
from grouprec import data as D
from grouprec import fetch as F
from grouprec import protocol as P
from grouprec.__main__ import main
from grouprec.baselines import ItemKNN, Popularity
from grouprec.constants import DATA_ENV
from grouprec.evaluation import ConsumedFilter, evaluate
from grouprec.training import History

REPO = Path(__file__).resolve().parents[1]


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
    assert "as published (tie-aware, listed negatives, no filter)" in printed
    assert "test cases whose pair occurs in training dropped" in printed
    assert "best against runner-up on NDCG@5" in printed
    assert "beside the published figures" in printed
    assert "seconds per model" in printed and "total time" in printed
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "shop"
    names = ["Popularity", "ItemKNN", "EASE", "MF-BPR", "AGREE", "Consensus", "CFGAN"]
    assert [r["model"] for r in doc["results"]] == names
    assert [r["model"] for r in doc["results_corrected"]] == names
    assert list(doc["seconds_per_model"]) == names and doc["total_seconds"] > 0
    selected = {row["model"]: row for row in doc["selected"]}
    assert [row["model"] for row in doc["selected"]] == names  # one seed: one row each
    assert selected["EASE"]["params"]["lam"] == 1000.0 and selected["EASE"]["refit_epochs"] is None
    assert 1 <= selected["AGREE"]["refit_epochs"] <= 4  # its best epoch of at most 4
    assert 1 <= selected["Consensus"]["refit_epochs"] <= 4
    metrics = ["HR@5", "NDCG@5", "HR@10", "NDCG@10"]
    expected = {"model", *metrics, *(m + "_sd" for m in metrics), "train_seconds", "neural"}
    for row in doc["results"] + doc["results_corrected"]:
        assert set(row) == expected
        assert 0.0 <= row["NDCG@5"] <= row["HR@5"] <= row["HR@10"] <= 1.0
        assert row["neural"] == (row["model"] in {"MF-BPR", "AGREE", "Consensus", "CFGAN"})
    assert doc["dropped_test_cases"] >= 0
    assert set(doc["comparison"]) == {"as published", "corrected"}
    assert set(doc["goal"]) == set()  # no published figures for a synthetic shop


def test_cli_device(shop_dir, capsys, monkeypatch):
    """--device: a device the machine lacks is a clear error; the neural models go where it says."""

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["case-study", "--dataset", str(shop_dir), "--device", "cuda"]) == 2
    assert "--device cuda" in capsys.readouterr().err
    seen = []
    original = CS.run_case_study

    def spy(*args, **kwargs):
        seen.append(kwargs["device"])
        return original(*args, **kwargs)

    monkeypatch.setattr(CS, "run_case_study", spy)
    argv = ["case-study", "--dataset", str(shop_dir), "--quick", "--seeds", "0"]
    assert main([*argv, "--models", "MF-BPR"]) == 0  # the default, auto: the CPU here
    assert (
        seen == ["cpu"]
        and "neural models train on: cpu (1 CPU thread(s))" in capsys.readouterr().out
    )
    threads = torch.get_num_threads()
    inside = []
    monkeypatch.setattr(
        CS, "run_case_study", lambda *a, **k: inside.append(torch.get_num_threads()) or spy(*a, **k)
    )
    assert main([*argv, "--models", "MF-BPR", "--threads", "2"]) == 0
    assert inside == [2] and torch.get_num_threads() == threads  # set for the run, then restored
    assert main([*argv, "--threads", "0"]) == 2
    result = original(shop_dir, seeds=(0,), quick=True, progress=False, models=["MF-BPR"])
    model = result.models["MF-BPR"]
    assert next(model.model_.parameters()).device.type == "cpu"


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


# ------------------------------------------------- the main job downloads a missing benchmark


@pytest.fixture
def served_shop(shop_dir, tmp_path, monkeypatch) -> Iterator[str]:
    """The synthetic shop's files, served on 127.0.0.1 where the camra2011 files would be.

    The registry entry of camra2011 gets the sizes and checksums of these files, and
    ``DEFAULT_BASE_URL`` points at the local server: the download code runs unchanged.
    """
    source = F.DATASETS["camra2011"]
    root = tmp_path / "www"
    folder = root / source.repo / source.commit / source.folder
    folder.mkdir(parents=True)
    files = {}
    for filename in source.files:
        data = (shop_dir / filename).read_bytes()
        (folder / filename).write_bytes(data)
        files[filename] = (len(data), hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(F.DATASETS, "camra2011", replace(source, files=files))
    with serve(root) as base_url:
        monkeypatch.setattr(F, "DEFAULT_BASE_URL", base_url)
        yield base_url


QUICK = ["--quick", "--seeds", "0", "--models", "Popularity"]


def test_main_job_downloads_a_missing_benchmark_then_runs(
    served_shop, tmp_path, monkeypatch, capsys
):
    data_dir = tmp_path / "data"
    monkeypatch.setenv(DATA_ENV, str(data_dir))  # the default data directory
    out = tmp_path / "out.json"
    assert main(["case-study", "--dataset", "camra2011", *QUICK, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    folder = data_dir / "camra2011"
    assert f"downloading it into {folder} (7 files" in printed
    assert f"camra2011: 7 files downloaded and verified in {folder}" in printed
    assert "group task, camra2011" in printed
    assert json.loads(out.read_text())["dataset"] == "camra2011"
    assert [p.name for p in data_dir.iterdir()] == ["camra2011"]  # no temporary folder left
    assert F.verify_dataset(folder, "camra2011") == []
    # A second run reads the downloaded files: with no server left, it still works.
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setattr(F, "DEFAULT_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["case-study", "--dataset", "camra2011", "--data-dir", str(data_dir), *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "download" not in printed and "group task, camra2011" in printed


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to download (with requests, which pooch uses, or urllib)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_no_download_fails_clearly_without_the_network(no_network, tmp_path, capsys):
    data_dir = tmp_path / "data"
    argv = ["case-study", "--dataset", "camra2011", "--data-dir", str(data_dir), "--no-download"]
    assert main([*argv, *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'camra2011' not found")
    assert f"{data_dir / 'camra2011'} does not exist" in err and DATA_ENV in err
    assert "Nothing was downloaded (--no-download)" in err
    assert not data_dir.exists()  # fetch_dataset was not even called: it makes the folder


def test_only_benchmark_names_are_downloaded(no_network, tmp_path, capsys):
    data_dir = tmp_path / "data"
    for dataset in (str(tmp_path / "camra2011"), "nope"):  # a missing folder; an unknown name
        assert main(["case-study", "--dataset", dataset, "--data-dir", str(data_dir)]) == 2
        assert f"error: dataset {dataset!r} not found" in capsys.readouterr().err
    assert not data_dir.exists()


def test_main_job_offline_fails_clearly_without_a_traceback(tmp_path):
    base_url = f"http://127.0.0.1:{closed_port()}"
    data_dir = tmp_path / "data"
    # A fresh interpreter, as from the shell, with the download address set to a closed port.
    program = (
        "import sys; import grouprec.fetch as F; F.DEFAULT_BASE_URL = sys.argv[1]; "
        "from grouprec.__main__ import main; sys.exit(main(sys.argv[2:]))"
    )
    argv = ["case-study", "--dataset", "camra2011", "--data-dir", str(data_dir), *QUICK]
    done = subprocess.run(
        [sys.executable, "-c", program, base_url, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"downloading it into {data_dir / 'camra2011'}" in done.stdout
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: dataset 'camra2011' not found")
    assert f"{data_dir / 'camra2011'} does not exist" in error
    assert F.file_url("camra2011", "groupMember.txt", base_url) in error
    assert "Connection refused" in error  # the network error itself
    assert DATA_ENV in error and "--data-dir" in error
    assert list(data_dir.iterdir()) == []  # nothing left behind


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


def test_both_readings_evaluate_the_refitted_models(shop_dir):
    raw = _with_consumed_negatives(D.load_dataset(shop_dir))
    result = CS.run_case_study(
        raw, seeds=(0, 1), quick=True, progress=False, models=["Popularity", "ItemKNN"]
    )
    sd = [m + "_sd" for m in CS.METRICS]
    assert list(result.table.columns) == [*CS.METRICS, *sd, "train_seconds", "neural"]
    assert list(result.table_corrected.columns) == list(result.table.columns)
    train = P.training_data(raw)
    for name, factory in (("Popularity", Popularity), ("ItemKNN", ItemKNN)):
        rows = result.per_seed[
            (result.per_seed["model"] == name) & (result.per_seed["reading"] == "as published")
        ]
        values = {m: [] for m in CS.METRICS}
        corrected = {m: [] for m in CS.METRICS}
        for _, row in rows.iterrows():
            model = factory(**json.loads(row["params"])).fit(train, "group")
            plain = evaluate(model, train, "group", "test").iloc[0]
            kept = D.drop_seen_test_cases(train, ("group",))
            filtered = evaluate(ConsumedFilter.wrap(model, train, "group"), kept, "group", "test")
            for m in CS.METRICS:
                values[m].append(plain[m])
                corrected[m].append(filtered.iloc[0][m])
        for m in CS.METRICS:
            assert result.table.loc[name, m] == pytest.approx(np.mean(values[m]))
            assert result.table.loc[name, m + "_sd"] == pytest.approx(np.std(values[m], ddof=1))
            assert result.table_corrected.loc[name, m] == pytest.approx(np.mean(corrected[m]))
    # the planted consumed negatives make the corrected reading (which filters them) higher
    assert (result.table_corrected["NDCG@5"] > result.table["NDCG@5"]).all()
    assert list(result.models) == ["Popularity", "ItemKNN"] and result.data.name == train.name
    assert not isinstance(result.models["ItemKNN"], ConsumedFilter)  # kept unfiltered
    goal = result.goal()
    assert goal.empty  # no published figures for the synthetic shop
    comparison = result.comparison()
    assert {comparison["best"], comparison["runner_up"]} == {"Popularity", "ItemKNN"}
    low, high = comparison["interval_95"]
    assert low <= comparison["difference"] <= high


def test_a_winner_is_named_only_outside_two_seed_deviations():
    """comparison(): a difference inside 2 seed sd, or an interval that includes 0, is a tie."""
    per_case = {
        "as published": pd.DataFrame(
            {("A", "NDCG@5"): [0.5, 0.7, 0.6, 0.8], ("B", "NDCG@5"): [0.4, 0.6, 0.5, 0.7]}
        )
    }
    table = pd.DataFrame({"NDCG@5": [0.65, 0.55], "NDCG@5_sd": [0.01, 0.02]}, index=["A", "B"])
    result = CS.CaseStudyResult("x", table, table, pd.DataFrame(), per_case)
    c = result.comparison()
    assert c["best"] == "A" and c["difference"] == pytest.approx(0.1) and c["winner"] == "A"
    wide = table.assign(**{"NDCG@5_sd": [0.06, 0.01]})  # 0.1 < 2 x 0.06
    assert (
        CS.CaseStudyResult("x", wide, wide, pd.DataFrame(), per_case).comparison()["winner"] is None
    )
    noisy = {
        "as published": pd.DataFrame(
            {("A", "NDCG@5"): [0.9, 0.1, 0.9, 0.7], ("B", "NDCG@5"): [0.1, 0.9, 0.5, 0.6]}
        )
    }
    c = CS.CaseStudyResult("x", table, table, pd.DataFrame(), noisy).comparison()
    assert c["interval_95"][0] < 0 and c["winner"] is None


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
    assert CS.refit_params(with_epochs, _Stopped(4), params) == {"d": 16, "epochs": 4}
    assert CS.refit_params(lambda **p: None, _Stopped(4), {"d": 16}) == {"d": 16, "epochs": 4}
    assert CS.refit_params(partial(with_epochs, d=4), _Stopped(7), {}) == {"epochs": 7}
    assert CS.refit_params(without_epochs, _Stopped(4), {"d": 16}) == {"d": 16}
    assert CS.refit_params(with_epochs, _Stopped(None), params) == params  # no validation
    assert CS.refit_params(with_epochs, Popularity(), params) == params  # no history
    assert params == {"d": 16, "epochs": 30}  # not modified in place


def test_model_specs_train_every_neural_model_with_a_budget_and_patience():
    specs = {s.name: s for s in CS.model_specs()}
    assert list(specs) == ["Popularity", "ItemKNN", "EASE", "MF-BPR", "AGREE", "Consensus", "CFGAN"]
    assert [s.name for s in specs.values() if s.neural] == ["MF-BPR", "AGREE", "Consensus", "CFGAN"]
    agree = specs["AGREE"].factory(epochs=1)
    assert (agree.d, agree.attention_dim, agree.hidden, agree.lr, agree.n_neg) == (
        32,
        16,
        8,
        0.01,
        4,
    )
    assert (agree.batch_size, agree.patience) == (2048, 6)
    assert specs["AGREE"].grid == {
        "user_weight": [1.0, 8.0],
        "weight_decay": [1e-4],
        "epochs": [60],
    }
    assert specs["MF-BPR"].factory(epochs=1).patience == 5
    consensus = specs["Consensus"].factory(epochs=1)
    assert (consensus.d, consensus.layers, consensus.n_neg, consensus.patience) == (32, 1, 4, 5)
    assert (consensus.batch_size, consensus.weight_decay, consensus.user_weight) == (
        4096,
        1e-4,
        8.0,
    )
    assert specs["Consensus"].grid == {"lr": [0.002], "epochs": [100]}
    cfgan = specs["CFGAN"].factory()
    assert (cfgan.hidden, cfgan.s_pm, cfgan.s_zr, cfgan.alpha_zr, cfgan.lr) == (
        (64,),
        0.1,
        0.1,
        0.1,
        5e-3,
    )
    assert (cfgan.batch_size, cfgan.patience, cfgan.train_rows) == (128, 6, "all")
    assert not cfgan.filter_consumed  # validated unfiltered, like every other model
    assert specs["CFGAN"].grid == {"alpha": [1.0, 0.5], "epochs": [25]}
    quick = {s.name: s.grid for s in CS.model_specs(quick=True)}
    assert quick["AGREE"] == {"user_weight": [1.0], "weight_decay": [1e-4], "epochs": [4]}
    assert quick["CFGAN"] == {"alpha": [1.0], "epochs": [4]}
    assert quick["Consensus"]["epochs"] == [4]
