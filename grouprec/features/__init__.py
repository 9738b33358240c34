"""Item-feature stage: item vectors from side information, and cold-start items (``05_item_features``).

Matrix factorisation (:mod:`grouprec.preference`) learns one free vector per item from that item's
interactions, so an item with none has nothing to learn from. When the catalogue describes every
item (a category, tags, a price, a text), a network can map those attributes to the item's vector
instead, and a new item is scored from its description on the day it arrives. Chapter 05
builds that hybrid model in three modules, and chapter 10 adds pretrained text encoders in a
fourth; every public name is importable from
:mod:`grouprec.features` itself:

=======================================================  ============================================
idea                                                     module
=======================================================  ============================================
item attributes to feature vectors:                      :mod:`grouprec.features.featurizer`
:class:`ItemFeaturizer`, TF-IDF (:func:`tokenize`,
:func:`term_counts`, :func:`inverse_document_frequency`),
:func:`normalise_blocks`
the hybrid model: :class:`ItemEncoder`,                  :mod:`grouprec.features.hybrid`
:class:`HybridMF`, :class:`ItemPoolSampler`,
:class:`HybridRecommender`
the content baseline and cold start:                     :mod:`grouprec.features.cold_start`
:class:`ContentRecommender`, :class:`ColdStartSplit`,
:func:`cold_start_split`, :func:`silhouette_score`,
:func:`linear_probe_r2`
item text to vectors (``10_large_models``):              :mod:`grouprec.features.text_encoders`
:class:`TextEncoder`, :class:`TfidfEncoder`,
:class:`SentenceEncoder` (optional extra ``lm``),
:class:`ConcatEncoder`, :class:`TextFeaturizer`
=======================================================  ============================================

Each module explains its part and lists its references.
"""

from grouprec.features.cold_start import (
    ColdStartSplit,
    ContentRecommender,
    cold_start_split,
    linear_probe_r2,
    silhouette_score,
)
from grouprec.features.featurizer import (
    ATTRIBUTE_COLUMNS,  # noqa: F401  (public, though not in __all__, as before the split)
    BLOCKS,
    ItemFeaturizer,
    inverse_document_frequency,
    normalise_blocks,
    term_counts,
    tokenize,
)
from grouprec.features.hybrid import HybridMF, HybridRecommender, ItemEncoder, ItemPoolSampler
from grouprec.features.text_encoders import (
    ConcatEncoder,
    SentenceEncoder,
    TextEncoder,
    TextFeaturizer,
    TfidfEncoder,
)

__all__ = [
    "BLOCKS",
    "ColdStartSplit",
    "ConcatEncoder",
    "ContentRecommender",
    "HybridMF",
    "HybridRecommender",
    "ItemEncoder",
    "ItemFeaturizer",
    "ItemPoolSampler",
    "SentenceEncoder",
    "TextEncoder",
    "TextFeaturizer",
    "TfidfEncoder",
    "cold_start_split",
    "inverse_document_frequency",
    "linear_probe_r2",
    "normalise_blocks",
    "silhouette_score",
    "term_counts",
    "tokenize",
]
