"""Tests of grouprec.gan: the losses against PyTorch's BCE-with-logits, the optimal discriminator,
and the alternating step (what each half may and may not touch)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm
from torch import nn

from grouprec.gan import (
    GENERATOR_LOSSES,
    GanInputs,
    PackedDiscriminator,
    discriminator_loss,
    discriminator_step,
    generator_loss,
    generator_step,
    mode_coverage,
    optimal_discriminator,
    train_step,
)

DTYPE = torch.float64


def logits(*shape: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=gen, dtype=DTYPE)).requires_grad_()


def grad(loss: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, s)
    return g


# --- losses ------------------------------------------------------------------------------------


def test_discriminator_loss_equals_bce_with_logits():
    s_real, s_fake = logits(7, seed=1), logits(5, 1, seed=2)
    ours = discriminator_loss(s_real, s_fake)
    bce = nn.BCEWithLogitsLoss()
    theirs = bce(s_real, torch.ones_like(s_real)) + bce(s_fake, torch.zeros_like(s_fake))
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-14)
    for s in (s_real, s_fake):
        assert torch.allclose(grad(ours, s), grad(theirs, s), rtol=0, atol=1e-15)


def test_discriminator_loss_is_the_negated_value_function():
    s_real, s_fake = logits(6, seed=3), logits(4, seed=4)
    D_real, D_fake = torch.sigmoid(s_real), torch.sigmoid(s_fake)
    V = torch.log(D_real).mean() + torch.log(1 - D_fake).mean()
    assert torch.allclose(discriminator_loss(s_real, s_fake), -V, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", GENERATOR_LOSSES)
def test_generator_losses_equal_bce_with_logits(kind):
    s_fake = logits(9, seed=5)
    ours = generator_loss(s_fake, kind)
    if kind == "minimax":  # E[log(1 - D)] = -BCE(s, 0)
        theirs = -F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))
        naive = torch.log(1 - torch.sigmoid(s_fake)).mean()
    else:  # -E[log D] = BCE(s, 1)
        theirs = F.binary_cross_entropy_with_logits(s_fake, torch.ones_like(s_fake))
        naive = -torch.log(torch.sigmoid(s_fake)).mean()
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-14)
    assert torch.allclose(ours, naive, rtol=0, atol=1e-12)
    assert torch.allclose(grad(ours, s_fake), grad(theirs, s_fake), rtol=0, atol=1e-15)


def test_generator_loss_defaults_to_non_saturating():
    s_fake = logits(4, seed=6)
    assert torch.equal(generator_loss(s_fake), generator_loss(s_fake, "non-saturating"))


def test_generator_loss_gradients_saturate_only_for_minimax():
    s = logits(11, seed=7, scale=6.0)
    n = s.numel()
    D = torch.sigmoid(s.detach())
    assert torch.allclose(grad(generator_loss(s, "minimax"), s), -D / n, rtol=0, atol=1e-16)
    assert torch.allclose(
        grad(generator_loss(s, "non-saturating"), s), -(1 - D) / n, rtol=0, atol=1e-16
    )
    # A confidently rejected fake (D = sigma(-10) ~ 4.5e-5): minimax passes almost no gradient.
    s_rejected = torch.tensor([-10.0], dtype=DTYPE, requires_grad=True)
    g_mm = grad(generator_loss(s_rejected, "minimax"), s_rejected).abs().item()
    g_ns = grad(generator_loss(s_rejected, "non-saturating"), s_rejected).abs().item()
    assert g_mm < 1e-4 < 0.99 < g_ns


def test_losses_are_finite_at_extreme_logits():
    s_real = torch.tensor([1000.0, -1000.0], dtype=DTYPE, requires_grad=True)
    s_fake = torch.tensor([-1000.0, 1000.0], dtype=DTYPE, requires_grad=True)
    losses = [discriminator_loss(s_real, s_fake)] + [
        generator_loss(s_fake, k) for k in GENERATOR_LOSSES
    ]
    for loss in losses:
        assert torch.isfinite(loss)
        assert all(
            torch.isfinite(g).all()
            for g in torch.autograd.grad(loss, (s_real, s_fake), allow_unused=True)
            if g is not None
        )
    # Half the examples perfectly classified, half misclassified by a logit of 1000.
    assert discriminator_loss(s_real, s_fake).item() == pytest.approx(1000.0)
    # The naive formula overflows to inf in float32 already for s = -200.
    s = torch.tensor([-200.0])
    assert torch.isinf(-torch.log(torch.sigmoid(s))).all()
    assert generator_loss(s, "non-saturating").item() == pytest.approx(200.0)


def test_loss_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="kind must be one of .*'wasserstein'"):
        generator_loss(torch.zeros(3), "wasserstein")
    with pytest.raises(TypeError, match="s_real"):
        discriminator_loss(torch.zeros(3, dtype=torch.int64), torch.zeros(3))
    with pytest.raises(ValueError, match="s_fake is empty"):
        discriminator_loss(torch.zeros(3), torch.zeros(0))
    with pytest.raises(TypeError, match="s_fake"):
        generator_loss([0.0, 1.0])


# --- the optimal discriminator ------------------------------------------------------------------


def test_optimal_discriminator_hand_values_numpy_and_torch():
    p_data, p_G = [1.0, 3.0, 0.0, 0.0], [1.0, 1.0, 2.0, 0.0]
    expected = np.array([0.5, 0.75, 0.0, 0.5])  # both densities zero: 0.5
    out = optimal_discriminator(np.array(p_data), np.array(p_G))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, expected)
    out_t = optimal_discriminator(torch.tensor(p_data, dtype=DTYPE), torch.tensor(p_G, dtype=DTYPE))
    assert isinstance(out_t, torch.Tensor)
    assert torch.equal(out_t, torch.tensor(expected, dtype=DTYPE))


def test_optimal_discriminator_maximises_the_pointwise_objective():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 5, 50), rng.uniform(0.01, 5, 50)  # p_data(x), p_G(x) at 50 points
    D_star = optimal_discriminator(a, b)
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)[:, None]  # candidate values of D(x)
    objective = a * np.log(grid) + b * np.log(1 - grid)  # (200001, 50)
    np.testing.assert_allclose(grid[objective.argmax(0), 0], D_star, atol=1e-5)
    # The derivative a/D - b/(1-D) vanishes there.
    np.testing.assert_allclose(a / D_star - b / (1 - D_star), 0.0, atol=1e-9)


def test_value_at_the_optimal_discriminator_is_minus_log4_plus_2jsd():
    x = np.linspace(-12, 22, 68_001)
    dx = x[1] - x[0]
    for mu in (0.0, 0.5, 2.0, 6.0, 10.0):
        p_data, p_G = norm.pdf(x, 0.0, 1.0), norm.pdf(x, mu, 1.5)
        D_star = optimal_discriminator(p_data, p_G)
        one_minus_D_star = optimal_discriminator(p_G, p_data)  # exact, unlike 1 - D_star
        np.testing.assert_allclose(D_star + one_minus_D_star, 1.0, rtol=0, atol=1e-15)
        with np.errstate(divide="ignore"):
            V = (
                np.sum(np.where(p_data > 0, p_data * np.log(D_star), 0.0)) * dx
                + np.sum(np.where(p_G > 0, p_G * np.log(one_minus_D_star), 0.0)) * dx
            )
        jsd = jensenshannon(p_data, p_G) ** 2  # scipy returns the square root, in nats
        assert V == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-6)
        # The logit of D* is the log density ratio, and the discriminator loss there is -V.
        s = torch.as_tensor(norm.logpdf(x, 0.0, 1.0) - norm.logpdf(x, mu, 1.5))
        np.testing.assert_allclose(torch.sigmoid(s).numpy(), D_star, rtol=1e-12, atol=1e-300)
        loss_D = (p_data * F.softplus(-s).numpy()).sum() * dx + (
            p_G * F.softplus(s).numpy()
        ).sum() * dx
        assert loss_D == pytest.approx(-V, abs=1e-9)


def test_optimal_discriminator_rejects_bad_densities():
    with pytest.raises(ValueError, match="p_G must be non-negative"):
        optimal_discriminator(np.array([1.0, 2.0]), np.array([0.5, -0.1]))
    with pytest.raises(ValueError, match="p_data must be non-negative"):
        optimal_discriminator(torch.tensor([float("nan")]), torch.tensor([1.0]))


# --- the alternating step -----------------------------------------------------------------------


def make_players(seed: int = 0, dtype: torch.dtype = torch.float32):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
    return G, D


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def plant_grads(module: nn.Module, seed: int) -> list[torch.Tensor]:
    """Give every parameter a recognisable .grad; return copies to compare with later."""
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
    return [p.grad.clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_discriminator_step_leaves_the_generator_untouched():
    G, D = make_players()
    D_before = copy.deepcopy(D)
    opt_D = torch.optim.Adam(D.parameters(), lr=0.1)
    x_real, z = torch.randn(16, 2), torch.randn(16, 3)
    G_params, D_params = snapshot(G), snapshot(D)
    G_grads = plant_grads(G, seed=1)
    plant_grads(D, seed=2)  # a stale D gradient: zero_grad must clear it

    out = discriminator_step(G, D, opt_D, x_real, z)

    assert same(snapshot(G), G_params), "the discriminator step changed the generator's weights"
    assert same([p.grad for p in G.parameters()], G_grads), "it touched the generator's .grad"
    assert not same(snapshot(D), D_params), "the discriminator did not move"
    # D's .grad is the gradient of this batch alone, at the weights before the step.
    loss = discriminator_loss(D_before(x_real), D_before(G(z)))
    expected = torch.autograd.grad(loss, list(D_before.parameters()))
    for p, g in zip(D.parameters(), expected, strict=True):
        assert torch.allclose(p.grad, g, rtol=0, atol=1e-6)
    assert out["d_loss"] == pytest.approx(loss.item(), abs=1e-6)
    assert list(out) == ["d_loss", "d_real", "d_fake"]


class Recorder(nn.Module):
    """A discriminator that notes whether each input it judges carries a graph."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.requires_grad_of_inputs: list[bool] = []

    def forward(self, x):
        self.requires_grad_of_inputs.append(x.requires_grad)
        return self.lin(x)


