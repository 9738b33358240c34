"""Data-parallel training (grouprec.distributed) and the large synthetic dataset it trains on.

Two gloo processes on a tiny dataset must take the steps one process takes on the same global
batches: with SGD every parameter agrees to float rounding; with Adam after one step, every
parameter but the prediction layer's biases (whose exact gradient BPR cancels, so Adam scales
rounding noise up to about lr) agrees too.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from grouprec.__main__ import main as grouprec_main
from grouprec.aggregation import AGREERecommender, JointBatches, agree_step_loss
from grouprec.data import FILES, load_dataset, split_validation
from grouprec.distributed import (
    ShardedBatches,
    fit_distributed,
    init_distributed,
    launch_local,
    main,
    shard_batch,
)
from grouprec.synthetic_large import MANIFEST, generate_large, write_large
from grouprec.training import fit, load_checkpoint, read_checkpoint

TINY = dict(
    n_users=60,
    n_groups=20,
    n_items=40,
    n_clusters=4,
    n_test_users=10,
    n_test_groups=5,
    n_negatives=10,
    seed=3,
)
SGD = dict(d=8, epochs=3, batch_size=64, lr=0.05, n_neg=2, patience=2)
ADAM = dict(d=8, epochs=1, batch_size=1024, lr=0.01, n_neg=2, patience=None)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return write_large(generate_large(**TINY), tmp_path_factory.mktemp("ddp") / "tiny")


def _tiny(path) -> object:
    return split_validation(load_dataset(path), seed=0, n_negatives=10)


def _state(rec: AGREERecommender) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in rec.model_.state_dict().items()}


def _ddp_job(path: str, checkpoint_pattern: str) -> dict:
    """Run in each of the 2 processes; rank 0's return value comes back."""
    import os

    warnings.filterwarnings("ignore")  # DDP's notes about unused parameters and buffers
    dataset = _tiny(path)
    checkpoint = checkpoint_pattern.format(rank=os.environ["RANK"])
    sgd = fit_distributed(AGREERecommender(**SGD), dataset, checkpoint=checkpoint, optimizer="sgd")
    adam = fit_distributed(AGREERecommender(**ADAM), dataset)
    return {
        "sgd": (_state(sgd), sgd.history_.loss, sgd.history_.best_epoch, sgd.history_.val),
        "adam": (_state(adam), adam.history_.loss),
    }


@pytest.fixture(scope="module")
def two_processes(tiny_path, tmp_path_factory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    pattern = str(folder / "agree-rank{rank}.pt")
    return launch_local(_ddp_job, 2, str(tiny_path), pattern), folder


def _one_process(dataset, params: dict, optimizer: str) -> tuple[AGREERecommender, object]:
    """The reference: grouprec.training.fit on whole global batches, no sharding."""
    rec = AGREERecommender(**params)
    batches, val_fn = rec.prepare_fit(dataset, "group")
    history = fit(
        rec.model_,
        partial(agree_step_loss, user_weight=rec.user_weight),
        batches,
        epochs=rec.epochs,
        lr=rec.lr,
        optimizer=optimizer,
        val_fn=val_fn,
        patience=rec.patience,
        seed=rec.seed,
        progress=False,
    )
    return rec, history


def test_two_processes_take_the_steps_of_one_sgd(two_processes, tiny_path):
    state, loss, best_epoch, val = two_processes[0]["sgd"]
    rec, history = _one_process(_tiny(tiny_path), SGD, "sgd")
    for name, value in rec.model_.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-6, msg=name)
    np.testing.assert_allclose(loss, history.loss, rtol=1e-6)  # the global batches' loss
    assert best_epoch == history.best_epoch
    for mine, ref in zip(val, history.val, strict=True):
        assert mine.keys() == ref.keys()
        np.testing.assert_allclose(list(mine.values()), list(ref.values()), atol=1e-6)


