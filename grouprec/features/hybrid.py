"""The hybrid model: item vectors from features plus an optional free correction per item.

:class:`ItemEncoder` is the MLP ``g_θ`` that maps ``f_i`` (from
:class:`~grouprec.features.ItemFeaturizer`) to a vector in the users' space, and
:class:`HybridMF` scores a pair as

    ŷ_ui = p_u · q_i + β_i,     q_i = enc_θ(f_i) + o_i v_i,     β_i = w_βᵀ f_i + o_i b_i,

where ``v_i`` and ``b_i`` are an optional free vector and bias per item (a correction on top of
the content, as in collaborative topic regression, Wang & Blei, 2011) and ``o_i`` is 0 for items
that did not exist during training, so those are scored from their features alone. During
training ``o_i`` is also set to 0 at random, with probability ``id_dropout``, so that the
content path learns to rank on its own (DropoutNet, Volkovs et al., 2017). The user enters
through ``p_u`` only. :class:`HybridRecommender` trains it with BPR through
:func:`grouprec.training.fit`, for users or for groups, with negatives drawn from a pool of
items (:class:`ItemPoolSampler`).

References
----------
- C. Wang, D. M. Blei. Collaborative topic modeling for recommending scientific articles. KDD 2011.
- M. Volkovs, G. Yu, T. Poutanen. DropoutNet: addressing cold start in recommender systems.
  NeurIPS 2017.
- Z. Gantner, L. Drumond, C. Freudenthaler, S. Rendle, L. Schmidt-Thieme. Learning
  attribute-to-feature mappings for cold-start recommendations. ICDM 2010.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from grouprec.base import BaseRecommender
from grouprec.checks import check_no_new_items, check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset, Interactions, NegativeSampler
from grouprec.features.featurizer import (
    ItemFeaturizer,
    _item_table,
    _new_item_mask,
)
from grouprec.preference import bpr_step_loss, score_candidates
from grouprec.training import (
    History,
    TripletBatches,
    explain_bad_ids,
    fit,
    keeps_global_rng,
    ranking_val_fn,
    seed_everything,
    select_device,
)

# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


class ItemEncoder(nn.Module):
    """``g_θ``: an MLP from item features ``f_i`` (n_features,) to a vector (d,).

    ReLU hidden layers and a linear output layer: the output is a point anywhere in the users'
    space, positive or negative in each coordinate, as an embedding must be free to be.

    Parameters
    ----------
    n_features : int
        Width of ``f_i``.
    d : int
        Width of the output.
    hidden : sequence of int
        Widths of the hidden layers (empty: a linear map).
    """

    def __init__(self, n_features: int, d: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = check_size("n_features", n_features)
        for k, out in enumerate(hidden):
            layers += [nn.Linear(width, check_size(f"hidden[{k}]", out)), nn.ReLU()]
            width = int(out)
        layers.append(nn.Linear(width, check_size("d", d)))
        self.mlp = nn.Sequential(*layers)

    def forward(self, f: Tensor) -> Tensor:
        """Vectors (..., d) of feature rows ``f`` (..., n_features)."""
        return self.mlp(f)


class HybridMF(nn.Module):
    """Matrix factorisation whose item vectors come from item features, plus optional free ids.

    ``ŷ_ui = p_u · q_i + β_i`` with ``q_i = enc_θ(f_i) + o_i v_i`` and ``β_i = w_βᵀ f_i + o_i b_i``.

    ``o_i`` is 1 for items that existed during training (``known``) and 0 for the others, so a
    new item is scored from its features alone. In training mode ``o_i`` is also set to 0 with
    probability ``id_dropout``, independently for every item occurrence of a batch, so that the
    feature path ``enc_θ`` learns to rank without the free vectors. Unlike ordinary dropout nothing
    is rescaled: a dropped item is scored exactly as a new item would be.

    With ``n_features = 0`` the model is plain matrix factorisation (``q_i = o_i v_i``); with
    ``use_ids = False`` it has no free item parameters (``q_i = enc_θ(f_i)``).

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id spaces (for the group task, ``n_users`` counts groups).
    n_features : int
        Width of the item features (0: no features).
    d : int
        Embedding width.
    hidden : sequence of int
        Hidden widths of the encoder :class:`ItemEncoder`.
    use_ids : bool
        Learn the free vector ``v_i`` and bias ``b_i`` of each known item.
    id_dropout : float
        Probability ``ρ`` of scoring a known item by its features alone during training.
    init_std : float
        Standard deviation of the normal initialisation of ``P`` (and of ``E`` without features;
        with features ``E`` starts at 0, so the model starts from the content alone).
    features : Tensor, optional
        The feature matrix ``F`` (n_items, n_features); a buffer, saved with the weights.
    known : Tensor, optional
        Boolean (n_items,): the items that exist during training (by default all); a buffer.

    Attributes
    ----------
    P : nn.Embedding
        Entity vectors (n_users, d).
    encoder : ItemEncoder or None
        ``g_θ``.
    w_beta : nn.Linear or None
        The feature bias ``w_βᵀ f_i``.
    E, b : nn.Embedding or None
        Free item vectors (n_items, d) and biases (n_items, 1).
    config : dict
        The constructor arguments except the buffers (stored in checkpoints).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_features: int,
        d: int = 32,
        hidden: Sequence[int] = (64,),
        use_ids: bool = True,
        id_dropout: float = 0.5,
        init_std: float = 0.1,
        features: Tensor | None = None,
        known: Tensor | None = None,
    ) -> None:
        super().__init__()
        n_features = check_size("n_features", n_features, minimum=0)
        if not (0.0 <= float(id_dropout) <= 1.0):
            raise ValueError(f"id_dropout must lie in [0, 1], got {id_dropout!r}")
        if n_features == 0 and not use_ids:
            raise ValueError("with n_features=0 the model needs use_ids=True: it has nothing else")
        if n_features == 0 and id_dropout > 0:
            raise ValueError(
                f"id_dropout={id_dropout} needs item features to fall back on; "
                "with n_features=0 set id_dropout=0"
            )
        # features and known are buffers, saved in the state dict, so the config leaves them out.
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "n_features": n_features,
            "d": check_size("d", d),
            "hidden": [int(w) for w in hidden],
            "use_ids": bool(use_ids),
            "id_dropout": float(id_dropout),
            "init_std": float(init_std),
        }
        self.id_dropout = float(id_dropout)
        self.P = nn.Embedding(n_users, d)
        nn.init.normal_(self.P.weight, std=init_std)
        F = torch.zeros(n_items, n_features) if features is None else features
        if tuple(F.shape) != (n_items, n_features):
            raise ValueError(
                f"features must have shape (n_items, n_features) = ({n_items}, {n_features}), "
                f"got {tuple(F.shape)}"
            )
        # detach: the features are data, not a parameter to learn.
        self.register_buffer("features", F.detach().to(torch.float32).clone())  # (I, n_f)
        m = torch.ones(n_items, dtype=torch.bool) if known is None else known
        if tuple(m.shape) != (n_items,) or m.dtype != torch.bool:
            raise ValueError(
                f"known must be a bool tensor of shape ({n_items},), got {m.dtype} {tuple(m.shape)}"
            )
        self.register_buffer("known", m.clone())  # (I,)
        if n_features:
            self.encoder: ItemEncoder | None = ItemEncoder(n_features, d, hidden)
            self.w_beta: nn.Linear | None = nn.Linear(n_features, 1)
        else:
            self.encoder = self.w_beta = None
        if use_ids:
            self.E: nn.Embedding | None = nn.Embedding(n_items, d)
            self.b: nn.Embedding | None = nn.Embedding(n_items, 1)
            if n_features:
                nn.init.zeros_(self.E.weight)  # a correction on top of the content: starts at 0
            else:
                nn.init.normal_(self.E.weight, std=init_std)
            nn.init.zeros_(self.b.weight)
        else:
            self.E = self.b = None

    def content_vectors(self, i: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``enc_θ(f_i)`` (..., d) and ``w_βᵀ f_i`` (...) of items ``i`` (all items if None)."""
        if self.encoder is None:
            raise RuntimeError("this model has no item features (n_features=0)")
        if i is None:
            f = self.features  # (I, n_f)
            return self.encoder(f), self.w_beta(f)[:, 0]
        # Encode each distinct item once, then gather: candidate lists repeat items a lot. The
        # gather is an embedding lookup because its backward pass sums the gradients of repeated
        # items in a fixed order on the CPU (indexing with [inv] does not with several threads).
        # On an accelerator torch.unique would wait for the device to learn how many items are
        # distinct; there every item is encoded instead (a small product) and gathered.
        if i.device.type == "cpu":
            uniq, inv = torch.unique(i, return_inverse=True)  # (n_uniq,), i.shape
            f = self.features[uniq]  # (n_uniq, n_f)
        else:
            inv, f = i, self.features  # (I, n_f)
        out = torch.cat([self.encoder(f), self.w_beta(f)], dim=-1)  # (n_uniq, d + 1)
        rows = nn.functional.embedding(inv, out)  # (..., d + 1)
        return rows[..., :-1], rows[..., -1]

    def item_vectors(self, i: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``q_i`` (..., d) and ``β_i`` (...) of items ``i`` (all items if None).

        In training mode the free part of each item occurrence is dropped with probability
        ``id_dropout``; in evaluation mode it is kept for every known item.
        """
        n_items = self.known.shape[0]
        if i is not None:  # no id check unless a lookup fails (see MF.forward)
            with explain_bad_ids(i=(i, n_items)):
                return self._item_vectors(i)
        return self._item_vectors(torch.arange(n_items, device=self.known.device), all_items=True)

    def _item_vectors(self, idx: Tensor, all_items: bool = False) -> tuple[Tensor, Tensor]:
        """:meth:`item_vectors` of items ``idx``, all of them in order if ``all_items``."""
        i = None if all_items else idx
        if self.encoder is not None:
            q_i, beta_i = self.content_vectors(i)
        else:
            dtype = self.P.weight.dtype
            q_i = torch.zeros((*idx.shape, self.P.embedding_dim), dtype=dtype, device=idx.device)
            beta_i = torch.zeros(idx.shape, dtype=dtype, device=idx.device)
        if self.E is not None:
            o_i = self.known[idx].to(q_i.dtype)  # (...): 0 for items unknown in training
            if self.training and self.id_dropout > 0:
                keep = torch.rand(idx.shape, device=idx.device) >= self.id_dropout
                o_i = o_i * keep.to(q_i.dtype)
            q_i = q_i + o_i[..., None] * self.E(idx)
            beta_i = beta_i + o_i * self.b(idx)[..., 0]
        return q_i, beta_i

    def forward(self, u: Tensor, i: Tensor) -> Tensor:
        """Scores ``ŷ_ui`` for ids ``u`` and ``i`` of broadcastable shapes.

        ``u`` (B,) with ``i`` (B,) gives (B,); ``u`` (B, 1) with ``i`` (B, c) gives (B, c).
        """
        with explain_bad_ids(u=(u, self.P.num_embeddings)):
            p_u = self.P(u)  # (..., d)
        q_i, beta_i = self.item_vectors(i)  # (..., d), (...)
        return (p_u * q_i).sum(-1) + beta_i


# --------------------------------------------------------------------------------------------
# Negatives from a pool of items
# --------------------------------------------------------------------------------------------


class ItemPoolSampler:
    """Uniform negatives drawn from a pool of items, never a positive of the entity.

    The same interface as :class:`grouprec.data.NegativeSampler` (pass it to
    :class:`grouprec.training.TripletBatches`), for when only some items may serve as negatives:
    in a cold-start experiment, the items that exist at training time.

    Parameters
    ----------
    positives : Interactions
        Pairs that must never be drawn as negatives of their entity.
    n_items : int
        Size of the item id space.
    pool : array of int
        The items negatives are drawn from.
    """

    def __init__(self, positives: Interactions, n_items: int, pool: np.ndarray) -> None:
        self.n_items = int(n_items)
        self.pool = np.unique(np.asarray(pool, dtype=np.int64))
        if self.pool.size == 0:
            raise ValueError("pool is empty: there is no item to draw negatives from")
        if self.pool[0] < 0 or self.pool[-1] >= self.n_items:
            raise ValueError(
                f"pool must hold item ids in 0..{self.n_items - 1}, got "
                f"{self.pool[0]}..{self.pool[-1]}"
            )
        self._positives = NegativeSampler(positives, self.n_items)
        # Distinct positives of each entity inside the pool: an entity owning the whole pool
        # would make rejection sampling loop for ever.
        keys = np.unique(positives.keys(self.n_items))
        in_pool = np.isin(keys % self.n_items, self.pool)
        self._n_pos = np.bincount(keys[in_pool] // self.n_items)

    def is_positive(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array shaped like ``items``: True where the item is a positive of its entity."""
        return self._positives.is_positive(entities, items)

    def sample(self, entities: np.ndarray, n_neg: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_neg`` negatives per entity from the pool (with replacement), shape (n, n_neg)."""
        entities = np.asarray(entities, dtype=np.int64)
        n_pos = np.zeros(len(entities), dtype=np.int64)
        inside = entities < len(self._n_pos)
        n_pos[inside] = self._n_pos[entities[inside]]
        if np.any(n_pos >= self.pool.size):
            bad = int(entities[np.argmax(n_pos >= self.pool.size)])
            raise ValueError(f"entity {bad} has every pool item as a positive; no negative exists")
        out = self.pool[rng.integers(self.pool.size, size=(len(entities), n_neg))]
        rejected = self.is_positive(entities, out)
        while rejected.any():
            out[rejected] = self.pool[rng.integers(self.pool.size, size=int(rejected.sum()))]
            rows = np.nonzero(rejected)[0]
            rejected[rejected] = self.is_positive(entities[rows], out[rejected])
        return out


def _distinct_from_pool(
    entities: np.ndarray,
    positives: Interactions,
    n_items: int,
    pool: np.ndarray,
    m: int,
    rng: np.random.Generator,
    what: str,
) -> np.ndarray:
    """``m`` distinct items per entity (n, m), uniform over the pool items that are not its positives.

    Each row sorts fresh uniform keys over the pool with the entity's positives set to +inf, so its
    first ``m`` items are a uniform sample without replacement.
    """
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    sampler = NegativeSampler(positives, n_items)
    out = np.empty((len(entities), m), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, pool.size))
    for start in range(0, len(entities), step):
        e = entities[start : start + step]
        taken = sampler.is_positive(e, np.broadcast_to(pool, (len(e), pool.size)))  # (B, P)
        free = pool.size - taken.sum(axis=1)
        if len(e) and free.min() < m:
            k = int(np.argmin(free))
            raise ValueError(
                f"{what}: entity {int(e[k])} has only {int(free[k])} pool items that are not its "
                f"positives, fewer than n_negatives={m}; lower n_negatives or frac"
            )
        keys = rng.random((len(e), pool.size))
        keys[taken] = np.inf  # positives sort last, never among the first m
        out[start : start + step] = pool[np.argsort(keys, axis=1, kind="stable")[:, :m]]
    return out


class HybridRecommender(BaseRecommender):
    """:class:`HybridMF` trained with BPR, behind the common recommender interface.

    ``fit`` builds the item features from ``dataset.item_features`` with ``featurizer``, fitted
    on the items that exist at training time (all but ``new_items``), then trains on
    ``dataset.train(task)`` with negatives drawn uniformly from the existing items, stopping early
    on NDCG@10 over the validation cases when the dataset has them. For ``task="group"`` the
    entities are groups, each with its own vector ``p_g``.

    Three models share this code, so that a comparison changes one thing at a time:
    ``use_features=False`` is matrix factorisation ("MF"), ``use_ids=False`` scores from the
    features alone ("Features only"), and both together make the hybrid ("Hybrid").

    Parameters
    ----------
    d : int
        Embedding width.
    hidden : sequence of int
        Hidden widths of the item encoder.
    use_features, use_ids : bool
        Which item parts to use (see above).
    id_dropout : float
        Probability of scoring a known item by its features alone during training (hybrid only).
    featurizer : ItemFeaturizer, optional
        Settings of the features (copied, then fitted in ``fit``); by default ``ItemFeaturizer()``.
    new_items : array of int, optional
        Items that do not exist at training time: never drawn as negatives, scored from their
        features alone (and all alike by MF, which knows nothing about them).
    epochs, lr, n_neg, batch_size, weight_decay, patience, init_std, seed, device, progress
        As in :class:`grouprec.preference.BPRRecommender` (``device``: the CPU by default). The
        random ``id_dropout`` is drawn on the training device, so a GPU run with
        ``id_dropout > 0`` differs from a CPU run with the same seed.

    Attributes
    ----------
    model_ : HybridMF
        The trained module (best validation epoch).
    featurizer_ : ItemFeaturizer or None
        The fitted featurizer.
    history_ : History
        Loss and validation curves.
    task_ : str
        The task fitted.
    """

    def __init__(
        self,
        d: int = 32,
        hidden: Sequence[int] = (64,),
        use_features: bool = True,
        use_ids: bool = True,
        id_dropout: float = 0.5,
        featurizer: ItemFeaturizer | None = None,
        new_items: np.ndarray | None = None,
        epochs: int = 50,
        lr: float = 0.01,
        n_neg: int = 1,
        batch_size: int = 1024,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        init_std: float = 0.1,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        if not (use_features or use_ids):
            raise ValueError("use_features and use_ids are both False: the model has no items")
        self.d = check_size("d", d)
        self.hidden = tuple(int(h) for h in hidden)
        self.use_features = bool(use_features)
        self.use_ids = bool(use_ids)
        if not (0.0 <= float(id_dropout) <= 1.0):
            raise ValueError(f"id_dropout must lie in [0, 1], got {id_dropout!r}")
        self.id_dropout = float(id_dropout)
        self.featurizer = featurizer
        self.new_items = None if new_items is None else np.asarray(new_items, dtype=np.int64)
        self._set_training_params(locals())

    @property
    def name(self) -> str:
        """Label in results tables: ``"Hybrid"``, ``"Features only"`` or ``"MF"``."""
        if self.use_features and self.use_ids:
            return "Hybrid"
        return "Features only" if self.use_features else "MF"

    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str) -> HybridRecommender:
        """Train on ``dataset``'s training pairs for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        n_items = dataset.n_items
        new = _new_item_mask(self.new_items, n_items)
        check_no_new_items("new_items", new, dataset, task)
        exists = np.flatnonzero(~new)
        F = None
        self.featurizer_: ItemFeaturizer | None = None
        if self.use_features:
            items = _item_table(dataset)
            self.featurizer_ = copy.deepcopy(self.featurizer or ItemFeaturizer())
            F = self.featurizer_.fit_transform(items, fit_items=exists)  # (I, n_f)
        seed_everything(self.seed)  # the initial weights depend on the seed
        self.model_ = HybridMF(
            dataset.n_entities(task),
            n_items,
            0 if F is None else F.shape[1],
            d=self.d,
            hidden=self.hidden,
            use_ids=self.use_ids,
            id_dropout=self.id_dropout if (self.use_ids and self.use_features) else 0.0,
            init_std=self.init_std,
            features=F,
            known=torch.from_numpy(~new),
        )
        train = dataset.train(task)
        sampler = ItemPoolSampler(train, n_items, exists)
        batches = TripletBatches(train, n_items, self.n_neg, self.batch_size, sampler=sampler)
        val = getattr(dataset, f"{task}_val")
        self.history_: History = fit(
            self.model_,
            bpr_step_loss,
            batches,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fn=ranking_val_fn(val) if val is not None and len(val) else None,
            patience=self.patience,
            seed=self.seed,
            progress=self.progress,
            device=select_device(self.device),
        )
        self.model_.eval()
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for entities (n,) (users or groups)."""
        entities, items = self._check_ids(entities, items)
        entities = np.ascontiguousarray(entities)
        return score_candidates(self.model_, entities, items)

    def score_all(self, entities: np.ndarray) -> np.ndarray:
        """Scores (n, n_items) of every item for ``entities`` (n,)."""
        entities, _ = self._check_ids(entities)
        model = self.model_
        device = model.P.weight.device
        model.eval()
        with torch.no_grad():
            e = torch.as_tensor(entities, device=device)
            Q, beta = model.item_vectors()  # (I, d), (I,)
            return (model.P(e) @ Q.T + beta).float().cpu().numpy()  # (n, I)
