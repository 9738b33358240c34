"""GPU use: every model trains on the CPU unless a device is asked for, and gives the CPU's numbers
on CUDA when one is.

Two parts.

* Always run, on the CPU: ``torch.cuda.is_available`` is patched to say True, and every model
  built without a device must still train and score on the CPU. This is the regression test of
  the failures seen on a GPU machine, where ``device=None`` meant CUDA while the tests' tensors
  (and a test's ``torch.Generator()``) stayed on the CPU. It fails on that code: on a machine
  without CUDA, moving a model to "cuda" raises; on one with CUDA, the parameters end up there.
* Marked ``cuda`` and skipped without a GPU (``pytest -m cuda`` selects them): every model class
  of the package is trained with the same seed on the CPU and on CUDA, and the scores must agree
  within a float32 tolerance (see ``RTOL`` and ``ATOL``).

What parity means, model by model. Torch's CPU and CUDA generators give different streams from
the same seed, so a comparison can only hold where both runs use the same random numbers:

* MF-BPR, NeuMF-BPR, AGREE, Consensus, the hybrid models and ``training.fit`` draw their batch
  order and negatives with NumPy on the CPU (``TripletBatches``, ``JointBatches``) and
  initialise their weights (and Consensus its graphs) on the CPU before moving them, so a whole
  training run is compared. Dropout draws on
  the training device, so AGREE is compared with ``dropout=0`` and the hybrid with
  ``id_dropout=0``; with dropout they are only checked to train and score sanely on CUDA (and
  their scoring is compared with identical weights).
* CFGAN and IRGAN draw every random number (order, masks, noise, sampled items) from one seeded
  ``torch.Generator`` on the training device. The comparison gives the CUDA run a CPU
  generator (overriding ``_seeded_generator``): every draw is then made on the CPU and moved, so
  both runs see the same numbers. IRGAN samples items with ``torch.multinomial`` from
  probabilities computed on each device; they differ in the last bits only, and a draw changes
  only if its uniform number falls within that distance of a boundary of the cumulative
  distribution (about 1e-7 per draw; about a thousand draws here). Their own CUDA generators
  are exercised separately, without parity.
* RuleRecommender has no weights: it is compared through an MF-BPR base on each device, with
  continuous rules (average, least misery) whose results move with the scores by at most as much.
* ContentRecommender and the item-item baselines are NumPy only: there is no device to compare.

Why the parity runs are short and the scores are compared centred. A float32 rounding difference
stays a rounding difference only while training is well conditioned, and two things amplify it:

* BPR sees only differences of scores between two items of the same entity, so a per-entity
  constant (an output bias, the item encoder's last bias times ``p_u``) gets a gradient that is
  zero in exact arithmetic and a few ulps in float32. Adam divides by the root of its own running
  square, so these coordinates take steps of size ``lr`` in directions set by rounding: their
  values random-walk differently on each device while the ranking stays the same. Scores of
  BPR-trained models are therefore compared after subtracting each row's mean.
* In NeuMF's and AGREE's ReLU towers some coordinates have near-zero gradients for a while (units
  near their kink); Adam again turns their rounding into full steps, and a few epochs at a large
  learning rate make the runs drift apart (measured: NeuMF after 2 epochs at lr 0.05 differs by
  1e-2 between PyTorch's AVX-512 and portable CPU kernels, AGREE after 4 epochs at lr 0.02 by
  9e-2). The parity runs (``PARITY``) use settings in which the two CPU kernels agree within
  float32 tolerance, and ``test_parity_settings_hold_across_cpu_kernels`` checks that on every
  machine, GPU or not, by training them again in a process with other numeric kernels.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from toy import N_GROUPS, N_ITEMS, N_USERS, two_tastes

from grouprec import aggregation as A
from grouprec import gan
from grouprec import training as T
from grouprec.aggregation import AGREERecommender, ConsensusRecommender, RuleRecommender
from grouprec.data import GroupDataset, Interactions
from grouprec.features import HybridRecommender
from grouprec.gan_recommender import (
    CFGANDiscriminator,
    CFGANGenerator,
    CFGANRecommender,
    IRGANRecommender,
    sample_masks,
)
from grouprec.preference import MF, BPRRecommender, NeuMF, bpr_step_loss
from grouprec.training.batches import _batch_size

# Tolerance of CPU/CUDA parity for float32 training runs of a few dozen optimiser steps. The two
# devices compute the same formulas but sum in different orders (blocked and tree reductions in
# matrix products and means, atomic adds in the backward pass of embeddings and index_add), so
# each operation may differ by a few ulps (float32 ulp: 1.2e-7 relative). Adam's update
# lr * m / (sqrt(v) + eps) carries a relative error of the gradient into the same relative error
# of the step, so after N steps the weights and scores differ by about N times a few ulps of their
# magnitude: here at most a few hundred ulps, ~1e-5 relative for scores of order 1. rtol 1e-3 and
# atol 1e-4 (for scores near 0) leave a margin of 100x above that, while a real difference, such
# as other random draws, other initial weights or a missed step, moves scores by lr ~ 1e-2.
RTOL, ATOL = 1e-3, 1e-4

has_cuda = torch.cuda.is_available()


def on_cuda(test):
    """Mark ``test`` as a GPU test: marker ``cuda``, skipped when CUDA is not available."""
    skip = pytest.mark.skipif(not has_cuda, reason="needs a CUDA GPU")
    return pytest.mark.cuda(skip(test))


# --- a small dataset with structure to learn ------------------------------------------------------


def make_dataset(seed: int = 0, validation: bool = False) -> GroupDataset:
    """The two-taste toy; without a validation split unless asked (parity runs go without one,
    so that no early stopping can pick another epoch on a near tie)."""
    return two_tastes(seed, validation)


@pytest.fixture(scope="module")
def toy() -> GroupDataset:
    return make_dataset()


@pytest.fixture(scope="module")
def toy_val() -> GroupDataset:
    return make_dataset(validation=True)


def all_items(n: int) -> np.ndarray:
    return np.tile(np.arange(N_ITEMS), (n, 1))


# --- the models, each built with a device ---------------------------------------------------------


def bpr(device=None, model="mf", **kw):
    params = {"d": 8, "epochs": 6, "lr": 0.05, "n_neg": 2, "batch_size": 64, "patience": None}
    return BPRRecommender(model=model, **{**params, **kw}, device=device)


def agree(device=None, **kw):
    params = {"d": 8, "attention_dim": 4, "hidden": 4, "epochs": 4, "lr": 0.02, "n_neg": 2}
    return AGREERecommender(**{**params, "batch_size": 64, "patience": None, **kw}, device=device)


def consensus(device=None, **kw):
    params = {"d": 8, "layers": 2, "epochs": 4, "lr": 0.01, "n_neg": 2, "batch_size": 64}
    return ConsensusRecommender(**{**params, "patience": None, **kw}, device=device)


#: Settings of the parity runs: where the float32 rounding of two devices (or of two CPU kernels)
#: stays within ``RTOL``/``ATOL`` after training (see the module docstring).
PARITY = {
    "mf": {},
    "neumf": {"epochs": 1},
    "agree": {"lr": 0.005, "epochs": 3},
    "hybrid": {},
    "consensus": {},
}


def hybrid(device=None, **kw):
    params = {"d": 8, "hidden": (8,), "epochs": 5, "lr": 0.02, "batch_size": 64, "patience": None}
    return HybridRecommender(**{**params, "id_dropout": 0.0, **kw}, device=device)


def cfgan(device=None, **kw):
    params = {"hidden": (16,), "epochs": 3, "batch_size": 16, "lr": 3e-3, "patience": None}
    return CFGANRecommender(**{**params, **kw}, device=device)


def irgan(device=None, **kw):
    params = {"d": 8, "epochs": 2, "n_samples": 8, "batch_size": 64, "patience": None}
    return IRGANRecommender(**{**params, **kw}, device=device)


def modules_of(rec) -> list[torch.nn.Module]:
    """Every torch module a fitted recommender holds."""
    found = [getattr(rec, name) for name in ("model_", "G_", "D_") if hasattr(rec, name)]
    if isinstance(rec, RuleRecommender):
        found += modules_of(rec.base)
    if getattr(rec, "pretrained_", None) is not None:
        found += modules_of(rec.pretrained_)
    return found


def devices_of(rec) -> set[str]:
    return {t.device.type for m in modules_of(rec) for t in [*m.parameters(), *m.buffers()]}


# ==================================================================================================
# Always run: the default device is the CPU, even where CUDA is available
# ==================================================================================================

DEFAULT_DEVICE_MODELS = {
    "MF-BPR": (lambda: bpr(epochs=2), "user"),
    "NeuMF-BPR": (lambda: bpr(model="neumf", epochs=2), "user"),
    "AGREE": (lambda: agree(epochs=2, dropout=0.2), "group"),
    "Consensus": (lambda: consensus(epochs=2, predictor="mlp"), "group"),
    "Rule": (lambda: RuleRecommender(bpr(epochs=2), "average"), "group"),
    "Hybrid": (lambda: hybrid(epochs=2, id_dropout=0.5), "user"),
    "Features only": (lambda: hybrid(epochs=2, use_ids=False), "group"),
    "CFGAN": (lambda: cfgan(epochs=2, z_dim=2), "user"),
    "IRGAN": (lambda: irgan(epochs=1, pretrain_epochs=1), "user"),
}


@pytest.fixture
def cuda_claimed(monkeypatch):
    """Pretend this machine has CUDA: a model must not go there unless asked to."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("name", list(DEFAULT_DEVICE_MODELS))
