"""Finding and reading the benchmark files into a :class:`~grouprec.data.GroupDataset`.

The benchmark files follow the format of the AGREE code (Cao et al., SIGIR 2018), also used by
ConsRec (Wu et al., WWW 2023)::

    groupMember.txt           groupId memberId,memberId,...
    userRatingTrain.txt       userId itemId [rating]
    userRatingTest.txt        userId itemId [rating]
    userRatingNegative.txt    (userId,testItem) neg1 neg2 ... neg100
    groupRating{Train,Test,Negative}.txt   the same for groups

Ids are 0-based integers; users and groups have separate id spaces. Line *i* of a Negative file
belongs to line *i* of the matching Test file. Loading returns the files exactly as they are;
a file that breaks the format raises :class:`DataFormatError`, naming the file and line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from grouprec.constants import DATA_ENV, KNOWN_DATASETS
from grouprec.data.containers import EvalCases, GroupDataset, Interactions
from grouprec.fetch import default_data_dir


class DataFormatError(ValueError):
    """A data file does not follow the expected format; the message names the file and line."""


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
