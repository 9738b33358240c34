"""The base class of every recommender in grouprec (evaluation stage, the common interface).

:class:`BaseRecommender` gives each model the same plumbing, in the spirit of scikit-learn's
``BaseEstimator`` and cornac's ``Recommender``:

* **parameters** come from the constructor's signature (:func:`inspect.signature`): a
  constructor stores each argument under its own name (``self.lam = lam``), after checking it
  and at most putting it in a canonical form (``1`` -> ``1.0``, a list -> a tuple), so that
  ``type(m)(**m.get_params())`` builds a model with the same parameters. :meth:`get_params`,
  :meth:`set_params`, :meth:`clone` and ``repr`` are derived from that rule, so no class writes
  its own. A ``**kwargs`` argument (a rule's own parameters) is stored as a dict under its
  name; its entries count as parameters too;
* **fitted state** lives in attributes whose names end in ``_`` (``weights_``, ``model_``),
  set by ``fit``; :attr:`is_fitted` tells whether there are any, and scoring an unfitted model
  raises :class:`NotFittedError` ("call fit first"). ``fit`` records ``task_``,
  ``n_entities_`` and ``n_items_`` (:meth:`_start_fit`), which the id checks and
  :meth:`score_all` need;
* **ids** are checked at the public boundary by one helper, :func:`grouprec.checks.check_ids`: a
  negative id, one beyond the fitted range or a non-integer array raises ``ValueError`` naming
  the argument;
* **ranking**: :meth:`score_all` (the scores of every item, built on ``score`` in batches unless
  a model has a faster one) and :meth:`recommend` (the top-k item ids of each entity, ties to
  the lower item id, optionally without the items an entity consumed in training).

A model subclasses :class:`BaseRecommender` and writes ``__init__``, ``fit`` and ``score``; it
then satisfies the :class:`grouprec.evaluation.Recommender` protocol.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp

from grouprec.checks import check_ids, check_size, check_training_ids
from grouprec.constants import TASKS
from grouprec.data import GroupDataset

__all__ = ["BaseRecommender", "NotFittedError"]

# Scores computed per call to ``score`` by the default ``score_all`` and by ``recommend``: at
# most this many (entity, item) pairs, the same budget as :mod:`grouprec.evaluation`'s batches.
SCORE_CELLS = 1 << 22


class NotFittedError(RuntimeError):
    """A model was asked for scores before ``fit``."""


def _is_default(value: Any, default: Any) -> bool:
    """Whether a parameter still has its default value (for a short ``repr``)."""
    if default is inspect.Parameter.empty:
        return False
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return False  # True == 1 must not hide a changed parameter; the bools are singletons
    try:
        equal = value == default
    except Exception:  # noqa: BLE001 - an object that cannot be compared is not the default
        return False
    return isinstance(equal, (bool, np.bool_)) and bool(equal)


def _short_repr(value: Any) -> str:
    """``repr``, with a long array summarised by its shape and dtype."""
    if isinstance(value, np.ndarray) and value.size > 8:
        return f"<array of shape {value.shape}, {value.dtype}>"
    return repr(value)


class BaseRecommender:
    """What every recommender shares: parameters, fitted state, id checks, ranking.

    Subclasses write ``__init__`` (storing each argument under its own name), ``fit(dataset,
    task)`` (returning ``self``; fitted attributes end in ``_``) and ``score(entities, items)``.
    See the module docstring for the rules.
    """

    # What the "not fitted" error tells the user to call.
    _fit_hint = "fit(dataset, task)"

    # -- parameters ------------------------------------------------------------------------------
    def _set_training_params(self, args: dict[str, Any]) -> None:
        """Check and store the arguments every model trained by :func:`grouprec.training.fit`
        takes (``epochs``, ``lr``, ``n_neg``, ``batch_size``, ``weight_decay``, ``patience``,
        ``init_std``, ``seed``, ``device``, ``progress``), read by name from ``args``: the
        constructor's ``locals()``. Each such constructor states them once, in its signature."""
        self.epochs = check_size("epochs", args["epochs"])
        self.lr = args["lr"]
        self.n_neg = check_size("n_neg", args["n_neg"])
        self.batch_size = check_size("batch_size", args["batch_size"])
        self.weight_decay = args["weight_decay"]
        self.patience = args["patience"]
        self.init_std = args["init_std"]
        self.seed = args["seed"]
        self.device = args["device"]
        self.progress = args["progress"]

    @classmethod
    def _signature(cls) -> tuple[list[str], str | None]:
        """The constructor's named parameters, and the name of its ``**kwargs`` if any."""
        if cls.__init__ is object.__init__:
            return [], None
        names: list[str] = []
        var_keyword = None
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:  # skip self
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *{p.name}; a recommender's parameters must "
                    "be named"
                )
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                var_keyword = p.name
            else:
                names.append(p.name)
        return names, var_keyword

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor arguments, by name, e.g. for a results table or a grid search.

        ``type(self)(**self.get_params())`` builds an unfitted model with the same parameters.
        With ``deep``, the parameters of a parameter that is itself a recommender (a rule's
        ``base``) are added as ``"base__lam"`` and so on.
        """
        names, var_keyword = self._signature()
        params: dict[str, Any] = {}
        for key in names:
            if not hasattr(self, key):
                raise AttributeError(
                    f"{type(self).__name__}.__init__ must store its argument {key!r} as "
                    f"self.{key}; get_params reads it from there"
                )
            params[key] = getattr(self, key)
        if var_keyword is not None:
            params.update(getattr(self, var_keyword))
        if deep:
            for key, value in list(params.items()):
                if isinstance(value, BaseRecommender):
                    for sub, sub_value in value.get_params(deep=True).items():
                        params[f"{key}__{sub}"] = sub_value
        return params

    def set_params(self, **params: Any) -> BaseRecommender:
        """Change parameters by name (``"base__lam"`` reaches into a nested recommender).

        The new values go through the constructor, so they are checked as there; a fitted
        model keeps its fitted state until the next ``fit``. Returns ``self``.
        """
        if not params:
            return self
        names, var_keyword = self._signature()
        own: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            outer, sep, inner = key.partition("__")
            if sep and outer in names:
                nested.setdefault(outer, {})[inner] = value
            elif key in names or (var_keyword is not None and not sep):
                own[key] = value
            else:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {key!r}; valid parameters: "
                    f"{', '.join(names)}"
                    + (f" and the entries of **{var_keyword}" if var_keyword else "")
                )
        # the constructor checks the new values before anything changes
        rebuilt = type(self)(**{**self.get_params(), **own}) if own else None
        for outer, sub in nested.items():
            target = own.get(outer, getattr(self, outer))
            if not isinstance(target, BaseRecommender):
                raise ValueError(
                    f"{type(self).__name__}'s parameter {outer!r} is not a recommender, so "
                    f"{outer}__{next(iter(sub))} cannot be set"
                )
            target.set_params(**sub)
        if rebuilt is not None:
            vars(self).update(vars(rebuilt))
        return self

    def clone(self) -> BaseRecommender:
        """An unfitted copy with the same parameters.

        A parameter that is itself a recommender is cloned too (so a rule's ``base`` comes back
        unfitted); any other parameter is deep-copied, so the copy shares nothing with
        ``self``. Fitting the clone with the same data and seed gives the same scores.
        """
        params = {
            key: value.clone() if isinstance(value, BaseRecommender) else copy.deepcopy(value)
            for key, value in self.get_params().items()
        }
        return type(self)(**params)

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        args = ", ".join(
            f"{key}={_short_repr(value)}"
            for key, value in self.get_params().items()
            if not _is_default(value, defaults.get(key, inspect.Parameter.empty))
        )
        return f"{type(self).__name__}({args})"

    # -- fitted state ----------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run: the model has an attribute whose name ends in ``_``."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_is_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{self!r} is not fitted; call {self._fit_hint} first")

    def _start_fit(self, dataset: GroupDataset, task: str) -> None:
        """Check ``task`` and record ``task_``, ``n_entities_`` and ``n_items_``."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task_ = task
        self.n_entities_ = int(dataset.n_entities(task))
        self.n_items_ = int(dataset.n_items)
        check_training_ids("dataset", dataset)

    def _check_ids(self, entities, items=None) -> tuple[np.ndarray, np.ndarray | None]:
        """:func:`check_ids` against the fitted id ranges, after checking the model is fitted."""
        self._check_is_fitted()
        return check_ids("entities", entities, items, self.n_entities_, self.n_items_, self.task_)

    # -- the interface ---------------------------------------------------------------------------
    def fit(self, dataset: GroupDataset, task: str) -> BaseRecommender:
        """Learn from the training interactions of ``dataset`` for ``task``; returns ``self``."""
        raise NotImplementedError

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of ``items`` (n, c) for ``entities`` (n,): higher means more relevant."""
        raise NotImplementedError

    def _rows_per_call(self) -> int:
        return max(1, SCORE_CELLS // max(1, self.n_items_))

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,), for full ranking.

        This default calls ``score`` with every item as a candidate, for as many entities at a
        time as keep each call under about four million scores.
        """
        entities, _ = self._check_ids(entities)
        step = self._rows_per_call()
        all_items = np.arange(self.n_items_)
        if len(entities) <= step:
            return self.score(entities, np.broadcast_to(all_items, (len(entities), self.n_items_)))
        parts = [
            self.score(e, np.broadcast_to(all_items, (len(e), self.n_items_)))
            for e in (entities[i : i + step] for i in range(0, len(entities), step))
        ]
        return np.concatenate(parts)

    def recommend(self, entities: np.ndarray, k: int = 10, exclude: Any = None) -> np.ndarray:
        """The top-``k`` item ids (n, k) of each entity, best first.

        Items are ranked by :meth:`score_all`, highest first; **ties go to the lower item id**
        (a stable sort), and NaN scores rank last, so the lists are a fixed function of the
        scores.

        Parameters
        ----------
        entities : array of int, shape (n,)
        k : int
            List length, at most the number of items an entity may be recommended.
        exclude : GroupDataset, bool array or sparse matrix, optional
            Items never recommended: a dataset excludes each entity's training items in it (for
            the fitted task); an array or sparse matrix of shape (n, n_items) marks the items
            to exclude for each row of ``entities``.
        """
        entities, _ = self._check_ids(entities)
        k = check_size("k", k)
        if k > self.n_items_:
            raise ValueError(f"k must be at most n_items = {self.n_items_}, got {k}")
        banned = self._exclusion(entities, exclude)  # (n, I) sparse or dense, or None
        out = np.empty((len(entities), k), dtype=np.int64)
        step = self._rows_per_call()
        for start in range(0, len(entities), step):
            rows = slice(start, start + step)
            s = np.asarray(self.score_all(entities[rows]))  # (b, I)
            if banned is None:
                ban = np.zeros(s.shape, dtype=bool)
            else:
                ban = banned[rows]
                ban = ban.toarray() if sp.issparse(ban) else np.asarray(ban)
                ban = ban.astype(bool, copy=False)
                left = (~ban).sum(axis=1)
                if len(left) and left.min() < k:
                    row = start + int(np.argmin(left))
                    raise ValueError(
                        f"entity {int(entities[row])} has {int(left.min())} items left after "
                        f"exclude, fewer than k={k}"
                    )
            with np.errstate(invalid="ignore"):
                order = np.lexsort((-s, ban), axis=1)  # excluded last, then by score; stable
            out[rows] = order[:, :k]
        return out

    def _exclusion(self, entities: np.ndarray, exclude: Any):
        """``exclude`` as a (n, n_items) boolean array or sparse matrix, or None."""
        if exclude is None:
            return None
        shape = (len(entities), self.n_items_)
        if isinstance(exclude, GroupDataset):
            if exclude.n_items != self.n_items_ or exclude.n_entities(self.task_) != (
                self.n_entities_
            ):
                raise ValueError(
                    f"exclude is a dataset with other id ranges than the fitted one "
                    f"({self.n_entities_} {self.task_}s, {self.n_items_} items)"
                )
            return exclude.train_matrix(self.task_).tocsr()[entities]
        if sp.issparse(exclude):
            exclude = sp.csr_matrix(exclude)
        else:
            exclude = np.asarray(exclude)
            if exclude.dtype != bool:
                raise ValueError(f"exclude must be a boolean array, got dtype {exclude.dtype}")
        if exclude.shape != shape:
            raise ValueError(f"exclude must have shape (n, n_items) = {shape}, got {exclude.shape}")
        return exclude
