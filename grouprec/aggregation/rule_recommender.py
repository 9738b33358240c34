"""Static rules over the member scores of a user-level recommender: :class:`RuleRecommender`.

Any user-level recommender scores every member of a group on the group's candidates; each
member's scores are put on a common scale and one of the static rules of
:mod:`grouprec.aggregation.rules` turns them into group scores, behind the common recommender
interface of :mod:`grouprec.evaluation`. Groups are scored in chunks of similar size
(:mod:`grouprec.aggregation._common`, shared with :mod:`grouprec.aggregation.agree`).

References
----------
Masthoff, J. (2011). Group recommender systems: combining individual models. In F. Ricci,
L. Rokach, B. Shapira and P. B. Kantor (eds.), *Recommender Systems Handbook*, 677-702.
Springer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from grouprec.aggregation._common import _size_chunks
from grouprec.aggregation.rules import RULES, aggregate
from grouprec.base import BaseRecommender
from grouprec.checks import check_members
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset

#: The rules that build a list one position at a time and break their last ties by item index.
LIST_RULES = ("plurality", "fairness_greedy")

#: How :class:`RuleRecommender` puts each member's scores on a common scale.
NORMALISATIONS = ("minmax", "rank", "none")


def _fmix64(x: np.ndarray) -> np.ndarray:
    """The 64-bit finaliser of MurmurHash3 (Appleby, 2011): a bijective mixing of uint64s."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def _tie_keys(seed: int, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A pseudo-random key per (seed, entity, item), shape of ``items`` (n, c).

    A fixed function of the three ids: a candidate's key does not depend on its column, on the
    other candidates, or on how a call is batched.
    """
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps around by design
        h = _fmix64(np.full(items.shape, seed, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        h = _fmix64(h ^ entities.astype(np.uint64)[:, None])
        return _fmix64(h ^ items.astype(np.uint64))


class RuleRecommender(BaseRecommender):
    """A static rule applied to the member scores of a user-level recommender.

    For a group g and its candidate items, every member u scores every candidate with the base
    recommender, :math:`r_{uj}`; each member's scores are put on a common scale (``normalise``),
    because the rules compare and add scores of different people; and the rule turns the
    (members x candidates) matrix into group scores :math:`R_j` (see :data:`RULES`). Groups are
    processed in batches of padded member lists, as :func:`aggregate` expects.

    **Who has a say.** A member without any training interaction (``skip_inactive``) has no
    preferences the base could have learned: a latent-factor model returns its random initial
    vector, an item-item model all zeros. A member whose scores do not tell the candidates apart
    expresses no preference among them either. Both are left out of the aggregation; a group in
    which nobody has a say keeps all its members (their scores are then uninformative anyway).
    On Mafengwo about two members in three have no training interaction.

    **Ties in list rules.** :data:`LIST_RULES` build a list position by position and break their
    last ties by the lower candidate index. In the sampled protocol the held-out item sits in
    column 0 of every candidate list, so that tie-break would hand it every tie. Before a list
    rule runs, each row's candidates are therefore reordered by a pseudo-random key of (seed,
    group, item), and the scores are put back in the caller's order afterwards: ties go to a
    random candidate, the same one however the call is batched.

    Parameters
    ----------
    base : Recommender
        A recommender for the user task, e.g. ``EASE`` or ``BPRRecommender``.
    rule : str
        A key of :data:`RULES`.
    normalise : {"minmax", "rank", "none"}
        ``"minmax"``: each member's scores over the candidates scaled to [0, 1], their favourite
        1 and their least favourite 0; ``"rank"``: the share of the other candidates the member
        scores lower (ties count half), also in [0, 1]; ``"none"``: the raw scores (thresholds
        and the multiplicative rule then depend on the base's scale).
    skip_inactive : bool
        Leave members without training interactions out of the aggregation (see above).
    fit_base : bool
        Make :meth:`fit` fit ``base`` on the user task first; False uses ``base`` as it is.
        :meth:`clone` clones ``base`` too, unfitted: with ``fit_base=False``, fit the clone's
        ``base`` before the clone.
    seed : int
        Seeds the random tie order of the list rules.
    **params
        The rule's own parameters: ``threshold`` (on the normalised scale) for ``approval`` and
        ``average_without_misery``, ``k`` for ``fairness_greedy`` and ``plurality``. A list rule
        given a ``k`` larger than the number of candidates lists all of them.

    Attributes
    ----------
    members_, mask_ : np.ndarray
        The dataset's padded member lists (n_groups, S) and their mask.
    active_ : np.ndarray
        Shape (n_users,), True for users with at least one training interaction.
    known_ : scipy.sparse.csr_matrix
        Shape (n_groups, n_items), the groups' training items (see :meth:`score_all`).
    """

    _fit_hint = "fit(dataset, 'group')"

    def __init__(
        self,
        base: Any,
        rule: str,
        *,
        normalise: str = "minmax",
        skip_inactive: bool = True,
        fit_base: bool = True,
        seed: int = DEFAULT_SEED,
        **params: Any,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {sorted(RULES)}")
        if normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
        if not callable(getattr(base, "score", None)):
            raise TypeError(f"base must be a recommender with a score method, got {base!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.base = base
        self.rule = rule
        self.normalise = normalise
        self.skip_inactive = bool(skip_inactive)
        self.fit_base = bool(fit_base)
        self.seed = int(seed)
        self.params = dict(params)

    @property
    def name(self) -> str:
        """Label in results tables: the rule's name."""
        return self.rule

    def fit(self, dataset: GroupDataset, task: str = "group") -> RuleRecommender:
        """Remember the groups' members (and fit the base on the user task if ``fit_base``)."""
        if task != "group":
            raise ValueError(
                f"RuleRecommender recommends to groups, so task must be 'group'; got {task!r}"
            )
        if self.fit_base:
            self.base.fit(dataset, "user")
        self._start_fit(dataset, "group")
        self.members_, self.mask_ = dataset.member_padded()  # (G, S) each
        self.active_ = np.bincount(dataset.user_train.entity, minlength=dataset.n_users) > 0
        self.known_ = dataset.train_matrix("group")  # (G, I) each group's training items
        self.n_groups_ = int(dataset.n_groups)
        self.n_users_ = int(dataset.n_users)
        return self

    def _normalised(self, r: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
        """Each member's scores on the common scale; (n, S, c) -> same.

        With ``eligible`` (n, c), the scale is set by the eligible candidates alone, and the
        others are placed strictly below all of them (-1 on the 0-1 scales).
        """
        c = r.shape[2]
        if eligible is None:
            ok = np.ones((1, 1, c), dtype=bool)
        else:
            ok = eligible[:, None, :]  # (n, 1, c)
        if self.normalise == "rank":
            # Average ranks 1 (lowest) .. c over the eligible candidates, ties sharing the mean
            # of the ranks they span; (rank - 1) / (c_ok - 1) is then the share of the other
            # eligible candidates scored lower, ties counting half.
            rank = rankdata(np.where(ok, r, -np.inf), method="average", axis=2)  # (n, S, c)
            n_out = (~ok).sum(axis=2, keepdims=True)  # (n, 1, 1) ineligible, ranked lowest
            c_ok = np.maximum(c - n_out, 2)
            out = (rank - n_out - 1.0) / (c_ok - 1)
            return np.where(ok, np.where(c - n_out > 1, out, 1.0), -1.0)
        lo = np.where(ok, r, np.inf).min(axis=2, keepdims=True)  # (n, S, 1)
        hi = np.where(ok, r, -np.inf).max(axis=2, keepdims=True)
        span = hi - lo
        if self.normalise == "none":
            return np.where(ok, r, lo - span - 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, np.where(span > 0, (r - lo) / span, 1.0), -1.0)

    def _member_matrix(
        self,
        ids: np.ndarray,
        mask: np.ndarray,
        items: np.ndarray,
        eligible: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised member scores r (n, S, c) and who has a say (n, S), for padded members."""
        n, S = ids.shape
        c = items.shape[1]
        r = np.zeros((n, S, c))
        rows, slots = np.nonzero(mask)
        if len(rows):
            scores = np.asarray(self.base.score(ids[rows, slots], items[rows]), dtype=np.float64)
            if scores.shape != (len(rows), c):
                raise ValueError(
                    f"base.score returned shape {scores.shape}, expected {(len(rows), c)}"
                )
            r[rows, slots] = scores
        r = self._normalised(r, eligible)
        ok = np.ones((1, 1, c), dtype=bool) if eligible is None else eligible[:, None, :]
        top = np.where(ok, r, -np.inf).max(axis=2)  # (n, S) over the eligible candidates
        bottom = np.where(ok, r, np.inf).min(axis=2)
        say = mask & (top > bottom)  # (n, S) the member tells the candidates apart
        if self.skip_inactive:
            say &= self.active_[ids]
        nobody = ~say.any(axis=1)
        say[nobody] = mask[nobody]
        return r, say

    def _aggregate(
        self, r: np.ndarray, say: np.ndarray, keys_for: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Group scores (n, c) from member scores r (n, S, c) of the members with a say."""
        params = dict(self.params)
        c = items.shape[1]
        if self.rule not in LIST_RULES:
            return np.asarray(aggregate(r, say, self.rule, **params), dtype=np.float64)
        if params.get("k") is not None:
            params["k"] = min(int(params["k"]), c)
        perm = np.argsort(_tie_keys(self.seed, keys_for, items), axis=1)  # (n, c)
        R_perm = aggregate(
            np.take_along_axis(r, perm[:, None, :], axis=2), say, self.rule, **params
        )
        R = np.empty((len(items), c))
        np.put_along_axis(R, perm, np.asarray(R_perm, dtype=np.float64), axis=1)
        return R

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Group scores (n, c) of candidate items (n, c) for groups ``entities`` (n,)."""
        groups, items = self._check_ids(entities, items)
        n, c = items.shape
        out = np.empty((n, c))
        sizes = self.mask_.sum(axis=1)[groups]
        for rows in _size_chunks(sizes, c):
            g, it = groups[rows], items[rows]
            width = int(sizes[rows].max())  # members come first in every padded row
            r, say = self._member_matrix(self.members_[g, :width], self.mask_[g, :width], it)
            out[rows] = self._aggregate(r, say, g, it)
        return out

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Group scores (n, n_items) of every item, for full ranking and top-K lists.

        As :meth:`score` with every item a candidate, except for the list rules: they build
        their list from the items the group has no training interaction with, on the members'
        scale over those items, and rank the group's training items last. Full ranking and
        ``beyond_accuracy`` leave the training items out afterwards; a list built with them
        would lose its best places and leave only its tied tail.
        """
        groups, _ = self._check_ids(entities)
        if self.rule not in LIST_RULES:
            items = np.broadcast_to(np.arange(self.n_items_), (len(groups), self.n_items_))
            return self.score(groups, items)
        out = np.empty((len(groups), self.n_items_))
        sizes = self.mask_.sum(axis=1)[groups]
        for rows in _size_chunks(sizes, self.n_items_):
            g = groups[rows]
            it = np.broadcast_to(np.arange(self.n_items_), (len(g), self.n_items_))
            eligible = ~self.known_[g].toarray().astype(bool)  # (n, I)
            eligible[~eligible.any(axis=1)] = True  # a group that has every item: no exclusion
            width = int(sizes[rows].max())
            r, say = self._member_matrix(
                self.members_[g, :width], self.mask_[g, :width], it, eligible
            )
            out[rows] = self._aggregate(r, say, g, it)
        return out

    def score_members(
        self, members: Sequence[int] | np.ndarray, items: np.ndarray, group: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score candidates for any set of users, e.g. a group composed on the spot.

        Parameters
        ----------
        members : sequence of int
            User ids, at least one.
        items : array of int, shape (c,)
            Candidate items.
        group : int, optional
            A group id to seed the random tie order of list rules with (any integer works).

        Returns
        -------
        R : np.ndarray
            Shape (c,), the group scores.
        r : np.ndarray
            Shape (|members|, c), each member's normalised scores.
        say : np.ndarray
            Shape (|members|,), bool: who took part in the aggregation.
        """
        self._check_is_fitted()
        ids, items = check_members("members", members, items, self.n_users_, self.n_items_)
        r, say = self._member_matrix(ids[None], np.ones((1, len(ids)), bool), items[None])
        key = np.array([-1 if group is None else int(group)], dtype=np.int64)
        R = self._aggregate(r, say, key, items[None])
        return R[0], r[0], say[0]