def test_models_without_a_device_train_on_the_cpu_even_when_cuda_is_available(
    name, toy_val, cuda_claimed
):
    make, task = DEFAULT_DEVICE_MODELS[name]
    rec = make().fit(toy_val, task)
    assert devices_of(rec) == {"cpu"}, name
    n = toy_val.n_entities(task)
    s = rec.score(np.arange(n), all_items(n))
    assert isinstance(s, np.ndarray) and s.shape == (n, N_ITEMS)
    assert not np.isnan(s).any()


def test_fit_and_the_modules_stay_on_the_cpu_by_default(cuda_claimed, tmp_path):
    """What the tests of test_training and test_preference that failed on a GPU machine do: fit
    without a device, then use the model with CPU tensors, and round-trip a checkpoint."""
    train = Interactions(np.arange(7, dtype=np.int64), np.arange(7, dtype=np.int64) + 2)
    for cls in (MF, NeuMF):
        torch.manual_seed(0)
        model = cls(7, 12, d=4)
        T.fit(model, bpr_step_loss, T.TripletBatches(train, 12), epochs=2, lr=0.05, progress=False)
        assert {p.device.type for p in model.parameters()} == {"cpu"}
        u, items = torch.arange(7)[:, None], torch.arange(12).expand(7, 12)
        path = T.save_checkpoint(model, tmp_path / f"{cls.__name__}.pt")
        fresh = cls(7, 12, d=4)
        T.load_checkpoint(fresh, path)
        assert torch.equal(fresh(u, items), model(u, items))


