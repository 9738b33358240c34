"""Shared fixtures: the real benchmark data and a tiny dataset written to a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grouprec.constants import DATA_ENV

REPO = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path | None:
    env = os.environ.get(DATA_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "camra2011").is_dir() and (path / "mafengwo").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Folder holding camra2011/ and mafengwo/; CI sets GROUPREC_REQUIRE_DATA=1 so it never skips."""
    path = _real_data_dir()
    if path is None:
        if os.environ.get("GROUPREC_REQUIRE_DATA") == "1":
            pytest.fail(f"benchmark data not found: set {DATA_ENV} to the folder holding it")
        pytest.skip(f"benchmark data not found (set {DATA_ENV})")
    return path


@pytest.fixture(scope="session")
def camra(real_data_dir):
    from grouprec.data import load_dataset

    return load_dataset("camra2011", data_dir=real_data_dir)


@pytest.fixture(scope="session")
def mafengwo(real_data_dir):
    from grouprec.data import load_dataset

    return load_dataset("mafengwo", data_dir=real_data_dir)


TINY_FILES = {
    "groupMember.txt": "0 0,1\n1 1,2,3\n",
    "userRatingTrain.txt": "0 0 5\n0 1 0\n1 1 3\n1 2 4\n2 3 5\n3 4 2\n3 0 1\n",
    "userRatingTest.txt": "0 2 5\n1 3 4\n",
    "userRatingNegative.txt": "(0,2) 3 4 5\n(1,3) 0 4 5\n",
    "groupRatingTrain.txt": "0 0 5\n0 0 5\n0 1 3\n1 2 4\n1 3 0\n",
    "groupRatingTest.txt": "0 4 5\n1 5 3\n",
    "groupRatingNegative.txt": "(0,4) 2 3 4\n(1,5) 0 0 1\n",
}


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A hand-written dataset: 4 users, 6 items, 2 groups, with known defects."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name, text in TINY_FILES.items():
        (folder / name).write_text(text)
    return folder
