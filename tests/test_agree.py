"""Tests for the learned aggregation (AGREE) and RuleRecommender in grouprec.aggregation.

AGREE is checked against a slow reference written one group, one candidate and one member at a
time with the paper's formulas (concatenated prediction input, softmax over the real members
only), in float64, for scores, attention weights and every parameter's gradient of the BPR loss.
Then its invariances (padding, member order, one-member groups), the mixed batches, the
recommender interface, checkpoints, and RuleRecommender's normalisation, say and tie handling.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

import grouprec.data as D
from grouprec.aggregation import (
    AGREE,
    LIST_RULES,
    RULES,
    AGREERecommender,
    JointBatches,
    RuleRecommender,
    aggregate,
    agree_step_loss,
    top_k,
)
from grouprec.data import EvalCases, GroupDataset, Interactions
from grouprec.evaluation import evaluate
from grouprec.metrics import sampled_metrics
from grouprec.preference import bpr_loss
from grouprec.training import fit, load_checkpoint, read_checkpoint, save_checkpoint

SYNTHETIC = "data/synthetic_ecommerce"


# ------------------------------------------------------------------------------------ fixtures


def make_dataset(seed: int = 0, n_users: int = 14, n_items: int = 30) -> GroupDataset:
    """A small random dataset: groups of 1 to 4 members, every user and group with 4-8 items."""
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 4, 2, 3]
    members = tuple(np.sort(rng.choice(n_users, size=s, replace=False)) for s in sizes)

    def interactions(n: int) -> Interactions:
        counts = rng.integers(4, 9, size=n)
        entity = np.repeat(np.arange(n), counts)
        item = np.concatenate([rng.choice(n_items, size=k, replace=False) for k in counts])
        return Interactions(entity.astype(np.int64), item.astype(np.int64))

    def test_cases(train: Interactions, n: int) -> EvalCases:
        sampler = D.NegativeSampler(train, n_items)
        entity = np.arange(n, dtype=np.int64)
        item = sampler.sample(entity, 1, rng)[:, 0]  # (n,) an item outside training
        negatives = np.stack(
            [rng.permutation(np.setdiff1d(np.arange(n_items), i))[:10] for i in item]
        )
        return EvalCases(entity, item, negatives.astype(np.int64))

    user_train, group_train = interactions(n_users), interactions(len(sizes))
    ds = GroupDataset(
        name="tiny",
        n_users=n_users,
        n_items=n_items,
        n_groups=len(sizes),
        group_members=members,
        user_train=user_train,
        user_test=test_cases(user_train, n_users),
        group_train=group_train,
        group_test=test_cases(group_train, len(sizes)),
    )
    return D.split_validation(ds, seed=seed, n_negatives=10)


@pytest.fixture(scope="module")
def tiny() -> GroupDataset:
    return make_dataset()


@pytest.fixture(scope="module")
def synthetic() -> GroupDataset:
    return D.split_validation(D.load_dataset(SYNTHETIC), seed=0)


def random_model(ds: GroupDataset, seed: int = 1, grad: bool = False, **kwargs) -> AGREE:
    """An AGREE in float64 whose every parameter is random (E too), so no term can hide."""
    ids, mask = ds.member_padded()
    torch.manual_seed(seed)
    model = AGREE(
        ds.n_users,
        ds.n_items,
        ds.n_groups,
        ids.shape[1],
        d=6,
        attention_dim=5,
        hidden=4,
        members=ids,
        member_mask=mask,
        **kwargs,
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.7)
    return model.requires_grad_(grad)  # gradients only where a test checks them


# ---------------------------------------------------------------------- reference (slow, exact)


def reference_group_score(model: AGREE, g: int, members: list[int], j: int) -> tuple:
    """The paper's formulas for one group and one candidate, member by member."""
    p = model.P.weight[members]  # (n, d)
    q = model.Q.weight[j]  # (d,)
    o = torch.stack(
        [
            model.h.weight[0]
            @ torch.relu(model.W_p.weight @ p_u + model.W_q.weight @ q + model.W_q.bias)
            for p_u in p
        ]
    )  # (n,)
    alpha = torch.exp(o - o.max()) / torch.exp(o - o.max()).sum()  # softmax over real members
    g_j = (alpha[:, None] * p).sum(0) + model.E.weight[g]
    return reference_predict(model, g_j, q), alpha