def test_gan_steps_take_a_cpu_generator_by_default(toy, cuda_claimed):
    """What the GAN tests that failed on a GPU machine do: a CPU torch.Generator handed to
    IRGAN's steps, CPU ids given to log_p, and CFGAN's players compared with CPU-built ones."""
    model = irgan(epochs=1).fit(toy, "user")
    pairs = model._pairs(toy.train("user"))
    gen = torch.Generator().manual_seed(0)
    opt_G = torch.optim.Adam(model.G_.parameters(), lr=0.1)
    opt_D = torch.optim.Adam(model.D_.parameters(), lr=0.1)
    model._generator_step(pairs.active[:10], opt_G, gen)
    assert set(model._discriminator_pass(pairs, opt_D, gen)) == {"d_loss", "d_real", "d_fake"}
    log_p = model.log_p(torch.arange(3))
    assert log_p.device.type == "cpu"
    assert torch.allclose(log_p.exp().sum(1), torch.ones(3), atol=1e-5)

    rec = cfgan(objective="reconstruction", epochs=1).fit(toy, "user")
    T.seed_everything(rec.seed)  # the players are built in this order right after seeding
    CFGANGenerator(N_ITEMS, rec.hidden)
    untrained = CFGANDiscriminator(N_ITEMS, rec.hidden)
    for p, q in zip(rec.D_.parameters(), untrained.parameters(), strict=True):
        assert torch.equal(p, q)


