"""Tests for grouprec.checks: every check returns the value it accepts and names the argument
it rejects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from grouprec import checks as C


def test_every_check_takes_the_name_first():
    import inspect

    for name in C.__all__:
        first = next(iter(inspect.signature(getattr(C, name)).parameters))
        assert first in ("name", "task"), (name, first)  # check_disjoint: the split's task


def test_integers():
    assert C.check_size("n", np.int64(3)) == 3 and type(C.check_size("n", np.int64(3))) is int
    assert C.check_size("z", 0, minimum=0) == 0
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            C.check_size("n", bad)
    assert C.check_integer("dim", 5, 2, 8) == 5
    with pytest.raises(ValueError, match="dim must be between 2 and 8, got 9"):
        C.check_integer("dim", 9, 2, 8)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        C.check_integer("seed", -1, 0)
    with pytest.raises(ValueError, match="seed must be an integer, got 1.5"):
        C.check_integer("seed", 1.5, 0)
    assert C.check_top_k("k", 2, 4) == 2
    with pytest.raises(ValueError, match=r"k must be an integer between 1 and .* 4; got 5"):
        C.check_top_k("k", 5, 4)
    assert C.check_ks("ks", 5) == (5,)
    assert C.check_ks("ks", [5, np.int64(10)]) == (5, 10)
    with pytest.raises(ValueError, match="ks must hold positive integers, got 0"):
        C.check_ks("ks", (5, 0))
    with pytest.raises(ValueError, match="ks must name at least one cut-off"):
        C.check_ks("ks", ())
    assert C.check_widths("hidden", 8) == (8,)
    assert C.check_widths("hidden", [8, 4]) == (8, 4)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be an integer >= 1, got 0"):
        C.check_widths("hidden", [8, 0])
    with pytest.raises(ValueError, match="hidden must list at least one layer width"):
        C.check_widths("hidden", [])


def test_real_numbers():
    assert C.check_number("lr", 1, 0.0, math.inf, open_low=True) == 1.0
    with pytest.raises(ValueError, match=r"lr must lie in \(0.0, inf\], got 0.0"):
        C.check_number("lr", 0, 0.0, math.inf, open_low=True)
    with pytest.raises(ValueError, match="alpha must lie in"):
        C.check_number("alpha", math.nan, 0.0, 1.0)
    assert C.check_real("share", 0.5, 0.0, 1.0) == 0.5
    with pytest.raises(ValueError, match="share must be a finite number"):
        C.check_real("share", math.inf, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"tau must be in \(0.0, 1.0\], got 0.0"):
        C.check_real("tau", 0.0, 0.0, 1.0, open_low=True)
    assert C.check_fraction("alpha", 1) == 1.0
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        C.check_fraction("alpha", 1.5)
    with pytest.raises(TypeError, match="alpha must be a number"):
        C.check_fraction("alpha", True)
    assert C.check_threshold("threshold", "-inf") == -math.inf
    with pytest.raises(ValueError, match="threshold must be a number; got nan"):
        C.check_threshold("threshold", math.nan)
    with pytest.raises(TypeError, match="threshold must be a number; got 'x'"):
        C.check_threshold("threshold", "x")


def test_names_and_choices():
    assert C.check_choice("task", "user", ("user", "group")) == "user"
    with pytest.raises(ValueError, match=r"task must be one of \('user', 'group'\), got 'x'"):
        C.check_choice("task", "x", ["user", "group"])
    choices = ("HR", "NDCG", "MRR")
    assert C.check_metric_names("metrics", "all", choices) == choices
    assert C.check_metric_names("metrics", ["MRR", "HR"], choices) == ("HR", "MRR")
    with pytest.raises(ValueError, match="metrics must be 'all' or a subset"):
        C.check_metric_names("metrics", "AUC", choices)
    with pytest.raises(ValueError, match="metrics must name at least one metric"):
        C.check_metric_names("metrics", (), choices)
    assert C.check_texts("texts", ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="texts must be a sequence of str, not one str"):
        C.check_texts("texts", "ab")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        C.check_texts("texts", ["a", 1])


def test_counts_and_plain_values():
    out = C.check_counts("g", np.array([0, 2], dtype=np.int32))
    assert out.dtype == np.int64 and out.tolist() == [0, 2]
    with pytest.raises(TypeError, match="g must hold integer counts, got dtype float64"):
        C.check_counts("g", [0.5])
    with pytest.raises(ValueError, match="t must be non-negative, got minimum -1"):
        C.check_counts("t", [1, -1])
    C.check_plain("meta", {"a": [1, 2.0, None, "x", torch.zeros(2)], 3: (True,)})
    with pytest.raises(TypeError, match=r"meta\['a'\]\[0\] = .* has type set"):
        C.check_plain("meta", {"a": [{1}]})
    with pytest.raises(TypeError, match="meta has a key"):
        C.check_plain("meta", {(1, 2): 0})


def test_tensors():
    C.check_id_tensor("u", torch.tensor([0, 2]), 3)
    with pytest.raises(TypeError, match="u must be an integer tensor of ids, got torch.float32"):
        C.check_id_tensor("u", torch.tensor([0.0]), 3)
    with pytest.raises(IndexError, match=r"u holds id 3, outside 0..2"):
        C.check_id_tensor("u", torch.tensor([0, 3]), 3)
    with pytest.raises(IndexError, match="u holds id -1"):
        C.check_id_tensor("u", torch.tensor([-1, 3]), 3)
    C.check_float_tensor("X", torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="X must be a floating-point tensor, got dtype torch.int64"):
        C.check_float_tensor("X", torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="X must be a torch.Tensor, got list"):
        C.check_float_tensor("X", [0.0])
    C.check_logits("s", torch.zeros(1))
    with pytest.raises(ValueError, match="s is empty"):
        C.check_logits("s", torch.zeros(0))
    with pytest.raises(TypeError, match="s must be a tensor of logits"):
        C.check_logits("s", 0.0)
    C.check_shape("X", torch.zeros(2, 3), (2, 3))
    with pytest.raises(ValueError, match=r"X must have shape \(3, 2\), got \(2, 3\)"):
        C.check_shape("X", torch.zeros(2, 3), (3, 2))
    with pytest.raises(ValueError, match=r"dA must have the shape of Z \(2,\), got \(3,\)"):
        C.check_same_shape("dA", torch.zeros(3), "Z", torch.zeros(2))


def test_ids_and_members():
    entities, items = C.check_ids("entities", [0, 2], [[1], [0]], 3, 2, "user")
    assert entities.dtype == items.dtype == np.int64
    with pytest.raises(ValueError, match=r"groups must lie in 0..2 \(group ids\), got 0..3"):
        C.check_ids("groups", [0, 3], None, 3, 2, "group")
    with pytest.raises(ValueError, match=r"items must lie in 0..1, got 2..2"):
        C.check_ids("entities", [0], [[2]], 3, 2, "user")
    ids, items = C.check_members("members", [2, 0], [1], 3, 2)
    assert ids.tolist() == [2, 0] and items.tolist() == [1]
    with pytest.raises(ValueError, match="members and items must be non-empty 1-d id lists"):
        C.check_members("members", [], [1], 3, 2)
    with pytest.raises(ValueError, match="members must hold integer ids, got dtype bool"):
        C.check_members("members", [True], [1], 3, 2)


def test_disjoint_held_out_pairs():
    relevant = sp.csr_matrix(np.array([[1, 0], [0, 1]]))
    C.check_disjoint("user", "test", relevant, sp.csr_matrix(np.array([[0, 1], [1, 0]])), [5, 6])
    with pytest.raises(
        ValueError, match=r"1 held-out pairs of the user test split .* user 6, item 1"
    ):
        C.check_disjoint(
            "user", "test", relevant, sp.csr_matrix(np.eye(2)[::-1] + [[0, 0], [0, 1]]), [5, 6]
        )


def test_item_table():
    items = pd.DataFrame({"item": [1, 0], "price": [2.5, 3.0]})
    out = C.check_item_table("items", items, ["item", "price"])
    assert out["item"].tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"items lacks the column\(s\) \['tags'\]"):
        C.check_item_table("items", items, ["item", "tags"])
    with pytest.raises(ValueError, match=r"repeated ids \(first 5\): \[1\], missing ids .*\[0\]"):
        C.check_item_table("items", items.assign(item=[1, 1]), ["item"])
    with pytest.raises(ValueError, match=r"items\['price'\] must be positive numbers; item 0"):
        C.check_item_table("items", items.assign(price=[1.0, 0.0]), ["item", "price"])
    with pytest.raises(TypeError, match="items must be a pandas DataFrame"):
        C.check_item_table("items", [], ["item"])