def reference_predict(model: AGREE, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    z = torch.cat([x * q, x, q])  # the concatenated input of the paper
    return (
        model.w_2.weight[0] @ torch.relu(model.W_1.weight @ z + model.W_1.bias) + model.w_2.bias[0]
    )


# ------------------------------------------------------------------------------ AGREE, formulas


def test_scores_and_attention_match_the_paper_formulas_in_float64(tiny):
    model = random_model(tiny)
    rng = np.random.default_rng(0)
    groups = torch.arange(tiny.n_groups)
    items = torch.from_numpy(rng.integers(tiny.n_items, size=(tiny.n_groups, 5)))
    y, alpha = model(groups, items, return_attention=True)  # (G, 5), (G, 5, S)
    assert y.shape == (tiny.n_groups, 5) and alpha.shape == (tiny.n_groups, 5, 4)
    worst = 0.0
    for g in range(tiny.n_groups):
        members = tiny.members(g).tolist()
        for c in range(5):
            y_ref, a_ref = reference_group_score(model, g, members, int(items[g, c]))
            worst = max(worst, abs(float(y[g, c] - y_ref)))
            worst = max(worst, float((alpha[g, c, : len(members)] - a_ref).abs().max()))
            assert torch.all(alpha[g, c, len(members) :] == 0)  # padded slots: exactly 0
    assert worst < 1e-12, worst
    torch.testing.assert_close(alpha.sum(-1), torch.ones_like(y), rtol=0, atol=1e-12)


def test_user_scores_use_the_same_prediction_layer(tiny):
    model = random_model(tiny)
    users = torch.tensor([0, 3, 7])
    items = torch.tensor([[1, 2], [5, 9], [0, 29]])
    y = model.score_users(users, items)  # (3, 2)
    ref = torch.stack(
        [
            torch.stack(
                [reference_predict(model, model.P.weight[u], model.Q.weight[j]) for j in row]
            )
            for u, row in zip(users.tolist(), items.tolist(), strict=True)
        ]
    )
    assert float((y - ref).abs().max()) < 1e-12
    torch.testing.assert_close(model.score_users(users, items[:, 0]), y[:, 0], rtol=0, atol=1e-12)


def test_bpr_gradients_match_the_reference_in_float64(tiny):
    """Every parameter's gradient of the mixed BPR loss agrees with the reference's."""
    model = random_model(tiny, grad=True)
    batch = next(
        iter(
            JointBatches(tiny.group_train, tiny.user_train, tiny.n_items, 3, 16)(
                1, np.random.default_rng(0)
            )
        )
    )
    loss = agree_step_loss(model, batch, user_weight=0.7)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    n_g = batch["n_groups"]
    assert 0 < n_g < len(batch["entity"])
    terms_g, terms_u = [], []
    for r, (e, i, js) in enumerate(
        zip(batch["entity"].tolist(), batch["pos"].tolist(), batch["neg"].tolist(), strict=True)
    ):
        if r < n_g:
            members = tiny.members(e).tolist()
            y_i = reference_group_score(model, e, members, i)[0]
            terms_g += [
                -torch.nn.functional.logsigmoid(
                    y_i - reference_group_score(model, e, members, j)[0]
                )
                for j in js
            ]
        else:
            p_u = model.P.weight[e]
            y_i = reference_predict(model, p_u, model.Q.weight[i])
            terms_u += [
                -torch.nn.functional.logsigmoid(
                    y_i - reference_predict(model, p_u, model.Q.weight[j])
                )
                for j in js
            ]
    ref = torch.stack(terms_g).mean() + 0.7 * torch.stack(terms_u).mean()
    assert abs((loss - ref).item()) < 1e-12
    ref.backward()
    worst = max(float((grads[n] - p.grad).abs().max()) for n, p in model.named_parameters())
    print(f"max |grad difference| over all parameters: {worst:.1e}")
    assert worst < 1e-12


def test_padding_never_matters(tiny):
    model = random_model(tiny)
    groups = torch.arange(tiny.n_groups)
    items = torch.randint(
        tiny.n_items, (tiny.n_groups, 7), generator=torch.Generator().manual_seed(0)
    )
    y = model(groups, items)
    with torch.no_grad():  # put other (valid) user ids into every padded slot
        model.members[~model.member_mask] = tiny.n_users - 1
    assert torch.equal(model(groups, items), y)
    # A wider table of padded slots changes nothing either.
    wide = AGREE(
        tiny.n_users,
        tiny.n_items,
        tiny.n_groups,
        6,
        d=6,
        attention_dim=5,
        hidden=4,
        members=np.pad(model.members.numpy(), ((0, 0), (0, 2))),
        member_mask=np.pad(model.member_mask.numpy(), ((0, 0), (0, 2))),
    ).double()
    wide.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k not in ("members", "member_mask")},
        strict=False,
    )
    assert torch.equal(wide(groups, items), y)


