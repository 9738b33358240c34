"""Data stage: load, audit, clean and split group-recommendation data.

The benchmark files follow the format of the AGREE code (Cao et al., SIGIR 2018), also used by
ConsRec (Wu et al., WWW 2023)::

    groupMember.txt           groupId memberId,memberId,...
    userRatingTrain.txt       userId itemId [rating]
    userRatingTest.txt        userId itemId [rating]
    userRatingNegative.txt    (userId,testItem) neg1 neg2 ... neg100
    groupRating{Train,Test,Negative}.txt   the same for groups

Ids are 0-based integers; users and groups have separate id spaces. Line *i* of a Negative file
belongs to line *i* of the matching Test file.

Everything here is a pure function of its input: loading returns the files exactly as they are
(published numbers use them unchanged), and each cleaning step returns a new dataset together
with a record of what it changed (see :attr:`GroupDataset.log`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from grouprec.constants import DATA_ENV, KNOWN_DATASETS, N_NEGATIVES, TASKS
from grouprec.fetch import default_data_dir

__all__ = [
    "DataFormatError",
    "EvalCases",
    "GroupDataset",
    "Interactions",
    "NegativeSampler",
    "audit",
    "benchmark_clean",
    "binarise",
    "clean",
    "deduplicate",
    "drop_zero_ratings",
    "filter_negatives",
    "find_dataset",
    "load_dataset",
    "members_beyond_users",
    "normalise_ratings",
    "remove_test_leakage",
    "resolve_data_dir",
    "split_validation",
]


class DataFormatError(ValueError):
    """A data file does not follow the expected format; the message names the file and line."""


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interactions:
    """Observed (entity, item) pairs; an entity is a user or a group, depending on the task.

    Attributes
    ----------
    entity, item : np.ndarray
        Ids, shape (n,), int64.
    rating : np.ndarray or None
        Explicit ratings, shape (n,), float32, when the file has a rating column.
    """

    entity: np.ndarray
    item: np.ndarray
    rating: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.entity.shape[0])

    def select(self, keep: np.ndarray) -> Interactions:
        """Rows where the boolean mask ``keep`` (n,) is True, or at the given integer positions."""
        rating = None if self.rating is None else self.rating[keep]
        return Interactions(self.entity[keep], self.item[keep], rating)

    def keys(self, n_items: int) -> np.ndarray:
        """One int64 key per row, ``entity * n_items + item``, for fast set operations."""
        return self.entity * np.int64(n_items) + self.item

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with columns entity, item (and rating)."""
        columns = {"entity": self.entity, "item": self.item}
        if self.rating is not None:
            columns["rating"] = self.rating
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class EvalCases:
    """Held-out positives, each with the candidate negatives it is ranked against.

    Attributes
    ----------
    entity, item : np.ndarray
        Shape (n,), int64: the entity and its held-out item.
    negatives : np.ndarray
        Shape (n, m), int64: the listed negatives of each case (m = 100 in the benchmarks).
    rating : np.ndarray or None
        Shape (n,), float32, when the test file has a rating column.
    """

    entity: np.ndarray
    item: np.ndarray
    negatives: np.ndarray
    rating: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.entity.shape[0])

    def candidates(self) -> np.ndarray:
        """Candidate matrix (n, 1 + m): the positive in column 0, then the negatives."""
        return np.concatenate([self.item[:, None], self.negatives], axis=1)

    def as_interactions(self) -> Interactions:
        """The positives alone, as :class:`Interactions`."""
        return Interactions(self.entity, self.item, self.rating)


