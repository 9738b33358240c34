"""CFGAN (Chae et al., CIKM 2018): a vector-wise conditional GAN over all items.

Its pieces (the conditions, :func:`conditions`; the partial and zero-reconstruction masks,
:func:`sample_masks`; the penalty, :func:`zero_reconstruction`; the two networks) and the
recommender, :class:`CFGANRecommender`. See :mod:`grouprec.gan_recommender` for the idea.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from grouprec import gan
from grouprec.baselines import history
from grouprec.checks import check_choice, check_number, check_size, check_widths
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset
from grouprec.gan_recommender.common import (
    _adam,
    _draw_device,
    _GenerativeRecommender,
    _randperm,
    _weighted_means,
)
from grouprec.training import keeps_global_rng, seed_everything

#: What :class:`CFGANRecommender` trains its generator with: the adversarial game, or (as a
#: control) a plain squared reconstruction error on the very entries the discriminator sees.
OBJECTIVES = ("gan", "reconstruction")

#: Which training rows :class:`CFGANRecommender` learns from.
TRAIN_ROWS = ("task", "all")


# --------------------------------------------------------------------------------------------
# CFGAN: conditions, masks, penalty, networks
# --------------------------------------------------------------------------------------------


def conditions(dataset: GroupDataset, task: str, alpha: float = 1.0) -> sp.csr_matrix:
    """CFGAN's condition of every entity of ``task``, (n_entities, n_items), float32.

    A user's condition is its binary training row :math:`\\mathbf{x}_u`. A group's is
    :math:`\\mathbf{c}_g = \\alpha\\,\\mathbf{x}_g + (1 - \\alpha)\\,\\frac{1}{|g|}\\sum_{u \\in g}
    \\mathbf{x}_u`, the history of :func:`grouprec.baselines.history`: ``alpha = 1`` uses the
    group's own row only, ``alpha = 0`` its members' only.
    """
    return sp.csr_matrix(history(dataset, task, alpha), dtype=np.float32)


def sample_masks(
    x: Tensor, s_pm: float, s_zr: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """CFGAN's two masks for a batch of binary rows ``x`` (B, I).

    * the partial mask :math:`\\mathbf{m} = \\mathbf{e} + \\mathbf{k}`: every item of the row
      (:math:`\\mathbf{e} = \\mathbf{x}`) plus the negatives :math:`\\mathbf{k}`, each non-item
      drawn with probability ``s_pm``; the discriminator sees a generated vector only there;
    * the zero-reconstruction mask :math:`\\mathbf{m}^{ZR}`: non-items drawn, independently, with
      probability ``s_zr``; the generator is penalised for scoring them above 0.

    Chae et al. draw a fixed *fraction* of the non-items per row; independent draws with that
    probability give the same fraction on average, in one vectorised call. The draws come from
    ``generator`` on its own device (without one, from the default generator of ``x``'s device)
    and the masks are on ``x``'s device.

    Returns
    -------
    m_pm, m_zr : Tensor
        Float 0/1 masks of the shape and dtype of ``x``.
    """
    s_pm = check_number("s_pm", s_pm, 0.0, 1.0)
    s_zr = check_number("s_zr", s_zr, 0.0, 1.0)
    e = x > 0  # (B, I) the row's items
    where = _draw_device(generator, x.device)  # drawn there, then moved to x's device
    k = torch.rand(x.shape, generator=generator, device=where) < s_pm  # (B, I)
    n_zr = torch.rand(x.shape, generator=generator, device=where) < s_zr  # (B, I)
    k, n_zr = ~e & k.to(x.device), ~e & n_zr.to(x.device)
    return (e | k).to(x.dtype), n_zr.to(x.dtype)


def zero_reconstruction(y_hat: Tensor, m_zr: Tensor, alpha_zr: float) -> Tensor:
    """CFGAN's zero-reconstruction penalty, averaged over the batch.

    .. math:: \\Omega = \\frac{\\alpha_{ZR}}{B} \\sum_{u} \\sum_{j} m^{ZR}_{uj}\\, \\hat y_{uj}^2

    Parameters
    ----------
    y_hat : Tensor
        Generated vectors (B, I).
    m_zr : Tensor
        Zero-reconstruction mask (B, I), 1 on the sampled non-items.
    alpha_zr : float
        The penalty's weight.

    Returns
    -------
    Tensor
        A scalar.
    """
    if y_hat.shape != m_zr.shape or y_hat.ndim != 2:
        raise ValueError(
            f"y_hat and m_zr must both have shape (B, I); got {tuple(y_hat.shape)} "
            f"and {tuple(m_zr.shape)}"
        )
    return alpha_zr * (m_zr * y_hat.square()).sum(dim=1).mean()


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU()]
        width = out
    return nn.Sequential(*layers, nn.Linear(width, n_out))


class CFGANGenerator(nn.Module):
    """CFGAN's generator: :math:`\\hat{\\mathbf{y}} = \\sigma(\\mathrm{MLP}([\\mathbf{c};
    \\mathbf{z}]))`, one value in (0, 1) per item.

    Parameters
    ----------
    n_items : int
        Length of the condition and of the generated vector.
    hidden : sequence of int
        Widths of the hidden ReLU layers.
    z_dim : int
        Length of the noise :math:`\\mathbf{z}`; 0 for a generator driven by the condition alone
        (the setting of CFGAN's published code).
    prior : Tensor, optional
        Item probabilities (I,) in (0, 1). The output layer's bias starts at their logits, so an
        untrained generator returns the prior instead of 0.5 for every item.

    Attributes
    ----------
    net : nn.Sequential
        The MLP; its output is the logit of :math:`\\hat{\\mathbf{y}}`.
    config : dict
        The constructor arguments, for checkpoints (without ``prior``).
    """

    def __init__(
        self,
        n_items: int,
        hidden: Sequence[int] = (64,),
        z_dim: int = 0,
        prior: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = {
            "n_items": check_size("n_items", n_items),
            "hidden": list(check_widths("hidden", hidden)),
            "z_dim": check_size("z_dim", z_dim, minimum=0),
        }
        self.n_items, self.z_dim = self.config["n_items"], self.config["z_dim"]
        self.net = _mlp(self.n_items + self.z_dim, self.config["hidden"], self.n_items)
        if prior is not None:
            prior = torch.as_tensor(prior, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)
            if prior.shape != (self.n_items,):
                raise ValueError(
                    f"prior must have shape ({self.n_items},), got {tuple(prior.shape)}"
                )
            with torch.no_grad():
                self.net[-1].bias.copy_(torch.logit(prior))

    def forward(self, c: Tensor, z: Tensor | None = None) -> Tensor:
        """Generated vectors (B, I) from conditions ``c`` (B, I) and noise ``z`` (B, z_dim).

        Without ``z`` a generator with noise uses its mean, :math:`\\mathbf{z} = \\mathbf{0}`.
        """
        if c.ndim != 2 or c.shape[1] != self.n_items:
            raise ValueError(f"c must have shape (B, {self.n_items}), got {tuple(c.shape)}")
        if self.z_dim:
            if z is None:
                z = c.new_zeros(c.shape[0], self.z_dim)  # the noise's mean
            if z.shape != (c.shape[0], self.z_dim):
                raise ValueError(
                    f"z must have shape ({c.shape[0]}, {self.z_dim}), got {tuple(z.shape)}"
                )
            c = torch.cat([c, z], dim=1)  # (B, I + z_dim)
        elif z is not None:
            raise ValueError("this generator has z_dim=0 and takes no noise, but z was given")
        return torch.sigmoid(self.net(c))  # (B, I)


class CFGANDiscriminator(nn.Module):
    """CFGAN's discriminator: the logit :math:`s = \\mathrm{MLP}([\\mathbf{x} \\odot \\mathbf{m};
    \\mathbf{c}])` that a vector :math:`\\mathbf{x}` is real, given the condition.

    Applying the partial mask :math:`\\mathbf{m}` here, to real and generated vectors alike, is
    the same as masking the generated vector before it reaches the discriminator: a real binary
    row is 0 outside :math:`\\mathbf{e} \\subseteq \\mathbf{m}`, so masking leaves it as it is. It
    keeps the *unmasked* generated vector available to the zero-reconstruction penalty.

    Parameters
    ----------
    n_items : int
        Length of the judged vector and of the condition.
    hidden : sequence of int
        Widths of the hidden ReLU layers.
    """

    def __init__(self, n_items: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        self.config = {
            "n_items": check_size("n_items", n_items),
            "hidden": list(check_widths("hidden", hidden)),
        }
        self.n_items = self.config["n_items"]
        self.net = _mlp(2 * self.n_items, self.config["hidden"], 1)

    def forward(self, x: Tensor, c: Tensor, m: Tensor | None = None) -> Tensor:
        """Logits (B,) for vectors ``x`` (B, I), conditions ``c`` (B, I) and masks ``m`` (B, I)."""
        if x.ndim != 2 or x.shape[1] != self.n_items or c.shape != x.shape:
            raise ValueError(
                f"x and c must both have shape (B, {self.n_items}); got {tuple(x.shape)} "
                f"and {tuple(c.shape)}"
            )
        if m is not None:
            if m.shape != x.shape:
                raise ValueError(
                    f"m must have the shape of x, {tuple(x.shape)}; got {tuple(m.shape)}"
                )
            x = x * m  # only the masked entries reach the network
        return self.net(torch.cat([x, c], dim=1))[:, 0]  # (B,)


# --------------------------------------------------------------------------------------------
# CFGAN
# --------------------------------------------------------------------------------------------


class CFGANRecommender(_GenerativeRecommender):
    """CFGAN (Chae et al., CIKM 2018) for users or groups, behind the common interface.

    Training rows are binary interaction vectors :math:`\\mathbf{x}_u` (the real examples) with
    their conditions :math:`\\mathbf{c}_u` (:func:`conditions`). Each step draws the masks of
    :func:`sample_masks` and noise :math:`\\mathbf{z} \\sim \\mathcal{N}(\\mathbf{0}, \\mathbf{I})`
    and calls :func:`grouprec.gan.train_step` with ``GanInputs(generator=(c, z),
    condition=(c, m_pm))`` and the :func:`zero_reconstruction` penalty: one discriminator step on
    detached fakes, then one generator step. Every epoch ends with the validation NDCG@10 of the
    generator's scores; the best epoch's weights are kept.

    Parameters
    ----------
    hidden : sequence of int
        Hidden widths of the generator's MLP.
    hidden_D : sequence of int, optional
        Hidden widths of the discriminator's MLP; by default those of the generator.
    z_dim : int
        Noise length; 0 (no noise) is the setting of the published CFGAN code.
    s_pm : float
        Probability that a non-item joins the partial mask (the paper's :math:`S_{PM}`).
    s_zr : float
        Probability that a non-item joins the zero-reconstruction set (:math:`S_{ZR}`).
    alpha_zr : float
        Weight of the zero-reconstruction penalty (:math:`\\alpha`).
    alpha : float
        For groups, the weight of the group's own row in its condition (see :func:`conditions`);
        must be 1 for the user task.
    train_rows : {"task", "all"}
        Learn from the rows of the task's entities only, or from every user's and every group's
        training row (as the item-item baselines do); a row of the other kind is conditioned on
        itself.
    objective : {"gan", "reconstruction"}
        ``"reconstruction"`` replaces the discriminator by a squared error on the masked entries,
        :math:`\\sum_j m_{uj} (\\hat y_{uj} - x_{uj})^2`, plus the same penalty: the autoencoder
        that CFGAN's generator can turn into.
    kind : str
        The generator's loss, one of :data:`grouprec.gan.GENERATOR_LOSSES` (Chae et al. write the
        minimax loss).
    epochs : int
        Largest number of epochs.
    lr : float
        Adam's learning rate, for both players.
    batch_size : int
        Rows per step.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    filter_consumed : bool
        Score training items ``-inf`` (see :meth:`filtered`).
    seed : int
        Seeds the initial weights, the batch order, the masks and the noise. ``fit`` gives the
        caller's global generators back their state (:func:`~grouprec.training.keeps_global_rng`).
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. The seeded generator of
        the batch order, masks and noise lives there too, and a GPU's random numbers differ from
        the CPU's: the same seed gives another run on another kind of device.
    progress : bool
        Show a progress bar over epochs.
    callback : callable, optional
        ``callback(model, epoch) -> dict`` called after each epoch's validation, with the
        generator in evaluation mode and gradients off; its numbers join the epoch's record in
        ``history_`` (to watch a quantity of your own while the model trains).

    Attributes
    ----------
    G_, D_ : CFGANGenerator, CFGANDiscriminator
        The trained players (best validation epoch).
    history_ : GanHistory
        Losses, discriminator outputs and validation metrics per epoch.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64,),
        hidden_D: Sequence[int] | None = None,
        z_dim: int = 0,
        s_pm: float = 0.1,
        s_zr: float = 0.1,
        alpha_zr: float = 0.1,
        alpha: float = 1.0,
        train_rows: str = "task",
        objective: str = "gan",
        kind: str = "non-saturating",
        epochs: int = 30,
        lr: float = 3e-3,
        batch_size: int = 128,
        patience: int | None = 5,
        filter_consumed: bool = True,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
        callback: Callable[[CFGANRecommender, int], dict[str, float]] | None = None,
    ) -> None:
        self.hidden = check_widths("hidden", hidden)
        self.hidden_D = None if hidden_D is None else check_widths("hidden_D", hidden_D)
        self.z_dim = check_size("z_dim", z_dim, minimum=0)
        self.s_pm = check_number("s_pm", s_pm, 0.0, 1.0)
        self.s_zr = check_number("s_zr", s_zr, 0.0, 1.0)
        self.alpha_zr = check_number("alpha_zr", alpha_zr, 0.0, math.inf)
        self.alpha = check_number("alpha", alpha, 0.0, 1.0)
        self.train_rows = check_choice("train_rows", train_rows, TRAIN_ROWS)
        self.objective = check_choice("objective", objective, OBJECTIVES)
        self.kind = check_choice("kind", kind, gan.GENERATOR_LOSSES)
        self.epochs = check_size("epochs", epochs)
        self.lr = check_number("lr", lr, 0.0, math.inf, open_low=True)
        self.batch_size = check_size("batch_size", batch_size)
        self.patience = None if patience is None else check_size("patience", patience)
        self.filter_consumed = bool(filter_consumed)
        self.seed = check_size("seed", seed, minimum=0)
        self.device = device
        self.progress = progress
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    @property
    def name(self) -> str:
        """Label in results tables."""
        return "CFGAN" if self.objective == "gan" else "CFGAN-G, reconstruction"

    # -- data ------------------------------------------------------------------------------------
    def _training_rows(self, dataset: GroupDataset, task: str) -> tuple[sp.csr_matrix, ...]:
        """Real rows X (N, I) and their conditions C (N, I) for training, non-empty rows only."""
        other = "group" if task == "user" else "user"
        X = [dataset.train_matrix(task)]
        C = [self.conditions_]
        if self.train_rows == "all":
            X.append(dataset.train_matrix(other))
            C.append(conditions(dataset, other))  # a row of the other kind: its own history
        X = sp.csr_matrix(sp.vstack(X), dtype=np.float32)
        C = sp.csr_matrix(sp.vstack(C), dtype=np.float32)
        keep = np.flatnonzero(X.getnnz(axis=1) > 0)
        if len(keep) == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training rows for task {task!r}")
        return X[keep], C[keep]

    def _dense(self, M: sp.csr_matrix) -> Tensor:
        return torch.from_numpy(M.toarray()).to(self.device_)

    # -- training --------------------------------------------------------------------------------
    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str) -> CFGANRecommender:
        """Train on ``dataset``'s training rows for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        if task == "user" and self.alpha != 1.0:
            raise ValueError(
                f"alpha mixes group and member histories, so it applies to the group task only; "
                f"got alpha={self.alpha} with task='user'"
            )
        self.conditions_ = conditions(dataset, task, self.alpha)  # (n_entities, I)
        self.condition_rows_ = self._dense(self.conditions_)  # the same, dense on the device
        X, C = self._training_rows(dataset, task)
        seed_everything(self.seed)  # the initial weights
        prior = torch.from_numpy(np.asarray(X.mean(axis=0)).ravel())  # (I,) item frequency
        self.G_ = CFGANGenerator(self.n_items_, self.hidden, self.z_dim, prior).to(self.device_)
        self.D_ = CFGANDiscriminator(self.n_items_, self.hidden_D or self.hidden).to(self.device_)
        opt_G = _adam(self.G_.parameters(), self.lr)
        opt_D = _adam(self.D_.parameters(), self.lr)
        gen = self._seeded_generator()
        X_t, C_t = self._dense(X), self._dense(C)  # (N, I) each

        self.history_ = self._train_epochs(
            dataset, task, lambda: self._epoch(X_t, C_t, opt_G, opt_D, gen), self.lr
        )
        return self

    def _epoch(
        self,
        X: Tensor,
        C: Tensor,
        opt_G: torch.optim.Optimizer,
        opt_D: torch.optim.Optimizer,
        gen: torch.Generator,
    ) -> dict[str, float]:
        """One pass over the training rows; the batch-size-weighted mean of each statistic."""
        self.G_.train()
        self.D_.train()
        order = _randperm(len(X), gen, X.device)
        steps: list[tuple[dict[str, Tensor], int]] = []
        for start in range(0, len(X), self.batch_size):
            rows = order[start : start + self.batch_size]
            x, c = X[rows], C[rows]  # (B, I) real rows and their conditions
            m_pm, m_zr = sample_masks(x, self.s_pm, self.s_zr, gen)  # (B, I) each
            z = (
                torch.randn(
                    len(rows), self.z_dim, generator=gen, device=_draw_device(gen, x.device)
                ).to(x.device)
                if self.z_dim
                else None
            )  # (B, z_dim)

            def penalty(y_hat: Tensor, inputs: gan.GanInputs, m_zr: Tensor = m_zr) -> Tensor:
                return zero_reconstruction(y_hat, m_zr, self.alpha_zr)

            inputs = gan.GanInputs(generator=(c,) if z is None else (c, z), condition=(c, m_pm))
            if self.objective == "gan":
                out = gan.train_step(
                    self.G_,
                    self.D_,
                    opt_G,
                    opt_D,
                    x,
                    lambda _x, inputs=inputs: inputs,
                    kind=self.kind,
                    penalty=penalty,
                    as_tensors=True,
                )
            else:
                out = self._reconstruction_step(x, inputs, m_pm, penalty, opt_G)
            steps.append((out, len(rows)))
        return _weighted_means(steps, len(X))

    def _reconstruction_step(
        self, x: Tensor, inputs: gan.GanInputs, m_pm: Tensor, penalty, opt_G
    ) -> dict[str, Tensor]:
        """The control: the generator alone, fitted to the masked entries of the real row."""
        y_hat = self.G_(*inputs.generator)  # (B, I)
        extra = penalty(y_hat, inputs)
        loss = (m_pm * (y_hat - x).square()).sum(dim=1).mean() + extra
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        # detach: the reported numbers are records, not part of any graph; scalar tensors on the
        # device, brought to the host once per epoch.
        return {"g_loss": loss.detach(), "g_penalty": extra.detach()}

    # -- scoring ---------------------------------------------------------------------------------
    def _generate(self, entities: Tensor) -> Tensor:
        c = self.condition_rows_[entities.to(self.device_)]  # (n, I)
        return self.G_(c)  # noise at its mean