def test_member_order_does_not_matter(tiny):
    model = random_model(tiny)
    g = 3  # four members
    items = torch.arange(10)[None]
    members = torch.from_numpy(tiny.members(g))[None]
    mask = torch.ones_like(members, dtype=torch.bool)
    y, alpha = model.score_members(members, mask, items, torch.tensor([g]), return_attention=True)
    perm = torch.tensor([2, 0, 3, 1])
    y2, alpha2 = model.score_members(
        members[:, perm], mask, items, torch.tensor([g]), return_attention=True
    )
    torch.testing.assert_close(y2, y, rtol=0, atol=1e-12)
    torch.testing.assert_close(alpha2, alpha[..., perm], rtol=0, atol=1e-12)
    torch.testing.assert_close(model(torch.tensor([g]), items), y, rtol=0, atol=1e-12)


def test_a_one_member_group_is_its_member_plus_its_embedding(tiny):
    model = random_model(tiny)
    g = 0
    (u,) = tiny.members(g).tolist()
    items = torch.arange(12)[None]
    y, alpha = model(torch.tensor([g]), items, return_attention=True)
    assert torch.all(alpha[..., 0] == 1.0) and torch.all(alpha[..., 1:] == 0.0)
    x = model.P.weight[u] + model.E.weight[g]
    ref = torch.stack([reference_predict(model, x, model.Q.weight[j]) for j in range(12)])
    assert float((y[0] - ref).abs().max()) < 1e-12
    # A fresh model starts with e_g = 0: the one-member group scores exactly as its member.
    fresh = AGREE(
        tiny.n_users,
        tiny.n_items,
        tiny.n_groups,
        4,
        members=model.members,
        member_mask=model.member_mask,
    )
    torch.testing.assert_close(
        fresh(torch.tensor([g]), items),
        fresh.score_users(torch.tensor([u]), items),
        rtol=0,
        atol=1e-6,
    )


