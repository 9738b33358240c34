"""User-preference stage: learn what each user likes from implicit feedback (``04_user_preferences``).

Two scoring models, both ``nn.Module``s whose ``forward(u, i)`` broadcasts over candidate lists:

* :class:`MF`, matrix factorisation ``ŷ_ui = p_u · q_i + β_i`` (Koren, Bell & Volinsky, 2009);
* :class:`NeuMF`, neural matrix factorisation (He et al., 2017): a generalised matrix
  factorisation tower ``p_u^G ⊙ q_i^G`` and a multi-layer perceptron on ``[p_u^M; q_i^M]``,
  fused by one linear output layer (the score is a logit, ``ŷ_ui = hᵀ [φ^G; φ^M] + b``).

Both are trained with the Bayesian personalised ranking loss (Rendle et al., 2009),
:func:`bpr_loss`, through :func:`grouprec.training.fit`. :class:`BPRRecommender` wraps them in the
common recommender interface (``fit(dataset, task)``, ``score(entities, items)``); for the group
task it treats each group as one more "user" with its own embedding, the simplest group baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grouprec.base import BaseRecommender
from grouprec.checks import check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset
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

__all__ = ["MF", "BPRRecommender", "NeuMF", "bpr_loss", "bpr_step_loss"]


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking loss ``-mean log σ(x̂_uij)``, ``x̂_uij = ŷ_ui - ŷ_uj``.

    From Rendle et al. (2009). Computed with ``F.logsigmoid``, which never takes the log of a
    sigmoid rounded to zero, so it stays finite for any score difference.

    Parameters
    ----------
    pos : Tensor
        Scores ``ŷ_ui`` of the positive items, shape (B,).
    neg : Tensor
        Scores ``ŷ_uj`` of the negatives, shape (B,) (one per positive) or (B, m) (m per
        positive, each compared with its row's positive).

    Returns
    -------
    Tensor
        Scalar: the mean over all (positive, negative) pairs.
    """
    if pos.ndim != 1 or neg.ndim not in (1, 2) or neg.shape[0] != pos.shape[0]:
        raise ValueError(
            f"pos must have shape (B,) and neg (B,) or (B, m); got pos {tuple(pos.shape)} "
            f"and neg {tuple(neg.shape)}"
        )
    x_uij = (pos[:, None] if neg.ndim == 2 else pos) - neg  # (B,) or (B, m)
    return -F.logsigmoid(x_uij).mean()