def test_discriminator_sees_detached_fakes_and_the_generator_sees_its_graph():
    G, _ = make_players()
    D = Recorder()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    train_step(G, D, opt_G, opt_D, torch.randn(4, 2), lambda x: torch.randn(len(x), 3))
    # real batch, detached fakes (discriminator step), fakes with their graph (generator step)
    assert D.requires_grad_of_inputs == [False, False, True]


def test_discriminator_step_keeps_a_generator_without_gradients_so():
    G, D = make_players()
    opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
    discriminator_step(G, D, opt_D, torch.randn(8, 2), torch.randn(8, 3))
    assert all(p.grad is None for p in G.parameters())


def test_generator_step_leaves_the_discriminator_untouched():
    G, D = make_players()
    opt_G = torch.optim.Adam(G.parameters(), lr=0.1)
    D_params, G_params = snapshot(D), snapshot(G)
    D_grads = plant_grads(D, seed=3)
    out = generator_step(G, D, opt_G, torch.randn(16, 3))
    assert same(snapshot(D), D_params)
    assert same([p.grad for p in D.parameters()], D_grads)
    assert not same(snapshot(G), G_params)
    assert set(out) == {"g_loss"}


@pytest.mark.parametrize("kind", GENERATOR_LOSSES)
def test_train_step_equals_the_step_written_out_by_hand(kind):
    """Plain SGD in float64: every parameter after the step is known exactly."""
    lr = 0.05
    G, D = make_players(seed=4, dtype=DTYPE)
    G_ref, D_ref = make_players(seed=4, dtype=DTYPE)
    x_real = torch.randn(10, 2, dtype=DTYPE)
    z = torch.randn(10, 3, dtype=DTYPE)

    # By hand: the discriminator on G(z) as a constant, then the generator against the new D.
    s_real, s_fake = D_ref(x_real)[:, 0], D_ref(G_ref(z).detach())[:, 0]
    loss_D = -(
        torch.log(torch.sigmoid(s_real)).mean() + torch.log(1 - torch.sigmoid(s_fake)).mean()
    )
    grads_D = torch.autograd.grad(loss_D, list(D_ref.parameters()))
    with torch.no_grad():
        for p, g in zip(D_ref.parameters(), grads_D, strict=True):
            p -= lr * g
    D_after_fake = torch.sigmoid(D_ref(G_ref(z))[:, 0])
    if kind == "minimax":
        loss_G = torch.log(1 - D_after_fake).mean()
    else:
        loss_G = -torch.log(D_after_fake).mean()
    grads_G = torch.autograd.grad(loss_G, list(G_ref.parameters()))
    with torch.no_grad():
        for p, g in zip(G_ref.parameters(), grads_G, strict=True):
            p -= lr * g

    opt_G = torch.optim.SGD(G.parameters(), lr=lr)
    opt_D = torch.optim.SGD(D.parameters(), lr=lr)
    out = train_step(G, D, opt_G, opt_D, x_real, lambda x: z, kind=kind)

    for ours, ref in ((G, G_ref), (D, D_ref)):
        for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
            assert torch.allclose(p, q, rtol=0, atol=1e-13)
    assert list(out) == ["d_loss", "g_loss", "d_real", "d_fake"]
    assert all(isinstance(v, float) for v in out.values())
    assert out["d_loss"] == pytest.approx(loss_D.item(), abs=1e-13)
    assert out["g_loss"] == pytest.approx(loss_G.item(), abs=1e-13)
    assert out["d_real"] == pytest.approx(torch.sigmoid(s_real).mean().item(), abs=1e-13)
    assert out["d_fake"] == pytest.approx(torch.sigmoid(s_fake).mean().item(), abs=1e-13)


