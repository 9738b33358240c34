"""Download the benchmark datasets from their public source repositories, checksums verified.

The files are not stored in this repository (their redistribution terms are unclear). Each
dataset is fetched from the GitHub repository that published it, at a pinned commit, and
every file must match its recorded size and SHA-256 before anything is put in place:

- ``camra2011``: ``LianHaiMiao/Attentive-Group-Recommendation`` (the AGREE code; Cao et al.,
  SIGIR 2018), folder ``data/CAMRa2011``;
- ``mafengwo``: ``FDUDSDE/WWW2023ConsRec`` (the ConsRec code; Wu et al., WWW 2023), folder
  ``data/Mafengwo``.

The downloading is done by `pooch <https://www.fatiando.org/pooch>`_: each file is streamed
to a temporary file, checked against its known SHA-256, and only then moved to its name. The
files go to a temporary folder inside the data directory, which is renamed to
``<data_dir>/<name>`` once every file is in place; after any failure it is removed, so no
partial dataset is ever left behind.

References
----------
- D. Cao, X. He, L. Miao, Y. An, C. Yang, R. Hong. Attentive group recommendation. SIGIR 2018,
  645-654. doi:10.1145/3209978.3209998
- X. Wu, Y. Xiong, Y. Zhang, Y. Jiao, J. Zhang, Y. Zhu, P. S. Yu. ConsRec: learning consensus
  behind interactions for group recommendation. WWW 2023.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pooch

from grouprec.constants import DATA_ENV

__all__ = [
    "DATASETS",
    "DEFAULT_BASE_URL",
    "ChecksumError",
    "DatasetSource",
    "FetchError",
    "default_data_dir",
    "fetch_dataset",
    "file_url",
    "verify_dataset",
]

#: Where raw files of a GitHub repository are served; ``base_url`` arguments replace it.
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
#: The address of one file: ``{base_url}/{repo}/{commit}/{path}``.
URL_TEMPLATE = "{base_url}/{repo}/{commit}/{path}"


class FetchError(RuntimeError):
    """A dataset could not be downloaded or verified; nothing was left behind."""


class ChecksumError(FetchError):
    """A downloaded file does not have its recorded size or SHA-256."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's files are published, and what each must hash to.

    Attributes
    ----------
    repo : str
        GitHub repository, ``owner/name``.
    commit : str
        The pinned commit (40 hex digits).
    folder : str
        Folder of the files inside the repository.
    files : dict
        File name -> (size in bytes, SHA-256 hex digest).
    """

    repo: str
    commit: str
    folder: str
    files: dict[str, tuple[int, str]]


#: The datasets ``fetch_dataset`` knows, with sizes and checksums of the published files.
DATASETS: dict[str, DatasetSource] = {
    "camra2011": DatasetSource(
        repo="LianHaiMiao/Attentive-Group-Recommendation",
        commit="fed20414dc35c99496eb09d53ca44be83c596957",
        folder="data/CAMRa2011",
        files={
            "groupMember.txt": (
                3_348,
                "63e0d9958a78e6d5c56964faf242f80ec4e70e68cc838a57469d35caa6f99ba1",
            ),
            "groupRatingNegative.txt": (
                719_209,
                "41b3c47ee7dfab1a85414f064e5b667e261c58632e3e1d7384a19359fc62f006",
            ),
            "groupRatingTest.txt": (
                16_725,
                "c546e70efbf212bfcee11effe5fb8f2346a3cf4b9386304f6feb4747ec1e4a1f",
            ),
            "groupRatingTrain.txt": (
                1_657_129,
                "12e532cb1fb693473da41f04099d90956644fc979be919f7acae23935529994a",
            ),
            "userRatingNegative.txt": (
                1_494_342,
                "1f43a434d8336dd0d16100788af02bfe1f04c8d41941aef60f95f9f25ecf0b06",
            ),
            "userRatingTest.txt": (
                35_311,
                "910ae9bd76387525ca1dea91a339697ae4aa2ec2ea31384125c915846b480d00",
            ),
            "userRatingTrain.txt": (
                1_326_281,
                "5f1fcbf8fc5e172704d587031cfff851f8b0ddeac949a79af3ebdb07a36442df",
            ),
        },
    ),
    "mafengwo": DatasetSource(
        repo="FDUDSDE/WWW2023ConsRec",
        commit="d57dd9857c44856a63078adaf388ff89ff3e3fbe",
        folder="data/Mafengwo",
        files={
            "groupMember.txt": (
                50_018,
                "472dcfa7ca63a1bcbbcf7663e63b289c174ca6a9b0939e00cb2156f0cd8a65f0",
            ),
            "groupRatingNegative.txt": (
                425_239,
                "2c3f21dc5a0c72c6f46c1679d4e5c945fb69dbb0dbe0537c1f684c2b611b18f3",
            ),
            "groupRatingTest.txt": (
                7_333,
                "c9b3a4308a9057e07b7ba1693c1be567dafa3504038b78da65e30ccadfc606d3",
            ),
            "groupRatingTrain.txt": (
                19_138,
                "ecd6308dff2b59ad6cb4cee496d693a8cec1212044b0773c343b891c6b12872a",
            ),
            "userFollow.txt": (
                230_486,
                "4dfe6a71ffcb5875f23baf8ad8322120c1667143ba5281a48e6be42694be3911",
            ),
            "userRatingNegative.txt": (
                760_108,
                "e9b72b7006601226d9dc40b52d73689535d46572d22218b036f89bed09488896",
            ),
            "userRatingTest.txt": (
                15_119,
                "97a52f1939f229913076261670f887d8a68f59990f8dc6e4c66799c6070fe9c1",
            ),
            "userRatingTrain.txt": (
                327_841,
                "98ddb79ab9f1bdabd8a7086a90b56b5f99a28e609bc26f593c1774dc0e912cf3",
            ),
        },
    ),
}


def default_data_dir() -> Path:
    """The data directory when none is given: ``$GROUPREC_DATA``, else ``~/.cache/grouprec``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "grouprec"