def parity_runs() -> dict[str, np.ndarray]:
    """Scores after the parity runs of the BPR-trained models, on the CPU."""
    toy, out = make_dataset(), {}
    for model in ("mf", "neumf"):
        out[model] = bpr("cpu", model, **PARITY[model]).fit(toy, "user").score_all(np.arange(40))
    rec = agree("cpu", **PARITY["agree"]).fit(toy, "group")
    out["agree"] = rec.score(np.arange(N_GROUPS), all_items(N_GROUPS))
    out["hybrid"] = hybrid("cpu", **PARITY["hybrid"]).fit(toy, "user").score_all(np.arange(40))
    rec = consensus("cpu", **PARITY["consensus"]).fit(toy, "group")
    out["consensus"] = rec.score_all(np.arange(N_GROUPS))
    out["consensus_users"] = rec.as_task("user").score_all(np.arange(N_USERS))
    return out


OTHER_KERNELS = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "OPENBLAS_CORETYPE": "Nehalem",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def test_parity_settings_hold_across_cpu_kernels(tmp_path):
    """The parity runs are well conditioned: trained again in a process with PyTorch's portable
    kernels and one thread (other summation orders, as on a GPU), they give this process's
    scores within the parity tolerance. Settings that amplify rounding (see the module
    docstring) fail here on any machine, before a GPU ever runs them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    script = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "from test_cuda import parity_runs; np.savez(sys.argv[2], **parity_runs())"
    )
    out = tmp_path / "other.npz"
    env = {**os.environ, **OTHER_KERNELS}
    subprocess.run([sys.executable, "-c", script, str(here), str(out)], env=env, check=True)
    other, mine = np.load(out), parity_runs()
    assert set(other.files) == set(mine)
    for name, scores in mine.items():
        assert_ranking_parity(scores, other[name], name)


# ==================================================================================================
# On CUDA: the CPU's numbers
# ==================================================================================================


@pytest.fixture(autouse=True)
def full_float32_matmul():
    """Full float32 products on the GPU (no TF32), whatever an earlier test set; restored after."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


def assert_parity(cpu: np.ndarray, gpu: np.ndarray, what: str) -> None:
    assert isinstance(gpu, np.ndarray) and gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, rtol=RTOL, atol=ATOL, err_msg=what)


def centred(scores: np.ndarray) -> np.ndarray:
    """Scores less each row's mean: what BPR training determines (see the module docstring)."""
    return scores - scores.mean(axis=-1, keepdims=True)


def assert_ranking_parity(cpu: np.ndarray, gpu: np.ndarray, what: str) -> None:
    """Parity of scores up to a constant per row, for models trained with BPR."""
    assert isinstance(gpu, np.ndarray) and gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    np.testing.assert_allclose(centred(gpu), centred(cpu), rtol=RTOL, atol=ATOL, err_msg=what)


def cpu_generator(rec):
    """Make a GAN recommender draw its random numbers on the CPU whatever its device."""
    rec._seeded_generator = lambda: torch.Generator().manual_seed(rec.seed)
    return rec


@on_cuda
def test_fit_gives_the_cpu_numbers_on_cuda():
    """training.fit on a plain module: sampling (NumPy) and initial weights on the CPU."""
    pairs = Interactions(
        np.repeat(np.arange(6), 2).astype(np.int64),
        np.stack([np.arange(6), (np.arange(6) + 4) % 10], 1).reshape(-1).astype(np.int64),
    )
    runs = {}
    for device in ("cpu", "cuda"):
        T.seed_everything(0)
        model = MF(6, 10, d=4)
        batches = T.TripletBatches(pairs, 10, n_neg=3, batch_size=4)
        h = T.fit(model, bpr_step_loss, batches, epochs=10, lr=0.05, progress=False, device=device)
        assert next(model.parameters()).device.type == device
        runs[device] = (h.loss, {k: v.cpu() for k, v in model.state_dict().items()})
    np.testing.assert_allclose(runs["cuda"][0], runs["cpu"][0], rtol=RTOL, atol=ATOL)
    for key, value in runs["cpu"][1].items():
        torch.testing.assert_close(runs["cuda"][1][key], value, rtol=RTOL, atol=ATOL)


