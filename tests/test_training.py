"""Tests for grouprec.training: seeding, devices, batches, the loop, early stopping, checkpoints."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch
from torch import nn

from grouprec import training as T
from grouprec.data import EvalCases, Interactions, NegativeSampler
from grouprec.training import devices

# ---------------------------------------------------------------- small helpers


class Linear1(nn.Module):
    """y = w x + b on scalars, with a ``config`` like the package's models."""

    def __init__(self, w: float = 0.0, b: float = 0.0) -> None:
        super().__init__()
        self.config = {"w": w, "b": b}
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x + self.b


def mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def regression_batches(epoch: int, rng: np.random.Generator):
    x = torch.from_numpy(rng.normal(size=64)).float()
    y = 3.0 * x - 1.0
    return [(x[:32], y[:32]), (x[32:], y[32:])]


class Dot(nn.Module):
    """Dot-product scorer, as small as a recommender gets."""

    def __init__(self, n_users: int, n_items: int, dim: int = 4) -> None:
        super().__init__()
        self.config = {"n_users": n_users, "n_items": n_items, "dim": dim}
        self.P = nn.Embedding(n_users, dim)
        self.Q = nn.Embedding(n_items, dim)

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return (self.P(u) * self.Q(i)).sum(-1)


def bpr(model: nn.Module, batch) -> torch.Tensor:
    u, i, j = batch
    return -torch.nn.functional.logsigmoid(model(u, i)[:, None] - model(u[:, None], j)).mean()


def toy_pairs() -> Interactions:
    """6 users, 10 items; user u likes items u and u + 4 (mod 10)."""
    users = np.repeat(np.arange(6), 2)
    items = np.stack([np.arange(6), (np.arange(6) + 4) % 10], axis=1).reshape(-1)
    return Interactions(users.astype(np.int64), items.astype(np.int64))


# ---------------------------------------------------------------- seeding and devices


def test_seed_everything_repeats_every_generator():
    T.seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002 (the legacy global)
    T.seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    T.seed_everything(8)
    assert not torch.equal(torch.rand(3), a[2])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        T.seed_everything(bad)


def test_select_device_auto_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert T.select_device("auto") == torch.device("cpu")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert T.select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.select_device("auto") == torch.device("cuda")  # CUDA first, then MPS
    assert T.select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("cuda, mps", [(False, False), (False, True), (True, True)])
def test_select_device_defaults_to_the_cpu_whatever_the_machine_has(monkeypatch, cuda, mps):
    # Results must not depend on whether a GPU is present unless a device is asked for.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(devices, "_mps_available", lambda: mps)
    assert T.select_device() == torch.device("cpu")
    assert T.select_device(None) == torch.device("cpu")
    assert T.select_device(torch.device("cpu")) == torch.device("cpu")


def test_select_device_names_a_missing_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda'.*CUDA is not available"):
        T.select_device("cuda")
    with pytest.raises(ValueError, match="'mps'.*MPS is not available"):
        T.select_device("mps")
    with pytest.raises(ValueError, match="'gpu0'"):
        T.select_device("gpu0")
    with pytest.raises(ValueError, match="index=0.*CUDA is not available"):
        T.select_device(torch.device("cuda:0"))


def test_select_device_names_a_missing_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="'cuda:3'.*1 CUDA device"):
        T.select_device("cuda:3")