def test_train_step_learns_a_gaussian():
    """The step really trains: an affine generator finds the mean and spread of N(3, 0.5^2)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    G = nn.Linear(1, 1)
    D = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_G = torch.optim.Adam(G.parameters(), lr=0.02, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=0.02, betas=(0.5, 0.999))
    for _ in range(600):
        x_real = 3.0 + 0.5 * torch.randn(64, 1, generator=gen)
        out = train_step(
            G, D, opt_G, opt_D, x_real, lambda x: torch.randn(len(x), 1, generator=gen)
        )
    with torch.no_grad():
        x_fake = G(torch.randn(4000, 1, generator=gen))
    assert x_fake.mean().item() == pytest.approx(3.0, abs=0.25)
    assert x_fake.std().item() == pytest.approx(0.5, abs=0.25)
    assert 0.3 < out["d_real"] < 0.7 and 0.3 < out["d_fake"] < 0.7  # D can no longer tell


class CondG(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, z, c):
        return self.lin(torch.cat([z, c], 1))


class CondD(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x, c):
        self.seen.append(c)
        return self.lin(torch.cat([x, c], 1))


def test_conditions_reach_both_players_and_the_penalty_is_added():
    torch.manual_seed(0)
    G, D = CondG(), CondD()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    x_real = torch.randn(6, 2)
    z = torch.randn(6, 2)

    def sample_inputs(x):
        return GanInputs(generator=(z, x), condition=(x,))

    def penalty(x_fake, inputs):
        assert inputs.condition[0] is x_real
        return 0.5 * x_fake.pow(2).mean()

    with torch.no_grad():
        expected_penalty = 0.5 * G(z, x_real).pow(2).mean().item()
    out = train_step(G, D, opt_G, opt_D, x_real, sample_inputs, penalty=penalty)
    assert len(D.seen) == 3 and all(c is x_real for c in D.seen)  # real, fake, fake again
    assert out["g_penalty"] == pytest.approx(expected_penalty, abs=1e-6)
    assert list(out) == ["d_loss", "g_loss", "d_real", "d_fake", "g_penalty"]


def test_train_step_errors_say_what_is_wrong():
    G, D = make_players()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    x_real = torch.randn(4, 2)

    def z_of(x):
        return torch.randn(len(x), 3)

    shared = torch.optim.SGD([*G.parameters(), *D.parameters()], lr=0.1)
    with pytest.raises(ValueError, match="share 4 parameter"):
        train_step(G, D, shared, opt_D, x_real, z_of)
    with pytest.raises(TypeError, match="sample_inputs must return"):
        train_step(G, D, opt_G, opt_D, x_real, lambda x: [torch.randn(4, 3)])
    D_params = snapshot(D)
    with pytest.raises(ValueError, match="kind must be one of"):
        train_step(G, D, opt_G, opt_D, x_real, z_of, kind="hinge")
    assert same(snapshot(D), D_params), "a bad kind must fail before the discriminator moves"
    wide = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"one logit per example.*\(4, 2\)"):
        discriminator_step(
            G, wide, torch.optim.SGD(wide.parameters(), lr=0.1), x_real, z_of(x_real)
        )
    frozen = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="opt_D holds no parameter"):
        discriminator_step(
            G, frozen, torch.optim.SGD(frozen.parameters(), lr=0.1), x_real, z_of(x_real)
        )
    with pytest.raises(TypeError, match="penalty must return a scalar"):
        generator_step(G, D, opt_G, z_of(x_real), penalty=lambda x, i: x.pow(2))


# --- tools for the toy experiments --------------------------------------------------------------


def test_packed_discriminator_judges_consecutive_samples_together():
    net = nn.Linear(6, 1)
    D = PackedDiscriminator(net, m=3)
    x = torch.arange(24.0).reshape(12, 2)
    out = D(x)
    assert out.shape == (4, 1)
    assert torch.equal(
        out,
        net(torch.stack([x[0:3].flatten(), x[3:6].flatten(), x[6:9].flatten(), x[9:12].flatten()])),
    )
    with pytest.raises(ValueError, match=r"B divisible by m; got shape \(10, 2\)"):
        D(x[:10])
    with pytest.raises(ValueError, match="m must be a positive integer, got 0"):
        PackedDiscriminator(net, m=0)


def test_packed_discriminator_trains_with_train_step():
    G, _ = make_players()
    D = PackedDiscriminator(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)), m=2)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    out = train_step(G, D, opt_G, opt_D, torch.randn(8, 2), lambda x: torch.randn(len(x), 3))
    assert all(math.isfinite(v) for v in out.values())


def test_mode_coverage_hand_computed():
    centres = [[0.0, 0.0], [10.0, 0.0]]
    samples = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, -0.2], [10.0, 0.05], [5.0, 5.0]])
    out = mode_coverage(samples, centres, std=0.1)  # within 3 std = 0.3
    assert out["high_quality"] == pytest.approx(0.8)
    np.testing.assert_array_equal(out["counts"], [3, 1])
    assert out["modes"] == 2  # threshold 0.1 * 5 / 2 = 0.25 samples
    assert mode_coverage(samples, centres, std=0.1, min_share=1.0)["modes"] == 1  # needs 2.5
    assert mode_coverage(samples, centres, std=0.1, n_std=1.5)["high_quality"] == pytest.approx(0.6)
    assert mode_coverage(torch.tensor(samples), centres, std=0.1)["modes"] == 2
    # The default: a tenth of the fair share. 20 samples, 15 + 1 high quality: 1 >= 0.1 * 20 / 2.
    many = np.concatenate([np.zeros((15, 2)), [[10.0, 0.0]], np.full((4, 2), 5.0)])
    assert mode_coverage(many, centres, std=0.1)["modes"] == 2
    assert mode_coverage(many, centres, std=0.1, min_share=0.25)["modes"] == 1


def test_mode_coverage_errors():
    with pytest.raises(ValueError, match=r"same dim; got shapes \(2, 3\) and \(1, 2\)"):
        mode_coverage(np.zeros((2, 3)), [[0.0, 0.0]], std=1.0)
    with pytest.raises(ValueError, match="std must be positive, got 0"):
        mode_coverage(np.zeros((2, 2)), [[0.0, 0.0]], std=0)


def test_only_the_optimisers_parameters_receive_gradients():
    """A trainable condition shared by both players (an embedding, say) is left alone."""
    torch.manual_seed(0)
    G, D = CondG(), CondD()
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    c = torch.randn(6, 2, requires_grad=True)
    z = torch.randn(6, 2)
    train_step(G, D, opt_G, opt_D, torch.randn(6, 2), lambda x: GanInputs((z, c), (c,)))
    assert c.grad is None
    assert all(p.grad is not None for p in [*G.parameters(), *D.parameters()])