@on_cuda
@pytest.mark.parametrize("model", ["mf", "neumf"])
def test_bpr_recommenders_give_the_cpu_scores_on_cuda(toy, model):
    users = np.arange(N_USERS)
    cpu = bpr("cpu", model, **PARITY[model]).fit(toy, "user")
    gpu = bpr("cuda", model, **PARITY[model]).fit(toy, "user")
    assert devices_of(gpu) == {"cuda"}
    np.testing.assert_allclose(gpu.history_.loss, cpu.history_.loss, rtol=RTOL, atol=ATOL)
    assert_ranking_parity(
        cpu.score(users, all_items(N_USERS)), gpu.score(users, all_items(N_USERS)), model
    )
    # the group task, where groups are entities of their own
    g = np.arange(N_GROUPS)
    cpu_g = bpr("cpu", model, **PARITY[model]).fit(toy, "group")
    gpu_g = bpr("cuda", model, **PARITY[model]).fit(toy, "group")
    assert_ranking_parity(
        cpu_g.score(g, all_items(N_GROUPS)), gpu_g.score(g, all_items(N_GROUPS)), model
    )


@on_cuda
def test_agree_gives_the_cpu_scores_and_weights_on_cuda(toy):
    cpu = agree("cpu", **PARITY["agree"]).fit(toy, "group")
    gpu = agree("cuda", **PARITY["agree"]).fit(toy, "group")
    assert devices_of(gpu) == {"cuda"}
    groups, users = np.arange(N_GROUPS), np.arange(N_USERS)
    assert_ranking_parity(
        cpu.score(groups, all_items(N_GROUPS)), gpu.score(groups, all_items(N_GROUPS)), "groups"
    )
    items = all_items(N_GROUPS)
    assert_parity(
        cpu.attention_weights(groups, items), gpu.attention_weights(groups, items), "alpha"
    )
    users_cpu, users_gpu = cpu.as_task("user"), gpu.as_task("user")
    assert_ranking_parity(
        users_cpu.score(users, all_items(N_USERS)),
        users_gpu.score(users, all_items(N_USERS)),
        "users",
    )
    for a, b in zip(
        cpu.score_members([0, 2, 4], np.arange(N_ITEMS), group=1),
        gpu.score_members([0, 2, 4], np.arange(N_ITEMS), group=1),
        strict=True,
    ):
        assert_ranking_parity(a, b, "score_members")


@on_cuda
def test_agree_with_dropout_trains_on_cuda_and_scores_like_the_cpu(toy_val):
    """Dropout draws on the GPU: no parity of training, but the same weights score alike."""
    gpu = agree("cuda", dropout=0.3).fit(toy_val, "group")
    assert np.isfinite(gpu.history_.loss).all() and gpu.history_.best_epoch is not None
    groups = np.arange(N_GROUPS)
    on_gpu = gpu.score(groups, all_items(N_GROUPS))
    cpu = copy.copy(gpu)
    cpu.model_ = copy.deepcopy(gpu.model_).to("cpu")
    assert_parity(cpu.score(groups, all_items(N_GROUPS)), on_gpu, "AGREE scoring")


@on_cuda
def test_consensus_gives_the_cpu_scores_and_views_on_cuda(toy):
    """Graphs built on the CPU and moved, weights drawn on the CPU, NumPy batches: the same run."""
    cpu = consensus("cpu", **PARITY["consensus"]).fit(toy, "group")
    gpu = consensus("cuda", **PARITY["consensus"]).fit(toy, "group")
    assert devices_of(gpu) == {"cuda"}
    np.testing.assert_allclose(gpu.history_.loss, cpu.history_.loss, rtol=RTOL, atol=ATOL)
    groups, users = np.arange(N_GROUPS), np.arange(N_USERS)
    assert_ranking_parity(
        cpu.score(groups, all_items(N_GROUPS)), gpu.score(groups, all_items(N_GROUPS)), "groups"
    )
    assert_ranking_parity(cpu.score_all(groups), gpu.score_all(groups), "score_all")
    assert_ranking_parity(
        cpu.as_task("user").score(users, all_items(N_USERS)),
        gpu.as_task("user").score(users, all_items(N_USERS)),
        "users",
    )
    cpu_views, gpu_views = cpu.views(), gpu.views()
    assert_parity(cpu_views["gates"], gpu_views["gates"], "gates")


@on_cuda
def test_consensus_with_validation_and_the_mlp_predictor_trains_on_cuda(toy_val):
    gpu = consensus("cuda", predictor="mlp", patience=3).fit(toy_val, "group")
    assert np.isfinite(gpu.history_.loss).all() and gpu.history_.best_epoch is not None
    groups = np.arange(N_GROUPS)
    on_gpu = gpu.score(groups, all_items(N_GROUPS))
    cpu = copy.copy(gpu)
    cpu.model_ = copy.deepcopy(gpu.model_).to("cpu")  # the graphs move with the weights
    assert devices_of(cpu) == {"cpu"}
    assert_parity(cpu.score(groups, all_items(N_GROUPS)), on_gpu, "Consensus scoring")


