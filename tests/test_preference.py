"""Tests for grouprec.preference: BPR loss, MF, NeuMF and the BPR recommender."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grouprec import scratch
from grouprec.data import (
    EvalCases,
    GroupDataset,
    Interactions,
    benchmark_clean,
    split_validation,
)
from grouprec.preference import MF, BPRRecommender, NeuMF, bpr_loss, bpr_step_loss
from grouprec.training import TripletBatches, fit, load_checkpoint, save_checkpoint

# ---------------------------------------------------------------- the BPR loss


def test_bpr_loss_matches_the_formula_in_float64():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    neg = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    loss = bpr_loss(pos, neg)
    x_uij = pos.detach()[:, None] - neg.detach()  # detached: the reference is built by hand
    expected = -torch.log(torch.sigmoid(x_uij)).mean()
    assert torch.allclose(loss, expected, rtol=0, atol=1e-14)
    loss.backward()
    # ∂L/∂x̂_ui = -Σ_j σ(-x̂_uij) / (B m) and ∂L/∂x̂_uj = σ(-x̂_uij) / (B m)
    d_neg = torch.sigmoid(-x_uij) / x_uij.numel()
    assert torch.allclose(neg.grad, d_neg, rtol=0, atol=1e-15)
    assert torch.allclose(pos.grad, -d_neg.sum(1), rtol=0, atol=1e-15)


def test_bpr_loss_is_bce_on_score_differences():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(7, generator=g), torch.randn(7, generator=g)
    bce = F.binary_cross_entropy_with_logits(pos - neg, torch.ones(7))
    assert torch.allclose(bpr_loss(pos, neg), bce, atol=1e-7)


def test_bpr_loss_agrees_with_the_scratch_version():
    g = torch.Generator().manual_seed(2)
    x_ui = torch.randn(6, dtype=torch.float64, generator=g, requires_grad=True)
    x_uj = torch.randn(6, dtype=torch.float64, generator=g)
    ours = bpr_loss(x_ui, x_uj)
    ours.backward()
    # detached: the scratch layer computes values only and must not see the graph
    layer = scratch.BPRLoss()
    theirs = layer.forward(x_ui.detach(), x_uj)
    d_ui, _ = layer.backward(1.0)
    assert abs(ours.item() - theirs.item()) < 1e-14
    assert torch.allclose(x_ui.grad, d_ui, rtol=0, atol=1e-15)


def test_bpr_loss_is_stable_for_large_differences():
    pos = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    neg = torch.zeros(2)
    loss = bpr_loss(pos, neg)
    loss.backward()
    assert loss.item() == pytest.approx(500.0)  # (1000 + 0) / 2, not inf
    assert torch.isfinite(pos.grad).all()


def test_bpr_loss_pairs_each_positive_with_its_own_row():
    pos = torch.tensor([0.0, 10.0])
    neg = torch.tensor([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])  # B = 2 != m = 3
    assert bpr_loss(pos, neg).item() == pytest.approx(np.log(2))


@pytest.mark.parametrize("pos_shape, neg_shape", [((3, 1), (3,)), ((3,), (4,)), ((3,), (3, 2, 1))])
def test_bpr_loss_rejects_bad_shapes(pos_shape, neg_shape):
    with pytest.raises(ValueError, match="pos must have shape"):
        bpr_loss(torch.zeros(pos_shape), torch.zeros(neg_shape))


# ---------------------------------------------------------------- MF and NeuMF


@pytest.mark.parametrize("item_bias", [True, False])
def test_mf_scores_and_shapes(item_bias):
    torch.manual_seed(0)
    model = MF(5, 9, d=4, item_bias=item_bias)
    if item_bias:
        torch.nn.init.normal_(model.beta.weight)
    u = torch.tensor([0, 3, 4])
    i = torch.tensor([1, 8, 0])
    expected = (model.P.weight[u] * model.Q.weight[i]).sum(1)
    if item_bias:
        expected = expected + model.beta.weight[i, 0]
    assert torch.allclose(model(u, i), expected)
    items = torch.tensor([[1, 2], [8, 7], [0, 0]])
    scores = model(u[:, None], items)
    assert scores.shape == (3, 2)
    assert torch.allclose(scores[:, 0], expected)
    assert model.P.weight.shape == (5, 4) and model.Q.weight.shape == (9, 4)


def test_mf_equals_the_scratch_model_in_float64():
    g = torch.Generator().manual_seed(3)
    ref = scratch.MatrixFactorization(6, 11, d=4, generator=g, dtype=torch.float64)
    model = MF(6, 11, d=4).double()
    with torch.no_grad():
        model.P.weight.copy_(ref.P.E)
        model.Q.weight.copy_(ref.Q.E)
        model.beta.weight.copy_(ref.beta.E)
    u = torch.tensor([0, 2, 5, 2])
    i = torch.tensor([1, 3, 10, 3])
    j = torch.tensor([4, 0, 1, 7])
    loss = bpr_loss(model(u, i), model(u, j))
    loss.backward()
    # Scratch: score positives and negatives as one (B, 2) candidate list.
    layer = scratch.BPRLoss()
    X = ref.forward(u, torch.stack([i, j], 1))  # (B, 2)
    ref_loss = layer.forward(X[:, 0], X[:, 1])
    d_ui, d_uj = layer.backward(1.0)
    ref.backward(torch.stack([d_ui, d_uj], 1))
    assert abs(loss.item() - ref_loss.item()) < 1e-14
    dP, dQ, dbeta = ref.grads()
    assert torch.allclose(model.P.weight.grad, dP, rtol=0, atol=1e-14)
    assert torch.allclose(model.Q.weight.grad, dQ, rtol=0, atol=1e-14)
    assert torch.allclose(model.beta.weight.grad, dbeta, rtol=0, atol=1e-14)


def test_neumf_shapes_and_broadcasting():
    torch.manual_seed(0)
    model = NeuMF(5, 9, d=8)
    assert model.config["hidden"] == [8, 4]
    assert [m.out_features for m in model.mlp if isinstance(m, torch.nn.Linear)] == [8, 4]
    assert model.h.in_features == 8 + 4
    u = torch.tensor([0, 3, 4])
    items = torch.tensor([[1, 2, 5], [8, 7, 6], [0, 0, 3]])
    scores = model(u[:, None], items)
    assert scores.shape == (3, 3)
    one_by_one = torch.stack([model(u, items[:, c]) for c in range(3)], 1)
    assert torch.allclose(scores, one_by_one, atol=1e-6)
    custom = NeuMF(5, 9, d=4, hidden=[16, 8, 2])
    assert custom(u, items[:, 0]).shape == (3,) and custom.h.in_features == 4 + 2


def test_neumf_uses_both_towers():
    torch.manual_seed(0)
    model = NeuMF(20, 30, d=8)
    u, i, j = torch.arange(20), torch.arange(20), torch.arange(20, 30).repeat(2)[:, None]
    bpr_step_loss(model, (u, i, j)).backward()
    for name in ("P_G", "Q_G", "P_M", "Q_M"):
        assert getattr(model, name).weight.grad.abs().sum() > 0, name
    assert model.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [MF, NeuMF])
def test_models_reject_bad_ids_and_sizes(cls):
    model = cls(3, 4, d=2)
    with pytest.raises(IndexError, match="u holds id 3"):
        model(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(IndexError, match="i holds id -1"):
        model(torch.tensor([0]), torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="d must be an integer >= 1, got 0"):
        cls(3, 4, d=0)
    with pytest.raises(ValueError, match="n_items"):
        cls(3, 0)


def test_neumf_rejects_empty_hidden():
    with pytest.raises(ValueError, match="hidden"):
        NeuMF(3, 4, hidden=[])


@pytest.mark.parametrize("cls", [MF, NeuMF])
def test_model_checkpoint_round_trip(cls, tmp_path):
    torch.manual_seed(0)
    model = cls(7, 12, d=4)
    train = Interactions(np.arange(7, dtype=np.int64), np.arange(7, dtype=np.int64) + 2)
    fit(model, bpr_step_loss, TripletBatches(train, 12), epochs=3, lr=0.05, progress=False)
    path = save_checkpoint(model, tmp_path / "model.pt", best_epoch=3)
    fresh = cls(**torch.load(path, weights_only=True)["meta"]["config"])
    meta = load_checkpoint(fresh, path)
    assert meta == {"config": model.config, "best_epoch": 3}
    u, items = torch.arange(7)[:, None], torch.arange(12).expand(7, 12)
    assert torch.equal(fresh(u, items), model(u, items))


# ---------------------------------------------------------------- the recommender


def toy_dataset(n_users: int = 8, n_items: int = 16, seed: int = 0) -> GroupDataset:
    """Two taste clusters: even users like items 0..7, odd users items 8..15 (6 of the 8 each)."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        liked = rng.choice(8, size=6, replace=False) + (0 if u % 2 == 0 else 8)
        users += [u] * 6
        items += liked.tolist()
    train = Interactions(np.array(users, np.int64), np.array(items, np.int64))
    members = (np.array([0, 2]), np.array([1, 3, 5]))
    group_train = Interactions(np.array([0, 0, 1, 1]), np.array([0, 1, 8, 9]))
    test = EvalCases(np.array([0]), np.array([2]), np.array([[9, 10]]))
    group_test = EvalCases(np.array([0]), np.array([2]), np.array([[9, 10]]))
    return GroupDataset("toy", n_users, n_items, 2, members, train, test, group_train, group_test)