def _source(name: str) -> DatasetSource:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {tuple(DATASETS)}, got {name!r}")
    return DATASETS[name]


def file_url(name: str, filename: str, base_url: str | None = None) -> str:
    """The address of one file of dataset ``name`` at its pinned commit."""
    source = _source(name)
    if filename not in source.files:
        raise ValueError(f"filename must be one of {tuple(source.files)}, got {filename!r}")
    return URL_TEMPLATE.format(
        base_url=(DEFAULT_BASE_URL if base_url is None else base_url).rstrip("/"),
        repo=source.repo,
        commit=source.commit,
        path=f"{source.folder}/{filename}",
    )


def verify_dataset(folder: str | os.PathLike, name: str) -> list[str]:
    """Check every file of dataset ``name`` in ``folder`` against its size and SHA-256.

    Returns
    -------
    list of str
        One line per problem (missing file, wrong size, wrong hash); empty when all match.
        Files that are not part of the dataset are ignored.
    """
    source = _source(name)
    folder = Path(folder)
    problems = []
    for filename, (size, sha256) in source.files.items():
        path = folder / filename
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual_size = path.stat().st_size
        if actual_size != size:
            problems.append(f"{path}: {actual_size:,} bytes, expected {size:,}")
            continue
        actual = pooch.file_hash(str(path), alg="sha256")
        if actual != sha256:
            problems.append(f"{path}: sha256 {actual}, expected {sha256}")
    return problems


def _innermost(exc: BaseException) -> BaseException:
    """The error at the bottom of a chain, e.g. ``[Errno 111] Connection refused`` under the
    wrappers of requests and urllib3."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


def _download(name: str, filename: str, folder: Path, base_url: str | None, downloader) -> None:
    """Download one file of dataset ``name`` into ``folder`` with pooch, checking its SHA-256
    and size; pooch's errors become :class:`FetchError` naming the address."""
    import requests  # pooch's HTTP client, imported lazily by pooch too

    size, sha256 = DATASETS[name].files[filename]
    url = file_url(name, filename, base_url)
    try:
        pooch.retrieve(url, f"sha256:{sha256}", fname=filename, path=folder, downloader=downloader)
    except ValueError as exc:  # pooch has deleted the file whose hash did not match
        raise ChecksumError(f"{filename}: {exc} ({url})") from None
    except requests.HTTPError as exc:
        raise FetchError(
            f"could not download {url}: the server answered HTTP {exc.response.status_code} "
            f"{exc.response.reason}"
        ) from exc
    except requests.RequestException as exc:
        raise FetchError(
            f"could not download {url}: {_innermost(exc)}. Are you offline? If you have the "
            f"files, set {DATA_ENV} to the folder that holds {name}/ (with "
            f"{', '.join(DATASETS[name].files)})."
        ) from exc
    n_bytes = (folder / filename).stat().st_size
    if n_bytes != size:
        raise ChecksumError(f"{filename}: downloaded {n_bytes:,} bytes, expected {size:,} ({url})")


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download dataset ``name`` into ``<data_dir>/<name>``, verifying every checksum.

    Nothing is downloaded when the folder already holds files that verify.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    data_dir : str or PathLike, optional
        The data directory; defaults to :func:`default_data_dir`.
    base_url : str, optional
        Replaces :data:`DEFAULT_BASE_URL` (a mirror, or a local server in tests).
    timeout : float
        Seconds to wait for the server on each connection and read.
    progress : bool
        Show pooch's progress bar (tqdm) for each file.

    Returns
    -------
    Path
        The dataset folder.

    Raises
    ------
    ValueError
        ``name`` is unknown.
    FetchError
        The server could not be reached or answered with an error, a file failed its
        checksum (:class:`ChecksumError`), or an existing folder does not verify. Nothing is
        left behind in the data directory.
    """
    source = _source(name)
    root = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    target = root / name
    if target.exists():
        problems = verify_dataset(target, name)
        if not problems:
            return target
        raise FetchError(
            f"{target} exists but does not hold the verified {name} files: "
            + "; ".join(problems)
            + ". Move or remove that folder, then fetch again."
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=root))
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # not pooch's line per file naming the temporary folder
    try:
        for filename in source.files:
            _download(name, filename, tmp, base_url, downloader)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset is ordinary data
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        logger.setLevel(level)
    return target