def test_two_processes_take_the_step_of_one_adam(two_processes, tiny_path):
    state, loss = two_processes[0]["adam"]
    rec, history = _one_process(_tiny(tiny_path), ADAM, "adam")
    assert len(rec.prepare_fit(_tiny(tiny_path))[0]) == 1  # one batch: one step
    rec, history = _one_process(_tiny(tiny_path), ADAM, "adam")
    noisy = {"W_1.bias", "w_2.bias"}  # exact gradient ~0: Adam moves them by at most lr
    for name, value in rec.model_.state_dict().items():
        atol = ADAM["lr"] if name in noisy else 1e-6
        torch.testing.assert_close(state[name], value, rtol=0, atol=atol, msg=name)
    np.testing.assert_allclose(loss, history.loss, rtol=1e-6)


def test_only_rank_0_writes_the_checkpoint(two_processes, tiny_path):
    results, folder = two_processes
    assert sorted(p.name for p in folder.iterdir()) == ["agree-rank0.pt"]
    rec = AGREERecommender(**SGD)
    rec.prepare_fit(_tiny(tiny_path))
    meta = load_checkpoint(rec.model_, folder / "agree-rank0.pt")
    assert meta["world_size"] == 2 and meta["best_epoch"] == results["sgd"][2]
    for name, value in rec.model_.state_dict().items():
        assert torch.equal(value, results["sgd"][0][name]), name


def test_one_process_without_group_equals_agree_fit(tiny_path):
    dataset = _tiny(tiny_path)
    ref = AGREERecommender(**SGD).fit(dataset)
    rec = fit_distributed(AGREERecommender(**SGD), dataset)
    for name, value in ref.model_.state_dict().items():
        assert torch.equal(rec.model_.state_dict()[name], value), name
    assert rec.history_.loss == ref.history_.loss


def test_float64_training_keeps_float64_parameters(tiny_path):
    rec = fit_distributed(AGREERecommender(**SGD), _tiny(tiny_path), dtype=torch.float64)
    dtypes = {v.dtype for v in rec.model_.state_dict().values() if v.is_floating_point()}
    assert dtypes == {torch.float64}
    assert np.isfinite(rec.history_.loss).all()


def test_shards_partition_the_global_batch(tiny_path):
    dataset = _tiny(tiny_path)
    batches = JointBatches(dataset.group_train, dataset.user_train, dataset.n_items, 2, 50)
    rng = np.random.default_rng(0)
    whole = list(batches(1, rng))
    for W in (1, 2, 3):
        shards = [
            list(ShardedBatches(batches, r, W)(1, np.random.default_rng(0))) for r in range(W)
        ]
        for b, batch in enumerate(whole):
            parts = [s[b] for s in shards]
            for key in ("entity", "pos", "neg"):
                assert torch.equal(torch.cat([p[key] for p in parts]), batch[key])
            assert sum(p["n_groups"] for p in parts) == batch["n_groups"]
            n_g, B = batch["n_groups"], len(batch["entity"])
            assert sum(p["group_share"] for p in parts) == pytest.approx(W if n_g else 0)
            assert sum(p["user_share"] for p in parts) == pytest.approx(W if B > n_g else 0)
            assert all(p["n_examples"] == B for p in parts)
    with pytest.raises(ValueError, match="rank must lie in 0..1"):
        shard_batch(whole[0], 2, 2)


# -- launched wrongly --------------------------------------------------------------------------


