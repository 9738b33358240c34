"""Bad input to grouprec.data: ids that do not fit, bytes that are not UTF-8, typo member ids."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from grouprec import data as D
from grouprec.__main__ import main
from grouprec.data import loading

BIG = "99999999999999999999"  # 20 digits: above the int64 range

# ---------------------------------------------------------------- ids that do not fit int64


@pytest.mark.parametrize(
    ("fname", "text", "match"),
    [
        (
            "userRatingTrain.txt",
            f"0 0 5\n0 1 0\n1 {BIG} 3\n",
            rf"userRatingTrain.txt, line 3: item id {BIG} does not fit the int64 id type",
        ),
        (
            "userRatingTrain.txt",
            "0 0 5\n9223372036854775808 1 0\n",
            r"userRatingTrain.txt, line 2: id 9223372036854775808 does not fit the int64",
        ),
        (
            "userRatingTest.txt",
            f"0 2 5\n{BIG} 3 4\n",
            rf"userRatingTest.txt, line 2: id {BIG} does not fit",
        ),
        (
            "groupRatingTrain.txt",
            f"0 0 5\n0 {BIG} 5\n",
            rf"groupRatingTrain.txt, line 2: item id {BIG} does not fit",
        ),
        ("groupMember.txt", f"0 0,1\n1 1,{BIG}\n", rf"groupMember.txt, line 2: member id {BIG}"),
        ("groupMember.txt", f"0 0,1\n{BIG} 1,2\n", rf"groupMember.txt, line 2: group id {BIG}"),
        (
            "groupRatingNegative.txt",
            f"(0,4) 2 3 4\n(1,5) 0 0 {BIG}\n",
            rf"groupRatingNegative.txt, line 2: negative item {BIG} does not fit",
        ),
        (
            "userRatingNegative.txt",
            f"(0,2) 3 4 5\n(1,{BIG}) 0 4 5\n",
            rf"userRatingNegative.txt, line 2: test item {BIG} does not fit",
        ),
        # not written with the digits 0-9
        ("userRatingTrain.txt", "0 0 5\n0 1e3 1\n", r"line 2: item id '1e3' is not an integer"),
        ("userRatingTrain.txt", "0 0 5\n0 5.0 1\n", r"line 2: item id '5.0' is not an integer"),
        ("userRatingTrain.txt", "0 0 5\n+1 1 1\n", r"line 2: id '\+1' is not an integer"),
        ("userRatingTrain.txt", "0 0 5\n0 1_0 1\n", r"line 2: item id '1_0' is not an integer"),
        ("userRatingTrain.txt", "0 0 5\n0 \u0663 1\n", r"line 2: item id '\u0663' is not an int"),
        ("userRatingTrain.txt", "0 0 5\n0 inf 1\n", r"line 2: item id 'inf' is not an integer"),
        ("groupRatingNegative.txt", "(0,4) 2 3 4\n(1,5) 0 -1 2\n", r"line 2: negative item -1 is"),
        ("groupRatingNegative.txt", "(0,4) 2 3 4\n(1,5) 0 x 2\n", r"line 2: negative item 'x'"),
        # ratings: finite, >= 0, and representable as float32
        ("userRatingTrain.txt", "0 0 5\n0 1 inf\n", r"line 2: rating 'inf' is invalid"),
        ("userRatingTrain.txt", "0 0 5\n0 1 nan\n", r"line 2: rating 'nan' is invalid"),
        ("userRatingTrain.txt", "0 0 5\n0 1 1e39\n", r"line 2: rating '1e39' is invalid"),
        ("userRatingTrain.txt", "0 0 5\n0 1 -2\n", r"line 2: rating '-2' is invalid"),
        ("userRatingTrain.txt", "0 0 5\n0 1 five\n", r"line 2: rating 'five' is not a number"),
        # shape of the file
        ("userRatingTrain.txt", "", r"userRatingTrain.txt: the file is empty"),
        ("userRatingTrain.txt", "0\n0 1 1\n", r"line 1: expected 2 or 3 space-separated fields"),
    ],
)
def test_bad_id_names_file_line_and_value(tiny_dir, fname, text, match):
    (tiny_dir / fname).write_text(text, encoding="utf-8")
    with pytest.raises(D.DataFormatError, match=match):
        D.load_dataset(tiny_dir)


def test_twenty_digit_item_id_through_the_cli(tiny_dir, capsys):
    (tiny_dir / "userRatingTrain.txt").write_text(f"0 0 5\n0 1 0\n1 {BIG} 3\n")
    assert main(["info", str(tiny_dir)]) == 2
    err = capsys.readouterr().err
    assert f"userRatingTrain.txt, line 3: item id {BIG} does not fit the int64 id type" in err


def test_id_that_fits_int64_but_overflows_the_keys(tiny_dir):
    (tiny_dir / "userRatingTrain.txt").write_text("0 0 5\n1 9223372036854775807 3\n")
    with pytest.raises(
        D.DataFormatError,
        match=r"userRatingTrain.txt, line 2: item id 9223372036854775807 is too large",
    ):
        D.load_dataset(tiny_dir)
    (tiny_dir / "userRatingTrain.txt").write_text("0 0 5\n1 1 3\n")
    (tiny_dir / "groupMember.txt").write_text("0 0,1\n1 1,2,3000000000000000000\n")
    with pytest.raises(
        D.DataFormatError,
        match=r"groupMember.txt, line 2: user id 3000000000000000000 is too large",
    ):
        D.load_dataset(tiny_dir)


def test_large_ids_are_read_exactly(tiny_dir):
    # 2**53 + 1 is where float64 parsing starts rounding; 19 digits take the other code path
    big16, big19 = 9_007_199_254_740_993, 1_000_000_000_000_000_001
    (tiny_dir / "userRatingTrain.txt").write_text(f"0 0 5\n1 {big16} 3\n2 007 1\n")
    ds = D.load_dataset(tiny_dir)
    assert ds.user_train.item.tolist() == [0, big16, 7]
    assert ds.user_train.item.dtype == np.int64 and ds.n_items == big16 + 1
    (tiny_dir / "userRatingTrain.txt").write_text(f"0 0 5\n1 {big19} 3\n")
    (tiny_dir / "groupRatingNegative.txt").write_text(f"(0,4) 2 3 {big19}\n(1,5) 0 0 1\n")
    ds = D.load_dataset(tiny_dir)
    assert ds.user_train.item.tolist() == [0, big19]
    assert ds.group_test.negatives[0].tolist() == [2, 3, big19]


def test_clean_pairs_take_the_vectorised_path(tiny_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("line-by-line parsing used for a clean file")

    monkeypatch.setattr(loading, "_parse_pair_rows", fail)  # where load_dataset looks it up
    ds = D.load_dataset(tiny_dir)
    assert ds.user_train.entity.dtype == np.int64 and ds.user_train.rating.dtype == np.float32
    assert len(ds.user_train) == 7


# ---------------------------------------------------------------- bytes that are not UTF-8


@pytest.mark.parametrize("fname", [*D.FILES.values(), D.ITEM_ATTRIBUTES])
def test_non_utf8_byte_names_file_and_line(tiny_dir, fname):
    path = tiny_dir / fname
    if fname == D.ITEM_ATTRIBUTES:
        path.write_text("item\tname\n0\tfirst\n1\tsecond\n")
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1] + b"\xff"  # line 2 ends in a byte that never occurs in UTF-8
    column = len(lines[1])
    path.write_bytes(b"\n".join(lines))
    match = rf"{fname}, line 2: byte {column} of the line \(0xff\) is not valid UTF-8"
    with pytest.raises(D.DataFormatError, match=match):
        D.load_dataset(tiny_dir)


def test_latin1_file_through_the_cli(tiny_dir, capsys):
    (tiny_dir / "groupMember.txt").write_bytes("0 0,1\n1 1,2,3 caf\u00e9\n".encode("latin-1"))
    assert main(["info", str(tiny_dir)]) == 2
    err = capsys.readouterr().err
    assert "groupMember.txt, line 2: byte 12 of the line (0xe9) is not valid UTF-8" in err


def test_nul_character_names_file_and_line(tiny_dir):
    (tiny_dir / "userRatingTrain.txt").write_text("0 0 5\n0 1 0\n1 1\x00 3\n")
    with pytest.raises(D.DataFormatError, match=r"userRatingTrain.txt, line 3: contains a NUL"):
        D.load_dataset(tiny_dir)


# ---------------------------------------------------------------- member lists


def test_member_out_of_range_names_the_line_in_file_order(tiny_dir):
    (tiny_dir / "groupMember.txt").write_text("1 1,2,3\n0 0,7\n")
    with pytest.raises(
        D.DataFormatError, match=r"groupMember.txt, line 2: member id 7 is out of range"
    ):
        D.load_dataset(tiny_dir, n_users=4)


def test_huge_missing_group_id_is_reported_quickly(tiny_dir):
    (tiny_dir / "groupMember.txt").write_text("0 0,1\n1000000000000 1,2\n")
    with pytest.raises(
        D.DataFormatError, match=r"not contiguous; 999999999999 missing, first \[1, 2, 3, 4, 5\]"
    ):
        D.load_dataset(tiny_dir)


def _audit_dict(ds):
    return {(t, c): n for t, c, n in D.audit(ds).itertuples(index=False)}


BEYOND = [
    ("user", "member ids above every user id in the user files"),
    ("user", "memberships of those member ids"),
    ("user", "largest of those member ids"),
    ("user", "user-table rows added by those member ids"),
]


def test_typo_member_id_is_kept_and_audited(tiny_dir, capsys):
    # users 0..3 have ratings; 999999 (twice) and 12 are typos in the member lists
    (tiny_dir / "groupMember.txt").write_text("0 0,1,999999\n1 1,2,3,12,999999\n")
    ds = D.load_dataset(tiny_dir)
    assert ds.n_users == 1_000_000  # nothing is dropped: the table covers every member
    assert ds.group_members[1].tolist() == [1, 2, 3, 12, 999999]
    beyond = D.members_beyond_users(ds)
    assert (beyond["n_ids"], beyond["n_memberships"], beyond["largest"]) == (2, 3, 999_999)
    assert beyond["groups"].tolist() == [0, 1]
    assert (beyond["n_users_with"], beyond["n_users_without"]) == (1_000_000, 4)
    assert beyond["added"] == 999_996
    a = _audit_dict(ds)
    assert [a[k] for k in BEYOND] == [2, 3, 999_999, 999_996]

    assert main(["info", str(tiny_dir)]) == 0
    out = capsys.readouterr().out
    assert "member ids above every user id in the user files" in out
    assert "warning: 2 member id(s) in groupMember.txt (3 membership(s), in group(s) 0, 1" in out
    assert "largest 999,999" in out and "from 4 to 1,000,000 rows (n_users)" in out


def test_no_beyond_rows_for_a_clean_dataset(tiny_dir, capsys):
    ds = D.load_dataset(tiny_dir)
    assert D.members_beyond_users(ds)["largest"] is None
    assert [_audit_dict(ds)[k] for k in BEYOND] == [0, 0, 0, 0]
    assert main(["info", str(tiny_dir)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_given_n_users_is_not_counted_as_added(tiny_dir):
    (tiny_dir / "groupMember.txt").write_text("0 0,1\n1 1,2,3,6\n")
    ds = D.load_dataset(tiny_dir, n_users=10)
    beyond = D.members_beyond_users(ds)
    assert (beyond["n_ids"], beyond["largest"], beyond["added"]) == (1, 6, 3)
    assert (beyond["n_users_with"], beyond["n_users_without"]) == (7, 4)


def test_real_datasets_have_no_member_ids_beyond_users(camra, mafengwo):
    for ds in (camra, mafengwo):
        beyond = D.members_beyond_users(ds)
        assert beyond["n_ids"] == 0 and beyond["added"] == 0
        assert beyond["n_users_without"] == ds.n_users
        assert [_audit_dict(ds)[k] for k in BEYOND] == [0, 0, 0, 0]


def test_typo_member_in_real_mafengwo_is_reported(real_data_dir, tmp_path, capsys):
    folder = tmp_path / "mafengwo_typo"
    shutil.copytree(real_data_dir / "mafengwo", folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    members = folder / "groupMember.txt"
    text = members.read_bytes().rstrip(b"\r\n")
    members.write_bytes(text + b",999999\n")  # the last group gains member 999999

    ds = D.load_dataset(folder)
    assert (ds.n_users, ds.n_groups) == (1_000_000, 995)
    assert ds.group_members[994][-1] == 999_999
    assert [_audit_dict(ds)[k] for k in BEYOND] == [1, 1, 999_999, 1_000_000 - 5275]

    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "warning: 1 member id(s) in groupMember.txt (1 membership(s), in group(s) 994" in out
    assert "from 5,275 to 1,000,000 rows (n_users)" in out

    assert main(["info", str(folder), "--json"]) == 0
    rows = {
        (r["task"], r["check"]): r["count"] for r in json.loads(capsys.readouterr().out)["audit"]
    }
    assert [rows[k] for k in BEYOND] == [1, 1, 999_999, 994_725]
