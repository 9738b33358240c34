"""Tests for the consensus model (grouprec.aggregation.consensus).

The graphs are checked against hand-computed matrices on a dataset small enough to write down;
the three views for their shapes, for what may and may not reach a group (members outside it,
a group without items, groups with nothing in common), and for their gradients in float64
(the hand-written backward of the sparse product against autograd, then a gradcheck of the
whole model); the recommender for training on training data only, determinism and learning.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from toy import two_tastes

from grouprec.aggregation import (
    Consensus,
    ConsensusRecommender,
    JointBatches,
    agree_step_loss,
    consensus_graphs,
)
from grouprec.aggregation.consensus import propagate
from grouprec.baselines import Popularity
from grouprec.data import EvalCases, GroupDataset, Interactions, split_validation
from grouprec.evaluation import evaluate

N_USERS, N_ITEMS = 7, 10


# ------------------------------------------------------------------------------------ fixtures


def make_dataset(group_items: dict[int, list[int]] | None = None, members=None) -> GroupDataset:
    """Two unconnected parts: groups 0 and 1 share user 1 and item 2; groups 2 and 3 share
    nothing with them (users 3-6, items 5-9); group 3 has no training item."""
    members = members or ([0, 1], [1, 2], [3, 4], [5, 6])
    group_items = group_items or {0: [0, 1, 2], 1: [2, 3], 2: [5, 6, 6], 3: []}
    entity = np.array([g for g, items in group_items.items() for _ in items], dtype=np.int64)
    item = np.array([i for items in group_items.values() for i in items], dtype=np.int64)
    user_items = {0: [0, 1], 1: [1, 2, 3], 2: [3, 4], 3: [5, 7], 4: [6, 7], 5: [8, 9], 6: [9, 5]}
    u_ent = np.array([u for u, items in user_items.items() for _ in items], dtype=np.int64)
    u_item = np.array([i for items in user_items.values() for i in items], dtype=np.int64)

    def cases(n: int, item: int) -> EvalCases:
        negatives = np.array([[i for i in range(N_ITEMS) if i != item][:3]] * n, dtype=np.int64)
        return EvalCases(np.arange(n, dtype=np.int64), np.full(n, item, np.int64), negatives)

    return GroupDataset(
        name="parts",
        n_users=N_USERS,
        n_items=N_ITEMS,
        n_groups=len(members),
        group_members=tuple(np.array(m, dtype=np.int64) for m in members),
        user_train=Interactions(u_ent, u_item),
        user_test=cases(N_USERS, 4),
        group_train=Interactions(entity, item),
        group_test=cases(len(members), 4),
    )


def graphs_of(ds: GroupDataset) -> dict[str, torch.Tensor]:
    return consensus_graphs(ds.group_members, ds.group_train, ds.n_users, ds.n_items)


def dense(graphs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.to_dense().double().numpy() for k, v in graphs.items()}


def random_model(ds: GroupDataset, seed: int = 1, **kwargs) -> Consensus:
    """A float64 Consensus whose every parameter is random, so that no term can hide."""
    torch.manual_seed(seed)
    params = {"d": 3, "layers": 2, **kwargs}
    model = Consensus(ds.n_users, ds.n_items, ds.n_groups, graphs_of(ds), **params).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.7)
    return model


@pytest.fixture(scope="module")
def parts() -> GroupDataset:
    return make_dataset()


@pytest.fixture(scope="module")
def toy() -> GroupDataset:
    return two_tastes()


# ------------------------------------------------------------------------------------ graphs


def test_graphs_are_the_hand_computed_matrices(parts):
    A = dense(graphs_of(parts))
    H_U = np.zeros((4, N_USERS))
    for g, m in enumerate(parts.group_members):
        H_U[g, m] = 1
    H_I = np.zeros((4, N_ITEMS))
    H_I[0, [0, 1, 2]] = H_I[1, [2, 3]] = H_I[2, [5, 6]] = 1  # the repeated pair (2, 6) once
    np.testing.assert_allclose(A["members"], H_U / 2)  # every group has 2 members
    np.testing.assert_allclose(A["items"][:3], H_I[:3] / H_I[:3].sum(1, keepdims=True))
    np.testing.assert_array_equal(A["items"][3], 0)  # no training item: an empty row
    H = np.hstack([H_U, H_I])  # (G, U + I)
    deg_v = H.sum(0)
    np.testing.assert_allclose(A["nodes"], H.T / np.maximum(deg_v, 1)[:, None])
    assert A["nodes"][N_USERS + 4].sum() == 0  # item 4 is on no hyperedge
    # LightGCN normalisation: entry (g, G + j) = 1 / sqrt(deg g * deg j)
    deg_g, deg_i = H_I.sum(1), H_I.sum(0)
    assert A["bipartite"][0, 4 + 2] == pytest.approx(1 / np.sqrt(3 * 2))
    assert A["bipartite"][4 + 2, 1] == pytest.approx(1 / np.sqrt(2 * deg_i[2]))
    np.testing.assert_allclose(A["bipartite"], A["bipartite"].T)
    assert A["bipartite"][:4, :4].sum() == 0 and deg_g[3] == 0
    # overlap: N_0 = {u0, u1, i0, i1, i2}, N_1 = {u1, u2, i2, i3}: |cap| 2, |cup| 7
    w = 2 / 7
    expected = np.eye(4)
    expected[0, 0], expected[0, 1] = 1 / (1 + w), w / (1 + w)
    expected[1, 1], expected[1, 0] = 1 / (1 + w), w / (1 + w)
    np.testing.assert_allclose(A["overlap"], expected)
    for name in ("members", "items", "nodes", "bipartite", "overlap"):
        np.testing.assert_array_equal(A[f"{name}_T"], A[name].T)


def test_graphs_are_built_from_training_pairs_only(parts):
    base = dense(graphs_of(parts))
    # other test cases and a validation split change nothing but what they take from training
    other_test = EvalCases(
        np.arange(4, dtype=np.int64), np.array([9, 8, 7, 9]), np.tile(np.arange(3), (4, 1))
    )
    changed = replace(parts, group_test=other_test, user_test=replace(parts.user_test))
    for name, m in dense(graphs_of(changed)).items():
        np.testing.assert_array_equal(m, base[name], err_msg=name)
    split = split_validation(parts, seed=0, n_negatives=3, min_train=1)
    held = split.group_val
    assert held is not None and len(held)
    built = dense(graphs_of(split))["items"]
    assert (built[held.entity, held.item] == 0).all()  # a validation pair is not in the graph
    np.testing.assert_array_equal(built > 0, split.train_matrix("group").toarray() > 0)


def test_the_recommender_builds_its_graphs_from_the_dataset_it_is_fitted_on(toy):
    rec = ConsensusRecommender(d=4, layers=1, epochs=1, batch_size=64).fit(toy, "group")
    items = rec.model_.graph_items.to_dense().numpy()
    np.testing.assert_array_equal(items > 0, toy.train_matrix("group").toarray() > 0)
    test = toy.group_test
    assert (items[test.entity, test.item] == 0).all()
    assert (items[toy.group_val.entity, toy.group_val.item] == 0).all()


def test_graphs_reject_bad_input(parts):
    with pytest.raises(ValueError, match="group_members"):
        consensus_graphs((np.array([0]), np.array([N_USERS])), parts.group_train, N_USERS, 10)
    with pytest.raises(ValueError, match=r"group_members\[1\] is empty"):
        consensus_graphs((np.array([0]), np.array([], dtype=np.int64)), parts.group_train, 7, 10)
    with pytest.raises(ValueError, match="group_train.item"):
        consensus_graphs(parts.group_members, parts.group_train, N_USERS, 5)
    graphs = graphs_of(parts)
    with pytest.raises(ValueError, match=r"graphs\['overlap'\] must be a sparse CSR tensor"):
        Consensus(N_USERS, N_ITEMS, 4, {**graphs, "overlap": graphs["overlap"].to_dense()})
    with pytest.raises(ValueError, match="graphs must be the dict"):
        Consensus(N_USERS, N_ITEMS, 4, {"members": graphs["members"]})
    with pytest.raises(ValueError, match="predictor must be one of"):
        Consensus(N_USERS, N_ITEMS, 4, graphs, predictor="cosine")
    with pytest.raises(ValueError, match="predictor must be one of"):
        ConsensusRecommender(predictor="cosine")
    with pytest.raises(ValueError, match="layers must be an integer >= 0"):
        ConsensusRecommender(layers=-1)


# ------------------------------------------------------------------------------------ views


@pytest.mark.parametrize("predictor", ["dot", "mlp"])
def test_every_view_has_its_shape(parts, predictor):
    model = random_model(parts, predictor=predictor, d=5)
    v = model.views()
    G, d = parts.n_groups, 5
    for name in ("member", "item", "group", "fused"):
        assert v[name].shape == (G, d), name
    assert v["items"].shape == (N_ITEMS, d)
    assert v["gates"].shape == (G, 3) and bool(((v["gates"] > 0) & (v["gates"] < 1)).all())
    gates = v["gates"]
    fused = gates[:, :1] * v["member"] + gates[:, 1:2] * v["item"] + gates[:, 2:] * v["group"]
    torch.testing.assert_close(v["fused"], fused)
    groups, items = torch.tensor([0, 3, 1]), torch.tensor([[0, 1], [2, 9], [4, 4]])
    y = model(groups, items)
    assert y.shape == (3, 2)
    torch.testing.assert_close(model(groups, items[:, 0]), y[:, 0])
    torch.testing.assert_close(y, model.predict(v["fused"][groups][:, None], v["items"][items]))
    users = torch.tensor([0, 6, 2])
    assert model.score_users(users, items).shape == (3, 2)
    assert model.score_users(users, items[:, 1]).shape == (3,)
    with pytest.raises(ValueError, match=r"groups must have shape \(B,\)"):
        model(groups[:, None], items)
    with pytest.raises(IndexError, match="items holds id 15"):
        model(groups, items + 6)


def test_zero_layers_keep_the_embeddings(parts):
    model = random_model(parts, layers=0)
    v = model.views()
    for name in ("member", "item", "group"):
        torch.testing.assert_close(v[name], model.E.weight)
    torch.testing.assert_close(v["items"], model.Q.weight)


def test_views_match_the_formulas_written_with_dense_matrices(parts):
    model = random_model(parts, layers=2)
    A = {k: torch.from_numpy(m) for k, m in dense(graphs_of(parts)).items()}
    E, P, Q = model.E.weight, model.P.weight, model.Q.weight
    E_G = E + A["overlap"] @ E + A["overlap"] @ A["overlap"] @ E
    x = torch.cat([E, Q])
    E_I = ((x + A["bipartite"] @ x + A["bipartite"] @ A["bipartite"] @ x) / 3)[:4]
    x_u, x_i, E_M, items = P, Q, E, Q
    for W in model.W_hyper:
        m_u, m_i = A["members"] @ x_u, A["items"] @ x_i
        m = torch.cat([m_u, m_i, m_i * E_G], 1) @ W.weight.T + W.bias
        x = A["nodes"] @ m
        x_u, x_i = x[:N_USERS], x[N_USERS:]
        E_M, items = E_M + m, items + x_i
    v = model.views()
    for name, ref in [("group", E_G), ("item", E_I), ("member", E_M), ("items", items)]:
        torch.testing.assert_close(v[name], ref, rtol=1e-12, atol=1e-12, msg=name)


def jacobian_rows(model: Consensus, view: str, group: int, weight: str) -> np.ndarray:
    """Which rows of the embedding table ``weight`` the view of ``group`` depends on."""
    table = getattr(model, weight).weight
    (grad,) = torch.autograd.grad(model.views()[view][group].sum(), table, allow_unused=True)
    if grad is None:
        return np.zeros(table.shape[0], dtype=bool)
    return (grad.abs().sum(1) > 0).numpy()


def test_members_outside_a_group_contribute_nothing_to_its_member_view(parts):
    model = random_model(parts, layers=1).requires_grad_(True)
    for g, members in enumerate(parts.group_members):
        rows = jacobian_rows(model, "member", g, "P")
        np.testing.assert_array_equal(np.flatnonzero(rows), np.sort(members), err_msg=f"g={g}")
    items = jacobian_rows(model, "member", 0, "Q")
    np.testing.assert_array_equal(np.flatnonzero(items), [0, 1, 2])
    assert not jacobian_rows(model, "member", 3, "Q").any()  # no training item: no item message


def test_a_group_does_not_change_with_an_unrelated_group_s_data(parts):
    model = random_model(parts, layers=3)
    before = model.views()
    # group 2 takes other items and a new member, all within its own part of the data
    other = make_dataset(
        group_items={0: [0, 1, 2], 1: [2, 3], 2: [7, 8, 9], 3: [9]},
        members=([0, 1], [1, 2], [3, 4, 5], [5, 6]),
    )
    changed = Consensus(N_USERS, N_ITEMS, 4, graphs_of(other), d=3, layers=3).double()
    changed.load_state_dict(model.state_dict())
    after = changed.views()
    for name in ("member", "item", "group", "fused"):
        torch.testing.assert_close(after[name][:2], before[name][:2], rtol=0, atol=0, msg=name)
        assert not torch.allclose(after[name][2:], before[name][2:]), name
    torch.testing.assert_close(after["items"][:5], before["items"][:5], rtol=0, atol=0)


def test_groups_that_overlap_reach_each_other_through_the_group_level_graph(parts):
    """Group 2 shares one member with group 0 (and nothing else): that link, and only that,
    now reaches group 0 through the overlap graph."""
    model = random_model(parts, layers=1).requires_grad_(True)
    linked = make_dataset(members=([0, 1], [1, 2], [3, 4, 0], [5, 6]))
    other = Consensus(N_USERS, N_ITEMS, 4, graphs_of(linked), d=3, layers=1).double()
    other.load_state_dict(model.state_dict())
    assert not jacobian_rows(model, "group", 0, "E")[2]
    assert jacobian_rows(other, "group", 0, "E")[2]
    # the member view now carries user 0 into group 2 as a member, the item view is unchanged
    assert jacobian_rows(other, "member", 2, "P")[0]
    torch.testing.assert_close(other.views()["item"], model.views()["item"])


# ------------------------------------------------------------------------------------ gradients


def test_the_hand_written_backward_of_the_sparse_product_matches_autograd():
    rng = np.random.default_rng(0)
    # float32-representable values: the graphs are stored in float32, then cast to float64
    A = ((rng.random((6, 4)) < 0.5) * rng.normal(size=(6, 4))).astype(np.float32).astype(float)
    A_sp = {k: v.double() for k, v in _csr_pair(A).items()}
    X = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    dY = torch.tensor(rng.normal(size=(6, 3)))
    Y = propagate(A_sp["A"], A_sp["A_T"], X)
    (dX,) = torch.autograd.grad(Y, X, dY)
    X_ref = X.detach().clone().requires_grad_(True)
    Y_ref = torch.from_numpy(A) @ X_ref  # the same product, dense, differentiated by autograd
    (dX_ref,) = torch.autograd.grad(Y_ref, X_ref, dY)
    for name, mine, ref in [("Y", Y, Y_ref), ("dX", dX, dX_ref)]:
        diff = float((mine - ref).detach().abs().max())
        print(f"{name}: exact {torch.equal(mine, ref)}, max |diff| {diff:.1e}")
        assert diff < 1e-12, name
    assert torch.autograd.gradcheck(lambda x: propagate(A_sp["A"], A_sp["A_T"], x), (X,))


def _csr_pair(A: np.ndarray) -> dict[str, torch.Tensor]:
    import scipy.sparse as sp

    from grouprec.aggregation.consensus import _to_torch

    return {"A": _to_torch(sp.csr_matrix(A)), "A_T": _to_torch(sp.csr_matrix(A.T))}


@pytest.mark.parametrize("predictor", ["dot", "mlp"])
def test_gradcheck_of_the_whole_model_in_float64(parts, predictor):
    model = random_model(parts, layers=2, predictor=predictor)
    names = [n for n, _ in model.named_parameters()]
    groups, items = torch.tensor([0, 1, 2, 3]), torch.tensor([[0, 4], [2, 3], [5, 9], [1, 7]])

    def scores(*params):
        return torch.func.functional_call(
            model, dict(zip(names, params, strict=True)), (groups, items)
        )

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    assert torch.autograd.gradcheck(scores, inputs)


@pytest.mark.parametrize("predictor", ["dot", "mlp"])
def test_every_parameter_receives_a_gradient_from_the_joint_loss(parts, predictor):
    model = random_model(parts, layers=2, predictor=predictor).requires_grad_(True)
    batches = JointBatches(parts.group_train, parts.user_train, N_ITEMS, n_neg=2, batch_size=100)
    (batch,) = list(batches(1, np.random.default_rng(0)))
    agree_step_loss(model, batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


# ------------------------------------------------------------------------------------ training


def test_same_seed_same_scores_and_another_seed_other_scores(toy):
    def scores(seed: int) -> np.ndarray:
        rec = ConsensusRecommender(d=6, layers=2, epochs=3, batch_size=64, seed=seed)
        return rec.fit(toy, "group").score_all(np.arange(toy.n_groups))

    first = scores(3)
    np.testing.assert_array_equal(first, scores(3))
    assert not np.allclose(first, scores(4))


def test_it_learns_the_toy_better_than_popularity(toy):
    rec = ConsensusRecommender(d=8, layers=2, epochs=20, lr=0.02, batch_size=64, seed=0)
    rec.fit(toy, "group")
    assert rec.history_.best_epoch is not None and rec.history_.loss[-1] < rec.history_.loss[0]
    ours = evaluate(rec, toy, "group").iloc[0]
    popular = evaluate(Popularity().fit(toy, "group"), toy, "group").iloc[0]
    print(f"NDCG@5 {ours['NDCG@5']:.3f} against popularity's {popular['NDCG@5']:.3f}")
    assert ours["NDCG@5"] > popular["NDCG@5"] + 0.1
    # users are trained jointly: the same fit ranks items for users, better than popularity
    users = evaluate(rec.as_task("user"), toy, "user").iloc[0]
    popular_u = evaluate(Popularity().fit(toy, "user"), toy, "user").iloc[0]
    assert users["NDCG@5"] > popular_u["NDCG@5"]


def test_scores_and_views_of_the_recommender(toy):
    rec = ConsensusRecommender(d=4, layers=1, epochs=2, batch_size=64).fit(toy, "group")
    v = rec.views()
    assert v["fused"].shape == (toy.n_groups, 4) and v["fused"].dtype == np.float32
    groups = np.array([0, 5, 11])
    items = np.array([[0, 1, 2], [3, 4, 5], [29, 0, 7]])
    expected = (v["fused"][groups][:, None, :] * v["items"][items]).sum(-1)
    np.testing.assert_allclose(rec.score(groups, items), expected, rtol=1e-5, atol=1e-6)
    users = rec.as_task("user")
    assert users.task_ == "user" and users.n_entities_ == toy.n_users and rec.task_ == "group"
    u = np.array([0, 39])
    P, Q = rec.model_.P.weight.detach().numpy(), rec.model_.Q.weight.detach().numpy()
    np.testing.assert_allclose(
        users.score(u, items[:2]), (P[u][:, None] * Q[items[:2]]).sum(-1), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="task must be"):
        rec.as_task("item")