@dataclass(frozen=True)
class GroupDataset:
    """Users, items, groups and their interactions, as one typed object.

    Attributes
    ----------
    name : str
        Dataset name (the folder name).
    n_users, n_items, n_groups : int
        Sizes of the id spaces (ids are ``0 .. n - 1``).
    group_members : tuple of np.ndarray
        ``group_members[g]`` holds the user ids of group ``g``, in file order.
    user_train, group_train : Interactions
        Training interactions.
    user_test, group_test : EvalCases
        Test positives with their listed negatives.
    user_val, group_val : EvalCases or None
        Validation cases carved from training data by :func:`split_validation`.
    item_features : pd.DataFrame or None
        Side information per item, when the folder has an ``itemAttributes.tsv`` file.
    path : Path or None
        Folder the data was loaded from.
    log : tuple of dict
        One record per cleaning or splitting step applied since loading.
    """

    name: str
    n_users: int
    n_items: int
    n_groups: int
    group_members: tuple[np.ndarray, ...]
    user_train: Interactions
    user_test: EvalCases
    group_train: Interactions
    group_test: EvalCases
    user_val: EvalCases | None = None
    group_val: EvalCases | None = None
    item_features: pd.DataFrame | None = None
    path: Path | None = None
    log: tuple[dict, ...] = field(default_factory=tuple)

    # -- access by task ----------------------------------------------------------------------
    def n_entities(self, task: str) -> int:
        """Number of users (``task="user"``) or groups (``task="group"``)."""
        return self.n_users if _check_task(task) == "user" else self.n_groups

    def train(self, task: str) -> Interactions:
        """Training interactions of the task."""
        return self.user_train if _check_task(task) == "user" else self.group_train

    def cases(self, task: str, split: str) -> EvalCases:
        """Evaluation cases of the task for ``split`` in {"val", "test"}."""
        task = _check_task(task)
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        out = getattr(self, f"{task}_{split}")
        if out is None:
            raise ValueError(
                f"dataset {self.name!r} has no {split} split for the {task} task; "
                "call grouprec.data.split_validation(dataset) first"
            )
        return out

    def train_matrix(self, task: str, binary: bool = True) -> sp.csr_matrix:
        """Training interactions as a sparse (n_entities, n_items) matrix.

        With ``binary`` every observed pair is 1 (repeated rows count once); otherwise the
        ratings are used (repeated pairs are summed, as scipy does).
        """
        inter = self.train(task)
        if binary or inter.rating is None:
            values = np.ones(len(inter), dtype=np.float32)
        else:
            values = inter.rating.astype(np.float32)
        shape = (self.n_entities(task), self.n_items)
        matrix = sp.csr_matrix((values, (inter.entity, inter.item)), shape=shape)
        if binary:
            matrix.sum_duplicates()
            matrix.data[:] = 1.0
        return matrix

    # -- groups ------------------------------------------------------------------------------
    def members(self, group: int) -> np.ndarray:
        """User ids of one group."""
        return self.group_members[group]

    @property
    def group_sizes(self) -> np.ndarray:
        """Number of members of every group, shape (n_groups,)."""
        return np.array([len(m) for m in self.group_members], dtype=np.int64)

    def member_padded(self, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Member lists as a padded matrix, for batched computation.

        Returns
        -------
        ids : np.ndarray
            Shape (G, S), int64, S = largest group size; padded slots hold 0.
        mask : np.ndarray
            Shape (G, S), bool; True marks a real member.
        """
        groups = np.arange(self.n_groups) if groups is None else np.asarray(groups)
        sizes = self.group_sizes[groups]
        width = int(sizes.max()) if len(sizes) else 0
        ids = np.zeros((len(groups), width), dtype=np.int64)
        mask = np.arange(width)[None, :] < sizes[:, None]  # (G, S)
        if len(groups):
            ids[mask] = np.concatenate([self.group_members[g] for g in groups])
        return ids, mask

    # -- summaries ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts a reader checks first: sizes, interactions, group sizes."""
        sizes = self.group_sizes
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_groups": self.n_groups,
            "mean_group_size": round(float(sizes.mean()), 3) if len(sizes) else 0.0,
            "min_group_size": int(sizes.min()) if len(sizes) else 0,
            "max_group_size": int(sizes.max()) if len(sizes) else 0,
            "n_user_interactions": len(self.user_train) + len(self.user_test),
            "n_group_interactions": len(self.group_train) + len(self.group_test),
            "n_user_train": len(self.user_train),
            "n_user_test": len(self.user_test),
            "n_group_train": len(self.group_train),
            "n_group_test": len(self.group_test),
            "users_with_interactions": int(
                np.unique(np.concatenate([self.user_train.entity, self.user_test.entity])).size
            ),
        }

    def log_frame(self) -> pd.DataFrame:
        """The cleaning and splitting steps applied so far, one row each."""
        return pd.DataFrame(list(self.log))

    def _with(self, record: dict, **changes) -> GroupDataset:
        return replace(self, log=self.log + (record,), **changes)


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


# --------------------------------------------------------------------------------------------
# Finding and reading files
# --------------------------------------------------------------------------------------------

FILES = {
    "members": "groupMember.txt",
    "user_train": "userRatingTrain.txt",
    "user_test": "userRatingTest.txt",
    "user_negative": "userRatingNegative.txt",
    "group_train": "groupRatingTrain.txt",
    "group_test": "groupRatingTest.txt",
    "group_negative": "groupRatingNegative.txt",
}
ITEM_ATTRIBUTES = "itemAttributes.tsv"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else ``$GROUPREC_DATA``, else ``~/.cache/grouprec``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return default_data_dir()