def test_fit_trains_on_the_cpu_by_default_even_when_cuda_is_available(monkeypatch):
    """The regression test of GPU machines: fit(device=None) used to pick CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = Linear1()
    T.fit(model, mse, regression_batches, epochs=2, lr=0.1, progress=False)
    assert all(p.device.type == "cpu" for p in model.parameters())


# ---------------------------------------------------------------- triplet batches


def test_triplet_batches_shapes_cover_every_pair_once_and_skip_positives():
    train = toy_pairs()
    batches = T.TripletBatches(train, n_items=10, n_neg=3, batch_size=5)
    assert len(batches) == 3 and batches.n_pairs == 12
    out = list(batches(1, np.random.default_rng(0)))
    assert [len(e) for e, _, _ in out] == [5, 5, 2]
    for e, i, j in out:
        assert e.dtype == i.dtype == j.dtype == torch.int64
        assert e.shape == i.shape and j.shape == (len(e), 3)
    e = torch.cat([b[0] for b in out]).numpy()
    i = torch.cat([b[1] for b in out]).numpy()
    j = torch.cat([b[2] for b in out]).numpy()
    got = sorted(zip(e.tolist(), i.tolist(), strict=True))
    assert got == sorted(zip(train.entity.tolist(), train.item.tolist(), strict=True))
    assert not NegativeSampler(train, 10).is_positive(e, j).any()


def test_triplet_batches_reproducible_and_reshuffled():
    batches = T.TripletBatches(toy_pairs(), n_items=10, n_neg=2, batch_size=4)

    def flat(rng_seed: int, epochs: int = 1):
        rng = np.random.default_rng(rng_seed)
        epoch_runs = [list(batches(k, rng)) for k in range(1, epochs + 1)]
        return [torch.cat([b[c] for b in run]) for run in epoch_runs for c in range(3)]

    a, b = flat(3), flat(3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    two = flat(3, epochs=2)
    assert not torch.equal(two[0], two[3])  # a new order each epoch


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_neg": 0}, "n_neg"), ({"batch_size": 0}, "batch_size")],
)
def test_triplet_batches_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.TripletBatches(toy_pairs(), n_items=10, **kwargs)


def test_triplet_batches_empty_train():
    empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="no interactions"):
        T.TripletBatches(empty, n_items=10)


# ---------------------------------------------------------------- the loop


def test_fit_learns_a_line_and_returns_a_history():
    model = Linear1()
    history = T.fit(model, mse, regression_batches, epochs=60, lr=0.1, progress=False, device="cpu")
    assert model.w.item() == pytest.approx(3.0, abs=1e-2)
    assert model.b.item() == pytest.approx(-1.0, abs=1e-2)
    assert history.epochs == 60 and history.loss[-1] < 1e-3 < history.loss[0]
    assert history.best_epoch is None and history.val == [] and history.best == {}
    frame = history.to_frame()
    assert list(frame.columns) == ["loss", "seconds"]
    assert list(frame.index) == list(range(1, 61)) and frame.index.name == "epoch"
    assert history.seconds >= sum(history.epoch_seconds) * 0.99


def test_fit_passes_epoch_numbers_from_one_and_the_same_rng():
    seen = []

    def make(epoch, rng):
        seen.append((epoch, rng))
        return regression_batches(epoch, rng)

    T.fit(Linear1(), mse, make, epochs=3, lr=0.1, progress=False)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert all(r is seen[0][1] for _, r in seen)


def test_fit_loss_is_the_batch_weighted_mean():
    x = torch.tensor([1.0, 2.0, 3.0])
    batches = [(x[:1], torch.zeros(1)), (x[1:], torch.zeros(2))]  # sizes 1 and 2
    model = Linear1(w=1.0)
    # a tiny lr keeps the weights (and so the losses) unchanged to ~1e-9 during the epoch
    history = T.fit(model, mse, batches, epochs=1, lr=1e-12, progress=False)
    assert history.loss[0] == pytest.approx((1 + 4 + 9) / 3, rel=1e-6)


def test_fit_is_deterministic_given_the_seed():
    def run(seed):
        T.seed_everything(0)  # the same initial weights each time
        model = Dot(6, 10)
        batches = T.TripletBatches(toy_pairs(), 10, n_neg=2, batch_size=4)
        h = T.fit(model, bpr, batches, epochs=5, lr=0.05, seed=seed, progress=False)
        return h.loss, model.state_dict()

    loss_a, state_a = run(1)
    loss_b, state_b = run(1)
    loss_c, _ = run(2)
    assert loss_a == loss_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert loss_a != loss_c


def test_a_seeded_fit_gives_the_global_generators_back_their_state():
    def draws():
        return random.random(), np.random.random(), float(torch.rand(()))  # noqa: NPY002

    T.seed_everything(5)
    model = Dot(6, 10)
    expected = draws()
    T.seed_everything(5)
    model = Dot(6, 10)
    batches = T.TripletBatches(toy_pairs(), 10, n_neg=2, batch_size=4)
    T.fit(model, bpr, batches, epochs=2, lr=0.05, seed=3, progress=False)
    assert draws() == expected


def test_preserved_rng_restores_after_an_error():
    T.seed_everything(9)
    expected = random.random(), float(torch.rand(()))
    T.seed_everything(9)
    with pytest.raises(RuntimeError), T.preserved_rng():
        T.seed_everything(1)
        raise RuntimeError("inside")
    assert (random.random(), float(torch.rand(()))) == expected


def test_fit_overfits_a_tiny_dataset():
    T.seed_everything(0)
    train = toy_pairs()
    model = Dot(6, 10, dim=8)
    batches = T.TripletBatches(train, 10, n_neg=4, batch_size=12)
    history = T.fit(model, bpr, batches, epochs=300, lr=0.05, progress=False)
    assert history.loss[-1] < 0.02 < history.loss[0]
    with torch.no_grad():
        scores = model(torch.arange(6)[:, None], torch.arange(10)[None, :])  # (6, 10)
    positive = torch.zeros(6, 10, dtype=torch.bool)
    positive[torch.as_tensor(train.entity), torch.as_tensor(train.item)] = True
    for u in range(6):  # every positive above every negative: training AUC of 1
        assert scores[u][positive[u]].min() > scores[u][~positive[u]].max()


def test_fit_accepts_a_dataloader_and_an_optimizer_class():
    x = torch.linspace(-1, 1, 64)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, 3 * x - 1), batch_size=16, shuffle=False
    )
    model = Linear1()
    sgd = functools.partial(torch.optim.SGD, momentum=0.9)
    T.fit(model, mse, loader, epochs=100, lr=0.05, optimizer=sgd, progress=False)
    assert model.w.item() == pytest.approx(3.0, abs=1e-3)


def scripted_val(values, snapshots):
    """A val_fn that reports the given NDCG@10 values and records the weights it saw."""
    calls = iter(values)

    def val_fn(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"NDCG@10": next(calls), "HR@10": 0.5}

    return val_fn


def test_early_stopping_restores_the_best_weights():
    snapshots: list[dict] = []
    model = Linear1()
    history = T.fit(
        model,
        mse,
        regression_batches,
        epochs=20,
        lr=0.1,
        val_fn=scripted_val([0.1, 0.5, 0.3, 0.4, 0.2, 0.9], snapshots),
        patience=3,
        progress=False,
    )
    assert history.epochs == 5 and history.stopped_early  # epochs 3, 4, 5 did not improve
    assert history.best_epoch == 2 and history.best["NDCG@10"] == 0.5
    best = snapshots[1]
    assert all(torch.equal(model.state_dict()[k], best[k]) for k in best)
    assert not torch.equal(snapshots[-1]["w"], best["w"])  # training did move on
    frame = history.to_frame()
    assert list(frame["NDCG@10"]) == [0.1, 0.5, 0.3, 0.4, 0.2]
    assert set(frame.columns) == {"loss", "NDCG@10", "HR@10", "seconds"}


def test_min_delta_and_no_restore():
    snapshots: list[dict] = []
    model = Linear1()
    history = T.fit(
        model,
        mse,
        regression_batches,
        epochs=4,
        lr=0.1,
        val_fn=scripted_val([0.5, 0.505, 0.52, 0.4], snapshots),
        min_delta=0.01,
        patience=None,
        restore_best=False,
        progress=False,
    )
    assert history.best_epoch == 3 and not history.stopped_early  # 0.505 is not 0.01 better
    assert all(torch.equal(model.state_dict()[k], snapshots[-1][k]) for k in snapshots[-1])


def test_val_fn_runs_in_eval_mode_without_gradients():
    seen = []

    def val_fn(model):
        seen.append((model.training, torch.is_grad_enabled()))
        return {"NDCG@10": 0.0}

    model = Linear1()
    T.fit(model, mse, regression_batches, epochs=2, lr=0.1, val_fn=val_fn, progress=False)
    assert seen == [(False, False), (False, False)]


def test_fit_bad_input():
    model = Linear1()
    kw = {"epochs": 1, "lr": 0.1, "progress": False}
    with pytest.raises(ValueError, match="epochs"):
        T.fit(model, mse, regression_batches, epochs=0, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        T.fit(model, mse, regression_batches, epochs=1, lr=0.0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        T.fit(model, mse, regression_batches, optimizer="adamm", **kw)
    with pytest.raises(TypeError, match="scalar tensor"):
        T.fit(model, lambda m, b: mse(m, b).repeat(2), regression_batches, **kw)
    with pytest.raises(KeyError, match="NDCG@10"):
        T.fit(model, mse, regression_batches, val_fn=lambda m: {"HR@10": 1.0}, **kw)
    with pytest.raises(ValueError, match="no batch"):
        T.fit(model, mse, lambda e, r: [], **kw)
    with pytest.raises(TypeError, match="one-shot iterator"):
        T.fit(model, mse, iter(regression_batches(1, np.random.default_rng(0))), epochs=2, lr=0.1)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        T.fit(model, lambda m, b: mse(m, b) * float("nan"), regression_batches, **kw)


# ---------------------------------------------------------------- validation metrics


def test_ranking_val_fn_ranks_each_positive_among_its_negatives():
    pytest.importorskip("grouprec.metrics")
    # A model that scores item i as i: the candidate with the largest id ranks first.
    model = Linear1(w=1.0)

    def score(m, e, items):
        return m(items.float())

    best = EvalCases(np.arange(3), np.array([50, 60, 70]), np.tile(np.arange(10), (3, 1)))
    assert T.ranking_val_fn(best, score)(model) == {
        "HR@5": 1.0,
        "NDCG@5": 1.0,
        "HR@10": 1.0,
        "NDCG@10": 1.0,
    }
    # Positive with the 7th largest id in every list: rank 7, so HR@5 = 0, NDCG@10 = 1/log2(8).
    seventh = EvalCases(np.arange(2), np.array([3, 3]), np.tile(np.arange(4, 10), (2, 1)))
    metrics = T.ranking_val_fn(seventh, score, batch_size=1)(model)
    assert metrics["HR@5"] == 0.0 and metrics["HR@10"] == 1.0
    assert metrics["NDCG@10"] == pytest.approx(1 / np.log2(8))


def test_ranking_val_fn_default_broadcasts_the_model():
    pytest.importorskip("grouprec.metrics")
    model = Dot(3, 10)
    cases = EvalCases(np.arange(3), np.array([1, 2, 3]), np.tile(np.arange(4, 8), (3, 1)))
    model.train()
    T.ranking_val_fn(cases)(model)
    assert model.training  # the mode it was in is restored


def test_ranking_val_fn_needs_cases():
    with pytest.raises(ValueError, match="split_validation"):
        T.ranking_val_fn(None)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trips_exactly(tmp_path):
    T.seed_everything(0)
    model = Dot(6, 10, dim=3)
    T.fit(model, bpr, T.TripletBatches(toy_pairs(), 10), epochs=2, lr=0.1, progress=False)
    meta = {"epoch": 2, "metrics": {"NDCG@10": 0.5}, "note": "x", "ks": [5, 10], "t": None}
    path = T.save_checkpoint(model, tmp_path / "sub" / "dot.pt", **meta)
    assert path.is_file()
    T.seed_everything(1)
    fresh = Dot(6, 10, dim=3)
    assert not torch.equal(fresh.P.weight, model.P.weight)
    loaded = T.load_checkpoint(fresh, path)
    assert loaded == {"config": model.config, **meta}
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)
    raw = T.read_checkpoint(path)
    assert raw["class"].endswith("Dot") and rebuilt_equal(raw, model)


def rebuilt_equal(raw, model) -> bool:
    rebuilt = Dot(**raw["meta"]["config"])
    rebuilt.load_state_dict(raw["state_dict"])
    return all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())


def test_checkpoint_float64_round_trip(tmp_path):
    model = Linear1(w=0.1, b=0.2).double()
    with torch.no_grad():
        model.w.fill_(1 / 3)
    path = T.save_checkpoint(model, tmp_path / "m.pt")
    fresh = Linear1(w=0.1, b=0.2).double()
    T.load_checkpoint(fresh, path)
    assert fresh.w.dtype == torch.float64 and fresh.w.item() == 1 / 3


def test_checkpoint_errors(tmp_path):
    model = Dot(6, 10, dim=3)
    path = T.save_checkpoint(model, tmp_path / "dot.pt")
    with pytest.raises(ValueError, match="holds a .*Dot, but model is a .*Linear1"):
        T.load_checkpoint(Linear1(), path)
    with pytest.raises(ValueError, match="saved from Dot"):
        T.load_checkpoint(Dot(6, 10, dim=4), path)
    with pytest.raises(TypeError, match=r"meta\['arr'\].*ndarray"):
        T.save_checkpoint(model, tmp_path / "bad.pt", arr=np.zeros(2))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        T.load_checkpoint(model, tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a grouprec checkpoint"):
        T.load_checkpoint(model, tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        T.load_checkpoint(model, tmp_path / "junk.pt")


def test_train_epochs_keeps_the_best_weights_of_every_module():
    """The loop under fit and the GANs: several modules restored together, a callback recorded."""
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.9])
    snapshots = {}

    def one_epoch(epoch):
        with torch.no_grad():
            a.weight.add_(1.0)
            b.bias.sub_(1.0)
        snapshots[epoch] = (a.weight.clone(), b.bias.clone())
        return {"loss": 1.0 / epoch}

    history = T.train_epochs(
        one_epoch,
        epochs=5,
        state={"a": a, "b": b},
        val_fn=lambda: {"NDCG@10": next(scores)},
        patience=2,
        callback=lambda epoch: {"twice": 2.0 * epoch},
        progress=False,
    )
    assert history.epochs == 4 and history.best_epoch == 2 and history.stopped_early
    assert history.loss == [1.0, 0.5, 1 / 3, 0.25] and history.best == {"NDCG@10": 0.5}
    assert torch.equal(a.weight, snapshots[2][0]) and torch.equal(b.bias, snapshots[2][1])
    with pytest.raises(FloatingPointError, match="d_loss is nan in epoch 1"):
        T.train_epochs(lambda e: {"d_loss": float("nan")}, epochs=2, state={}, progress=False)


# --------------------------------------------------------------------------------------------
# Training steps make no host synchronisation; ids are checked at the public boundary
# --------------------------------------------------------------------------------------------


def _recommenders():
    from grouprec.aggregation import AGREERecommender
    from grouprec.features import HybridRecommender
    from grouprec.preference import BPRRecommender

    small = {"d": 8, "epochs": 1, "batch_size": 64, "patience": None, "progress": False}
    return {
        "MF-BPR": (lambda: BPRRecommender(n_neg=2, **small), "user"),
        "NeuMF-BPR": (lambda: BPRRecommender(model="neumf", n_neg=2, **small), "user"),
        "AGREE": (lambda: AGREERecommender(attention_dim=4, hidden=4, n_neg=2, **small), "group"),
        "Hybrid": (lambda: HybridRecommender(hidden=(8,), id_dropout=0.5, **small), "user"),
    }


@pytest.mark.parametrize("name", list(_recommenders()))
def test_training_and_validation_never_check_ids(name, monkeypatch):
    """A per-step id check reads the ids' min and max back to the host, which waits for the
    device; ids are checked once, on NumPy arrays, when fit starts."""
    import sys

    from toy import two_tastes

    calls = []

    def counting(name, ids, n):
        calls.append(name)

    for module in [m for key, m in sys.modules.items() if key.startswith("grouprec")]:
        if hasattr(module, "check_id_tensor"):  # wherever it was imported
            monkeypatch.setattr(module, "check_id_tensor", counting)
    make, task = _recommenders()[name]
    rec = make().fit(two_tastes(0), task)  # one epoch of steps, then a validation
    assert set(calls) <= {"members"} and len(calls) <= 1, calls
    n = 4
    rec.score(np.arange(n), np.tile(np.arange(6), (n, 1)))
    assert set(calls) <= {"members"}, calls


class _HostReadError(AssertionError):
    pass


@pytest.fixture
def no_host_reads(monkeypatch):
    """Within ``with no_host_reads():``, reading a tensor's value on the host raises: ``.item()``,
    ``int()``, ``float()``, ``bool()``, ``.tolist()``, ``.numpy()``. On a GPU each of these waits
    for the device; on the CPU they are the same calls, so the CPU can test that a step has
    none."""
    import contextlib

    names = ("item", "__int__", "__float__", "__bool__", "__index__", "tolist", "numpy")

    @contextlib.contextmanager
    def guard():
        with monkeypatch.context() as m:
            for attr in names:

                def refuse(self, *args, _attr=attr, **kwargs):
                    raise _HostReadError(f"Tensor.{_attr} read a value on the host")

                m.setattr(torch.Tensor, attr, refuse)
            yield

    return guard


@pytest.mark.parametrize("model", ["mf", "neumf", "hybrid"])
def test_a_bpr_step_reads_nothing_back_to_the_host(model, no_host_reads):
    from toy import two_tastes

    from grouprec.features import HybridMF
    from grouprec.preference import MF, NeuMF, bpr_step_loss

    ds = two_tastes(0)
    torch.manual_seed(0)
    if model == "hybrid":
        net = HybridMF(ds.n_users, ds.n_items, 3, d=8, features=torch.rand(ds.n_items, 3))
    else:
        net = {"mf": MF, "neumf": NeuMF}[model](ds.n_users, ds.n_items, d=8)
    batches = T.TripletBatches(ds.user_train, ds.n_items, n_neg=2, batch_size=64)
    batch = next(iter(batches(1, np.random.default_rng(0), device="cpu")))
    with no_host_reads():
        loss = bpr_step_loss(net, batch)
        loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_an_agree_step_reads_nothing_back_on_an_accelerator(no_host_reads, monkeypatch):
    """On the CPU, AGREE reads how many member slots a batch needs (a free read there); on an
    accelerator it computes every slot instead (``AGREE._slot_width``). With that choice made
    as on an accelerator, a step reads nothing back."""
    from toy import two_tastes

    from grouprec.aggregation import AGREE, AGREERecommender, JointBatches, agree_step_loss

    ds = two_tastes(0)
    torch.manual_seed(0)
    net = AGREERecommender(d=8, attention_dim=4, hidden=4).build(ds)
    batches = JointBatches(ds.group_train, ds.user_train, ds.n_items, n_neg=2, batch_size=64)
    batch = next(iter(batches(1, np.random.default_rng(0), device="cpu")))
    with no_host_reads(), pytest.raises(_HostReadError, match="__int__"):
        agree_step_loss(net, batch)  # the CPU's width read
    monkeypatch.setattr(AGREE, "_slot_width", staticmethod(lambda m: m.shape[1]))
    with no_host_reads():
        loss = agree_step_loss(net, batch)
        loss.backward()
    assert net.P.weight.grad is not None and net.E.weight.grad is not None


@pytest.mark.parametrize("table", ["user_train", "group_train"])
@pytest.mark.parametrize("bad", ["entity", "item"])
def test_bad_training_ids_are_named_when_fit_starts(table, bad):
    from dataclasses import replace

    from toy import two_tastes

    from grouprec.preference import BPRRecommender

    ds = two_tastes(0)
    pairs = getattr(ds, table)
    ids = getattr(pairs, bad).copy()
    ids[3] = 10_000
    ds = replace(ds, **{table: replace(pairs, **{bad: ids})})
    with pytest.raises(ValueError, match=rf"dataset\.{table}\.{bad} holds ids .*10000"):
        BPRRecommender(d=4, epochs=1, progress=False).fit(ds, "user")


def test_bad_ids_given_to_a_module_are_named_when_the_lookup_fails():
    from grouprec.preference import MF

    net = MF(3, 4, d=2)
    with pytest.raises(IndexError, match="u holds id 3, outside 0..2"):
        net(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(TypeError, match="i must be an integer tensor"):
        net(torch.tensor([0]), torch.tensor([0.5]))
    # ids in range: a failure of another kind keeps its own error
    with (
        pytest.raises(RuntimeError, match="size of tensor"),
        T.explain_bad_ids(u=(torch.tensor([1]), 3)),
    ):
        torch.zeros(2) + torch.zeros(3)


def test_prefetching_the_next_epoch_gives_the_same_run():
    """fit(prefetch=True) draws epoch e + 1 in a thread while epoch e trains (the default on an
    accelerator): the same draws in the same order, so the same numbers, bit for bit."""
    from toy import two_tastes

    from grouprec.aggregation import AGREERecommender, JointBatches, agree_step_loss

    ds = two_tastes(0)
    runs = []
    for prefetch in (False, True):
        torch.manual_seed(0)
        net = AGREERecommender(d=8, attention_dim=4, hidden=4).build(ds)
        batches = JointBatches(ds.group_train, ds.user_train, ds.n_items, n_neg=2, batch_size=64)
        seen = []

        def draw(epoch, rng, device=None, batches=batches, seen=seen):
            seen.append(epoch)
            return batches(epoch, rng, device=device)

        hist = T.fit(
            net, agree_step_loss, draw, epochs=3, lr=0.02, progress=False, prefetch=prefetch
        )
        assert seen == [1, 2, 3]
        runs.append((hist.loss, [p.detach().clone() for p in net.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
