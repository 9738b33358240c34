"""Learned consensus: a group seen from its members, its items and its neighbouring groups.

A group's choice is a consensus: it depends on who is in the group, on what the group has chosen
before, and on groups that look like it. :class:`Consensus` learns one representation of a group
from each of these three views, built by propagation over graphs of the training data, and fuses
them with learned gates, in the spirit of ConsRec (Wu et al., 2023). It trains with BPR on group
and user interactions together, exactly as AGREE does (:class:`~grouprec.aggregation.JointBatches`,
:func:`~grouprec.aggregation.agree_step_loss`), through :func:`grouprec.training.fit`.
:func:`consensus_graphs` builds the graphs from training data only;
:class:`ConsensusRecommender` implements the common recommender interface.

References
----------
Wu, X., Xiong, Y., Zhang, Y., Jiao, Y., Zhang, J., Zhu, Y. and Yu, P. S. (2023). ConsRec:
Learning consensus behind interactions for group recommendation. *Proceedings of the ACM Web
Conference 2023 (WWW)*, 240-250. (Member-level hypergraph, item-level bipartite graph,
group-level overlap graph, gated fusion.)

He, X., Deng, K., Wang, X., Li, Y., Zhang, Y. and Wang, M. (2020). LightGCN: Simplifying and
powering graph convolution network for recommendation. *Proceedings of the 43rd International
ACM SIGIR Conference on Research and Development in Information Retrieval*, 639-648.

Feng, Y., You, H., Zhang, Z., Ji, R. and Gao, Y. (2019). Hypergraph neural networks.
*Proceedings of the AAAI Conference on Artificial Intelligence*, 33, 3558-3565.

Cao, D., He, X., Miao, L., An, Y., Yang, C. and Hong, R. (2018). Attentive group recommendation.
*SIGIR 2018*, 645-654. (Joint training on user and group data.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from grouprec.aggregation._common import joint_as_task, joint_scorer, start_joint_fit, train_joint
from grouprec.base import SCORE_CELLS, BaseRecommender
from grouprec.checks import check_id_tensor, check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset, Interactions
from grouprec.training import (
    History,
    keeps_global_rng,
    ranking_val_fn,
)

#: Names of the sparse matrices :func:`consensus_graphs` returns, with their shapes.
GRAPHS = {
    "members": "(G, U)",
    "items": "(G, I)",
    "nodes": "(U + I, G)",
    "bipartite": "(G + I, G + I)",
    "overlap": "(G, G)",
}

PREDICTORS = ("dot", "mlp")


# ---------------------------------------------------------------------------------- the graphs


def _incidence(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A binary (0/1) sparse matrix with ones at (rows, cols); repeated pairs count once."""
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _row_mean(m: sp.spmatrix) -> sp.csr_matrix:
    """D^{-1} M: each row divided by its number of entries (an empty row stays 0)."""
    deg = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(deg, 1.0)) @ m)


def _to_torch(m: sp.spmatrix, device: torch.device | str | None = None) -> Tensor:
    """A scipy matrix as a float32 torch CSR tensor on ``device`` (sorted column indices)."""
    csr = sp.csr_matrix(m, dtype=np.float64)
    csr.sum_duplicates()
    csr.sort_indices()
    with warnings.catch_warnings():  # PyTorch calls its CSR support "beta"; it is all we use
        warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float32)),
            csr.shape,
            device=device,
            check_invariants=True,
        )