def find_dataset(
    name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None
) -> Path:
    """Resolve a dataset name (inside the data directory) or a folder path to a folder.

    Raises
    ------
    FileNotFoundError
        With the places looked in and how to get the data.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate
    root = resolve_data_dir(data_dir)
    folder = root / str(name_or_path)
    if folder.is_dir():
        return folder
    hint = (
        f"set {DATA_ENV} to the folder that holds it, pass data_dir=..., "
        f"or download it with `python -m grouprec fetch {name_or_path}`"
        if str(name_or_path) in KNOWN_DATASETS
        else f"known dataset names are {KNOWN_DATASETS}; a folder path also works"
    )
    raise FileNotFoundError(
        f"dataset {str(name_or_path)!r} not found: {candidate} is not a folder and "
        f"{folder} does not exist (data directory {root}); {hint}"
    )


#: Largest id the loader accepts: ids are stored as int64.
ID_MAX = int(np.iinfo(np.int64).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _shorten(token: str, width: int = 40) -> str:
    return token if len(token) <= width else f"{token[:width]}... ({len(token)} characters)"


def _read_text(path: Path) -> str:
    """The whole file decoded as UTF-8.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DataFormatError
        A byte sequence is not valid UTF-8, or the text holds a NUL character; the message names
        the file, the line (1-based) and the offending bytes.
    """
    if not path.is_file():
        raise FileNotFoundError(f"missing data file: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = " ".join(f"0x{b:02x}" for b in raw[exc.start : exc.end])
        raise DataFormatError(
            f"{path}, line {lineno}: byte {column} of the line ({bad}) is not valid UTF-8 "
            f"({exc.reason}); the data files must be UTF-8 text"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataFormatError(
            f"{path}, line {text.count(chr(10), 0, nul) + 1}: contains a NUL character; "
            "the data files must be plain text"
        )
    return text


def _read_lines(path: Path) -> list[str]:
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _parse_int(token: str, path: Path, lineno: int, what: str) -> int:
    """One id: the digits 0-9 only, at most :data:`ID_MAX`; else a :class:`DataFormatError`."""
    if not (token.isascii() and token.isdigit()):
        rest = token[1:]
        if token[:1] == "-" and rest.isascii() and rest.isdigit() and int(rest) > 0:
            raise DataFormatError(f"{path}, line {lineno}: {what} {_shorten(token)} is negative")
        raise DataFormatError(
            f"{path}, line {lineno}: {what} {_shorten(token)!r} is not an integer "
            "(ids are written with the digits 0-9 only)"
        )
    value = int(token)
    if value > ID_MAX:
        raise DataFormatError(
            f"{path}, line {lineno}: {what} {_shorten(token)} does not fit the int64 id type "
            f"(largest {ID_MAX})"
        )
    return value


def _parse_rating(token: str, path: Path, lineno: int) -> float:
    """One rating: a finite number >= 0 that float32 can hold; else a :class:`DataFormatError`."""
    try:
        value = float(token)
    except ValueError:
        raise DataFormatError(
            f"{path}, line {lineno}: rating {_shorten(token)!r} is not a number"
        ) from None
    if not 0 <= value <= _FLOAT32_MAX:  # also False for nan
        raise DataFormatError(
            f"{path}, line {lineno}: rating {_shorten(token)!r} is invalid "
            "(ratings are finite numbers >= 0 that fit float32)"
        )
    return value


def _read_members(path: Path) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Member lists by group id, and the line (1-based) each group is on, shape (n_groups,)."""
    groups: dict[int, np.ndarray] = {}
    line_of: dict[int, int] = {}
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.strip().split()
        if len(parts) != 2:
            raise DataFormatError(
                f"{path}, line {lineno}: expected 'groupId member,member,...', got {line!r}"
            )
        gid = _parse_int(parts[0], path, lineno, "group id")
        tokens = [t for t in parts[1].split(",") if t != ""]
        if not tokens:
            raise DataFormatError(f"{path}, line {lineno}: group {gid} has no members")
        if gid in groups:
            raise DataFormatError(f"{path}, line {lineno}: group {gid} is listed twice")
        groups[gid] = np.array(
            [_parse_int(t, path, lineno, "member id") for t in tokens], dtype=np.int64
        )
        line_of[gid] = lineno
    if not groups:
        raise DataFormatError(f"{path}: no groups")
    n_groups = max(groups) + 1
    if len(groups) != n_groups:
        # the k-th missing id is below len(groups) + k: no need to build range(n_groups)
        first = [g for g in range(min(n_groups, len(groups) + 5)) if g not in groups][:5]
        raise DataFormatError(
            f"{path}: group ids are not contiguous; {n_groups - len(groups)} missing, first {first}"
        )
    order = range(n_groups)
    return tuple(groups[g] for g in order), np.array([line_of[g] for g in order], dtype=np.int64)


def _digits_to_int64(tokens: np.ndarray) -> np.ndarray | None:
    """Vectorised id parsing of a C-contiguous str array (any shape).

    Returns the int64 values, same shape, or None when a token holds a character other than
    0-9 (a sign, a point, a letter, a non-ASCII digit) or does not fit int64.
    """
    width = tokens.dtype.itemsize // 4
    codes = tokens.view(np.uint32).reshape(tokens.shape + (width,))  # code points, 0-padded
    if not (((codes >= ord("0")) & (codes <= ord("9"))) | (codes == 0)).all():
        return None
    if width > 18:  # 19 digits or more may not fit int64: let Python's int decide
        try:
            return tokens.astype(np.int64)
        except OverflowError:
            return None
    values = np.zeros(tokens.shape, dtype=np.int64)
    for k in range(width):  # Horner's scheme over the digit positions, not over lines
        digit = codes[..., k].astype(np.int64)
        values = np.where(digit != 0, values * 10 + (digit - ord("0")), values)
    return values


def _read_pairs(path: Path) -> Interactions:
    """Read ``id item [rating]`` lines: vectorised checks, then a line-by-line scan on failure."""
    lines = _read_lines(path)
    if not lines:
        raise DataFormatError(f"{path}: the file is empty")
    rows = [line.split() for line in lines]
    widths = {len(r) for r in rows}
    if len(widths) == 1 and widths <= {2, 3}:
        table = np.array(rows, dtype=str)  # (n, 2 or 3)
        ids = _digits_to_int64(np.ascontiguousarray(table[:, :2]))
        rating = None
        if ids is not None and table.shape[1] == 3:
            try:
                values = table[:, 2].astype(np.float64)
            except ValueError:
                values = None
            if values is not None and ((values >= 0) & (values <= _FLOAT32_MAX)).all():
                rating = values.astype(np.float32)
        if ids is not None and (table.shape[1] == 2 or rating is not None):
            return Interactions(ids[:, 0].copy(), ids[:, 1].copy(), rating)
    return _parse_pair_rows(path, lines, rows)


def _parse_pair_rows(path: Path, lines: list[str], rows: list[list[str]]) -> Interactions:
    """Line-by-line parsing of ``id item [rating]`` rows; the first bad line raises."""
    expected = len(rows[0]) if len(rows[0]) in (2, 3) else None
    entity, item, rating = [], [], []
    for lineno, parts in enumerate(rows, start=1):
        if expected is None or len(parts) != expected:
            fields = {2: "2", 3: "3"}.get(expected, "2 or 3")
            columns = {2: "id item", 3: "id item rating"}.get(expected, "id item [rating]")
            raise DataFormatError(
                f"{path}, line {lineno}: expected {fields} space-separated fields "
                f"({columns}), got {_shorten(lines[lineno - 1], 60)!r}"
            )
        entity.append(_parse_int(parts[0], path, lineno, "id"))
        item.append(_parse_int(parts[1], path, lineno, "item id"))
        if expected == 3:
            rating.append(_parse_rating(parts[2], path, lineno))
    return Interactions(
        np.array(entity, dtype=np.int64),
        np.array(item, dtype=np.int64),
        np.array(rating, dtype=np.float32) if expected == 3 else None,
    )