@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_recommender_overfits_a_tiny_dataset(model):
    ds = toy_dataset()
    rec = BPRRecommender(model=model, d=8, epochs=200, lr=0.05, n_neg=4, patience=None)
    rec.fit(ds, "user")
    assert rec.history_.best_epoch is None  # no validation split: all epochs are run
    assert rec.history_.epochs == 200 and rec.history_.loss[-1] < 0.05
    users = np.arange(ds.n_users)
    scores = rec.score(users, np.tile(np.arange(ds.n_items), (ds.n_users, 1)))
    assert scores.shape == (8, 16) and scores.dtype == np.float32
    positive = ds.train_matrix("user").toarray().astype(bool)
    for u in users:  # every training positive above every other item
        assert scores[u][positive[u]].min() > scores[u][~positive[u]].max()


def test_recommender_is_deterministic_given_the_seed():
    ds = split_validation(toy_dataset(), seed=0, n_negatives=5)
    candidates = np.tile(np.arange(ds.n_items), (ds.n_users, 1))
    users = np.arange(ds.n_users)

    def scores(seed):
        rec = BPRRecommender(d=4, epochs=5, lr=0.05, seed=seed).fit(ds, "user")
        return rec.score(users, candidates), rec.history_

    (a, ha), (b, hb), (c, _) = scores(0), scores(0), scores(1)
    assert np.array_equal(a, b) and ha.loss == hb.loss and ha.val == hb.val
    assert not np.array_equal(a, c)


