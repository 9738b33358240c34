"""Cross-check of grouprec.metrics against ranx, an independent implementation (tie-free inputs).

ranx ranks each query's run by score and uses the textbook definitions: hit_rate@k (a relevant
item in the top k), precision@k (hits / k), recall@k (hits / number of relevant items), ndcg@k
(binary gains, discount 1 / log2(rank + 1), ideal DCG over min(k, relevant) items) and mrr (no
cut-off). Without ties the three tie modes of grouprec must all give exactly these values. The
runs below always hold more than max(KS) candidates, as ranx divides precision@k by the run's
length when it is shorter than k.

ranx compiles its metrics with numba on first use (cached afterwards), so the inputs stay small.
"""

from __future__ import annotations

import numpy as np
import pytest

from grouprec import metrics as M

ranx = pytest.importorskip("ranx")

pytestmark = pytest.mark.filterwarnings("ignore:unsafe cast:Warning")  # numba, inside ranx

KS = (1, 3, 5, 10)
NAMES = {"HR": "hit_rate", "NDCG": "ndcg", "Precision": "precision", "Recall": "recall"}


def _ranx(relevant: list[set[int]], runs: list[dict[int, float]]) -> dict[str, np.ndarray]:
    """Per-query ranx values under grouprec's names; query i is row i."""
    qid = [f"q{i:04d}" for i in range(len(runs))]  # sorted order = row order
    qrels = ranx.Qrels({q: {f"d{j}": 1 for j in rel} for q, rel in zip(qid, relevant, strict=True)})
    run = ranx.Run(
        {q: {f"d{j}": float(s) for j, s in r.items()} for q, r in zip(qid, runs, strict=True)}
    )
    wanted = {f"{m}@{k}": f"{NAMES[m]}@{k}" for k in KS for m in NAMES}
    wanted["MRR"] = "mrr"
    values = ranx.evaluate(qrels, run, list(wanted.values()), return_mean=False)
    return {ours: np.asarray(values[theirs]) for ours, theirs in wanted.items()}


def _assert_same(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_metrics_equal_ranx(seed):
    rng = np.random.default_rng(seed)
    n, m = 60, 30
    scores = rng.permutation(n * (m + 1)).reshape(n, m + 1) / (n * (m + 1))  # all distinct
    pos, neg = scores[:, 0], scores[:, 1:]
    neg_mask = rng.random((n, m)) > 0.2
    neg_mask[:, : max(KS)] = True  # every run keeps more than max(KS) candidates
    runs = [{0: pos[i], **{j + 1: neg[i, j] for j in range(m) if neg_mask[i, j]}} for i in range(n)]
    theirs = _ranx([{0}] * n, runs)
    assert 0 < theirs["HR@10"].mean() < 1  # the draw has hits and misses
    for ties in M.TIES:
        ours = M.sampled_metrics(
            pos, neg, KS, ties, metrics="all", neg_mask=neg_mask, per_case=True
        )
        _assert_same(ours, theirs)


@pytest.mark.parametrize("seed", [0, 1])
def test_full_ranking_metrics_equal_ranx(seed):
    """Several relevant items per row (1 to 6), training items excluded from the candidates."""
    rng = np.random.default_rng(seed)
    n, n_items = 50, 40
    scores = np.stack([rng.permutation(n_items) for _ in range(n)]).astype(float)  # distinct
    relevant = np.zeros((n, n_items), dtype=bool)
    exclude = np.zeros((n, n_items), dtype=bool)
    for i in range(n):
        items = rng.permutation(n_items)
        n_rel, n_train = rng.integers(1, 7), rng.integers(0, 10)
        relevant[i, items[:n_rel]] = True
        exclude[i, items[n_rel : n_rel + n_train]] = True
    exclude[:, :3] = True  # also some relevant items: they stay candidates all the same
    runs = [
        {j: scores[i, j] for j in range(n_items) if relevant[i, j] or not exclude[i, j]}
        for i in range(n)
    ]
    assert min(len(r) for r in runs) > max(KS)
    theirs = _ranx([set(np.flatnonzero(r)) for r in relevant], runs)
    assert relevant.sum(axis=1).max() > 1 and 0 < theirs["Recall@5"].mean() < 1
    for ties in M.TIES:
        ours = M.full_ranking_metrics(
            scores, relevant, exclude, KS, ties, metrics="all", per_case=True
        )
        _assert_same(ours, theirs)
    means = M.full_ranking_metrics(scores, relevant, exclude, KS, metrics="all")
    assert means == pytest.approx({key: v.mean() for key, v in theirs.items()}, abs=1e-9)