def _read_negatives(path: Path, test: Interactions, test_path: Path) -> np.ndarray:
    lines = _read_lines(path)
    if len(lines) != len(test):
        raise DataFormatError(
            f"{path} has {len(lines)} lines but {test_path} has {len(test)}; "
            "line i of the Negative file must belong to line i of the Test file"
        )
    width = None
    tokens = []
    for lineno, line in enumerate(lines, start=1):
        head, _, rest = line.strip().partition(" ")
        if not (head.startswith("(") and head.endswith(")") and head.count(",") == 1):
            raise DataFormatError(
                f"{path}, line {lineno}: expected '(id,testItem) neg1 neg2 ...', got {line[:60]!r}"
            )
        id_tok, item_tok = head[1:-1].split(",")
        eid = _parse_int(id_tok, path, lineno, "id")
        item = _parse_int(item_tok, path, lineno, "test item")
        if eid != test.entity[lineno - 1] or item != test.item[lineno - 1]:
            raise DataFormatError(
                f"{path}, line {lineno}: names pair ({eid},{item}) but line {lineno} of "
                f"{test_path} is ({test.entity[lineno - 1]},{test.item[lineno - 1]})"
            )
        negs = rest.split()
        if width is None:
            width = len(negs)
        if len(negs) != width or width == 0:
            raise DataFormatError(
                f"{path}, line {lineno}: {len(negs)} negatives, but line 1 has {width}"
            )
        tokens.append(negs)
    if not tokens:
        return np.zeros((0, 0), dtype=np.int64)
    values = _digits_to_int64(np.array(tokens, dtype=str))  # (n, width)
    if values is None:  # name the first bad token
        values = np.array(
            [
                [_parse_int(t, path, lineno, "negative item") for t in negs]
                for lineno, negs in enumerate(tokens, start=1)
            ],
            dtype=np.int64,
        )
    return values


def _locate_largest(
    sources: list[tuple[Path, np.ndarray, np.ndarray | None]],
) -> tuple[Path, int, int]:
    """File, line (1-based) and value of the largest id among ``(path, ids, lines)`` sources.

    ``ids`` has shape (n,) or (n, m) (one row per line); ``lines`` gives the line of each of the
    n rows, or is None when row ``r`` is on line ``r + 1``.
    """
    best = None
    for path, ids, lines in sources:
        if ids.size == 0:
            continue
        flat = int(np.argmax(ids))
        row = flat // (ids.shape[1] if ids.ndim == 2 else 1)
        value = int(ids.reshape(-1)[flat])
        if best is None or value > best[2]:
            best = (path, int(lines[row]) if lines is not None else row + 1, value)
    assert best is not None, "no ids"
    return best


def _read_item_attributes(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(_read_text(path)), sep="\t", keep_default_na=False)
    if "item" not in frame.columns:
        raise DataFormatError(f"{path}: the first line must name the columns, one of them 'item'")
    return frame.sort_values("item").reset_index(drop=True)