def test_recommender_validates_on_the_val_split_and_stops_early():
    ds = split_validation(toy_dataset(), seed=0, n_negatives=5)
    rec = BPRRecommender(d=4, epochs=50, lr=0.05, patience=2).fit(ds, "user")
    h = rec.history_
    assert len(h.val) == h.epochs and set(h.val[0]) == {"HR@5", "NDCG@5", "HR@10", "NDCG@10"}
    assert h.best["NDCG@10"] == max(v["NDCG@10"] for v in h.val)
    assert h.stopped_early and h.epochs == h.best_epoch + 2


def test_recommender_group_task_treats_groups_as_entities():
    ds = toy_dataset()
    rec = BPRRecommender(d=4, epochs=3).fit(ds, "group")
    assert rec.model_.P.num_embeddings == ds.n_groups and rec.task_ == "group"
    assert rec.score(np.array([0, 1]), np.array([[0, 1, 2], [3, 4, 5]])).shape == (2, 3)


@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_recommender_scores_in_chunks_like_one_call(model, monkeypatch):
    import grouprec.preference as pref

    ds = toy_dataset()
    rec = BPRRecommender(model=model, d=4, epochs=2).fit(ds, "user")
    users = np.arange(ds.n_users)
    items = np.tile(np.arange(ds.n_items), (ds.n_users, 1))  # (8, 16)
    with torch.no_grad():
        direct = rec.model_(torch.from_numpy(users)[:, None], torch.from_numpy(items)).numpy()
    monkeypatch.setattr(pref, "_SCORE_CELLS", 40)  # 2 rows of 16 items per forward call
    np.testing.assert_allclose(rec.score(users, items), direct, rtol=0, atol=1e-6)
    assert rec.score(users[:0], items[:0]).shape == (0, 16)


def test_recommender_bad_input():
    with pytest.raises(ValueError, match="model must be one of"):
        BPRRecommender(model="gmf")
    with pytest.raises(ValueError, match="n_neg"):
        BPRRecommender(n_neg=0)
    rec = BPRRecommender()
    with pytest.raises(RuntimeError, match="call fit"):
        rec.score(np.array([0]), np.array([[0]]))
    with pytest.raises(ValueError, match="task must be one of"):
        rec.fit(toy_dataset(), "users")
    rec = BPRRecommender(d=2, epochs=1).fit(toy_dataset(), "user")
    with pytest.raises(ValueError, match=r"entities must have shape \(n,\)"):
        rec.score(np.array([0, 1]), np.array([0, 1]))


def test_recommender_params_and_repr():
    rec = BPRRecommender(model="neumf", d=16, hidden=[8])
    params = rec.get_params()
    assert params["model"] == "neumf" and params["d"] == 16 and params["hidden"] == (8,)
    assert BPRRecommender(**params).get_params() == params
    assert repr(rec).startswith("BPRRecommender(model='neumf', d=16,")
    assert rec.name == "NeuMF-BPR" and BPRRecommender().name == "MF-BPR"


# ---------------------------------------------------------------- real data


def test_mf_learns_camra2011_user_preferences(camra):
    ds = split_validation(benchmark_clean(camra), seed=0)
    rec = BPRRecommender(d=16, epochs=3, lr=0.01).fit(ds, "user")
    # Random scores give NDCG@10 of about 0.05 with 100 negatives; popularity alone gives more.
    assert rec.history_.best["NDCG@10"] > 0.4
    assert rec.history_.loss[-1] < rec.history_.loss[0]
