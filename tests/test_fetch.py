"""Tests for grouprec.fetch against a local HTTP server on 127.0.0.1 serving the shared files."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import closed_port, serve

from grouprec import fetch as F
from grouprec.__main__ import main
from grouprec.constants import DATA_ENV


def _layout(source_dir: Path, root: Path) -> Path:
    """Copy each dataset to the path its URL names: ``root/{repo}/{commit}/{folder}/{file}``."""
    for name, source in F.DATASETS.items():
        folder = root / source.repo / source.commit / source.folder
        folder.mkdir(parents=True)
        for filename in source.files:
            shutil.copyfile(source_dir / name / filename, folder / filename)
    return root


@pytest.fixture(scope="module")
def served(real_data_dir, tmp_path_factory) -> Path:
    """A copy of the shared data, laid out as the download URLs expect."""
    return _layout(real_data_dir, tmp_path_factory.mktemp("www"))


@pytest.fixture(scope="module")
def server(served) -> Iterator[str]:
    """Base URL of a server holding an exact copy of the shared files."""
    with serve(served) as base_url:
        yield base_url


def _served_file(served: Path, name: str, filename: str) -> Path:
    source = F.DATASETS[name]
    return served / source.repo / source.commit / source.folder / filename


# ------------------------------------------------------------------------------ registry


def test_registry_matches_the_shared_data_readme(real_data_dir):
    readme = (real_data_dir / "README.md").read_text()
    table = {
        (m[1], m[2]): (int(m[3].replace(",", "")), m[4])
        for m in re.finditer(
            r"^\| (\w+)/(\S+) \| [\d,]+ \| ([\d,]+) \| ([0-9a-f]{64}) \|", readme, re.M
        )
    }
    registry = {
        (name, filename): entry
        for name, source in F.DATASETS.items()
        for filename, entry in source.files.items()
    }
    assert len(table) == 15 and registry == table


def test_registry_matches_the_shared_files(real_data_dir):
    for name in F.DATASETS:
        assert F.verify_dataset(real_data_dir / name, name) == []


def test_file_url_uses_the_pinned_commit():
    assert F.file_url("camra2011", "groupMember.txt") == (
        "https://raw.githubusercontent.com/LianHaiMiao/Attentive-Group-Recommendation/"
        "fed20414dc35c99496eb09d53ca44be83c596957/data/CAMRa2011/groupMember.txt"
    )
    assert F.file_url("mafengwo", "userFollow.txt", base_url="http://127.0.0.1:8/") == (
        "http://127.0.0.1:8/FDUDSDE/WWW2023ConsRec/"
        "d57dd9857c44856a63078adaf388ff89ff3e3fbe/data/Mafengwo/userFollow.txt"
    )
    with pytest.raises(ValueError, match="filename"):
        F.file_url("mafengwo", "nope.txt")


# ------------------------------------------------------------------------------ downloads


@pytest.mark.parametrize("name", ["camra2011", "mafengwo"])
def test_fetch_downloads_and_verifies(name, server, real_data_dir, tmp_path):
    folder = F.fetch_dataset(name, data_dir=tmp_path, base_url=server, progress=False)
    assert folder == tmp_path / name
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary folder left
    assert sorted(p.name for p in folder.iterdir()) == sorted(F.DATASETS[name].files)
    for filename in F.DATASETS[name].files:
        assert (folder / filename).read_bytes() == (real_data_dir / name / filename).read_bytes()
    assert F.verify_dataset(folder, name) == []


def test_fetch_does_nothing_when_the_folder_verifies(server, tmp_path):
    F.fetch_dataset("mafengwo", data_dir=tmp_path, base_url=server, progress=False)
    nowhere = f"http://127.0.0.1:{closed_port()}"
    # Served from nowhere: it succeeds only because nothing is downloaded.
    assert F.fetch_dataset("mafengwo", data_dir=tmp_path, base_url=nowhere) == tmp_path / "mafengwo"


def test_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path, real_data_dir):
    corrupt = _layout(real_data_dir, tmp_path / "www")
    path = _served_file(corrupt, "camra2011", "groupRatingTest.txt")
    data = bytearray(path.read_bytes())
    data[100] ^= 1  # same size, one bit flipped
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    expected = F.DATASETS["camra2011"].files["groupRatingTest.txt"][1]
    data_dir = tmp_path / "data"
    with serve(corrupt) as base_url, pytest.raises(F.ChecksumError) as info:
        F.fetch_dataset("camra2011", data_dir=data_dir, base_url=base_url, progress=False)
    message = str(info.value)
    assert "groupRatingTest.txt" in message and expected in message and actual in message
    assert F.file_url("camra2011", "groupRatingTest.txt", base_url) in message
    assert list(data_dir.iterdir()) == []  # neither the dataset folder nor temporary files


def test_unexpected_size_is_caught(server, tmp_path, monkeypatch):
    source = F.DATASETS["camra2011"]
    files = dict(source.files)
    size, sha = files["groupMember.txt"]
    files["groupMember.txt"] = (size - 10, sha)  # the server sends more than expected
    monkeypatch.setitem(
        F.DATASETS, "camra2011", F.DatasetSource(**{**source.__dict__, "files": files})
    )
    expected = rf"groupMember.txt: downloaded {size:,} bytes, expected {size - 10:,} \(http://"
    with pytest.raises(F.ChecksumError, match=expected):
        F.fetch_dataset("camra2011", data_dir=tmp_path, base_url=server, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_gives_a_clear_error_and_leaves_nothing(tmp_path):
    base_url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(F.FetchError) as info:
        F.fetch_dataset(
            "camra2011", data_dir=tmp_path, base_url=base_url, timeout=5, progress=False
        )
    message = str(info.value)
    assert F.file_url("camra2011", "groupMember.txt", base_url) in message
    assert "offline" in message and DATA_ENV in message
    assert list(tmp_path.iterdir()) == []


def test_missing_file_on_the_server_names_the_url_and_status(tmp_path, real_data_dir):
    root = _layout(real_data_dir, tmp_path / "www")
    _served_file(root, "mafengwo", "userFollow.txt").unlink()
    data_dir = tmp_path / "data"
    with serve(root) as base_url, pytest.raises(F.FetchError, match="HTTP 404") as info:
        F.fetch_dataset("mafengwo", data_dir=data_dir, base_url=base_url, progress=False)
    assert F.file_url("mafengwo", "userFollow.txt", base_url) in str(info.value)
    assert list(data_dir.iterdir()) == []


def test_existing_folder_that_fails_verification_is_left_alone(tmp_path, real_data_dir):
    folder = tmp_path / "mafengwo"
    shutil.copytree(real_data_dir / "mafengwo", folder)
    (folder / "userRatingTest.txt").write_bytes(b"0 1\n")
    (folder / "groupMember.txt").unlink()
    problems = F.verify_dataset(folder, "mafengwo")
    assert len(problems) == 2
    assert any("groupMember.txt: missing" in p for p in problems)
    assert any("userRatingTest.txt: 4 bytes, expected 15,119" in p for p in problems)
    with pytest.raises(F.FetchError, match="Move or remove that folder"):
        F.fetch_dataset("mafengwo", data_dir=tmp_path, base_url="http://127.0.0.1:1")
    assert (folder / "userRatingTest.txt").read_bytes() == b"0 1\n"


def test_verify_dataset_detects_a_changed_byte(tmp_path, real_data_dir):
    folder = tmp_path / "camra2011"
    shutil.copytree(real_data_dir / "camra2011", folder)
    path = folder / "groupMember.txt"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    (problem,) = F.verify_dataset(folder, "camra2011")
    assert (
        "groupMember.txt: sha256" in problem
        and F.DATASETS["camra2011"].files["groupMember.txt"][1] in problem
    )


def test_unknown_name_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"name must be one of \('camra2011', 'mafengwo'\)"):
        F.fetch_dataset("movielens", data_dir=tmp_path)
    with pytest.raises(ValueError, match="name"):
        F.verify_dataset(tmp_path, "movielens")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- data directory and CLI


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "somewhere"))
    assert F.default_data_dir() == tmp_path / "somewhere"
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert F.default_data_dir() == tmp_path / ".cache" / "grouprec"


def test_fetch_uses_the_environment_variable(server, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert F.fetch_dataset("mafengwo", base_url=server, progress=False) == tmp_path / "mafengwo"


def test_command_line(server, tmp_path, capsys):
    argv = ["fetch", "camra2011", "--data-dir", str(tmp_path), "--base-url", server]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "camra2011: 7 files verified in" in out
    assert "100%" in err  # pooch's progress bar (tqdm)
    nowhere = f"http://127.0.0.1:{closed_port()}"
    argv = ["fetch", "mafengwo", "--data-dir", str(tmp_path), "--base-url", nowhere]
    assert main([*argv, "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "error: could not download" in err and DATA_ENV in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camra2011"]