def test_incomplete_rendezvous_environment_is_named():
    with pytest.raises(RuntimeError, match="MASTER_ADDR, MASTER_PORT not; launch with `torchrun"):
        init_distributed(env={"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})


def test_world_size_without_torchrun_is_an_error():
    with pytest.raises(RuntimeError, match="world_size=2 was asked for, but no rendezvous"):
        init_distributed(world_size=2, env={})


def test_nccl_on_cpu_is_an_error():
    with pytest.raises(ValueError, match="backend='nccl' needs CUDA devices"):
        init_distributed(device="cpu", backend="nccl", env={})


def test_alone_without_environment_is_one_process():
    ctx = init_distributed(env={})
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.device.type) == (0, 1, None, "cpu")


def test_cli_reports_a_wrong_launch(tiny_path, monkeypatch, capsys):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["--dataset", str(tiny_path), "--world-size", "2"]) == 2
    assert "world_size=2 was asked for" in capsys.readouterr().err
    assert grouprec_main(["ddp", "--dataset", str(tiny_path), "--world-size", "2"]) == 2
    assert "world_size=2 was asked for" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module", [["grouprec.distributed"], ["grouprec", "ddp"]], ids=["distributed", "ddp"]
)
def test_cli_under_torchrun(module, tiny_path, tmp_path):
    checkpoint = tmp_path / "agree.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["-m", *module, "--dataset", str(tiny_path), "--epochs", "1"]
    command += [
        "--batch-size",
        "64",
        "--dim",
        "8",
        "--quiet",
        "--world-size",
        "2",
        "--val-negatives",
        "10",
    ]
    command += ["--checkpoint", str(checkpoint)]
    if module == ["grouprec", "ddp"]:
        command += ["--float64"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es), backend gloo, device cpu" in done.stdout
    assert checkpoint.is_file()
    want = torch.float64 if "--float64" in command else torch.float32
    state = read_checkpoint(checkpoint)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {want}


# -- the large synthetic dataset ---------------------------------------------------------------


def test_generator_is_deterministic(tmp_path):
    a = write_large(generate_large(**TINY), tmp_path / "a")
    b = write_large(generate_large(**TINY), tmp_path / "b")
    c = write_large(generate_large(**{**TINY, "seed": 4}), tmp_path / "c")
    for name in FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / FILES["user_train"]).read_bytes() != (c / FILES["user_train"]).read_bytes()


def test_generated_files_load_with_their_sizes(tiny_path):
    dataset = load_dataset(tiny_path)
    assert (dataset.n_users, dataset.n_groups, dataset.n_items) == (60, 20, 40)
    sizes = dataset.group_sizes
    assert sizes.min() >= 2 and sizes.max() <= 8
    assert all(len(set(m.tolist())) == len(m) for m in dataset.group_members)
    assert len(dataset.user_test) == 10 and len(dataset.group_test) == 5
    assert dataset.user_test.negatives.shape == (10, 10)
    for task in ("user", "group"):  # negatives: distinct, never a positive of their entity
        cases, train = getattr(dataset, f"{task}_test"), getattr(dataset, f"{task}_train")
        neg = cases.negatives
        assert (np.sort(neg, axis=1)[:, 1:] != np.sort(neg, axis=1)[:, :-1]).all()
        positives = set(zip(train.entity.tolist(), train.item.tolist(), strict=True))
        positives |= set(zip(cases.entity.tolist(), cases.item.tolist(), strict=True))
        assert not any(
            (e, i) in positives for e, row in zip(cases.entity, neg, strict=True) for i in row
        )
    assert (tiny_path / MANIFEST).is_file()


def test_command_line_writes_what_the_generator_writes(tmp_path, capsys):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()]
    assert grouprec_main(["synthetic-large", str(tmp_path / "cli"), *flags]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'cli'}: 60 users, 20 groups, 40")
    expected = write_large(generate_large(**TINY), tmp_path / "lib")
    for name in [*FILES.values(), MANIFEST]:
        assert (tmp_path / "cli" / name).read_bytes() == (expected / name).read_bytes(), name
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("keep me")
    assert grouprec_main(["synthetic-large", str(tmp_path / "foreign"), *flags]) == 2
    assert "not an earlier output" in capsys.readouterr().err


def test_write_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an earlier output"):
        write_large(generate_large(**TINY), tmp_path)


def test_generator_checks_its_arguments():
    with pytest.raises(ValueError, match="min_group_size=5 exceeds max_group_size=3"):
        generate_large(**{**TINY, "min_group_size": 5, "max_group_size": 3})
    with pytest.raises(ValueError, match="n_users must be an integer >= 1"):
        generate_large(**{**TINY, "n_users": 0})