class _Propagate(torch.autograd.Function):
    """:math:`\\mathbf{Y} = \\mathbf{A}\\mathbf{X}` for a fixed sparse A, with its backward beside it.

    The gradient is :math:`\\partial \\ell / \\partial \\mathbf{X} = \\mathbf{A}^\\top\\,
    \\partial \\ell / \\partial \\mathbf{Y}`; the transpose is stored, in CSR form like A, so that
    both directions are one CSR-times-dense product (several times faster on a CPU than the
    COO products autograd would otherwise use). A is a constant: it gets no gradient.
    """

    @staticmethod
    def forward(A: Tensor, A_T: Tensor, X: Tensor) -> Tensor:  # (n, m), (m, n), (m, d)
        return A @ X  # (n, d)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.A_T = inputs[1]

    @staticmethod
    def backward(ctx, dY: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.A_T @ dY  # dX = A^T dY


def propagate(A: Tensor, A_T: Tensor, X: Tensor) -> Tensor:
    """The sparse-dense product ``A @ X`` (n, d), with ``A_T`` = A transposed for the backward."""
    return _Propagate.apply(A, A_T, X)


def consensus_graphs(
    group_members: Sequence[np.ndarray],
    group_train: Interactions,
    n_users: int,
    n_items: int,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """The three graphs of :class:`Consensus`, as normalised sparse torch matrices.

    Everything comes from the member lists and the group-item **training** pairs (never from
    validation or test cases). With :math:`\\mathbf{H}_U` (G, U) the 0/1 membership matrix and
    :math:`\\mathbf{H}_I` (G, I) the 0/1 matrix of the groups' training items (repeated pairs
    count once):

    * ``members`` = :math:`\\mathbf{D}_U^{-1} \\mathbf{H}_U` and ``items`` =
      :math:`\\mathbf{D}_I^{-1} \\mathbf{H}_I`: a hyperedge (group) takes the mean of its member
      nodes and the mean of its item nodes (a group without training items gets 0);
    * ``nodes`` = :math:`\\mathbf{D}_V^{-1} [\\mathbf{H}_U\\; \\mathbf{H}_I]^\\top`, (U + I, G):
      a node (user, then item) takes the mean of the hyperedges it lies on (0 on none);
    * ``bipartite``: the group-item graph :math:`\\mathbf{A} = [[0, \\mathbf{H}_I],
      [\\mathbf{H}_I^\\top, 0]]` normalised as in LightGCN,
      :math:`\\mathbf{D}^{-1/2}\\mathbf{A}\\mathbf{D}^{-1/2}` (groups first, then items);
    * ``overlap``: groups g, h are joined with the Jaccard overlap of their node sets
      :math:`\\mathcal{N}_g` (members and items),
      :math:`w_{gh} = |\\mathcal{N}_g \\cap \\mathcal{N}_h| / |\\mathcal{N}_g \\cup \\mathcal{N}_h|`,
      plus a self-loop of weight 1, and each row is divided by its sum. Only overlapping pairs
      are stored: :math:`\\mathbf{H}\\mathbf{H}^\\top` gives the intersections as a sparse
      matrix.

    Parameters
    ----------
    group_members : sequence of int arrays
        ``group_members[g]`` holds the user ids of group g (at least one each).
    group_train : Interactions
        Group-item training pairs.
    n_users, n_items : int
        Sizes of the id spaces.
    device : torch device, optional
        Where the matrices go (the CPU by default).

    Returns
    -------
    dict of str to Tensor
        Float32 sparse CSR tensors named as in :data:`GRAPHS`, and their transposes under the
        same name with ``_T`` appended (for the backward of :func:`propagate`).
    """
    n_users, n_items = check_size("n_users", n_users), check_size("n_items", n_items)
    G = check_size("group_members (its length)", len(group_members))
    sizes = np.array([len(m) for m in group_members])
    if sizes.min() < 1:
        raise ValueError(f"group_members[{int(np.argmin(sizes))}] is empty: a group needs members")
    users = np.concatenate([np.asarray(m, dtype=np.int64) for m in group_members])
    if users.min() < 0 or users.max() >= n_users:
        raise ValueError(f"group_members must hold user ids in 0..{n_users - 1}")
    g_of = np.repeat(np.arange(G), sizes)
    entity, item = np.asarray(group_train.entity), np.asarray(group_train.item)
    if len(entity) and (entity.min() < 0 or entity.max() >= G):
        raise ValueError(f"group_train.entity must hold group ids in 0..{G - 1}")
    if len(item) and (item.min() < 0 or item.max() >= n_items):
        raise ValueError(f"group_train.item must hold item ids in 0..{n_items - 1}")
    H_U = _incidence(g_of, users, (G, n_users))  # (G, U)
    H_I = _incidence(entity, item, (G, n_items))  # (G, I)
    H = sp.hstack([H_U, H_I]).tocsr()  # (G, U + I)

    A = sp.bmat([[None, H_I], [H_I.T, None]], format="csr", dtype=np.float64)  # (G+I, G+I)
    deg = np.asarray(A.sum(axis=1)).ravel()
    d_inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1.0)), 0.0)
    A_hat = sp.diags(d_inv_sqrt) @ A @ sp.diags(d_inv_sqrt)

    inter = sp.coo_matrix(H @ H.T)  # (G, G) |N_g ∩ N_h| where they overlap
    n_nodes = np.asarray(H.sum(axis=1)).ravel()  # (G,) |N_g|
    off = inter.row != inter.col
    r, c, both = inter.row[off], inter.col[off], inter.data[off]
    jaccard = both / (n_nodes[r] + n_nodes[c] - both)
    W = sp.csr_matrix((jaccard, (r, c)), shape=(G, G)) + sp.identity(G, format="csr")
    W_hat = sp.diags(1.0 / np.asarray(W.sum(axis=1)).ravel()) @ W

    mats = {
        "members": _row_mean(H_U),
        "items": _row_mean(H_I),
        "nodes": _row_mean(H.T.tocsr()),
        "bipartite": A_hat,
        "overlap": W_hat,
    }
    out = {name: _to_torch(m, device) for name, m in mats.items()}
    out.update({f"{name}_T": _to_torch(m.T, device) for name, m in mats.items()})
    return out