@on_cuda
@pytest.mark.parametrize("rule", ["average", "least_misery"])
def test_rule_recommender_gives_the_cpu_scores_on_cuda(toy, rule):
    cpu = RuleRecommender(bpr("cpu"), rule).fit(toy, "group")
    gpu = RuleRecommender(bpr("cuda"), rule).fit(toy, "group")
    assert devices_of(gpu) == {"cuda"}
    groups = np.arange(N_GROUPS)
    assert_parity(
        cpu.score(groups, all_items(N_GROUPS)), gpu.score(groups, all_items(N_GROUPS)), rule
    )


@on_cuda
@pytest.mark.parametrize(
    "kw",
    [{}, {"use_ids": False}, {"use_features": False}],
    ids=["hybrid", "features-only", "mf"],
)
@pytest.mark.parametrize("task", ["user", "group"])
def test_hybrid_models_give_the_cpu_scores_on_cuda(toy, kw, task):
    cpu = hybrid("cpu", **kw).fit(toy, task)
    gpu = hybrid("cuda", **kw).fit(toy, task)
    assert devices_of(gpu) == {"cuda"}
    n = toy.n_entities(task)
    assert_ranking_parity(
        cpu.score(np.arange(n), all_items(n)), gpu.score(np.arange(n), all_items(n)), "score"
    )
    assert_ranking_parity(cpu.score_all(np.arange(n)), gpu.score_all(np.arange(n)), "score_all")


@on_cuda
def test_hybrid_with_id_dropout_trains_on_cuda_and_scores_like_the_cpu(toy_val):
    """id_dropout draws on the GPU: no parity of training, but the same weights score alike."""
    gpu = hybrid("cuda", id_dropout=0.5).fit(toy_val, "user")
    assert np.isfinite(gpu.history_.loss).all() and gpu.history_.best_epoch is not None
    users = np.arange(N_USERS)
    on_gpu = gpu.score(users, all_items(N_USERS))
    cpu = copy.copy(gpu)
    cpu.model_ = copy.deepcopy(gpu.model_).to("cpu")
    assert_parity(cpu.score(users, all_items(N_USERS)), on_gpu, "hybrid scoring")


@on_cuda
@pytest.mark.parametrize(
    "kw, task",
    [
        ({}, "user"),
        ({"z_dim": 3}, "user"),
        ({"objective": "reconstruction"}, "user"),
        ({"alpha": 0.5, "train_rows": "all"}, "group"),
    ],
    ids=["gan", "noise", "reconstruction", "group-all-rows"],
)
def test_cfgan_with_the_cpu_random_numbers_gives_the_cpu_scores_on_cuda(toy, kw, task):
    cpu = cfgan("cpu", **kw).fit(toy, task)
    gpu = cpu_generator(cfgan("cuda", **kw)).fit(toy, task)
    assert devices_of(gpu) == {"cuda"}
    for key in cpu.history_.to_frame().columns.drop("seconds"):
        np.testing.assert_allclose(
            gpu.history_.to_frame()[key], cpu.history_.to_frame()[key], rtol=RTOL, atol=ATOL
        )
    n = toy.n_entities(task)
    e = np.arange(n)
    assert_parity(cpu.filtered(False).score_all(e), gpu.filtered(False).score_all(e), "score_all")
    assert_parity(cpu.score(e, all_items(n)), gpu.score(e, all_items(n)), "score")  # -inf alike
    np.testing.assert_array_equal(gpu.recommend(e, k=5).shape, (n, 5))


@on_cuda
@pytest.mark.parametrize(
    "kw", [{}, {"g_steps": 2, "kind": "non-saturating"}, {"pretrain_epochs": 2}]
)
def test_irgan_with_the_cpu_random_numbers_gives_the_cpu_scores_on_cuda(toy, kw):
    cpu = irgan("cpu", **kw).fit(toy, "user")
    gpu = cpu_generator(irgan("cuda", **kw)).fit(toy, "user")
    assert devices_of(gpu) == {"cuda"}
    users = np.arange(N_USERS)
    assert_parity(
        cpu.filtered(False).score_all(users), gpu.filtered(False).score_all(users), "IRGAN"
    )
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(
            gpu.history_.to_frame()[key], cpu.history_.to_frame()[key], rtol=RTOL, atol=ATOL
        )


