"""Tests for grouprec.data: loading, audit, cleaning, splitting, sampling, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grouprec import data as D
from grouprec.__main__ import main

# ---------------------------------------------------------------- real data: exact counts


def test_camra2011_counts(camra):
    s = camra.stats()
    assert (s["n_users"], s["n_items"], s["n_groups"]) == (602, 7710, 290)
    assert s["n_user_interactions"] == 116_344
    assert s["n_group_interactions"] == 145_068
    assert (s["min_group_size"], s["max_group_size"]) == (2, 4)
    assert s["mean_group_size"] == pytest.approx(2.076, abs=1e-3)
    assert camra.user_test.negatives.shape == (3010, 100)
    assert camra.group_test.negatives.shape == (1450, 100)
    assert camra.user_train.rating is not None and camra.user_train.rating.max() == 100


def test_mafengwo_counts(mafengwo):
    s = mafengwo.stats()
    assert (s["n_users"], s["n_items"], s["n_groups"]) == (5275, 1513, 995)
    assert s["n_user_interactions"] == 39_765
    assert s["n_group_interactions"] == 3_595
    assert (s["min_group_size"], s["max_group_size"]) == (2, 48)
    assert s["mean_group_size"] == pytest.approx(9.628, abs=1e-3)
    assert s["users_with_interactions"] == 2017
    assert mafengwo.user_train.rating is None
    assert mafengwo.group_test.negatives.shape == (995, 100)


def _audit_dict(ds):
    return {(t, c): n for t, c, n in D.audit(ds).itertuples(index=False)}


def test_audit_counts_camra2011(camra):
    a = _audit_dict(camra)
    assert a[("group", "train: rows")] == 143_618
    assert a[("group", "train: distinct pairs")] == 113_914
    assert a[("group", "train: exact duplicate rows")] == 3_980
    assert a[("group", "train: zero ratings")] == 1_854
    assert a[("group", "test pairs also in train")] == 576
    assert a[("group", "entities with a test pair in train")] == 269
    assert a[("group", "negatives: lists containing their own test item")] == 24
    assert a[("user", "negatives: lists containing their own test item")] == 42
    assert a[("user", "CRLF line endings: userRatingNegative.txt")] == 0


def test_audit_counts_mafengwo(mafengwo):
    a = _audit_dict(mafengwo)
    assert a[("group", "negatives: lists containing their own test item")] == 33
    assert a[("user", "negatives: lists containing their own test item")] == 333
    assert a[("group", "negatives: duplicate negatives within a list")] == 1_100
    assert a[("user", "negatives: duplicate negatives within a list")] == 1_830
    assert a[("group", "CRLF line endings: groupRatingNegative.txt")] == 995
    assert a[("user", "CRLF line endings: userRatingNegative.txt")] == 1_754
    assert a[("group", "CRLF line endings: groupRatingTrain.txt")] == 0


def test_load_by_env_var(real_data_dir, monkeypatch):
    monkeypatch.setenv("GROUPREC_DATA", str(real_data_dir))
    assert D.load_dataset("mafengwo").n_groups == 995


def test_cli_info_json(real_data_dir, capsys):
    assert main(["info", "camra2011", "--json", "--data-dir", str(real_data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n_users"], out["n_items"], out["n_groups"]) == (602, 7710, 290)
    for key in (
        "mean_group_size",
        "min_group_size",
        "max_group_size",
        "n_user_interactions",
        "n_group_interactions",
    ):
        assert key in out


def test_cli_info_unknown_dataset(tmp_path, capsys):
    assert main(["info", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "dataset 'nope' not found" in capsys.readouterr().err


# ---------------------------------------------------------------- tiny hand-made dataset


def test_tiny_load(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    assert (ds.n_users, ds.n_items, ds.n_groups) == (4, 6, 2)
    assert [m.tolist() for m in ds.group_members] == [[0, 1], [1, 2, 3]]
    ids, mask = ds.member_padded()
    assert ids.tolist() == [[0, 1, 0], [1, 2, 3]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert ds.group_test.candidates().tolist() == [[4, 2, 3, 4], [5, 0, 0, 1]]
    m = ds.train_matrix("group")
    assert m.shape == (2, 6) and m.sum() == 4  # (0,0) repeated counts once


def test_tiny_audit(tiny_dir):
    a = _audit_dict(D.load_dataset(tiny_dir))
    assert a[("group", "train: exact duplicate rows")] == 1
    assert a[("group", "train: zero ratings")] == 1
    assert a[("user", "train: zero ratings")] == 1
    assert a[("group", "negatives: lists containing their own test item")] == 1
    assert a[("group", "negatives: duplicate negatives within a list")] == 1


def test_cleaning_steps_report_changes(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    out = D.clean(ds, [D.drop_zero_ratings, D.deduplicate, D.normalise_ratings])
    log = out.log_frame()
    assert (
        list(log["step"])
        == ["drop_zero_ratings"] * 2 + ["deduplicate"] * 2 + ["normalise_ratings"] * 2
    )
    assert log.loc[(log.step == "drop_zero_ratings") & (log.task == "group"), "changed"].item() == 1
    assert log.loc[(log.step == "deduplicate") & (log.task == "group"), "changed"].item() == 1
    assert len(out.group_train) == 3
    assert out.user_train.rating.min() == 0.0 and out.user_train.rating.max() == 1.0
    # the original object is unchanged
    assert len(ds.group_train) == 5 and ds.log == ()


def test_deduplicate_keep_modes(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    with pytest.raises(ValueError, match="keep"):
        D.deduplicate(ds, keep="median")
    assert len(D.deduplicate(ds, keep="first").group_train) == 4


def test_binarise_and_leakage(tiny_dir, tmp_path):
    ds = D.load_dataset(tiny_dir)
    b = D.binarise(ds)
    assert b.user_train.rating is None and len(b.user_train) == 6
    # plant a leak: group 0's test item 4 also in train
    (tiny_dir / "groupRatingTrain.txt").write_text("0 4 5\n0 0 5\n1 2 4\n")
    leaky = D.load_dataset(tiny_dir)
    clean = D.remove_test_leakage(leaky, tasks=["group"])
    assert len(clean.group_train) == 2
    assert "1 train rows" in clean.log[-1]["detail"]


def test_filter_negatives(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    out = D.filter_negatives(ds, seed=1)
    negs = out.group_test.negatives
    for row, (g, item) in enumerate(zip(out.group_test.entity, out.group_test.item, strict=True)):
        assert item not in negs[row]
        assert len(set(negs[row].tolist())) == negs.shape[1]
        train_items = ds.group_train.item[ds.group_train.entity == g]
        assert not set(negs[row].tolist()) & set(train_items.tolist())
    assert negs.shape == ds.group_test.negatives.shape


def test_negative_sampler_excludes_positives_and_is_seeded(camra):
    sampler = D.NegativeSampler(camra.user_train, camra.n_items)
    ents = camra.user_train.entity
    a = sampler.sample(ents, 3, np.random.default_rng(7))
    b = sampler.sample(ents, 3, np.random.default_rng(7))
    assert a.shape == (len(ents), 3)
    np.testing.assert_array_equal(a, b)
    assert not sampler.is_positive(ents, a).any()
    assert sampler.is_positive(ents[:10], camra.user_train.item[:10]).all()


def test_negative_sampler_full_entity_raises():
    inter = D.Interactions(np.zeros(3, np.int64), np.arange(3, dtype=np.int64))
    with pytest.raises(ValueError, match="entity 0 has every item"):
        D.NegativeSampler(inter, 3).sample(np.array([0]), 1, np.random.default_rng(0))


def test_split_validation_deterministic_and_disjoint(camra):
    ds = D.benchmark_clean(camra)
    a = D.split_validation(ds, seed=3)
    b = D.split_validation(ds, seed=3)
    c = D.split_validation(ds, seed=4)
    np.testing.assert_array_equal(a.group_val.item, b.group_val.item)
    np.testing.assert_array_equal(a.group_val.negatives, b.group_val.negatives)
    assert not np.array_equal(a.group_val.item, c.group_val.item)
    for task in ("user", "group"):
        val = a.cases(task, "val")
        train_keys = a.train(task).keys(a.n_items)
        assert not np.isin(val.as_interactions().keys(a.n_items), train_keys).any()
        assert val.negatives.shape == (len(val), 100)
        assert (
            not D.NegativeSampler(ds.train(task), ds.n_items)
            .is_positive(val.entity, val.negatives)
            .any()
        )
        srt = np.sort(val.negatives, axis=1)
        assert (srt[:, 1:] != srt[:, :-1]).all()
        # nothing lost: train + val equals the distinct pairs before the split
        assert len(a.train(task)) + len(val) == len(ds.train(task))
    assert len(a.group_val) == 290 and len(a.user_val) == 602


def test_split_validation_keeps_small_entities(mafengwo):
    out = D.split_validation(mafengwo, seed=0)
    sizes = np.bincount(mafengwo.group_train.entity, minlength=995)
    assert len(out.group_val) == int((sizes >= 3).sum())
    assert "keep all their data" in out.log[-1]["detail"]


def test_cases_without_val_raises(tiny_dir):
    with pytest.raises(ValueError, match="split_validation"):
        D.load_dataset(tiny_dir).cases("group", "val")
    with pytest.raises(ValueError, match="task must be"):
        D.load_dataset(tiny_dir).train("household")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fname", "text", "match"),
    [
        ("userRatingTrain.txt", "0 0 5\n0 x 5\n", r"userRatingTrain.txt, line 2: item id 'x'"),
        ("userRatingTrain.txt", "0 0 5\n0 1\n", r"userRatingTrain.txt, line 2: expected 3"),
        ("userRatingTrain.txt", "0 0 5\n1.5 1 2\n", r"line 2: id '1.5' is not an integer"),
        ("userRatingTrain.txt", "0 0 5\n-1 1 2\n", r"line 2: id -1 is negative"),
        ("groupMember.txt", "0 0,1\n1 \n", r"groupMember.txt, line 2: expected"),
        ("groupMember.txt", "0 0,1\n1 ,\n", r"groupMember.txt, line 2: group 1 has no members"),
        ("groupMember.txt", "0 0,1\n1 2,a\n", r"groupMember.txt, line 2: member id 'a'"),
        ("groupMember.txt", "0 0,1\n0 2,3\n", r"line 2: group 0 is listed twice"),
        (
            "groupRatingNegative.txt",
            "(0,4) 2 3 4\n",
            r"has 1 lines but .*groupRatingTest.txt has 2",
        ),
        ("groupRatingNegative.txt", "(0,4) 2 3 4\n(1,9) 0 1 2\n", r"line 2: names pair \(1,9\)"),
        (
            "groupRatingNegative.txt",
            "(0,4) 2 3 4\n(1,5) 0 1\n",
            r"line 2: 2 negatives, but line 1 has 3",
        ),
        (
            "groupRatingNegative.txt",
            "0,4 2 3 4\n(1,5) 0 1 2\n",
            r"line 1: expected '\(id,testItem\)",
        ),
        ("groupRatingTrain.txt", "0 0 5\n7 1 3\n", r"groupRatingTrain.txt, line 2: group id 7"),
    ],
)
def test_bad_input_names_file_and_line(tiny_dir, fname, text, match):
    (tiny_dir / fname).write_text(text)
    with pytest.raises(D.DataFormatError, match=match):
        D.load_dataset(tiny_dir)


def test_member_out_of_range(tiny_dir):
    with pytest.raises(
        D.DataFormatError, match=r"groupMember.txt, line 2: member id 3 is out of range"
    ):
        D.load_dataset(tiny_dir, n_users=3)
    with pytest.raises(D.DataFormatError, match=r"item id out of range \(n_items=5\)"):
        D.load_dataset(tiny_dir, n_items=5)


def test_missing_file(tiny_dir):
    (tiny_dir / "userRatingTest.txt").unlink()
    with pytest.raises(FileNotFoundError, match="userRatingTest.txt"):
        D.load_dataset(tiny_dir)


def test_crlf_files_load_identically(tiny_dir, tmp_path):
    plain = D.load_dataset(tiny_dir)
    for path in tiny_dir.iterdir():
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    crlf = D.load_dataset(tiny_dir)
    np.testing.assert_array_equal(plain.group_test.negatives, crlf.group_test.negatives)
    np.testing.assert_array_equal(plain.user_train.rating, crlf.user_train.rating)
    assert [m.tolist() for m in plain.group_members] == [m.tolist() for m in crlf.group_members]


def test_split_validation_too_many_negatives_raises(tiny_dir):
    ds = D.load_dataset(tiny_dir)
    with pytest.raises(ValueError, match="n_negatives=5 is more than"):
        D.split_validation(ds, n_negatives=5, min_train=1, tasks=["user"])


def test_split_validation_any_negatives_mirror_the_benchmark(camra):
    ds = D.benchmark_clean(camra)
    out = D.split_validation(ds, seed=0, negatives="any", tasks=["group"])
    val = out.group_val
    assert not (val.negatives == val.item[:, None]).any()
    in_train = D.NegativeSampler(out.group_train, out.n_items).is_positive(
        val.entity, val.negatives
    )
    assert 0.01 < in_train.mean() < 0.2  # like the published lists: some negatives were seen
    with pytest.raises(ValueError, match="negatives must be"):
        D.split_validation(ds, negatives="some")


@pytest.mark.parametrize("name", ["camra2011", "mafengwo"])
def test_validation_holds_out_as_many_pairs_per_entity_as_the_test(name, camra, mafengwo):
    """The constant the protocol draws validation with matches the benchmark's test files, and
    the validation split has that many cases per eligible entity."""
    from grouprec import protocol as P
    from grouprec.constants import HELD_OUT_PER_ENTITY

    raw = {"camra2011": camra, "mafengwo": mafengwo}[name]
    k = HELD_OUT_PER_ENTITY[name]
    assert P.held_out_per_entity(raw) == k
    train = P.training_data(raw)
    val = P.validation_data(train, seed=0)
    for task in ("user", "group"):
        test_counts = np.bincount(raw.cases(task, "test").entity)
        assert set(test_counts[test_counts > 0]) == {k}
        val_counts = np.bincount(val.cases(task, "val").entity)
        assert set(val_counts[val_counts > 0]) == {k}
