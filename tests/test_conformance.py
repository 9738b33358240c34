"""Every recommender honours the same contract (grouprec.base.BaseRecommender).

The tests are parametrised over :data:`MODELS`, one entry per model class with small
constructor arguments. Adding a model class means adding it there;
``test_every_model_class_is_listed`` fails until it is. CUDA checks live in test_cuda.py.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import grouprec
from grouprec import synthetic
from grouprec.aggregation import AGREERecommender, ConsensusRecommender, RuleRecommender
from grouprec.base import BaseRecommender, NotFittedError
from grouprec.baselines import EASE, ItemKNN, Popularity, Random
from grouprec.checks import check_ids
from grouprec.data import GroupDataset, load_dataset, split_validation
from grouprec.evaluation import ConsumedFilter, Recommender
from grouprec.features import ContentRecommender, HybridRecommender
from grouprec.gan_recommender import CFGANRecommender, IRGANRecommender
from grouprec.preference import BPRRecommender


@dataclass(frozen=True)
class Spec:
    """A model class under test: how to build a small one, its tasks, a parameter change."""

    make: Callable[[], BaseRecommender]
    tasks: tuple[str, ...] = ("user", "group")
    change: dict[str, Any] = field(default_factory=dict)  # for set_params


MODELS: dict[str, Spec] = {
    "Random": Spec(lambda: Random(seed=1), change={"seed": 2}),
    "Popularity": Spec(lambda: Popularity(alpha=0.5), ("group",), {"alpha": 0.25}),
    "ItemKNN": Spec(lambda: ItemKNN(k=5, shrink=1.0), change={"k": 3}),
    "EASE": Spec(lambda: EASE(lam=10.0, alpha=0.5), ("group",), {"lam": 20.0}),
    "BPRRecommender": Spec(
        lambda: BPRRecommender(d=4, epochs=2, batch_size=64, seed=1), change={"d": 6}
    ),
    "RuleRecommender": Spec(
        lambda: RuleRecommender(BPRRecommender(d=4, epochs=2, batch_size=64), "average"),
        ("group",),
        {"rule": "least_misery", "base__d": 6},
    ),
    "AGREERecommender": Spec(
        lambda: AGREERecommender(d=4, attention_dim=4, hidden=4, epochs=2, batch_size=64),
        change={"dropout": 0.1},
    ),
    "ConsensusRecommender": Spec(
        lambda: ConsensusRecommender(d=4, layers=1, epochs=2, batch_size=64),
        change={"layers": 2},
    ),
    "HybridRecommender": Spec(
        lambda: HybridRecommender(d=4, hidden=(4,), epochs=2, batch_size=64),
        change={"id_dropout": 0.25},
    ),
    "ContentRecommender": Spec(lambda: ContentRecommender(alpha=0.5), ("group",), {"alpha": 1.0}),
    "CFGANRecommender": Spec(
        lambda: CFGANRecommender(hidden=(8,), epochs=2, batch_size=16), change={"s_pm": 0.2}
    ),
    "IRGANRecommender": Spec(
        lambda: IRGANRecommender(d=4, epochs=2, n_samples=4, batch_size=64, batch_entities=16),
        change={"temperature": 0.5},
    ),
    "ConsumedFilter": Spec(lambda: ConsumedFilter(ItemKNN(k=5)), change={"model__k": 3}),
}

CASES = [
    pytest.param(name, task, id=f"{name}-{task}") for name, s in MODELS.items() for task in s.tasks
]
NAMES = list(MODELS)
K = 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> GroupDataset:
    """60 users, 20 groups, 210 items with features, and a validation split."""
    data = synthetic.generate_ecommerce(
        n_users=60, n_items=210, n_groups=20, n_categories=4, dim=8, seed=3
    )
    folder = synthetic.write_ecommerce(data, tmp_path_factory.mktemp("conformance") / "shop")
    return split_validation(load_dataset(folder), seed=0, n_negatives=8)


@pytest.fixture(scope="module")
def fitted(dataset) -> Callable[[str, str], BaseRecommender]:
    """``fitted(name, task)``: the model of ``MODELS[name]`` fitted on ``task``, once per module."""
    cache: dict[tuple[str, str], BaseRecommender] = {}

    def get(name: str, task: str) -> BaseRecommender:
        if (name, task) not in cache:
            cache[name, task] = MODELS[name].make().fit(dataset, task)
        return cache[name, task]

    return get


def all_scores(model: BaseRecommender, dataset: GroupDataset, task: str) -> np.ndarray:
    n = dataset.n_entities(task)
    return model.score(
        np.arange(n), np.broadcast_to(np.arange(dataset.n_items), (n, dataset.n_items))
    )


def same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal parameters; a nested recommender by class and parameters, arrays by value."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, BaseRecommender) or hasattr(x, "get_params"):
            if type(x) is not type(y) or not same_params(x.get_params(), y.get_params()):
                return False
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


# ------------------------------------------------------------------------ the list is complete


def test_every_model_class_is_listed():
    found = set()
    for info in pkgutil.iter_modules(grouprec.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"grouprec.{info.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseRecommender)
                and obj is not BaseRecommender
                and not obj.__name__.startswith("_")
                and obj.__module__.startswith("grouprec.")
            ):
                found.add(obj.__name__)
    listed = {type(spec.make()).__name__ for spec in MODELS.values()}
    assert found == listed, f"not in MODELS: {found - listed}; listed but gone: {listed - found}"
    assert set(MODELS) == listed  # the keys name the classes


@pytest.mark.parametrize("name", NAMES)
def test_is_a_base_recommender_and_a_recommender(name):
    model = MODELS[name].make()
    assert isinstance(model, BaseRecommender) and isinstance(model, Recommender)
    for method in ("get_params", "set_params", "clone", "__repr__", "is_fitted"):
        # one implementation of the plumbing, in the base class, and no per-class copies
        assert getattr(type(model), method) is getattr(BaseRecommender, method), method


# ------------------------------------------------------------------------ the contract


@pytest.mark.parametrize(("name", "task"), CASES)
def test_contract(name, task, dataset):
    model = MODELS[name].make()
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match="not fitted; call fit"):
        model.score(np.array([0]), np.array([[0]]))
    with pytest.raises(NotFittedError, match="not fitted; call fit"):
        model.score_all(np.array([0]))
    assert model.fit(dataset, task) is model
    assert model.is_fitted
    n, n_items = dataset.n_entities(task), dataset.n_items

    entities = np.array([0, n - 1, 1, 0])
    items = np.array([[0, 1, n_items - 1], [2, 3, 4], [5, 5, 6], [7, 8, 0]])
    s = model.score(entities, items)
    assert isinstance(s, np.ndarray) and s.shape == (4, 3) and s.dtype.kind == "f"
    consumed = dataset.train_matrix(task).toarray() > 0  # (n, I)
    # finite, except that a model filtering consumed items scores them -inf
    ok = np.isfinite(s) | (np.isneginf(s) & consumed[entities[:, None], items])
    assert ok.all()
    np.testing.assert_allclose(model.score(entities[:1], items[:1])[0], s[0], rtol=1e-5, atol=1e-6)
    assert model.score(entities[:0], items[:0]).shape == (0, 3)

    # score_all: score with every item a candidate (a rule's scale depends on the candidates;
    # the list rules, which leave the group's training items out of their lists, are the one
    # documented exception and are not in MODELS)
    full = model.score_all(entities)
    assert isinstance(full, np.ndarray) and full.shape == (4, n_items) and full.dtype == s.dtype
    every = model.score(entities, np.broadcast_to(np.arange(n_items), (4, n_items)))
    np.testing.assert_allclose(full, every, rtol=1e-5, atol=1e-6)

    lists = model.recommend(np.arange(n), k=K)
    assert lists.shape == (n, K) and lists.dtype == np.int64
    assert ((lists >= 0) & (lists < n_items)).all()
    assert all(len(set(row)) == K for row in lists)
    scores = model.score_all(np.arange(n))
    if not isinstance(model, (CFGANRecommender, IRGANRecommender)):  # those exclude consumed
        assert_top_k(lists, scores, np.zeros_like(consumed))

    kept = model.recommend(np.arange(n), k=K, exclude=dataset)
    assert not consumed[np.arange(n)[:, None], kept].any()
    assert_top_k(kept, scores, consumed)
    banned = np.zeros((2, n_items), dtype=bool)
    banned[:, lists[:2, 0]] = True
    again = model.recommend(np.arange(2), k=K, exclude=banned)
    assert not banned[np.arange(2)[:, None], again].any()


def assert_top_k(lists: np.ndarray, scores: np.ndarray, banned: np.ndarray) -> None:
    """Each list holds the k best allowed items, best first, ties to the lower item id."""
    for row, (items, s, ban) in enumerate(zip(lists, scores, banned, strict=True)):
        assert not ban[items].any(), row
        order = np.lexsort((np.arange(len(s)), -s))  # by score, then by item id
        expected = order[~ban[order]][: len(items)]
        np.testing.assert_array_equal(items, expected, err_msg=f"row {row}")


@pytest.mark.parametrize(("name", "task"), CASES)
def test_clone_is_unfitted_with_equal_params_and_refits_identically(name, task, dataset, fitted):
    model = fitted(name, task)
    twin = model.clone()
    assert type(twin) is type(model) and twin is not model
    assert same_params(twin.get_params(), model.get_params())
    assert same_params(twin.get_params(deep=True), model.get_params(deep=True))
    assert not twin.is_fitted
    for value in twin.get_params().values():
        if isinstance(value, BaseRecommender):
            assert not value.is_fitted  # a nested recommender comes back unfitted too
            assert all(value is not v for v in model.get_params().values())
    np.testing.assert_array_equal(
        all_scores(twin.fit(dataset, task), dataset, task), all_scores(model, dataset, task)
    )


@pytest.mark.parametrize(("name", "task"), CASES)
def test_same_seed_same_scores(name, task, dataset, fitted):
    first = all_scores(fitted(name, task), dataset, task)
    second = all_scores(MODELS[name].make().fit(dataset, task), dataset, task)
    np.testing.assert_array_equal(first, second)


def _global_draws() -> tuple:
    """One draw from each global generator (Python, NumPy's legacy one, PyTorch's CPU one)."""
    return random.random(), np.random.random(), float(torch.rand(()))  # noqa: NPY002


@pytest.mark.parametrize(("name", "task"), CASES)
def test_fit_leaves_the_callers_global_generators_alone(name, task, dataset):
    # A model's seed fixes its own run; the caller's random numbers after a fit are those it
    # would have drawn without the fit.
    random.seed(11), np.random.seed(11), torch.manual_seed(11)  # noqa: NPY002
    expected = _global_draws()
    random.seed(11), np.random.seed(11), torch.manual_seed(11)  # noqa: NPY002
    MODELS[name].make().fit(dataset, task)
    assert _global_draws() == expected


@pytest.mark.parametrize(("name", "task"), CASES)
def test_bad_ids_raise_value_errors_naming_the_argument(name, task, dataset, fitted):
    model = fitted(name, task)
    n, n_items = dataset.n_entities(task), dataset.n_items
    ok_items = np.array([[0, 1]])
    for entities, items, what in [
        (np.array([-1]), ok_items, "entities"),
        (np.array([n]), ok_items, "entities"),
        (np.array([0.0]), ok_items, "entities"),
        (np.array([0]), np.array([[0, -1]]), "items"),
        (np.array([0]), np.array([[0, n_items]]), "items"),
        (np.array([0]), np.array([[0.0, 1.5]]), "items"),
        (np.array([[0]]), ok_items, "entities"),
        (np.array([0, 1]), ok_items, "items"),
    ]:
        with pytest.raises(ValueError, match=what):
            model.score(entities, items)
    for entities in (np.array([-1]), np.array([n]), np.array([0.5])):
        with pytest.raises(ValueError, match="entities"):
            model.score_all(entities)
        with pytest.raises(ValueError, match="entities"):
            model.recommend(entities, k=K)
    with pytest.raises(ValueError, match="k must be"):
        model.recommend(np.array([0]), k=0)
    with pytest.raises(ValueError, match="exclude must have shape"):
        model.recommend(np.array([0]), k=K, exclude=np.zeros((2, n_items), dtype=bool))


# ------------------------------------------------------------------------ parameters


@pytest.mark.parametrize("name", NAMES)
def test_get_params_rebuilds_the_model(name):
    model = MODELS[name].make()
    params = model.get_params()
    names = list(inspect.signature(type(model).__init__).parameters)[1:]
    assert [k for k in params if k in names] == [k for k in names if k in params]
    rebuilt = type(model)(**params)
    assert same_params(rebuilt.get_params(), params)
    assert repr(rebuilt) == repr(model)


@pytest.mark.parametrize("name", NAMES)
def test_set_params_round_trip(name):
    spec = MODELS[name]
    model = spec.make()
    before = model.get_params(deep=True)
    assert model.set_params(**model.get_params()) is model
    assert same_params(model.get_params(deep=True), before)
    assert model.set_params(**spec.change) is model
    after = model.get_params(deep=True)
    for key, value in spec.change.items():
        assert after[key] == value and before[key] != value, key
    untouched = [k for k in before if "__" not in k and not isinstance(before[k], BaseRecommender)]
    untouched = [k for k in untouched if k not in spec.change]
    assert same_params({k: after[k] for k in untouched}, {k: before[k] for k in untouched})
    # a RuleRecommender takes any other name as a rule parameter (**params), its base does not
    bad = "base__no_such_thing" if name == "RuleRecommender" else "no_such_thing"
    with pytest.raises(ValueError, match=r"has no parameter 'no_such_thing'; valid parameters: "):
        model.set_params(**{bad: 1})


@pytest.mark.parametrize("name", NAMES)
def test_repr_shows_the_parameters_that_differ_from_the_defaults(name):
    model = MODELS[name].make()
    text = repr(model)
    assert text.startswith(f"{type(model).__name__}(") and text.endswith(")")
    defaults = {
        p.name: p.default for p in inspect.signature(type(model).__init__).parameters.values()
    }
    for key, value in model.get_params().items():
        default = defaults.get(key, inspect.Parameter.empty)
        shown = re.search(rf"[(, ]{key}=", text) is not None
        if default is inspect.Parameter.empty or not (value is default or value == default):
            assert f"{key}={value!r}" in text, key
        else:
            assert not shown, key


# ------------------------------------------------------------------------ specific behaviour


def test_repr_of_a_default_model_is_its_class_name():
    assert repr(EASE()) == "EASE()" and repr(EASE(lam=100)) == "EASE()"
    assert repr(EASE(lam=20.0)) == "EASE(lam=20.0)"
    assert repr(BPRRecommender(hidden=[8])) == "BPRRecommender(hidden=(8,))"
    assert repr(ConsumedFilter(Popularity())) == "ConsumedFilter(model=Popularity())"
    new = HybridRecommender(new_items=np.arange(20))
    assert repr(new) == "HybridRecommender(new_items=<array of shape (20,), int64>)"


def test_set_params_goes_through_the_constructor_checks():
    model = EASE(lam=10.0)
    with pytest.raises(ValueError, match="lam must be a positive number, got 0"):
        model.set_params(lam=0)
    assert model.lam == 10.0  # unchanged after a rejected value
    with pytest.raises(
        ValueError, match=r"EASE has no parameter 'lamda'; valid parameters: lam, alpha"
    ):
        model.set_params(lamda=1.0)
    rule = RuleRecommender(EASE(), "approval", threshold=0.6)
    assert rule.get_params()["threshold"] == 0.6 and rule.params == {"threshold": 0.6}
    rule.set_params(threshold=0.4, base__lam=5.0)
    assert rule.params == {"threshold": 0.4} and rule.base.lam == 5.0
    with pytest.raises(ValueError, match="'rule' is not a recommender"):
        rule.set_params(rule__x=1)


def test_rule_recommender_keeps_its_base_so_clone_rebuilds_it(dataset):
    base = EASE(lam=10.0)
    rule = RuleRecommender(base, "approval", normalise="rank", fit_base=False, threshold=0.6)
    params = rule.get_params()
    assert params["base"] is base and params["fit_base"] is False and params["threshold"] == 0.6
    assert repr(rule) == (
        "RuleRecommender(base=EASE(lam=10.0), rule='approval', normalise='rank', "
        "fit_base=False, threshold=0.6)"
    )
    base.fit(dataset, "user")
    rule.fit(dataset, "group")
    twin = rule.clone()
    assert twin.base is not base and not twin.base.is_fitted and twin.params == rule.params
    with pytest.raises(NotFittedError, match="EASE"):  # fit_base=False: fit the clone's base
        twin.fit(dataset, "group").score(np.array([0]), np.array([[0]]))
    twin.base.fit(dataset, "user")
    np.testing.assert_array_equal(
        all_scores(twin, dataset, "group"), all_scores(rule, dataset, "group")
    )


def test_recommend_breaks_ties_by_the_lower_item_id(dataset):
    model = Popularity().fit(dataset, "user")  # one score per item count: many ties
    s = model.score_all(np.array([0]))[0]
    lists = model.recommend(np.array([0, 1]), k=dataset.n_items)
    np.testing.assert_array_equal(lists[0], np.lexsort((np.arange(len(s)), -s)))
    np.testing.assert_array_equal(lists[0], lists[1])
    tied = s == s[lists[0][-1]]
    assert tied.sum() > 1 and np.all(np.diff(lists[0][-tied.sum() :]) > 0)
    with pytest.raises(ValueError, match="fewer than k=3"):
        everything = np.ones((1, dataset.n_items), dtype=bool)
        everything[0, :2] = False
        model.recommend(np.array([0]), k=3, exclude=everything)


def test_default_score_all_batches_the_calls_to_score(dataset, monkeypatch):
    from grouprec import base

    model = BPRRecommender(d=4, epochs=1, batch_size=64).fit(dataset, "user")
    whole = model.score_all(np.arange(dataset.n_users))
    calls = []
    score = model.score
    monkeypatch.setattr(model, "score", lambda e, i: calls.append(len(e)) or score(e, i))
    monkeypatch.setattr(base, "SCORE_CELLS", 7 * dataset.n_items)
    np.testing.assert_array_equal(model.score_all(np.arange(dataset.n_users)), whole)
    assert max(calls) == 7 and sum(calls) == dataset.n_users


def test_check_ids_is_the_one_helper():
    entities, items = check_ids("entities", [0, 2], [[1], [0]], 3, 2, "user")
    assert entities.dtype == items.dtype == np.int64
    assert check_ids("entities", np.array([], dtype=float), None, 3, 2, "user")[0].dtype == np.int64
    with pytest.raises(ValueError, match="members must hold integer ids, got dtype bool"):
        check_ids("members", np.array([True]), None, 3, 2, "user")
    with pytest.raises(ValueError, match=r"entities must lie in 0..2 \(user ids\), got 0..3"):
        check_ids("entities", [0, 3], None, 3, 2, "user")