def test_shapes_and_clear_errors(tiny):
    model = random_model(tiny)
    assert model(torch.tensor([1, 2]), torch.tensor([3, 4])).shape == (2,)
    assert model.attention(torch.tensor([1, 2]), torch.tensor([3, 4])).shape == (2, 4)
    with pytest.raises(IndexError, match="groups holds id 6"):
        model(torch.tensor([6]), torch.tensor([0]))
    with pytest.raises(IndexError, match="items holds id 30"):
        model(torch.tensor([0]), torch.tensor([30]))
    with pytest.raises(ValueError, match="groups must have shape"):
        model(torch.tensor([[0]]), torch.tensor([[0]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.tensor([0.0]), torch.tensor([0]))
    ids, mask = tiny.member_padded()
    mask = mask.copy()
    mask[2] = False
    with pytest.raises(ValueError, match="group 2 has no member"):
        AGREE(tiny.n_users, tiny.n_items, tiny.n_groups, 4, members=ids, member_mask=mask)
    with pytest.raises(ValueError, match="shape"):
        AGREE(tiny.n_users, tiny.n_items, tiny.n_groups, 5, members=ids, member_mask=mask)
    with pytest.raises(ValueError, match="at least one real member"):
        model.score_members(
            torch.tensor([[1, 2]]), torch.tensor([[False, False]]), torch.tensor([[0]])
        )


# ------------------------------------------------------------------------------ mixed batches


def test_joint_batches_visit_every_pair_once_with_valid_negatives(tiny):
    batches = JointBatches(tiny.group_train, tiny.user_train, tiny.n_items, n_neg=3, batch_size=7)
    out = list(batches(1, np.random.default_rng(5)))
    assert len(out) == len(batches) == int(np.ceil(batches.n_pairs / 7))
    groups, users = [], []
    g_sampler = D.NegativeSampler(tiny.group_train, tiny.n_items)
    u_sampler = D.NegativeSampler(tiny.user_train, tiny.n_items)
    for b in out:
        n_g = b["n_groups"]
        e, i, j = b["entity"].numpy(), b["pos"].numpy(), b["neg"].numpy()
        assert j.shape == (len(e), 3)
        groups += list(zip(e[:n_g], i[:n_g], strict=True))
        users += list(zip(e[n_g:], i[n_g:], strict=True))
        assert not g_sampler.is_positive(e[:n_g], j[:n_g]).any()
        assert not u_sampler.is_positive(e[n_g:], j[n_g:]).any()
    expect_g = list(zip(tiny.group_train.entity, tiny.group_train.item, strict=True))
    expect_u = list(zip(tiny.user_train.entity, tiny.user_train.item, strict=True))
    assert sorted(groups) == sorted(expect_g) and sorted(users) == sorted(expect_u)
    # Same generator state, same epoch; a new epoch is another order.
    again = list(batches(1, np.random.default_rng(5)))
    assert all(torch.equal(a["neg"], b["neg"]) for a, b in zip(out, again, strict=True))
    other = next(iter(batches(2, np.random.default_rng(6))))
    assert not torch.equal(other["entity"], out[0]["entity"])


def test_batches_mix_both_kinds_in_proportion(synthetic):
    batches = JointBatches(synthetic.group_train, synthetic.user_train, synthetic.n_items, 1, 512)
    share = len(synthetic.group_train) / batches.n_pairs
    for b in list(batches(1, np.random.default_rng(0)))[:-1]:
        assert abs(b["n_groups"] / 512 - share) < 0.08


def test_loss_weights_each_kind_by_its_own_mean(tiny):
    model = random_model(tiny)
    batch = next(
        iter(
            JointBatches(tiny.group_train, tiny.user_train, tiny.n_items, 2, 20)(
                1, np.random.default_rng(1)
            )
        )
    )
    n_g = batch["n_groups"]
    items = torch.cat([batch["pos"][:, None], batch["neg"]], 1)
    y_g = model(batch["entity"][:n_g], items[:n_g])
    y_u = model.score_users(batch["entity"][n_g:], items[n_g:])
    for beta in (0.0, 0.3, 1.0):
        expected = bpr_loss(y_g[:, 0], y_g[:, 1:]) + beta * bpr_loss(y_u[:, 0], y_u[:, 1:])
        torch.testing.assert_close(agree_step_loss(model, batch, beta), expected)
    only_users = {
        **batch,
        "entity": batch["entity"][n_g:],
        "pos": batch["pos"][n_g:],
        "neg": batch["neg"][n_g:],
        "n_groups": 0,
    }
    torch.testing.assert_close(
        agree_step_loss(model, only_users, 0.5), 0.5 * bpr_loss(y_u[:, 0], y_u[:, 1:])
    )


# ----------------------------------------------------------------------------- the recommender


@pytest.fixture(scope="module")
def fitted(synthetic) -> AGREERecommender:
    torch.set_num_threads(1)
    return AGREERecommender(epochs=8, n_neg=2, lr=0.01, batch_size=512, device="cpu").fit(
        synthetic, "group"
    )


def test_recommender_learns_and_follows_the_interface(fitted, synthetic):
    assert fitted.name == "AGREE" and fitted.get_params()["n_neg"] == 2
    assert fitted.history_.best_epoch is not None
    test = evaluate(fitted, synthetic, "group", "test").iloc[0]
    # Random ranking gives NDCG@10 = 0.04 on 101 candidates; a model that learned nothing fails.
    print(f"AGREE on synthetic groups, test NDCG@10 {test['NDCG@10']:.4f}")
    assert test["NDCG@10"] > 0.15
    cases = synthetic.group_test
    s = fitted.score(cases.entity, cases.candidates())
    assert s.shape == (len(cases), 101) and s.dtype == np.float32
    with pytest.raises(ValueError, match=r"entities must lie in 0..\d+ \(group ids\), got 300"):
        fitted.score(np.array([300]), np.array([[0]]))
    with pytest.raises(ValueError, match="shape"):
        fitted.score(np.array([0, 1]), np.array([0, 1]))


def test_same_seed_same_numbers(fitted, synthetic):
    again = AGREERecommender(epochs=8, n_neg=2, lr=0.01, batch_size=512, device="cpu").fit(
        synthetic, "group"
    )
    cases = synthetic.group_val
    assert np.array_equal(
        again.score(cases.entity, cases.candidates()),
        fitted.score(cases.entity, cases.candidates()),
    )
    assert again.history_.loss == fitted.history_.loss


def test_attention_weights_are_inspectable(fitted, synthetic):
    ids, mask = synthetic.member_padded()
    groups = np.arange(synthetic.n_groups)
    items = np.random.default_rng(0).integers(synthetic.n_items, size=(synthetic.n_groups, 3))
    alpha = fitted.attention_weights(groups, items)  # (G, 3, S)
    assert alpha.shape == (synthetic.n_groups, 3, ids.shape[1])
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
    assert np.all(alpha[~np.broadcast_to(mask[:, None, :], alpha.shape)] == 0)
    single = fitted.attention_weights(groups, items[:, 0])
    np.testing.assert_array_equal(single, alpha[:, 0])
    # The weights depend on the candidate: AGREE's attention is item-specific.
    assert np.abs(alpha[:, 0] - alpha[:, 1]).max() > 1e-4
    # Any member set: a real group by its members gives the same numbers.
    g = int(np.argmax(mask.sum(1)))
    y, a = fitted.score_members(synthetic.members(g), items[g], group=g)
    np.testing.assert_allclose(y, fitted.score(np.array([g]), items[g][None])[0], atol=1e-5)
    np.testing.assert_allclose(a, alpha[g][:, : mask[g].sum()], atol=1e-6)


def test_scores_do_not_depend_on_batching(fitted, synthetic):
    cases = synthetic.group_test
    full = fitted.score(cases.entity, cases.candidates())
    parts = np.concatenate(
        [
            fitted.score(cases.entity[i : i + 7], cases.candidates()[i : i + 7])
            for i in range(0, 300, 7)
        ]
    )
    np.testing.assert_allclose(parts, full, atol=1e-5)


def test_user_task(synthetic):
    rec = AGREERecommender(epochs=2, n_neg=1, batch_size=1024, device="cpu").fit(synthetic, "user")
    cases = synthetic.user_val
    assert rec.score(cases.entity, cases.candidates()).shape == (len(cases), 101)
    with pytest.raises(ValueError, match="task must be"):
        AGREERecommender(epochs=1).fit(synthetic, "household")


def test_as_task_scores_users_with_the_group_fitted_network(fitted, synthetic):
    users = fitted.as_task("user")
    cases = synthetic.user_val
    cand = cases.candidates()
    expected = fitted.model_.score_users(
        torch.as_tensor(cases.entity), torch.as_tensor(cand)
    ).detach()
    np.testing.assert_allclose(users.score(cases.entity, cand), expected.numpy(), rtol=1e-6)
    assert users.model_ is fitted.model_ and fitted.task_ == "group"  # shared, original intact
    groups = synthetic.group_val
    np.testing.assert_array_equal(
        users.as_task("group").score(groups.entity, groups.candidates()),
        fitted.score(groups.entity, groups.candidates()),
    )
    with pytest.raises(ValueError, match="task must be"):
        fitted.as_task("household")
    with pytest.raises(RuntimeError, match="fit"):
        AGREERecommender().as_task("user")


def test_checkpoint_round_trip(fitted, synthetic, tmp_path):
    path = save_checkpoint(fitted.model_, tmp_path / "agree.pt", dataset=synthetic.name)
    restored = AGREE(**read_checkpoint(path)["meta"]["config"])  # member table from the weights
    load_checkpoint(restored, path)
    g = torch.arange(synthetic.n_groups)
    items = torch.zeros(synthetic.n_groups, 4, dtype=torch.int64) + torch.arange(4)
    fitted.model_.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored(g, items), fitted.model_(g, items))


def test_training_through_fit_lowers_the_loss(tiny):
    torch.manual_seed(0)
    ids, mask = tiny.member_padded()
    model = AGREE(
        tiny.n_users, tiny.n_items, tiny.n_groups, ids.shape[1], d=8, members=ids, member_mask=mask
    )
    batches = JointBatches(tiny.group_train, tiny.user_train, tiny.n_items, 2, 32)
    history = fit(
        model,
        partial(agree_step_loss, user_weight=1.0),
        batches,
        epochs=30,
        lr=0.02,
        progress=False,
        device="cpu",
    )
    assert history.loss[-1] < 0.5 * history.loss[0]


# --------------------------------------------------------------------------- RuleRecommender


class TableBase:
    """A user-level 'recommender' with fixed scores R (n_users, n_items); counts score calls."""

    name = "table"

    def __init__(self, R: np.ndarray) -> None:
        self.R = R
        self.fitted_tasks: list[str] = []

    def fit(self, dataset, task):
        self.fitted_tasks.append(task)
        return self

    def score(self, entities, items):
        return self.R[np.asarray(entities)[:, None], items]


def test_rule_recommender_is_the_rule_on_normalised_member_scores(tiny):
    R = np.random.default_rng(0).normal(size=(tiny.n_users, tiny.n_items))
    items = np.random.default_rng(1).integers(tiny.n_items, size=(tiny.n_groups, 9))
    groups = np.arange(tiny.n_groups)
    for rule in ("average", "least_misery", "most_pleasure", "borda", "multiplicative"):
        rec = RuleRecommender(TableBase(R), rule, fit_base=False).fit(tiny, "group")
        got = rec.score(groups, items)
        for g in groups:
            r = R[tiny.members(g)][:, items[g]]  # (n, 9)
            rho = (r - r.min(1, keepdims=True)) / (
                r.max(1, keepdims=True) - r.min(1, keepdims=True)
            )
            np.testing.assert_allclose(got[g], aggregate(rho, None, rule), atol=1e-12)
    rank = RuleRecommender(TableBase(R), "average", normalise="rank", fit_base=False).fit(tiny)
    r = R[tiny.members(3)][:, items[3]]
    expected = (np.argsort(np.argsort(r, axis=1), axis=1) / 8).mean(0)  # no ties in R
    np.testing.assert_allclose(rank.score(np.array([3]), items[3][None])[0], expected, atol=1e-12)


def test_rank_normalisation_shares_tied_ranks():
    rec = RuleRecommender(TableBase(np.zeros((1, 1))), "average", normalise="rank")
    r = np.array([[[3.0, 1.0, 3.0, 2.0, 0.0]]])
    # ranks 1..5 with the tie at the top sharing (4 + 5) / 2 = 4.5 -> (rank - 1) / 4
    np.testing.assert_allclose(rec._normalised(r)[0, 0], [0.875, 0.25, 0.875, 0.5, 0.0])


def test_fit_base_and_task(tiny):
    base = TableBase(np.zeros((tiny.n_users, tiny.n_items)))
    RuleRecommender(base, "average").fit(tiny, "group")
    RuleRecommender(base, "average", fit_base=False).fit(tiny, "group")
    assert base.fitted_tasks == ["user"]
    with pytest.raises(ValueError, match="task must be 'group'"):
        RuleRecommender(base, "average").fit(tiny, "user")
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        RuleRecommender(base, "dictator")
    with pytest.raises(ValueError, match="normalise"):
        RuleRecommender(base, "average", normalise="zscore")
    with pytest.raises(RuntimeError, match="not fitted"):
        RuleRecommender(base, "average").score(np.array([0]), np.array([[0]]))


def test_members_without_data_or_without_preference_have_no_say(tiny):
    g = 3
    u_quiet, u_flat, *others = tiny.members(g).tolist()
    R = np.random.default_rng(2).normal(size=(tiny.n_users, tiny.n_items))
    R[u_quiet] = -50.0 + np.arange(tiny.n_items)  # would veto most items under least misery
    R[u_flat] = 0.0  # tells no candidate apart
    keep = tiny.user_train.entity != u_quiet  # u_quiet loses every training interaction
    ds = replace(tiny, user_train=tiny.user_train.select(keep))
    rec = RuleRecommender(TableBase(R), "least_misery", fit_base=False).fit(ds)
    items = np.arange(12)
    R_g, r, say = rec.score_members(tiny.members(g), items)
    assert say.tolist() == [False, False, True, True]
    rho = R[others][:, items] - R[others][:, items].min(1, keepdims=True)
    rho /= rho.max(1, keepdims=True)
    np.testing.assert_allclose(R_g, rho.min(0), atol=1e-12)
    np.testing.assert_allclose(rec.score(np.array([g]), items[None])[0], R_g, atol=1e-12)
    everyone = RuleRecommender(TableBase(R), "least_misery", fit_base=False, skip_inactive=False)
    assert everyone.fit(ds).score_members(tiny.members(g), items)[2].tolist() == [
        True,
        False,
        True,
        True,
    ]
    # Nobody with a say: every real member counts again.
    flat = RuleRecommender(TableBase(np.zeros_like(R)), "average", fit_base=False).fit(ds)
    assert flat.score_members(tiny.members(g), items)[2].all()


@pytest.mark.parametrize("rule", LIST_RULES)
def test_list_rules_do_not_hand_ties_to_the_first_column(rule, synthetic):
    """Every member scores alike, in blocks of tied items: column 0 must not win the ties."""
    flat = np.tile(np.arange(synthetic.n_items) % 7, (synthetic.n_users, 1)).astype(float)
    cases = synthetic.group_test
    cand = cases.candidates()  # (n, 101): the held-out item in column 0
    best = flat[0][cand] == flat[0][cand].max(1, keepdims=True)  # (n, 101) the top tie block
    first_best = np.argmax(best, axis=1)  # its lowest column
    # Applied to the candidates as they come, the rule lists that lowest column first ...
    ids, mask = synthetic.member_padded(cases.entity)
    raw = aggregate(flat[ids[:, :, None], cand[:, None, :]], mask, rule, k=10)
    assert np.array_equal(top_k(raw, 1)[:, 0], first_best)
    # ... through RuleRecommender the first pick is spread over the whole top block,
    rec = RuleRecommender(TableBase(flat), rule, fit_base=False, k=10).fit(synthetic)
    pick = top_k(rec.score(cases.entity, cand), 1)[:, 0]
    assert best[np.arange(len(pick)), pick].all()
    assert (pick != first_best).mean() > 0.75  # blocks hold about 14 candidates
    # and the held-out item wins about as often as a random member of its block would.
    expected = (1.0 / best.sum(1))[best[:, 0]].sum()
    wins = int((pick == 0).sum())
    assert abs(wins - expected) < 4 * np.sqrt(expected) + 2, (wins, expected)


def test_list_rule_scores_ignore_column_order_and_batching(tiny):
    R = np.round(np.random.default_rng(3).normal(size=(tiny.n_users, tiny.n_items)), 1)
    rec = RuleRecommender(TableBase(R), "plurality", fit_base=False).fit(tiny)
    items = np.tile(np.arange(20), (tiny.n_groups, 1))
    s = rec.score(np.arange(tiny.n_groups), items)
    perm = np.random.default_rng(4).permutation(20)
    s_perm = rec.score(np.arange(tiny.n_groups), items[:, perm])
    np.testing.assert_array_equal(s_perm, s[:, perm])
    one = np.concatenate([rec.score(np.array([g]), items[g][None]) for g in range(tiny.n_groups)])
    np.testing.assert_array_equal(one, s)


def test_every_rule_runs_through_evaluate(synthetic):
    R = np.random.default_rng(0).normal(size=(synthetic.n_users, synthetic.n_items))
    params = {
        "approval": {"threshold": 0.5},
        "average_without_misery": {"threshold": 0.2},
        "fairness_greedy": {"k": 10},
        "plurality": {"k": 10},
    }
    for rule in RULES:
        rec = RuleRecommender(TableBase(R), rule, fit_base=False, **params.get(rule, {}))
        row = evaluate(rec.fit(synthetic), synthetic, "group", "val").iloc[0]
        assert row["model"] == rule and 0.0 <= row["NDCG@10"] <= 1.0


def test_rules_over_true_utilities_find_the_planted_rule():
    """On the synthetic shop, the planted rule explains the held-out choices better than others."""
    from grouprec.synthetic import regenerate

    truth = regenerate(SYNTHETIC)
    ds = D.load_dataset(SYNTHETIC)
    cases = ds.group_test
    cand = cases.candidates()
    results = {}
    for rule in ("average", "least_misery", "most_pleasure", "weighted"):
        R = truth.group_utility(rule)  # (G, I)
        s = R[cases.entity[:, None], cand]
        results[rule] = sampled_metrics(s[:, 0], s[:, 1:])["NDCG@10"]
    assert max(results, key=results.get) == "weighted", results


@pytest.mark.parametrize("rule", ["average", *LIST_RULES])
def test_score_all_builds_lists_from_items_the_group_does_not_have(rule, synthetic):
    R = np.random.default_rng(5).normal(size=(synthetic.n_users, synthetic.n_items))
    params = {"k": 10} if rule in LIST_RULES else {}
    rec = RuleRecommender(TableBase(R), rule, fit_base=False, **params).fit(synthetic)
    groups = np.arange(40)
    S_all = rec.score_all(groups)  # (40, I)
    known = synthetic.train_matrix("group")[groups].toarray().astype(bool)
    everything = np.broadcast_to(np.arange(synthetic.n_items), (40, synthetic.n_items))
    if rule not in LIST_RULES:  # value rules: the same as scoring every item
        np.testing.assert_array_equal(S_all, rec.score(groups, everything))
        return
    lists = top_k(S_all, 10)
    assert not known[np.arange(40)[:, None], lists].any()
    # The list equals the rule run on the unknown items alone, scaled over those items.
    g = 7
    free = np.flatnonzero(~known[g])
    alone = rec.score(np.array([g]), free[None])[0]
    assert free[top_k(alone, 10)].tolist() == lists[g].tolist()


def test_normalisation_over_eligible_candidates():
    rec = RuleRecommender(TableBase(np.zeros((1, 1))), "average")
    r = np.array([[[5.0, 1.0, 3.0, 9.0]]])
    eligible = np.array([[True, True, True, False]])
    np.testing.assert_allclose(rec._normalised(r, eligible)[0, 0], [1.0, 0.0, 0.5, -1.0])
    rec.normalise = "rank"
    np.testing.assert_allclose(rec._normalised(r, eligible)[0, 0], [1.0, 0.0, 0.5, -1.0])
    rec.normalise = "none"
    assert rec._normalised(r, eligible)[0, 0, 3] < 1.0