class MF(nn.Module):
    """Matrix factorisation: ``ŷ_ui = p_u · q_i + β_i`` (Koren, Bell & Volinsky, 2009).

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id spaces (for the group task, ``n_users`` counts groups).
    d : int
        Number of latent factors.
    item_bias : bool
        Learn the item bias ``β_i``, a popularity term shared by all users.
    init_std : float
        Standard deviation of the normal initialisation of ``P`` and ``Q``; ``β`` starts at 0.

    Attributes
    ----------
    P, Q : nn.Embedding
        User factors (n_users, d) and item factors (n_items, d).
    beta : nn.Embedding or None
        Item biases (n_items, 1).
    config : dict
        The constructor arguments (stored in checkpoints).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        d: int = 32,
        item_bias: bool = True,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "d": check_size("d", d),
            "item_bias": bool(item_bias),
            "init_std": float(init_std),
        }
        self.P = nn.Embedding(n_users, d)
        self.Q = nn.Embedding(n_items, d)
        nn.init.normal_(self.P.weight, std=init_std)
        nn.init.normal_(self.Q.weight, std=init_std)
        self.beta = nn.Embedding(n_items, 1) if item_bias else None
        if self.beta is not None:
            nn.init.zeros_(self.beta.weight)

    def forward(self, u: Tensor, i: Tensor) -> Tensor:
        """Scores ``ŷ_ui`` for user ids ``u`` and item ids ``i`` of broadcastable shapes.

        ``u`` (B,) with ``i`` (B,) gives (B,); ``u`` (B, 1) with ``i`` (B, c) gives (B, c).
        """
        # No id check on the way, which would wait for the device at every training step; a
        # lookup that fails says which argument held a bad id.
        with explain_bad_ids(u=(u, self.P.num_embeddings), i=(i, self.Q.num_embeddings)):
            p_u = self.P(u)  # (..., d)
            q_i = self.Q(i)  # (..., d)
            beta_i = None if self.beta is None else self.beta(i)[..., 0]  # (...)
        y_ui = (p_u * q_i).sum(-1)  # broadcast shape of u and i
        if beta_i is not None:
            y_ui = y_ui + beta_i
        return y_ui


class NeuMF(nn.Module):
    """Neural matrix factorisation (He et al., 2017): GMF and MLP towers fused by a linear layer.

    ``φ^G = p_u^G ⊙ q_i^G`` (d,) and ``φ^M = MLP([p_u^M; q_i^M])`` (last hidden width); the
    score is the logit ``ŷ_ui = hᵀ [φ^G; φ^M] + b``. The two towers have their own embeddings.
    He et al. pretrain each tower before fusing them; here both are trained together from the
    start, the paper's variant without pretraining.

    The output bias ``b`` (``h.bias``) is kept for the log loss of He et al. Under BPR, the only
    loss this package trains NeuMF with, it cancels in ``ŷ_ui - ŷ_uj``: it receives a zero
    gradient and keeps its initial value, so it is not a trained parameter there.

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the id spaces.
    d : int
        Width of every embedding (GMF and MLP).
    hidden : sequence of int, optional
        Widths of the MLP's hidden layers, applied to the 2d-wide input; by default
        ``(d, d // 2)``, a tower that halves as in the paper.
    init_std : float
        Standard deviation of the normal initialisation of the embeddings.

    Attributes
    ----------
    P_G, Q_G, P_M, Q_M : nn.Embedding
        User and item embeddings of the GMF and MLP towers.
    mlp : nn.Sequential
        The tower: Linear, ReLU, ..., Linear, ReLU.
    h : nn.Linear
        The fused output layer, weights ``h`` and bias ``b`` (untrained under BPR, see above).
    config : dict
        The constructor arguments (stored in checkpoints).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        d: int = 32,
        hidden: Sequence[int] | None = None,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        d = check_size("d", d)
        hidden = [d, max(d // 2, 1)] if hidden is None else list(hidden)
        if not hidden:
            raise ValueError("hidden must list at least one layer width, got an empty sequence")
        for k, width in enumerate(hidden):
            check_size(f"hidden[{k}]", width)
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "d": d,
            "hidden": [int(w) for w in hidden],
            "init_std": float(init_std),
        }
        self.P_G = nn.Embedding(n_users, d)
        self.Q_G = nn.Embedding(n_items, d)
        self.P_M = nn.Embedding(n_users, d)
        self.Q_M = nn.Embedding(n_items, d)
        for emb in (self.P_G, self.Q_G, self.P_M, self.Q_M):
            nn.init.normal_(emb.weight, std=init_std)
        layers: list[nn.Module] = []
        width = 2 * d
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.mlp = nn.Sequential(*layers)
        self.h = nn.Linear(d + width, 1)

    def forward(self, u: Tensor, i: Tensor) -> Tensor:
        """Logits ``ŷ_ui`` for ids ``u`` and ``i`` of broadcastable shapes (as :meth:`MF.forward`)."""
        checks = {"u": (u, self.P_G.num_embeddings), "i": (i, self.Q_G.num_embeddings)}
        with explain_bad_ids(**checks):  # no id check unless a lookup fails (see MF.forward)
            u, i = torch.broadcast_tensors(u, i)  # the MLP input needs both at full shape
            phi_G = self.P_G(u) * self.Q_G(i)  # (..., d)
            p_M, q_M = self.P_M(u), self.Q_M(i)  # (..., d) each
        phi_M = self.mlp(torch.cat([p_M, q_M], dim=-1))  # (..., hidden[-1])
        return self.h(torch.cat([phi_G, phi_M], dim=-1))[..., 0]  # (...)


_MODELS = {"mf": MF, "neumf": NeuMF}

# Scores computed per forward call in score_candidates: at most this many (entity, item) pairs,
# so that NeuMF's intermediate tensors stay small even when every item is a candidate.
_SCORE_CELLS = 1 << 17


def score_candidates(model: nn.Module, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Scores (n, c) of a model ``model(u (rows, 1), i (rows, c))`` for checked entity ids (n,)
    and candidate item ids (n, c), computed on the model's device without gradients, in chunks
    of at most ``_SCORE_CELLS`` pairs; float32 on the CPU."""
    device = next(model.parameters()).device
    items = np.ascontiguousarray(items)  # a copy of a broadcast view: writable
    e = torch.as_tensor(entities, dtype=torch.int64)
    i = torch.as_tensor(items, dtype=torch.int64)
    step = max(1, _SCORE_CELLS // max(1, items.shape[1]))  # rows per forward call
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(e), step):
            stop = start + step
            y = model(e[start:stop, None].to(device), i[start:stop].to(device))  # (rows, c)
            out.append(y.float().cpu())
    if not out:
        return np.zeros(items.shape, dtype=np.float32)
    return torch.cat(out).numpy()


def bpr_step_loss(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """The ``loss_fn`` for :func:`grouprec.training.fit`: BPR on a ``(u, i, j)`` batch.

    ``u`` (B,) users, ``i`` (B,) their positives, ``j`` (B, m) sampled negatives.
    """
    u, i, j = batch
    y_ui = model(u, i)  # (B,)
    y_uj = model(u[:, None], j)  # (B, m)
    return bpr_loss(y_ui, y_uj)


class BPRRecommender(BaseRecommender):
    """MF or NeuMF trained with BPR, behind the common recommender interface.

    ``fit`` trains on ``dataset.train(task)`` with negatives drawn uniformly from the items each
    entity has not interacted with, and stops early on NDCG@10 over ``dataset.cases(task, "val")``
    when the dataset has a validation split (it never reads the test split). Without one, it
    trains for ``epochs`` epochs.

    Parameters
    ----------
    model : {"mf", "neumf"}
        The scoring model.
    d : int
        Embedding width.
    epochs : int
        Largest number of epochs.
    lr : float
        Adam's learning rate.
    n_neg : int
        Negatives sampled per positive pair and epoch.
    batch_size : int
        Positive pairs per batch.
    weight_decay : float
        L2 penalty on all parameters (the ``λ_Θ ‖Θ‖²`` of BPR-Opt).
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    hidden : sequence of int, optional
        NeuMF's MLP widths (see :class:`NeuMF`).
    item_bias : bool
        MF's item bias (see :class:`MF`).
    init_std : float
        Initialisation scale of the embeddings.
    seed : int
        Seeds the initialisation, the batch order and the negatives. ``fit`` gives the
        caller's global generators back their state (:func:`~grouprec.training.keeps_global_rng`).
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. ``score`` takes and
        returns NumPy arrays wherever the model lives.
    progress : bool
        Show a progress bar while training.

    Attributes
    ----------
    model_ : MF or NeuMF
        The trained module (best validation epoch).
    history_ : History
        Loss and validation curves.
    task_ : str
        The task fitted.
    """

    def __init__(
        self,
        model: str = "mf",
        d: int = 32,
        epochs: int = 30,
        lr: float = 0.01,
        n_neg: int = 1,
        batch_size: int = 4096,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        hidden: Sequence[int] | None = None,
        item_bias: bool = True,
        init_std: float = 0.1,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        if model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
        self.model = model
        self.d = check_size("d", d)
        self.hidden = None if hidden is None else tuple(hidden)
        self.item_bias = item_bias
        self._set_training_params(locals())

    @property
    def name(self) -> str:
        """Label in results tables: ``"MF-BPR"`` or ``"NeuMF-BPR"``."""
        return {"mf": "MF-BPR", "neumf": "NeuMF-BPR"}[self.model]

    def build(self, n_entities: int, n_items: int) -> nn.Module:
        """A fresh, untrained scoring module for the given id spaces."""
        if self.model == "mf":
            return MF(n_entities, n_items, self.d, self.item_bias, self.init_std)
        return NeuMF(n_entities, n_items, self.d, self.hidden, self.init_std)

    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str) -> BPRRecommender:
        """Train on ``dataset``'s training pairs for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        train = dataset.train(task)
        val = getattr(dataset, f"{task}_val")
        seed_everything(self.seed)  # the initial weights depend on the seed
        self.model_ = self.build(self.n_entities_, self.n_items_)
        batches = TripletBatches(train, dataset.n_items, self.n_neg, self.batch_size)
        self.history_: History = fit(
            self.model_,
            bpr_step_loss,
            batches,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fn=None if val is None else ranking_val_fn(val),
            patience=self.patience,
            seed=self.seed,
            progress=self.progress,
            device=select_device(self.device),
        )
        return self

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for entities (n,) (users or groups)."""
        entities, items = self._check_ids(entities, items)
        return score_candidates(self.model_, entities, items)