# ---------------------------------------------------------------------------------- the model


class Consensus(nn.Module):
    """Group consensus from three views, fused by gates (after Wu et al., 2023).

    Every user u, item j and group g has an embedding :math:`\\mathbf{p}_u`,
    :math:`\\mathbf{q}_j`, :math:`\\mathbf{e}_g` (rows of ``P``, ``Q``, ``E``, each (n, d)). The
    matrices are those of :func:`consensus_graphs`; L is the number of layers.

    **Group level** (groups that share members or items): with the row-normalised overlap graph
    :math:`\\hat{\\mathbf{W}}` (G, G),

    .. math:: \\mathbf{E}_G = \\sum_{l=0}^{L} \\hat{\\mathbf{W}}^{l}\\, \\mathbf{E}.

    **Item level** (what the group chose): LightGCN on the group-item graph
    :math:`\\hat{\\mathbf{A}}` (G + I, G + I), keeping the group rows,

    .. math:: \\mathbf{E}_I = \\Big[\\tfrac{1}{L+1} \\sum_{l=0}^{L} \\hat{\\mathbf{A}}^{l}
       \\begin{bmatrix}\\mathbf{E}\\\\ \\mathbf{Q}\\end{bmatrix}\\Big]_{1..G}.

    **Member level** (hypergraph: each group is a hyperedge over its members and its items).
    Starting from :math:`\\mathbf{X}_U^{(0)} = \\mathbf{P}`, :math:`\\mathbf{X}_I^{(0)} =
    \\mathbf{Q}`, layer l = 1..L computes a message per hyperedge from the means of its member
    and item nodes, and gives each node the mean of its hyperedges' messages:

    .. math:: \\mathbf{M}^{(l)} = \\big[\\bar{\\mathbf{H}}_U \\mathbf{X}_U^{(l-1)};\\;
       \\bar{\\mathbf{H}}_I \\mathbf{X}_I^{(l-1)};\\; (\\bar{\\mathbf{H}}_I
       \\mathbf{X}_I^{(l-1)}) \\odot \\mathbf{E}_G\\big]\\, \\mathbf{W}^{(l)\\top} +
       \\mathbf{b}^{(l)}, \\qquad
       \\begin{bmatrix}\\mathbf{X}_U^{(l)}\\\\ \\mathbf{X}_I^{(l)}\\end{bmatrix} =
       \\bar{\\mathbf{H}}_V \\mathbf{M}^{(l)},

    then :math:`\\mathbf{E}_M = \\mathbf{E} + \\sum_{l=1}^{L} \\mathbf{M}^{(l)}` and the items
    groups are scored against are :math:`\\tilde{\\mathbf{Q}} = \\sum_{l=0}^{L}
    \\mathbf{X}_I^{(l)}`. (:math:`\\bar{\\mathbf{H}}_U`, :math:`\\bar{\\mathbf{H}}_I`,
    :math:`\\bar{\\mathbf{H}}_V` are ``members``, ``items`` and ``nodes``.)

    **Fusion** by one scalar gate per view and group:

    .. math:: \\tilde{\\mathbf{e}}_g = \\sum_{v \\in \\{M, I, G\\}} \\sigma(\\mathbf{w}_v^\\top
       \\mathbf{e}_{v,g} + b_v)\\, \\mathbf{e}_{v,g},

    where :math:`\\mathbf{e}_{v,g}` is row g of :math:`\\mathbf{E}_v`.

    **Scores**: :math:`\\hat y_{gj} = f(\\tilde{\\mathbf{e}}_g, \\tilde{\\mathbf{q}}_j)` for
    groups and :math:`\\hat y_{uj} = f(\\mathbf{p}_u, \\mathbf{q}_j)` for users, with
    :math:`f(\\mathbf{x}, \\mathbf{q}) = \\mathbf{x}^\\top \\mathbf{q}` (``predictor="dot"``) or
    :math:`\\mathbf{w}_2^\\top \\operatorname{ReLU}(\\mathbf{W}_1 (\\mathbf{x} \\odot
    \\mathbf{q}) + \\mathbf{b}_1) + b_2` (``"mlp"``), shared by users and groups. Scores are
    logits (no sigmoid): BPR needs only differences.

    Simplifications against ConsRec, which keep its idea: the layer-0 hyperedge representation
    is the group's own :math:`\\mathbf{e}_g` rather than the group-level output; the overlap
    graph is stored sparse (only overlapping pairs), not as a dense G x G matrix; ConsRec's
    sigmoid on the score is left out. Every view is a full-graph propagation (sparse matrix
    products), recomputed at each training step; nothing loops over groups or members.

    Parameters
    ----------
    n_users, n_items, n_groups : int
        Sizes of the id spaces.
    graphs : dict of str to Tensor
        The matrices of :func:`consensus_graphs` for these sizes. They are buffers that are not
        saved in the state dict (they are rebuilt from data) but move with ``.to(device)``.
    d : int
        Width of every embedding.
    layers : int
        L, the propagation depth of all three views (0 keeps the embeddings as they are).
    predictor : {"dot", "mlp"}
        The score function f.
    hidden : int
        Width of the hidden layer of the ``"mlp"`` predictor.
    init_std : float
        Standard deviation of the normal initialisation of P, Q and E.

    Attributes
    ----------
    P, Q, E : nn.Embedding
        User (U, d), item (I, d) and group (G, d) embeddings.
    W_hyper : nn.ModuleList
        L linear maps (3d -> d), :math:`\\mathbf{W}^{(l)}` and :math:`\\mathbf{b}^{(l)}`.
    gate_member, gate_item, gate_group : nn.Linear
        The gates (d -> 1).
    W_1, w_2 : nn.Linear
        The ``"mlp"`` predictor (absent with ``"dot"``).
    config : dict
        The constructor arguments except the graphs.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_groups: int,
        graphs: dict[str, Tensor],
        d: int = 32,
        layers: int = 2,
        predictor: str = "dot",
        hidden: int = 8,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
        self.config = {
            "n_users": check_size("n_users", n_users),
            "n_items": check_size("n_items", n_items),
            "n_groups": check_size("n_groups", n_groups),
            "d": check_size("d", d),
            "layers": check_size("layers", layers, minimum=0),
            "predictor": predictor,
            "hidden": check_size("hidden", hidden),
            "init_std": float(init_std),
        }
        n_u, n_i, n_g = n_users, n_items, n_groups
        shapes = {
            "members": (n_g, n_u),
            "items": (n_g, n_i),
            "nodes": (n_u + n_i, n_g),
            "bipartite": (n_g + n_i, n_g + n_i),
            "overlap": (n_g, n_g),
        }
        shapes.update({f"{k}_T": v[::-1] for k, v in shapes.items()})
        if not isinstance(graphs, dict) or set(graphs) != set(shapes):
            raise ValueError(f"graphs must be the dict of consensus_graphs, keys {sorted(shapes)}")
        for name, shape in shapes.items():
            m = graphs[name]
            if not isinstance(m, Tensor) or m.layout != torch.sparse_csr or tuple(m.shape) != shape:
                raise ValueError(
                    f"graphs[{name!r}] must be a sparse CSR tensor of shape {shape}; got "
                    f"{(m.layout, tuple(m.shape)) if isinstance(m, Tensor) else type(m).__name__}"
                )
            # Not in the state dict (rebuilt from data), but moved and cast with the module.
            self.register_buffer(f"graph_{name}", m, persistent=False)
        self.P = nn.Embedding(n_u, d)
        self.Q = nn.Embedding(n_i, d)
        self.E = nn.Embedding(n_g, d)
        for emb in (self.P, self.Q, self.E):
            nn.init.normal_(emb.weight, std=init_std)
        self.W_hyper = nn.ModuleList(nn.Linear(3 * d, d) for _ in range(layers))
        self.gate_member = nn.Linear(d, 1)
        self.gate_item = nn.Linear(d, 1)
        self.gate_group = nn.Linear(d, 1)
        if predictor == "mlp":
            self.W_1 = nn.Linear(d, hidden)
            self.w_2 = nn.Linear(hidden, 1)

    # -- the three views -------------------------------------------------------------------
    def _propagate(self, name: str, x: Tensor) -> Tensor:
        """The graph ``name`` times ``x``: :func:`propagate` with the stored transpose."""
        return propagate(getattr(self, f"graph_{name}"), getattr(self, f"graph_{name}_T"), x)

    def group_view(self) -> Tensor:
        """:math:`\\mathbf{E}_G` (G, d): the group embeddings spread over the overlap graph."""
        x = self.E.weight  # (G, d)
        E_G = x
        for _ in range(self.config["layers"]):
            x = self._propagate("overlap", x)  # (G, d)  W_hat^l E
            E_G = E_G + x
        return E_G

    def item_view(self) -> Tensor:
        """:math:`\\mathbf{E}_I` (G, d): LightGCN over the group-item graph, group rows."""
        L = self.config["layers"]
        x = torch.cat([self.E.weight, self.Q.weight])  # (G + I, d)
        total = x
        for _ in range(L):
            x = self._propagate("bipartite", x)  # (G + I, d)  A_hat^l [E; Q]
            total = total + x
        return total[: self.config["n_groups"]] / (L + 1)

    def member_view(self, E_G: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`\\mathbf{E}_M` (G, d) and the propagated items :math:`\\tilde{\\mathbf{Q}}` (I, d).

        ``E_G`` (G, d) is :math:`\\mathbf{E}_G`, which gates the item messages.
        """
        U = self.config["n_users"]
        x_u, x_i = self.P.weight, self.Q.weight  # (U, d), (I, d)
        E_M = self.E.weight  # (G, d)
        items = x_i
        for W in self.W_hyper:
            m_u = self._propagate("members", x_u)  # (G, d) mean of members
            m_i = self._propagate("items", x_i)  # (G, d) mean of the group's items
            m = W(torch.cat([m_u, m_i, m_i * E_G], dim=1))  # (G, d) hyperedge messages
            x = self._propagate("nodes", m)  # (U + I, d) mean of a node's hyperedges
            x_u, x_i = x[:U], x[U:]
            E_M = E_M + m
            items = items + x_i
        return E_M, items

    def views(self) -> dict[str, Tensor]:
        """All representations: ``member``, ``item``, ``group`` (G, d) each, their gates
        ``gates`` (G, 3) in that order, the ``fused`` groups (G, d), whose row g is
        :math:`\\tilde{\\mathbf{e}}_g`, and the scored ``items`` (I, d)."""
        E_G = self.group_view()
        E_I = self.item_view()
        E_M, items = self.member_view(E_G)
        gates = torch.sigmoid(
            torch.cat([self.gate_member(E_M), self.gate_item(E_I), self.gate_group(E_G)], dim=1)
        )  # (G, 3)
        E_fused = gates[:, :1] * E_M + gates[:, 1:2] * E_I + gates[:, 2:] * E_G  # (G, d)
        return {
            "member": E_M,
            "item": E_I,
            "group": E_G,
            "gates": gates,
            "fused": E_fused,
            "items": items,
        }

    def predict(self, x: Tensor, q: Tensor) -> Tensor:
        """The score f(x, q) for broadcastable (..., d) shapes; returns (...)."""
        if self.config["predictor"] == "dot":
            return (x * q).sum(-1)
        return self.w_2(torch.relu(self.W_1(x * q)))[..., 0]

    @staticmethod
    def _shapes(entities: Tensor, items: Tensor, what: str) -> bool:
        if entities.ndim != 1 or items.ndim not in (1, 2) or items.shape[0] != entities.shape[0]:
            raise ValueError(
                f"{what} must have shape (B,) and items (B,) or (B, c); got "
                f"{tuple(entities.shape)} and {tuple(items.shape)}"
            )
        return items.ndim == 1

    def score_from(self, views: dict[str, Tensor], groups: Tensor, items: Tensor) -> Tensor:
        """Group scores from precomputed :meth:`views`: groups (B,), items (B, c) -> (B, c)."""
        return self.predict(views["fused"][groups][:, None, :], views["items"][items])

    # -- scores ----------------------------------------------------------------------------
    def forward(self, groups: Tensor, items: Tensor) -> Tensor:
        """Group scores :math:`\\hat y_{gj}`: groups (B,) with items (B,) or (B, c).

        Propagates over the whole graphs, then scores; returns the shape of ``items``.
        """
        check_id_tensor("groups", groups, self.config["n_groups"])
        check_id_tensor("items", items, self.config["n_items"])
        single = self._shapes(groups, items, "groups")
        y = self.score_from(self.views(), groups, items[:, None] if single else items)
        return y[:, 0] if single else y

    def score_users(self, users: Tensor, items: Tensor) -> Tensor:
        """User scores :math:`f(\\mathbf{p}_u, \\mathbf{q}_j)`: users (B,) with items (B,) or
        (B, c); returns the shape of ``items``. No propagation: the user task trains the
        embeddings the member and item views start from."""
        check_id_tensor("users", users, self.config["n_users"])
        check_id_tensor("items", items, self.config["n_items"])
        single = self._shapes(users, items, "users")
        p = self.P(users)  # (B, d)
        return self.predict(p if single else p[:, None, :], self.Q(items))