def load_dataset(
    name_or_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
) -> GroupDataset:
    """Load a dataset in the AGREE file format, exactly as the files are.

    Parameters
    ----------
    name_or_path : str or PathLike
        A name (``"camra2011"``, ``"mafengwo"``, or any folder inside the data directory) or a
        path to a folder holding the files.
    data_dir : str or PathLike, optional
        Folder holding named datasets; defaults to ``$GROUPREC_DATA``.
    n_users, n_items : int, optional
        Known sizes of the id spaces; an id at or above them is an error. When not given, they
        are inferred as one more than the largest id seen.

    Returns
    -------
    GroupDataset
        ``n_users`` covers every user id in the member lists and rating files, ``n_items`` every
        item id in the rating and negative files, ``n_groups`` every group id. Member ids above
        every user id of the user files are kept, and enlarge ``n_users``;
        :func:`members_beyond_users` and :func:`audit` report them.

    Raises
    ------
    FileNotFoundError
        The folder or one of its files is missing.
    DataFormatError
        A file is not UTF-8 text, or a line is malformed: for instance an id that is not
        written with the digits 0-9, or does not fit int64, or so large that the
        (entity, item) keys would not fit int64. The message names the file, the line (1-based)
        and the offending value.
    ValueError
        The given ``n_users`` or ``n_items`` make the (entity, item) keys overflow int64.
    """
    folder = find_dataset(name_or_path, data_dir)
    paths = {key: folder / fname for key, fname in FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(f"missing data file: {path}")
    members, member_lines = _read_members(paths["members"])
    user_train = _read_pairs(paths["user_train"])
    user_test_pairs = _read_pairs(paths["user_test"])
    group_train = _read_pairs(paths["group_train"])
    group_test_pairs = _read_pairs(paths["group_test"])
    user_neg = _read_negatives(paths["user_negative"], user_test_pairs, paths["user_test"])
    group_neg = _read_negatives(paths["group_negative"], group_test_pairs, paths["group_test"])

    n_groups = len(members)
    for key, inter in (("group_train", group_train), ("group_test", group_test_pairs)):
        if len(inter) and inter.entity.max() >= n_groups:
            row = int(np.argmax(inter.entity >= n_groups))
            raise DataFormatError(
                f"{paths[key]}, line {row + 1}: group id {inter.entity[row]} is not in "
                f"{paths['members']} (which has groups 0..{n_groups - 1})"
            )
    sources = {
        "user": [
            (paths["user_train"], user_train.entity),
            (paths["user_test"], user_test_pairs.entity),
        ],
        "item": [
            (paths["user_train"], user_train.item),
            (paths["user_test"], user_test_pairs.item),
            (paths["group_train"], group_train.item),
            (paths["group_test"], group_test_pairs.item),
            (paths["user_negative"], user_neg),
            (paths["group_negative"], group_neg),
        ],
    }
    member_ids = np.concatenate(members)
    sizes = np.array([len(m) for m in members], dtype=np.int64)
    inferred_users = (
        int(
            max(
                member_ids.max(),
                user_train.entity.max(initial=-1),
                user_test_pairs.entity.max(initial=-1),
            )
        )
        + 1
    )
    inferred_items = int(max(a.max(initial=-1) for _, a in sources["item"])) + 1
    if n_users is not None and inferred_users > n_users:
        for g in np.argsort(member_lines):  # file order, so the first bad line is named
            if members[g].max() >= n_users:
                raise DataFormatError(
                    f"{paths['members']}, line {member_lines[g]}: member id "
                    f"{int(members[g].max())} is out of range (n_users={n_users})"
                )
        for path, ids in sources["user"]:
            if len(ids) and ids.max() >= n_users:
                row = int(np.argmax(ids >= n_users))
                raise DataFormatError(
                    f"{path}, line {row + 1}: user id {int(ids[row])} is out "
                    f"of range (n_users={n_users})"
                )
    if n_items is not None and inferred_items > n_items:
        for path, ids in sources["item"]:
            if ids.size and ids.max() >= n_items:
                row = int(np.argmax((ids >= n_items).reshape(len(ids), -1).any(axis=1)))
                raise DataFormatError(
                    f"{path}, line {row + 1}: item id out of range (n_items={n_items})"
                )
    if max(inferred_users, n_groups) * inferred_items > ID_MAX:
        member_source = (paths["members"], member_ids, np.repeat(member_lines, sizes))
        user_at = _locate_largest([member_source] + [(p, a, None) for p, a in sources["user"]])
        item_at = _locate_largest([(p, a, None) for p, a in sources["item"]])
        path, lineno, value = max(user_at, item_at, key=lambda at: at[2])
        what = "user id" if value == user_at[2] else "item id"
        raise DataFormatError(
            f"{path}, line {lineno}: {what} {value} is too large: {inferred_users:,} users "
            f"(and {n_groups:,} groups) x {inferred_items:,} items exceed the int64 range of "
            "the (entity, item) keys used throughout (see Interactions.keys)"
        )
    n_users = inferred_users if n_users is None else n_users
    n_items = inferred_items if n_items is None else n_items
    item_features = None
    if (folder / ITEM_ATTRIBUTES).is_file():
        item_features = _read_item_attributes(folder / ITEM_ATTRIBUTES)
        if len(item_features) and item_features["item"].max() >= n_items:
            n_items = int(item_features["item"].max()) + 1
    if max(n_users, n_groups) * n_items > ID_MAX:
        raise ValueError(
            f"n_users={n_users:,} (or n_groups={n_groups:,}) x n_items={n_items:,} exceeds the "
            "int64 range of the (entity, item) keys used throughout (see Interactions.keys)"
        )
    return GroupDataset(
        name=folder.name,
        n_users=n_users,
        n_items=n_items,
        n_groups=n_groups,
        group_members=members,
        user_train=user_train,
        user_test=EvalCases(
            user_test_pairs.entity, user_test_pairs.item, user_neg, user_test_pairs.rating
        ),
        group_train=group_train,
        group_test=EvalCases(
            group_test_pairs.entity, group_test_pairs.item, group_neg, group_test_pairs.rating
        ),
        item_features=item_features,
        path=folder,
    )


# --------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------


def _count_crlf(path: Path) -> int:
    return path.read_bytes().count(b"\r\n") if path.is_file() else 0


def _negatives_audit(cases: EvalCases, train: Interactions, n_items: int) -> dict:
    negs = cases.negatives
    contains_test = (negs == cases.item[:, None]).any(axis=1)
    sorted_negs = np.sort(negs, axis=1)
    within_dups = (sorted_negs[:, 1:] == sorted_negs[:, :-1]).sum()
    train_keys = np.unique(train.keys(n_items))
    neg_keys = cases.entity[:, None] * np.int64(n_items) + negs
    in_train = np.isin(neg_keys, train_keys)
    return {
        "lists containing their own test item": int(contains_test.sum()),
        "duplicate negatives within a list": int(within_dups),
        "negatives that are train positives": int(in_train.sum()),
    }


def _train_audit(inter: Interactions, n_items: int) -> dict:
    keys = inter.keys(n_items)
    n_distinct = np.unique(keys).size
    if inter.rating is not None:
        rows = np.stack([inter.entity, inter.item, inter.rating.astype(np.int64)], axis=1)
        n_exact_distinct = np.unique(rows, axis=0).shape[0]
        zero = int((inter.rating == 0).sum())
    else:
        n_exact_distinct, zero = n_distinct, 0
    return {
        "rows": len(inter),
        "distinct pairs": int(n_distinct),
        "exact duplicate rows": int(len(inter) - n_exact_distinct),
        "repeated pairs (any rating)": int(len(inter) - n_distinct),
        "zero ratings": zero,
    }


def members_beyond_users(dataset: GroupDataset) -> dict:
    """Member ids above every user id of the user rating data, and what they cost.

    The loader sizes the user table to cover every member id, so a typo such as member id
    999999 in ``groupMember.txt`` silently makes ``n_users`` 1,000,000. Such ids are kept (the
    files are loaded as they are); :func:`audit` counts them and ``python -m grouprec info``
    prints them.

    Parameters
    ----------
    dataset : GroupDataset
        Its user ids are those of ``user_train``, ``user_test`` (the negative lists belong to
        the test cases) and ``user_val`` when present.

    Returns
    -------
    dict
        ``n_ids``: distinct member ids above the largest user id; ``n_memberships``: how often
        they occur in the member lists; ``largest``: the largest of them (None when there are
        none); ``groups``: int64 array of the groups that list them; ``n_users_with`` and
        ``n_users_without``: the size of the user table with them and without them (one more
        than the largest user id); ``added``: the difference, the user-table rows they add.
    """
    user_ids = [dataset.user_train.entity, dataset.user_test.entity]
    if dataset.user_val is not None:
        user_ids.append(dataset.user_val.entity)
    n_without = int(max(ids.max(initial=-1) for ids in user_ids)) + 1
    sizes = dataset.group_sizes
    members = np.concatenate(dataset.group_members) if len(sizes) else np.zeros(0, dtype=np.int64)
    beyond = members >= n_without
    largest = int(members[beyond].max()) if beyond.any() else None
    # rows they add to the table as sized (n_users may have been given larger than needed)
    added = 0 if largest is None else max(0, min(dataset.n_users, largest + 1) - n_without)
    return {
        "n_ids": int(np.unique(members[beyond]).size),
        "n_memberships": int(beyond.sum()),
        "largest": largest,
        "groups": np.unique(np.repeat(np.arange(len(sizes)), sizes)[beyond]),
        "n_users_with": n_without + added,
        "n_users_without": n_without,
        "added": added,
    }


def audit(dataset: GroupDataset) -> pd.DataFrame:
    """Count every known defect of a dataset, without changing it.

    Returns
    -------
    pd.DataFrame
        One row per check, with columns ``task``, ``check`` and ``count``. The row "largest
        of those member ids" holds an id (0 when there is none); see
        :func:`members_beyond_users`.
    """
    rows = []
    for task in TASKS:
        train = dataset.train(task)
        test = dataset.cases(task, "test")
        for check, count in _train_audit(train, dataset.n_items).items():
            rows.append((task, f"train: {check}", count))
        test_keys = test.as_interactions().keys(dataset.n_items)
        leaked = np.isin(test_keys, np.unique(train.keys(dataset.n_items)))
        rows.append((task, "test pairs also in train", int(leaked.sum())))
        rows.append(
            (task, "entities with a test pair in train", int(np.unique(test.entity[leaked]).size))
        )
        for check, count in _negatives_audit(test, train, dataset.n_items).items():
            rows.append((task, f"negatives: {check}", count))
        if dataset.path is not None:
            for kind in ("train", "test", "negative"):
                path = dataset.path / FILES[f"{task}_{kind}"]
                rows.append((task, f"CRLF line endings: {path.name}", _count_crlf(path)))
    if dataset.path is not None:
        rows.append(
            (
                "group",
                f"CRLF line endings: {FILES['members']}",
                _count_crlf(dataset.path / FILES["members"]),
            )
        )
    members = np.concatenate(dataset.group_members)
    sizes = dataset.group_sizes
    repeated = sizes - np.array([np.unique(m).size for m in dataset.group_members])
    rows.append(("group", "members listed twice in a group", int(repeated.sum())))
    rows.append(("group", "groups of one member", int((sizes == 1).sum())))
    active = np.unique(np.concatenate([dataset.user_train.entity, dataset.user_test.entity]))
    rows.append(
        (
            "user",
            "group members with no user interactions",
            int(np.setdiff1d(np.unique(members), active).size),
        )
    )
    beyond = members_beyond_users(dataset)
    rows.append(("user", "member ids above every user id in the user files", beyond["n_ids"]))
    rows.append(("user", "memberships of those member ids", beyond["n_memberships"]))
    rows.append(("user", "largest of those member ids", beyond["largest"] or 0))
    rows.append(("user", "user-table rows added by those member ids", beyond["added"]))
    return pd.DataFrame(rows, columns=["task", "check", "count"])


# --------------------------------------------------------------------------------------------
# Cleaning: explicit, composable steps; each returns a new dataset and logs what it changed
# --------------------------------------------------------------------------------------------


def _record(step: str, task: str, before: int, after: int, detail: str = "") -> dict:
    return {
        "step": step,
        "task": task,
        "before": before,
        "after": after,
        "changed": before - after if before != after else 0,
        "detail": detail,
    }


def _per_task(
    dataset: GroupDataset,
    tasks: Iterable[str],
    step: str,
    fn: Callable[[Interactions, str], tuple[Interactions, str]],
) -> GroupDataset:
    out = dataset
    for task in tasks:
        before = out.train(task)
        after, detail = fn(before, task)
        out = out._with(
            _record(step, task, len(before), len(after), detail), **{f"{task}_train": after}
        )
    return out


def drop_zero_ratings(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Remove training rows whose rating is 0 (the AGREE and ConsRec loaders skip them)."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None:
            return inter, "no rating column"
        keep = inter.rating != 0
        return inter.select(keep), f"{int((~keep).sum())} rows with rating 0 removed"

    return _per_task(dataset, tasks, "drop_zero_ratings", step)


def deduplicate(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, keep: str = "max"
) -> GroupDataset:
    """Keep one row per (entity, item) pair in the training data.

    Parameters
    ----------
    keep : {"max", "first", "last", "mean"}
        Which rating a repeated pair keeps.
    """
    if keep not in ("max", "first", "last", "mean"):
        raise ValueError(f"keep must be 'max', 'first', 'last' or 'mean', got {keep!r}")

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        frame = inter.to_frame()
        if inter.rating is None:
            out = frame.drop_duplicates(["entity", "item"])
        elif keep in ("first", "last"):
            out = frame.drop_duplicates(["entity", "item"], keep=keep)
        else:
            out = frame.groupby(["entity", "item"], sort=False, as_index=False)["rating"].agg(keep)
        out = out.sort_index() if keep in ("first", "last") or inter.rating is None else out
        rating = None if inter.rating is None else out["rating"].to_numpy(np.float32)
        result = Interactions(
            out["entity"].to_numpy(np.int64), out["item"].to_numpy(np.int64), rating
        )
        return result, f"{len(inter) - len(result)} repeated rows merged (keep={keep})"

    return _per_task(dataset, tasks, "deduplicate", step)


def normalise_ratings(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Min-max scale training ratings to [0, 1] per task: ``r' = (r - r_min) / (r_max - r_min)``."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None or len(inter) == 0:
            return inter, "no rating column"
        lo, hi = float(inter.rating.min()), float(inter.rating.max())
        scaled = np.zeros_like(inter.rating) if hi == lo else (inter.rating - lo) / (hi - lo)
        return (
            Interactions(inter.entity, inter.item, scaled.astype(np.float32)),
            f"ratings {lo:g}..{hi:g} scaled to 0..1",
        )

    return _per_task(dataset, tasks, "normalise_ratings", step)


def binarise(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, threshold: float = 0.0
) -> GroupDataset:
    """Turn ratings into implicit feedback: keep rows with rating > threshold, drop the column."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        if inter.rating is None:
            return inter, "already implicit"
        keep = inter.rating > threshold
        return (
            Interactions(inter.entity[keep], inter.item[keep], None),
            f"{int((~keep).sum())} rows with rating <= {threshold:g} removed",
        )

    return _per_task(dataset, tasks, "binarise", step)


def remove_test_leakage(dataset: GroupDataset, tasks: Iterable[str] = TASKS) -> GroupDataset:
    """Remove from training every (entity, item) pair that is also a test positive."""

    def step(inter: Interactions, task: str) -> tuple[Interactions, str]:
        test_keys = dataset.cases(task, "test").as_interactions().keys(dataset.n_items)
        leaked = np.isin(inter.keys(dataset.n_items), test_keys)
        return inter.select(~leaked), f"{int(leaked.sum())} train rows equal to a test pair removed"

    return _per_task(dataset, tasks, "remove_test_leakage", step)


def filter_negatives(
    dataset: GroupDataset, tasks: Iterable[str] = TASKS, seed: int = 0
) -> GroupDataset:
    """Replace listed negatives that are positives of their entity, or repeated in their list.

    A negative is replaced when it is the case's own test item, another test or training
    positive of the same entity, or a repeat within its list. Replacements are drawn uniformly
    from the entity's non-positive items not already in the list, so every list keeps its length.
    """
    rng = np.random.default_rng(seed)
    out = dataset
    for task in tasks:
        cases = out.cases(task, "test")
        n_items = out.n_items
        positives = np.unique(
            np.concatenate([out.train(task).keys(n_items), cases.as_interactions().keys(n_items)])
        )
        negs = cases.negatives.copy()
        keys = cases.entity[:, None] * np.int64(n_items) + negs
        bad = np.isin(keys, positives)
        order = np.argsort(negs, axis=1, kind="stable")
        sorted_negs = np.take_along_axis(negs, order, axis=1)
        repeat_sorted = np.zeros_like(bad)
        repeat_sorted[:, 1:] = sorted_negs[:, 1:] == sorted_negs[:, :-1]
        repeat = np.zeros_like(bad)
        np.put_along_axis(repeat, order, repeat_sorted, axis=1)
        bad |= repeat
        n_bad = int(bad.sum())
        for row in np.flatnonzero(bad.any(axis=1)):
            taken = set(negs[row][~bad[row]].tolist())
            entity_pos = positives[(positives // n_items) == cases.entity[row]] % n_items
            forbidden = taken | set(entity_pos.tolist())
            need = int(bad[row].sum())
            fresh: list[int] = []
            while len(fresh) < need:
                draw = int(rng.integers(n_items))
                if draw not in forbidden:
                    forbidden.add(draw)
                    fresh.append(draw)
            negs[row, bad[row]] = fresh
        new_cases = replace(cases, negatives=negs)
        out = out._with(
            _record(
                "filter_negatives",
                task,
                cases.negatives.size,
                negs.size,
                f"{n_bad} listed negatives replaced",
            ),
            **{f"{task}_test": new_cases},
        )
    return out


def clean(
    dataset: GroupDataset, steps: Iterable[Callable[[GroupDataset], GroupDataset]]
) -> GroupDataset:
    """Apply cleaning steps in order; ``dataset.log_frame()`` then shows what each changed."""
    for fn in steps:
        dataset = fn(dataset)
    return dataset


def benchmark_clean(dataset: GroupDataset) -> GroupDataset:
    """What the original loaders do: drop rating-0 rows and merge repeated pairs.

    The AGREE and ConsRec loaders keep a row only if its rating is positive and store training
    pairs in a sparse matrix, so repeated pairs count once. Test files and negatives are
    untouched, so results stay comparable with published numbers.
    """
    return clean(dataset, [drop_zero_ratings, deduplicate])


# --------------------------------------------------------------------------------------------
# Negative sampling and the validation split
# --------------------------------------------------------------------------------------------


class NegativeSampler:
    """Uniform negative sampling over items outside each entity's positive set.

    Parameters
    ----------
    positives : Interactions
        Pairs that must never be drawn as negatives of their entity.
    n_items : int
        Size of the item id space.
    """

    def __init__(self, positives: Interactions, n_items: int) -> None:
        self.n_items = int(n_items)
        self._keys = np.unique(positives.keys(self.n_items))  # sorted, distinct
        self._n_pos = np.bincount(self._keys // self.n_items)  # distinct positives per entity

    def is_positive(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array shaped like ``items``: True where the item is a positive of its entity.

        ``entities`` has shape (n,) and ``items`` (n,) or (n, c).
        """
        entities = np.asarray(entities, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if items.ndim == entities.ndim + 1:
            entities = entities[..., None]
        keys = entities * self.n_items + items
        if len(self._keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[pos] == keys

    def sample(self, entities: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_neg`` negatives per entity (with replacement), shape (n, n_neg).

        Vectorised rejection sampling: draw all, redraw only the rejected ones.
        """
        entities = np.asarray(entities, dtype=np.int64)
        n_pos = np.zeros(len(entities), dtype=np.int64)
        known = entities < len(self._n_pos)
        n_pos[known] = self._n_pos[entities[known]]
        if np.any(n_pos >= self.n_items):
            bad = entities[np.argmax(n_pos >= self.n_items)]
            raise ValueError(f"entity {bad} has every item as a positive; no negative exists")
        out = rng.integers(self.n_items, size=(len(entities), n_neg))
        rejected = self.is_positive(entities, out)
        while rejected.any():
            out[rejected] = rng.integers(self.n_items, size=int(rejected.sum()))
            rows = np.nonzero(rejected)[0]
            rejected[rejected] = self.is_positive(entities[rows], out[rejected])
        return out


def split_validation(
    dataset: GroupDataset,
    seed: int = 0,
    n_val: int = 1,
    min_train: int = 2,
    n_negatives: int = N_NEGATIVES,
    tasks: Iterable[str] = TASKS,
    negatives: str = "unseen",
) -> GroupDataset:
    """Hold out ``n_val`` training items per entity as a validation split.

    An entity takes part when it has at least ``n_val + min_train`` distinct training items, so
    it keeps ``min_train`` for training; the others keep all their data (the log counts them).
    Each held-out item is removed from training with every row of its pair, and gets
    ``n_negatives`` distinct negatives sampled uniformly from items that are not training
    positives of the entity. With ``negatives="any"`` they are drawn from every item but the
    held-out one, as the benchmarks' own test lists were (those lists contain training positives
    of their entity). Test data is not read.
    """
    if negatives not in ("unseen", "any"):
        raise ValueError(f"negatives must be 'unseen' or 'any', got {negatives!r}")
    rng = np.random.default_rng(seed)
    out = dataset
    for task in tasks:
        train = out.train(task)
        keys = np.unique(train.keys(out.n_items))
        ent = keys // out.n_items
        counts = np.bincount(ent, minlength=out.n_entities(task))
        eligible = counts >= n_val + min_train
        # A random priority per distinct pair; each entity's n_val smallest are held out.
        priority = rng.random(len(keys))
        order = np.lexsort((priority, ent))
        rank = np.empty(len(keys), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank[order] = np.arange(len(keys)) - starts[ent[order]]
        held = eligible[ent] & (rank < n_val)
        held_keys = keys[held]
        remaining = train.select(~np.isin(train.keys(out.n_items), held_keys))
        held_pairs = np.isin(train.keys(out.n_items), held_keys)
        excluded = train if negatives == "unseen" else train.select(held_pairs)
        sampler = NegativeSampler(excluded, out.n_items)
        free = out.n_items - (
            counts if negatives == "unseen" else np.minimum(counts, n_val)
        )  # items outside each entity's training positives
        if held.any() and free[ent[held]].min() < n_negatives:
            worst = int(ent[held][np.argmin(free[ent[held]])])
            raise ValueError(
                f"n_negatives={n_negatives} is more than the {int(free[worst])} items outside the "
                f"training positives of {task} {worst}; lower n_negatives"
            )
        val_entity = held_keys // out.n_items
        val_item = held_keys % out.n_items
        val_negatives = _sample_distinct(sampler, val_entity, n_negatives, rng)
        cases = EvalCases(val_entity, val_item, val_negatives)
        detail = (
            f"{len(cases)} validation cases from {int(eligible.sum())} entities; "
            f"{int((~eligible & (counts > 0)).sum())} entities with fewer than "
            f"{n_val + min_train} training items keep all their data"
        )
        out = out._with(
            _record("split_validation", task, len(train), len(remaining), detail),
            **{f"{task}_train": remaining, f"{task}_val": cases},
        )
    return out


def _sample_distinct(
    sampler: NegativeSampler, entities: np.ndarray, m: int, rng: np.random.Generator
) -> np.ndarray:
    """Sample ``m`` distinct negatives per entity, shape (n, m)."""
    out = sampler.sample(entities, m, rng)
    while True:
        order = np.argsort(out, axis=1, kind="stable")
        s = np.take_along_axis(out, order, axis=1)
        dup_sorted = np.zeros(out.shape, bool)
        dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
        if not dup_sorted.any():
            return out
        dup = np.zeros(out.shape, bool)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        rows = np.nonzero(dup)[0]
        out[dup] = sampler.sample(entities[rows], 1, rng)[:, 0]
