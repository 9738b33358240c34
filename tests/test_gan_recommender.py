"""Tests of grouprec.gan_recommender: CFGAN's masks, penalty and networks, what each player's step
may touch, the REINFORCE estimator, determinism, and the recommender interface on a small
dataset (with filtering of consumed items)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from toy import N_GROUPS, N_ITEMS, N_USERS, two_tastes

from grouprec import evaluation as E
from grouprec import gan
from grouprec.baselines import Popularity, history
from grouprec.data import GroupDataset
from grouprec.evaluation import evaluate
from grouprec.gan_recommender import (
    CFGANDiscriminator,
    CFGANGenerator,
    CFGANRecommender,
    ConsumedFilter,
    GanHistory,
    IRGANRecommender,
    conditions,
    leave_one_out_baseline,
    reinforce_loss,
    sample_masks,
    zero_reconstruction,
)
from grouprec.preference import BPRRecommender
from grouprec.training import seed_everything

DTYPE = torch.float64


# --- a small dataset with structure to learn ----------------------------------------------------


def make_dataset(seed: int = 0) -> GroupDataset:
    """Users in two tastes (items 0-14 or 15-29), groups of 2-4 users, validation split."""
    return two_tastes(seed)


@pytest.fixture(scope="module")
def toy() -> GroupDataset:
    return make_dataset()


def small_cfgan(**kwargs) -> CFGANRecommender:
    params = {"hidden": (16,), "epochs": 4, "batch_size": 16, "lr": 3e-3, "patience": None}
    return CFGANRecommender(**{**params, **kwargs})


def small_irgan(**kwargs) -> IRGANRecommender:
    params = {"d": 8, "epochs": 3, "n_samples": 8, "batch_size": 64, "patience": None}
    return IRGANRecommender(**{**params, **kwargs})


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def unchanged(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before, strict=True))


# --- conditions, masks, penalty -----------------------------------------------------------------


def test_conditions_are_the_histories(toy):
    np.testing.assert_array_equal(
        conditions(toy, "user").toarray(), toy.train_matrix("user").toarray()
    )
    for alpha in (0.0, 0.3, 1.0):
        C = conditions(toy, "group", alpha)
        assert C.shape == (N_GROUPS, N_ITEMS) and C.dtype == np.float32
        np.testing.assert_allclose(C.toarray(), history(toy, "group", alpha).toarray(), rtol=1e-6)
    # by hand for one group: alpha x_g + (1 - alpha) mean of the members' rows
    g, alpha = 3, 0.3
    X_u, X_g = toy.train_matrix("user").toarray(), toy.train_matrix("group").toarray()
    expected = alpha * X_g[g] + (1 - alpha) * X_u[toy.members(g)].mean(axis=0)
    np.testing.assert_allclose(conditions(toy, "group", alpha).toarray()[g], expected, rtol=1e-6)


def test_masks_cover_the_items_and_sample_the_non_items():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(200, 500, generator=gen) < 0.05).float()  # (B, I) binary rows
    m_pm, m_zr = sample_masks(x, 0.3, 0.2, gen)
    assert m_pm.shape == m_zr.shape == x.shape and m_pm.dtype == x.dtype
    assert set(m_pm.unique().tolist()) <= {0.0, 1.0} and set(m_zr.unique().tolist()) <= {0.0, 1.0}
    e = x > 0
    assert bool(m_pm[e].eq(1).all()), "every item of the row must be in the partial mask"
    assert bool(m_zr[e].eq(0).all()), "no item of the row may be penalised towards zero"
    # each non-item joins with the stated probability (binomial standard error ~0.001)
    assert m_pm[~e].mean().item() == pytest.approx(0.3, abs=0.01)
    assert m_zr[~e].mean().item() == pytest.approx(0.2, abs=0.01)
    # drawn independently: the overlap is the product of the two probabilities
    assert (m_pm[~e] * m_zr[~e]).mean().item() == pytest.approx(0.06, abs=0.005)


def test_masks_at_the_extremes():
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    m_pm, m_zr = sample_masks(x, 0.0, 0.0)
    assert torch.equal(m_pm, x) and torch.equal(m_zr, torch.zeros_like(x))
    m_pm, m_zr = sample_masks(x, 1.0, 1.0)
    assert torch.equal(m_pm, torch.ones_like(x)) and torch.equal(m_zr, 1 - x)
    with pytest.raises(ValueError, match="s_pm must lie in"):
        sample_masks(x, 1.5, 0.1)
    with pytest.raises(ValueError, match="s_zr must lie in"):
        sample_masks(x, 0.1, -0.1)


def test_zero_reconstruction_equals_a_hand_computation():
    y_hat = torch.tensor([[0.5, 0.2, 0.9], [0.1, 0.4, 0.3]], dtype=DTYPE, requires_grad=True)
    m_zr = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=DTYPE)
    alpha_zr = 0.7
    # row 1: 0.5² + 0.9² = 1.06; row 2: 0.4² = 0.16; mean 0.61; times alpha 0.427
    value = zero_reconstruction(y_hat, m_zr, alpha_zr)
    assert value.item() == pytest.approx(0.427, abs=1e-15)
    (grad,) = torch.autograd.grad(value, y_hat)
    # d/dŷ_uj = alpha * 2 ŷ_uj m_uj / B
    expected = alpha_zr * 2 * y_hat.detach() * m_zr / 2
    assert torch.allclose(grad, expected, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="shape"):
        zero_reconstruction(y_hat, m_zr[:, :2], alpha_zr)


# --- the networks ---------------------------------------------------------------------------------


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    c = (torch.rand(5, N_ITEMS) < 0.3).float()
    G = CFGANGenerator(N_ITEMS, hidden=(8, 6))
    y = G(c)
    assert y.shape == (5, N_ITEMS) and bool(((y > 0) & (y < 1)).all())
    Gz = CFGANGenerator(N_ITEMS, hidden=(8,), z_dim=3)
    z = torch.randn(5, 3)
    assert Gz(c, z).shape == (5, N_ITEMS)
    assert torch.equal(Gz(c), Gz(c, torch.zeros(5, 3))), "no noise means the noise's mean"
    D = CFGANDiscriminator(N_ITEMS, hidden=(8,))
    assert D(y, c).shape == (5,) and D(y, c, torch.ones_like(c)).shape == (5,)
    with pytest.raises(ValueError, match="c must have shape"):
        G(c[:, :-1])
    with pytest.raises(ValueError, match="takes no noise"):
        G(c, z)
    with pytest.raises(ValueError, match="z must have shape"):
        Gz(c, z[:, :2])
    with pytest.raises(ValueError, match="m must have the shape"):
        D(y, c, c[:, :-1])


def test_generator_starts_at_the_prior():
    prior = torch.linspace(0.01, 0.5, N_ITEMS)
    G = CFGANGenerator(N_ITEMS, hidden=(8,), prior=prior)
    torch.nn.init.zeros_(G.net[-1].weight)  # the output layer's input no longer matters
    assert torch.allclose(G(torch.rand(3, N_ITEMS)), prior.expand(3, -1), atol=1e-6)


def test_only_masked_entries_reach_the_discriminator():
    torch.manual_seed(1)
    D = CFGANDiscriminator(N_ITEMS, hidden=(8,)).double()
    c = (torch.rand(4, N_ITEMS, dtype=DTYPE) < 0.3).to(DTYPE)
    m = (torch.rand(4, N_ITEMS, dtype=DTYPE) < 0.4).to(DTYPE)
    x = torch.rand(4, N_ITEMS, dtype=DTYPE, requires_grad=True)
    s = D(x, c, m)
    # changing x outside the mask changes nothing
    x_other = x.detach() + (1 - m) * torch.randn(4, N_ITEMS, dtype=DTYPE)
    assert torch.equal(D(x_other, c, m), s.detach())
    # and the gradient with respect to x is exactly zero there, non-zero inside
    (grad,) = torch.autograd.grad(s.sum(), x)
    assert bool((grad[m == 0] == 0).all())
    assert bool((grad[m == 1] != 0).any())
    # a real binary row inside its mask is judged as if unmasked
    e = (torch.rand(4, N_ITEMS, dtype=DTYPE) < 0.2).to(DTYPE)
    assert torch.equal(D(e, c, torch.clamp(e + m, max=1)), D(e, c))


# --- what each step may touch ---------------------------------------------------------------------


def cfgan_players(seed: int = 0):
    torch.manual_seed(seed)
    G = CFGANGenerator(N_ITEMS, hidden=(8,))
    D = CFGANDiscriminator(N_ITEMS, hidden=(8,))
    x = (torch.rand(6, N_ITEMS) < 0.3).float()
    m_pm, m_zr = sample_masks(x, 0.3, 0.3, torch.Generator().manual_seed(seed))
    inputs = gan.GanInputs(generator=(x,), condition=(x, m_pm))
    return G, D, x, inputs, m_zr


def test_cfgan_discriminator_step_leaves_the_generator_untouched():
    G, D, x, inputs, _ = cfgan_players()
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    G_before, D_before = snapshot(G), snapshot(D)
    out = gan.discriminator_step(G, D, opt_D, x, inputs)
    assert unchanged(G, G_before) and all(p.grad is None for p in G.parameters())
    assert not unchanged(D, D_before)
    assert set(out) == {"d_loss", "d_real", "d_fake"} and all(map(math.isfinite, out.values()))
    del opt_G


def test_cfgan_generator_step_leaves_the_discriminator_untouched():
    G, D, x, inputs, m_zr = cfgan_players()
    opt_G = torch.optim.Adam(G.parameters())
    G_before, D_before = snapshot(G), snapshot(D)

    def penalty(y_hat, _inputs):
        return zero_reconstruction(y_hat, m_zr, 0.5)

    with torch.no_grad():
        expected = zero_reconstruction(G(x), m_zr, 0.5).item()  # before the step
    out = gan.generator_step(G, D, opt_G, inputs, penalty=penalty)
    assert unchanged(D, D_before) and all(p.grad is None for p in D.parameters())
    assert not unchanged(G, G_before)
    assert out["g_penalty"] == pytest.approx(expected, rel=1e-6)


def test_irgan_steps_touch_only_their_own_player(toy):
    model = small_irgan(epochs=1).fit(toy, "user")
    pairs = model._pairs(toy.train("user"))
    gen = torch.Generator().manual_seed(0)
    opt_G = torch.optim.Adam(model.G_.parameters(), lr=0.1)
    opt_D = torch.optim.Adam(model.D_.parameters(), lr=0.1)
    for p in list(model.G_.parameters()) + list(model.D_.parameters()):
        p.grad = None
    G_before, D_before = snapshot(model.G_), snapshot(model.D_)
    model._generator_step(pairs.active[:10], opt_G, gen)
    assert unchanged(model.D_, D_before) and all(p.grad is None for p in model.D_.parameters())
    assert not unchanged(model.G_, G_before)
    model.G_.zero_grad(set_to_none=True)  # forget the generator step's own gradient
    G_before = snapshot(model.G_)
    out = model._discriminator_pass(pairs, opt_D, gen)
    assert unchanged(model.G_, G_before) and all(p.grad is None for p in model.G_.parameters())
    assert not unchanged(model.D_, D_before)
    assert set(out) == {"d_loss", "d_real", "d_fake"}


def test_sampled_items_carry_no_gradient():
    logits = torch.randn(3, 7, requires_grad=True)
    j = torch.multinomial(torch.softmax(logits, dim=1), 4, replacement=True)
    assert not j.requires_grad and j.grad_fn is None and not j.dtype.is_floating_point


# --- REINFORCE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("b", [0.0, 0.8, -2.0])
def test_reinforce_is_exact_in_expectation(b):
    """Sum the estimator over every outcome, weighted by its probability: the exact gradient."""
    gen = torch.Generator().manual_seed(2)
    theta = torch.randn(6, generator=gen, dtype=DTYPE, requires_grad=True)
    cost = torch.randn(6, generator=gen, dtype=DTYPE)  # ℓ(i), fixed numbers
    log_p = torch.log_softmax(theta, dim=0)
    (exact,) = torch.autograd.grad((log_p.exp() * cost).sum(), theta, retain_graph=True)
    p = log_p.exp().detach()  # the outcomes' probabilities, weights of the expectation
    expectation = torch.zeros_like(theta)
    for i in range(6):  # the estimate when the single sample is item i
        (g_i,) = torch.autograd.grad(
            reinforce_loss(log_p[i : i + 1], cost[i : i + 1], b), theta, retain_graph=True
        )
        expectation += p[i] * g_i
    assert torch.allclose(expectation, exact, rtol=0, atol=1e-14)


def test_reinforce_monte_carlo_and_the_baseline():
    gen = torch.Generator().manual_seed(3)
    theta = torch.randn(5, generator=gen, dtype=DTYPE, requires_grad=True)
    cost = 3.0 + torch.randn(5, generator=gen, dtype=DTYPE)  # costs far from 0: baselines help
    log_p = torch.log_softmax(theta, dim=0)
    (exact,) = torch.autograd.grad((log_p.exp() * cost).sum(), theta, retain_graph=True)
    j = torch.multinomial(log_p.exp().detach(), 200_000, replacement=True, generator=gen)
    (mc,) = torch.autograd.grad(reinforce_loss(log_p[j], cost[j]), theta, retain_graph=True)
    assert torch.allclose(mc, exact, atol=0.03)
    # per-sample estimates: same mean with a baseline, much smaller variance
    onehot = torch.nn.functional.one_hot(j[:2000], 5).to(DTYPE)  # (n, 5)
    score = onehot - log_p.exp().detach()  # ∇_θ log p(j) for a softmax, (n, 5)
    plain = cost[j[:2000], None] * score
    based = (cost[j[:2000], None] - (log_p.exp() * cost).sum().detach()) * score
    assert plain.var(dim=0).sum() > 5 * based.var(dim=0).sum()
    with pytest.raises(ValueError, match="shape"):
        reinforce_loss(log_p, cost[:3])


def test_leave_one_out_baseline_is_unbiased_and_the_row_mean_is_not():
    """Over every ordered pair of draws (K = 2), weighted by its probability: the estimate with
    the leave-one-out baseline averages to the exact gradient; with the row mean, draw included,
    to (K - 1) / K of it."""
    gen = torch.Generator().manual_seed(4)
    theta = torch.randn(4, generator=gen, dtype=DTYPE, requires_grad=True)
    cost = 2.0 + torch.randn(4, generator=gen, dtype=DTYPE)
    log_p = torch.log_softmax(theta, dim=0)
    (exact,) = torch.autograd.grad((log_p.exp() * cost).sum(), theta, retain_graph=True)
    p = log_p.exp().detach()
    expected = {"leave-one-out": torch.zeros_like(theta), "row mean": torch.zeros_like(theta)}
    for a in range(4):
        for b in range(4):
            j = torch.tensor([[a, b]])  # (1, K) the two draws
            c = cost[j]  # (1, K)
            for name, base in (
                ("leave-one-out", leave_one_out_baseline(c)),
                ("row mean", c.mean(dim=1, keepdim=True)),
            ):
                (g,) = torch.autograd.grad(
                    reinforce_loss(log_p[j], c, base), theta, retain_graph=True
                )
                expected[name] += p[a] * p[b] * g
    assert torch.allclose(expected["leave-one-out"], exact, rtol=0, atol=1e-14)
    assert torch.allclose(expected["row mean"], exact / 2, rtol=0, atol=1e-14)
    np.testing.assert_allclose(
        leave_one_out_baseline(torch.tensor([[1.0, 2.0, 6.0]])).numpy(), [[4.0, 3.5, 1.5]]
    )
    with pytest.raises(ValueError, match="K >= 2"):
        leave_one_out_baseline(torch.ones(3, 1))
    with pytest.raises(ValueError, match="n_samples >= 2"):
        IRGANRecommender(n_samples=1)
    IRGANRecommender(n_samples=1, baseline=False)  # no baseline: one draw is enough


# --- the recommenders -----------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["user", "group"])
def test_cfgan_fits_scores_and_records_finite_curves(toy, task):
    model = small_cfgan(alpha=0.5 if task == "group" else 1.0).fit(toy, task)
    n = toy.n_entities(task)
    hist = model.history_
    assert isinstance(hist, GanHistory) and hist.epochs == 4
    frame = hist.to_frame()
    for column in ("d_loss", "g_loss", "d_real", "d_fake", "g_penalty", "NDCG@10", "seconds"):
        assert column in frame and np.isfinite(frame[column]).all(), column
    assert hist.best_epoch == int(np.argmax(frame["NDCG@10"].to_numpy())) + 1
    entities = np.array([0, 1, n - 1, 1])
    items = np.tile(np.arange(N_ITEMS), (4, 1))
    s = model.score(entities, items)
    assert s.shape == (4, N_ITEMS)
    # the same numbers up to float rounding, whichever rows are generated together
    np.testing.assert_allclose(s, model.score_all(entities), rtol=1e-5)
    np.testing.assert_array_equal(s[1], s[3])  # the same entity, the same scores
    assert model.recommend(entities, k=5).shape == (4, 5)
    row = evaluate(model, toy, task, "val").iloc[0]
    assert 0 <= row["NDCG@10"] <= 1


def test_both_gans_learn_the_tastes(toy):
    """Each held-out item lies in the entity's taste, every negative in the other one; both
    tastes are equally popular, so popularity ranks no better than chance."""
    assert evaluate(Popularity().fit(toy, "user"), toy, "user", "test").iloc[0]["NDCG@5"] < 0.6
    cfgan = small_cfgan(epochs=30, lr=1e-2).fit(toy, "user")
    assert evaluate(cfgan, toy, "user", "test").iloc[0]["NDCG@5"] > 0.9
    irgan = small_irgan(epochs=30, lr_G=0.05, lr_D=0.05).fit(toy, "user")
    assert evaluate(irgan, toy, "user", "test").iloc[0]["NDCG@5"] > 0.8


def test_score_filters_consumed_items(toy):
    model = small_cfgan(epochs=2).fit(toy, "user")
    consumed = toy.train_matrix("user").toarray() > 0
    s = model.score_all(np.arange(N_USERS))
    assert bool(np.isneginf(s[consumed]).all()) and bool(np.isfinite(s[~consumed]).all())
    raw = model.filtered(False)
    assert model.filter_consumed and not raw.filter_consumed  # the original keeps its setting
    s_raw = raw.score_all(np.arange(N_USERS))
    assert bool(np.isfinite(s_raw).all())
    np.testing.assert_array_equal(s_raw[~consumed], s[~consumed])
    lists = model.recommend(np.arange(N_USERS), k=5)
    assert not consumed[np.arange(N_USERS)[:, None], lists].any()
    np.testing.assert_array_equal(raw.recommend(np.arange(N_USERS), k=5), lists)
    irgan = small_irgan(epochs=1).fit(toy, "user")
    s = irgan.score_all(np.arange(N_USERS))
    assert bool(np.isneginf(s[consumed]).all()) and bool(np.isfinite(s[~consumed]).all())


@pytest.mark.parametrize("make", [small_cfgan, small_irgan])
def test_same_seed_same_scores(toy, make):
    entities = np.arange(N_USERS)
    first = make(seed=5).fit(toy, "user").filtered(False).score_all(entities)
    again = make(seed=5).fit(toy, "user").filtered(False).score_all(entities)
    other = make(seed=6).fit(toy, "user").filtered(False).score_all(entities)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_cfgan_with_noise_and_all_rows(toy):
    model = small_cfgan(z_dim=4, train_rows="all", alpha=0.5, epochs=2).fit(toy, "group")
    assert model.G_.z_dim == 4
    s = model.score_all(np.arange(N_GROUPS))
    np.testing.assert_array_equal(s, model.score_all(np.arange(N_GROUPS)))  # z = 0 at inference


def test_reconstruction_objective_never_trains_the_discriminator(toy):
    model = small_cfgan(objective="reconstruction", epochs=3)
    model.fit(toy, "user")
    assert "d_loss" not in model.history_.to_frame()
    assert all(p.grad is None for p in model.D_.parameters())
    seed_everything(model.seed)  # the players are built in this order right after seeding
    CFGANGenerator(N_ITEMS, model.hidden)
    untrained = CFGANDiscriminator(N_ITEMS, model.hidden)
    assert unchanged(model.D_, snapshot(untrained))
    assert model.name != small_cfgan().name


def test_irgan_fits_and_records(toy):
    model = small_irgan(g_steps=2).fit(toy, "user")
    frame = model.history_.to_frame()
    for column in ("d_loss", "g_loss", "d_real", "d_fake", "NDCG@10"):
        assert np.isfinite(frame[column]).all(), column
    assert (frame["g_loss"] <= 0).all()  # the minimax cost log(1 - D) is never positive
    log_p = model.log_p(torch.arange(3))
    assert log_p.shape == (3, N_ITEMS) and model.pretrained_ is None
    assert torch.allclose(log_p.exp().sum(1), torch.ones(3, dtype=log_p.dtype), atol=1e-5)


def test_training_without_validation_runs_all_epochs(toy):
    blind = replace(toy, user_val=None, group_val=None)
    model = small_cfgan(epochs=3, patience=1).fit(blind, "user")
    assert model.history_.epochs == 3 and model.history_.best_epoch is None


def test_errors_name_the_argument(toy):
    with pytest.raises(ValueError, match="s_pm"):
        CFGANRecommender(s_pm=2.0)
    with pytest.raises(ValueError, match="objective"):
        CFGANRecommender(objective="vae")
    with pytest.raises(ValueError, match="train_rows"):
        CFGANRecommender(train_rows="users")
    with pytest.raises(ValueError, match="kind"):
        IRGANRecommender(kind="wasserstein")
    with pytest.raises(ValueError, match="temperature"):
        IRGANRecommender(temperature=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        CFGANRecommender().score(np.array([0]), np.array([[0]]))
    with pytest.raises(ValueError, match="group task only"):
        small_cfgan(alpha=0.5).fit(toy, "user")
    with pytest.raises(ValueError, match="task must be one of"):
        small_cfgan().fit(toy, "household")
    model = small_cfgan(epochs=1).fit(toy, "user")
    with pytest.raises(ValueError, match="entities must lie in"):
        model.score(np.array([N_USERS]), np.array([[0]]))
    with pytest.raises(ValueError, match="items must lie in"):
        model.score(np.array([0]), np.array([[N_ITEMS]]))
    with pytest.raises(ValueError, match="items must have shape"):
        model.score(np.array([0, 1]), np.array([[0]]))


def test_get_params_round_trip():
    model = CFGANRecommender(hidden=(32, 16), s_pm=0.2, alpha=0.5)
    clone = CFGANRecommender(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert "s_pm=0.2" in repr(model)
    irgan = IRGANRecommender(d=8, temperature=0.5)
    assert IRGANRecommender(**irgan.get_params()).get_params() == irgan.get_params()


def test_consumed_matrix_matches_training(toy):
    model = small_cfgan(epochs=1).fit(toy, "group")
    assert isinstance(model.consumed_, sp.csr_matrix)
    assert (model.consumed_ != toy.train_matrix("group")).nnz == 0


def test_consumed_filter_gives_a_gans_own_filtering(toy):
    # The wrapper lives in grouprec.evaluation (tested there); chapter 08 imports it from here.
    assert ConsumedFilter is E.ConsumedFilter
    users = np.arange(N_USERS)
    items = np.tile(np.arange(N_ITEMS), (N_USERS, 1))
    cfgan = small_cfgan(epochs=2).fit(toy, "user")
    np.testing.assert_array_equal(
        ConsumedFilter.wrap(cfgan.filtered(False), toy, "user").score(users, items),
        cfgan.score(users, items),
    )


def test_irgan_starts_from_mf_bpr(toy):
    model = small_irgan(pretrain_epochs=3, epochs=1).fit(toy, "user")
    bpr = BPRRecommender("mf", 8, 3, seed=model.seed).fit(toy, "user")
    assert isinstance(model.pretrained_, BPRRecommender)
    for a, b in zip(model.pretrained_.model_.parameters(), bpr.model_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert model.history_.epochs == 1


def test_callback_numbers_join_the_history_after_validation(toy):
    seen = []

    def watch(model, epoch):
        seen.append((epoch, model.G_.training, torch.is_grad_enabled()))
        return {"epoch_twice": 2 * epoch}

    model = small_cfgan(epochs=2, patience=None, callback=watch).fit(toy, "user")
    frame = model.history_.to_frame()
    assert list(frame.columns[-3:]) == ["NDCG@10", "epoch_twice", "seconds"]
    assert frame["epoch_twice"].tolist() == [2.0, 4.0]
    assert seen == [(1, False, False), (2, False, False)]
    assert model.history_.best["epoch_twice"] == 2.0 * model.history_.best_epoch


@pytest.mark.parametrize("make", [small_cfgan, small_irgan])
def test_validation_generates_each_entity_once_and_scores_every_case(toy, make):
    """Several validation cases of one entity (five per entity on CAMRa2011) are scored from one
    generated row, and each case gets exactly its own candidates' scores."""
    model = make(epochs=1).fit(toy, "user")
    calls = []
    generate = model._generate

    def counting(entities):
        calls.append(len(entities))
        return generate(entities)

    model._generate = counting
    e = torch.tensor([3, 3, 0, 3, 5, 0])  # (B,), repeated entities, unsorted
    i = torch.randint(0, toy.n_items, (len(e), 7), generator=torch.Generator().manual_seed(0))
    got = model._val_score(model.G_, e, i)
    assert sum(calls) == 3  # entities 0, 3 and 5, once each
    rows = torch.as_tensor(model.score_all(e.numpy()))  # (B, I), one row per case
    torch.testing.assert_close(got, rows.gather(1, i))