class ConsensusRecommender(BaseRecommender):
    """:class:`Consensus` trained with BPR on group and user data, behind the common interface.

    ``fit`` builds the graphs from the training pairs (:func:`consensus_graphs`), trains one
    :class:`Consensus` on every group and user training pair (:class:`JointBatches`,
    :func:`agree_step_loss`) with :func:`grouprec.training.fit`, and stops early on NDCG@10 over
    the validation cases of the fitted task when the dataset has a validation split (it never
    reads the test split). ``score`` then scores groups (task ``"group"``) or users (``"user"``).

    Parameters
    ----------
    d : int
        Embedding width.
    layers : int
        Propagation depth of the three views.
    predictor : {"dot", "mlp"}
        The score function (see :class:`Consensus`).
    hidden : int
        Hidden width of the ``"mlp"`` predictor.
    epochs : int
        Largest number of epochs.
    lr : float
        Adam's learning rate.
    n_neg : int
        Negatives sampled per positive pair and epoch.
    user_weight : float
        Weight of the user loss against the group loss (see :func:`agree_step_loss`).
    batch_size : int
        Positive pairs per batch; every batch with groups propagates over the whole graphs.
    weight_decay : float
        L2 penalty on all parameters.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    init_std : float
        Initialisation scale of the embeddings.
    seed : int
        Seeds the initialisation, the batch order and the negatives. ``fit`` gives the
        caller's global generators back their state (:func:`~grouprec.training.keeps_global_rng`).
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` as
        :func:`grouprec.training.select_device` reads them. The graphs live there too.
    progress : bool
        Show a progress bar while training.

    Attributes
    ----------
    model_ : Consensus
        The trained module (best validation epoch), with its graphs.
    history_ : History
        Loss and validation curves.
    task_ : str
        The task fitted.
    """

    name = "Consensus"

    def __init__(
        self,
        d: int = 32,
        layers: int = 2,
        predictor: str = "dot",
        hidden: int = 8,
        epochs: int = 30,
        lr: float = 0.005,
        n_neg: int = 4,
        user_weight: float = 1.0,
        batch_size: int = 4096,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        init_std: float = 0.1,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        self.d = check_size("d", d)
        self.layers = check_size("layers", layers, minimum=0)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
        self.predictor = predictor
        self.hidden = check_size("hidden", hidden)
        if not float(user_weight) >= 0.0:
            raise ValueError(f"user_weight must be a non-negative number, got {user_weight!r}")
        self.user_weight = float(user_weight)
        self._set_training_params(locals())

    def build(self, dataset: GroupDataset, device: torch.device | str | None = None) -> Consensus:
        """A fresh, untrained :class:`Consensus` with the graphs of the dataset's training data."""
        graphs = consensus_graphs(
            dataset.group_members, dataset.group_train, dataset.n_users, dataset.n_items, device
        )
        return Consensus(
            dataset.n_users,
            dataset.n_items,
            dataset.n_groups,
            graphs,
            d=self.d,
            layers=self.layers,
            predictor=self.predictor,
            hidden=self.hidden,
            init_std=self.init_std,
        )

    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str = "group") -> ConsensusRecommender:
        """Train on all group and user training pairs; validate on ``task``'s validation cases."""
        batches, val = start_joint_fit(self, dataset, task)
        val_fn = None
        if val is not None:
            val_fn = ranking_val_fn(
                val,
                score=joint_scorer(task),
                batch_size=max(1, SCORE_CELLS // (self.d * (1 + val.negatives.shape[1]))),
            )
        self.history_: History = train_joint(self, batches, val_fn)
        return self

    def as_task(self, task: str) -> ConsensusRecommender:
        """The same fitted model, scoring the entities of ``task`` (no training).

        Users and groups are learned together, so one fit serves both tasks; the returned
        object shares the network, only what ``score`` scores changes.
        """
        return joint_as_task(self, task)

    def views(self) -> dict[str, np.ndarray]:
        """The trained representations of :meth:`Consensus.views`, as float32 arrays."""
        self._check_is_fitted()
        self.model_.eval()
        with torch.no_grad():
            return {k: v.float().cpu().numpy() for k, v in self.model_.views().items()}

    def score(self, entities: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores (n, c) of candidate items (n, c) for ``entities`` (n,), groups or users."""
        entities, items = self._check_ids(entities, items)
        model = self.model_
        device = next(model.parameters()).device
        n, c = items.shape
        out = np.empty((n, c), dtype=np.float32)
        step = max(1, SCORE_CELLS // max(1, c * self.d))
        model.eval()
        with torch.no_grad():
            views = model.views() if self.task_ == "group" else None  # one propagation
            for start in range(0, n, step):
                e = torch.as_tensor(entities[start : start + step], device=device)
                it = torch.as_tensor(
                    np.ascontiguousarray(items[start : start + step]), device=device
                )
                y = model.score_users(e, it) if views is None else model.score_from(views, e, it)
                out[start : start + step] = y.float().cpu().numpy()
        return out
