"""Evaluation stage, part 3: the course's one evaluation protocol, in two readings.

Every chapter and the case study measure a group recommender the same way, defined here once.

*As published* (:data:`AS_PUBLISHED`), the main reading, comparable with the papers:

* training data are the benchmark's training files, with exact repeats of a pair merged and
  rating-0 rows dropped (:func:`training_data`); nothing in training is changed using the test
  file;
* each test item is ranked against the negatives listed with it, ties counted by their expected
  rank, no item filtered;
* validation is carved out of training the same way: as many held-out pairs per entity as the
  benchmark's test holds (five on CAMRa2011, one on Mafengwo), each ranked against 100 negatives drawn from every other item (as the benchmark's lists were drawn, so
  they may hold items the entity consumed); every model, baseline, neural or GAN, is selected
  and early-stopped on NDCG@10 of these cases, unfiltered.

*Corrected* (:data:`CORRECTED`), a second reading of the same fitted models:

* test cases whose pair already occurs in training are dropped from evaluation (training is
  untouched; :func:`grouprec.data.drop_seen_test_cases` logs how many);
* items the entity consumed in training are excluded from the candidates (they score
  ``-inf``), so the question is only "which new item?".

The corrected reading never changes training data, so it cannot leak: the leak of the old
pipeline came from deleting test pairs from training and then filtering, which left the test
item as the one consumed item in the race.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from grouprec import metrics as M
from grouprec.constants import DEFAULT_KS, HELD_OUT_PER_ENTITY
from grouprec.data import (
    GroupDataset,
    benchmark_clean,
    drop_seen_test_cases,
    seen_test_cases,
    split_validation,
)
from grouprec.evaluation import ConsumedFilter, Recommender, case_metrics

__all__ = [
    "AS_PUBLISHED",
    "CORRECTED",
    "READINGS",
    "SELECTION_METRIC",
    "Reading",
    "evaluate_reading",
    "held_out_per_entity",
    "per_case_reading",
    "reading_cases",
    "training_data",
    "under_reading",
    "validation_data",
]

#: The validation metric every model is selected and early-stopped on.
SELECTION_METRIC = "NDCG@10"


@dataclass(frozen=True)
class Reading:
    """One reading of the evaluation protocol.

    Attributes
    ----------
    name : str
        ``"as published"`` or ``"corrected"``.
    drop_seen_test : bool
        Drop test cases whose pair occurs in training.
    filter_consumed : bool
        Score items the entity consumed in training ``-inf``.
    """

    name: str
    drop_seen_test: bool
    filter_consumed: bool


AS_PUBLISHED = Reading("as published", drop_seen_test=False, filter_consumed=False)
CORRECTED = Reading("corrected", drop_seen_test=True, filter_consumed=True)
READINGS = (AS_PUBLISHED, CORRECTED)


def training_data(raw: GroupDataset) -> GroupDataset:
    """The training data of the protocol: the files as published, rating-0 rows dropped and
    repeated pairs merged (what the original loaders do). The test file is not read."""
    return benchmark_clean(raw)


def held_out_per_entity(dataset: GroupDataset) -> int:
    """Validation pairs per entity: as many as the benchmark's test holds out
    (:data:`grouprec.constants.HELD_OUT_PER_ENTITY`, by dataset name), one for other data."""
    return HELD_OUT_PER_ENTITY.get(dataset.name, 1)


def validation_data(train: GroupDataset, seed: int = 0) -> GroupDataset:
    """``train`` with a validation split drawn like the benchmark's test: as many held-out pairs
    per entity as the test holds (:func:`held_out_per_entity`), for every entity with two or
    more further training items, each ranked against 100 negatives drawn from every other item."""
    return split_validation(train, seed=seed, n_val=held_out_per_entity(train), negatives="any")


def reading_cases(dataset: GroupDataset, reading: Reading, task: str = "group") -> GroupDataset:
    """``dataset`` with the test cases the reading evaluates (training untouched)."""
    if reading.drop_seen_test:
        return drop_seen_test_cases(dataset, (task,))
    return dataset


def under_reading(
    model: Recommender, dataset: GroupDataset, reading: Reading, task: str = "group"
) -> Recommender:
    """A fitted ``model`` as the reading scores it: with consumed items at ``-inf`` or not.

    GAN recommenders filter their own output (``filtered``); any other model is wrapped in
    :class:`grouprec.evaluation.ConsumedFilter`.
    """
    if hasattr(model, "filtered"):
        return model.filtered(reading.filter_consumed)
    if reading.filter_consumed:
        return ConsumedFilter.wrap(model, dataset, task)
    return model


def per_case_reading(
    model: Recommender,
    dataset: GroupDataset,
    reading: Reading,
    task: str = "group",
    split: str = "test",
    ks: Iterable[int] = DEFAULT_KS,
) -> pd.DataFrame:
    """Per-case metrics of a fitted model under a reading (tie-aware, listed negatives)."""
    cases = reading_cases(dataset, reading, task) if split == "test" else dataset
    scored = under_reading(model, dataset, reading, task)
    return case_metrics(scored, cases, task, split, "sampled", tuple(ks), "expected")


def evaluate_reading(
    model: Recommender,
    dataset: GroupDataset,
    reading: Reading,
    task: str = "group",
    split: str = "test",
    ks: Iterable[int] = DEFAULT_KS,
) -> pd.Series:
    """Mean metrics of a fitted model under a reading, with the number of cases evaluated and
    (corrected reading, test split) the number dropped because their pair occurs in training."""
    per_case = per_case_reading(model, dataset, reading, task, split, ks)
    out = per_case[M.metric_names(tuple(ks))].mean()
    out["cases"] = len(per_case)
    dropped = int(seen_test_cases(dataset, task).sum()) if reading.drop_seen_test else 0
    out["dropped"] = dropped if split == "test" else 0
    return out