@on_cuda
@pytest.mark.parametrize("make", [cfgan, irgan], ids=["CFGAN", "IRGAN"])
def test_gans_train_on_cuda_with_their_own_generator(toy_val, make):
    """The default: a seeded CUDA generator (other numbers than the CPU's, so no parity)."""
    rec = make("cuda").fit(toy_val, "user")
    assert devices_of(rec) == {"cuda"}
    frame = rec.history_.to_frame()
    assert np.isfinite(frame.drop(columns="seconds").to_numpy()).all()
    s = rec.score_all(np.arange(N_USERS))
    consumed = toy_val.train_matrix("user").toarray() > 0
    assert s.dtype == np.float32 and bool(np.isneginf(s[consumed]).all())
    assert bool(np.isfinite(s[~consumed]).all())
    assert rec.recommend(np.arange(N_USERS), k=5).shape == (N_USERS, 5)


@on_cuda
def test_irgan_steps_on_cuda_take_a_generator_of_either_device(toy):
    model = irgan("cuda", epochs=1).fit(toy, "user")
    pairs = model._pairs(toy.train("user"))
    opt_G = torch.optim.Adam(model.G_.parameters(), lr=0.1)
    opt_D = torch.optim.Adam(model.D_.parameters(), lr=0.1)
    for gen in (torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)):
        assert np.isfinite(model._generator_step(pairs.active[:10], opt_G, gen))
        out = model._discriminator_pass(pairs, opt_D, gen)
        assert all(np.isfinite(v) for v in out.values())
    log_p = model.log_p(torch.arange(3))  # CPU ids, a CUDA model
    assert log_p.device.type == "cuda"
    torch.testing.assert_close(log_p.exp().sum(1).cpu(), torch.ones(3), rtol=0, atol=1e-5)


@on_cuda
def test_sample_masks_on_cuda():
    x = (torch.rand(50, 200, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    # a CPU generator and rows on the GPU: the CPU's masks, on the GPU
    cpu = sample_masks(x, 0.3, 0.2, torch.Generator().manual_seed(1))
    gpu = sample_masks(x.cuda(), 0.3, 0.2, torch.Generator().manual_seed(1))
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu())
    # a CUDA generator: other draws, the same properties
    m_pm, m_zr = sample_masks(x.cuda(), 0.3, 0.2, torch.Generator(device="cuda").manual_seed(1))
    e = x.cuda() > 0
    assert bool(m_pm[e].eq(1).all()) and bool(m_zr[e].eq(0).all())
    assert m_pm[~e].mean().item() == pytest.approx(0.3, abs=0.02)


@on_cuda
def test_checkpoints_move_between_devices(toy, tmp_path):
    gpu = bpr("cuda").fit(toy, "user")
    path = T.save_checkpoint(gpu.model_, tmp_path / "mf.pt")
    fresh = MF(**T.read_checkpoint(path)["meta"]["config"])
    T.load_checkpoint(fresh, path)  # a CPU model from CUDA weights
    for a, b in zip(fresh.parameters(), gpu.model_.parameters(), strict=True):
        assert a.device.type == "cpu" and torch.equal(a, b.cpu())
    back = MF(**fresh.config).cuda()
    T.load_checkpoint(back, path)  # and back onto the GPU
    assert all(p.device.type == "cuda" for p in back.parameters())


@on_cuda
def test_fit_validates_on_cuda(toy_val):
    rec = bpr("cuda", epochs=4).fit(toy_val, "user")
    assert len(rec.history_.val) == 4 and rec.history_.best_epoch is not None
    cpu = bpr("cpu", epochs=4).fit(toy_val, "user")
    np.testing.assert_allclose(rec.history_.loss, cpu.history_.loss, rtol=RTOL, atol=ATOL)


@on_cuda
@pytest.mark.parametrize("rule", sorted(A.RULES))
def test_static_rules_on_cuda_tensors_give_the_cpu_result(rule):
    """Value rules: float64, so only the order of sums differs (rtol 1e-12). List rules decide
    ties within TIE_ATOL, far above that rounding, so their lists are identical."""
    gen = torch.Generator().manual_seed(3)
    r = torch.rand(5, 4, 12, generator=gen, dtype=torch.float64)  # (G, S, I)
    m = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0]]).bool()
    params = {"threshold": 0.5} if rule in ("approval", "average_without_misery") else {}
    if rule in ("fairness_greedy", "plurality"):
        params["k"] = 6
    cpu = A.aggregate(r, m, rule, **params)
    gpu = A.aggregate(r.cuda(), m.cuda(), rule, **params)
    assert gpu.device.type == "cuda" and gpu.dtype == cpu.dtype
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12)
    assert torch.equal(A.top_k(gpu, 6).cpu(), A.top_k(cpu, 6))


@on_cuda
@pytest.mark.parametrize("rule", ["plurality_list", "fairness_greedy_list"])
def test_list_rules_on_cuda_tensors_build_the_cpu_lists(rule):
    fn = getattr(A, rule)
    gen = torch.Generator().manual_seed(4)
    r = torch.rand(6, 5, 20, generator=gen, dtype=torch.float64)  # (G, S, I)
    r[:, :, 10:] = r[:, :, :10].round(decimals=1)  # ties inside each member's scores, too
    m = torch.rand(6, 5, generator=gen) < 0.7
    m[:, 0] = True
    for k in (1, 7, 20):
        cpu = fn(r, m, k=k)
        gpu = fn(r.cuda(), m, k=k)  # a CPU mask with CUDA scores is moved along
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu), k


@on_cuda
def test_mode_coverage_reads_cuda_samples():
    centres = [[0.0, 0.0], [1.0, 1.0]]
    samples = torch.tensor(
        [[0.05, 0.0], [1.0, 0.95], [0.5, 0.5]], device="cuda", requires_grad=True
    )
    out = gan.mode_coverage(samples, centres, std=0.1)
    assert out["modes"] == 2 and out["high_quality"] == pytest.approx(2 / 3)


@on_cuda
def test_auto_picks_cuda():
    assert T.select_device("auto").type == "cuda"
    assert T.select_device() == torch.device("cpu")


# ==================================================================================================
# No host synchronisation inside a training step on CUDA
# ==================================================================================================


def _step_setup(model: str, ds: GroupDataset, device: str):
    """A network, its loss function and one epoch of batches already on ``device``."""
    from grouprec.features import HybridMF

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if model == "agree":
        net = agree().build(ds)
        batches = A.JointBatches(ds.group_train, ds.user_train, N_ITEMS, n_neg=2, batch_size=64)
        loss_fn = A.agree_step_loss
    else:
        if model == "hybrid":
            net = HybridMF(N_USERS, N_ITEMS, 3, d=8, features=torch.rand(N_ITEMS, 3))
        else:
            net = {"mf": MF, "neumf": NeuMF}[model](N_USERS, N_ITEMS, d=8)
        batches = T.TripletBatches(ds.user_train, N_ITEMS, n_neg=2, batch_size=64)
        loss_fn = bpr_step_loss
    return net.to(device), loss_fn, list(batches(1, rng, device=device))


@on_cuda
@pytest.mark.parametrize("model", ["mf", "neumf", "agree", "hybrid"])
def test_training_steps_make_no_host_synchronisation_on_cuda(toy, model):
    """Forward, backward, Adam and the running loss of whole epochs, under
    ``torch.cuda.set_sync_debug_mode("error")``: any operation that makes the host wait for the
    device raises."""
    net, loss_fn, batches = _step_setup(model, toy, "cuda")
    first = batches[0]["entity"] if model == "agree" else batches[0][0]
    assert first.device.type == "cuda"  # the epoch was moved at once
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    total = torch.zeros((), dtype=torch.float64, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in batches * 2:  # the second pass: Adam's state exists
            loss = loss_fn(net, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double() * _batch_size(batch)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(total).item()


@on_cuda
def test_fit_synchronises_per_epoch_not_per_batch(toy):
    """The number of synchronisations ``fit`` makes does not grow with the number of batches."""
    import warnings

    def syncs(batch_size: int) -> int:
        rec = bpr("cuda", epochs=2, batch_size=batch_size, progress=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                rec.fit(toy, "user")
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    assert syncs(16) == syncs(128)
