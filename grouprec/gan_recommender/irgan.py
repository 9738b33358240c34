"""IRGAN (Wang et al., SIGIR 2017) for item recommendation: a generator that samples item ids,
trained by the policy gradient (:func:`reinforce_loss`, :func:`leave_one_out_baseline`), and the
recommender, :class:`IRGANRecommender`. See :mod:`grouprec.gan_recommender` for the idea.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grouprec import gan
from grouprec.checks import check_choice, check_number, check_size
from grouprec.constants import DEFAULT_SEED
from grouprec.data import GroupDataset
from grouprec.gan_recommender.common import (
    _GenerativeRecommender,
    _multinomial,
    _randperm,
    _weighted_means,
)
from grouprec.preference import MF, BPRRecommender
from grouprec.training import keeps_global_rng, seed_everything

# --------------------------------------------------------------------------------------------
# IRGAN
# --------------------------------------------------------------------------------------------


def leave_one_out_baseline(cost: Tensor) -> Tensor:
    """For each of the :math:`K` draws of a row, the mean cost of the row's *other* draws.

    .. math:: b_k = \\frac{1}{K - 1} \\sum_{m \\ne k} \\ell(i_m)

    :math:`b_k` does not depend on draw :math:`k`, so :func:`reinforce_loss` stays unbiased with
    it. The plain row mean :math:`\\bar\\ell` does depend on it, through its own term
    :math:`\\ell(i_k) / K`: subtracting it scales the expected gradient by :math:`(K - 1) / K`.

    Parameters
    ----------
    cost : Tensor
        Costs of the draws, (B, K) with :math:`K \\ge 2`.

    Returns
    -------
    Tensor
        (B, K), the baseline of each draw.
    """
    if cost.dim() != 2 or cost.shape[1] < 2:
        raise ValueError(
            f"cost must have shape (B, K) with K >= 2 draws per row; got {tuple(cost.shape)}"
        )
    return (cost.sum(dim=1, keepdim=True) - cost) / (cost.shape[1] - 1)


def reinforce_loss(log_p: Tensor, cost: Tensor, baseline: Tensor | float = 0.0) -> Tensor:
    """A surrogate whose gradient is the REINFORCE estimate of :math:`\\nabla_\\theta
    \\mathbb{E}_{i \\sim p_\\theta}[\\ell(i)]`.

    For samples :math:`i_1, \\dots, i_K \\sim p_\\theta` with costs :math:`\\ell(i_k)` (numbers
    that do not depend on :math:`\\theta`) and a baseline :math:`b`,

    .. math:: \\nabla_\\theta \\frac{1}{K}\\sum_k \\big(\\ell(i_k) - b\\big) \\log p_\\theta(i_k)
              = \\frac{1}{K}\\sum_k \\big(\\ell(i_k) - b\\big) \\nabla_\\theta \\log p_\\theta(i_k),

    an unbiased estimate of :math:`\\nabla_\\theta \\mathbb{E}[\\ell]` because
    :math:`\\mathbb{E}[\\nabla_\\theta \\log p_\\theta(i)] = \\nabla_\\theta \\sum_i p_\\theta(i) = 0`,
    which is also why any baseline that does not depend on the sample leaves it unbiased.

    Parameters
    ----------
    log_p : Tensor
        :math:`\\log p_\\theta(i_k)` of the samples, any shape, with a graph to :math:`\\theta`.
    cost : Tensor
        Their costs, the shape of ``log_p``; detached inside.
    baseline : Tensor or float
        Subtracted from the cost; broadcastable to it (e.g. a per-row mean, shape (B, 1)).

    Returns
    -------
    Tensor
        A scalar; its *value* is not the expected cost, only its gradient matters.
    """
    if cost.shape != log_p.shape:
        raise ValueError(
            f"cost must have the shape of log_p, {tuple(log_p.shape)}; got {tuple(cost.shape)}"
        )
    # detach: the cost and the baseline are numbers handed to the generator, not functions of
    # its parameters; a gradient through them would not be the policy gradient.
    advantage = (cost - baseline).detach()
    return (advantage * log_p).mean()


class _Pairs(NamedTuple):
    """IRGAN's training pairs, sorted by entity, on the device."""

    u: Tensor  # (N,) entity of each pair
    i: Tensor  # (N,) its item
    row: Tensor  # (N,) the entity's row among the active entities
    position: Tensor  # (N,) the pair's position among its entity's pairs
    active: Tensor  # (E,) entities with at least one pair
    n_max: int  # most pairs of one entity


def _all_scores(mf: MF, u: Tensor) -> Tensor:
    """Scores (B, I) of every item for entity ids ``u`` (B,): ``P[u] Qᵀ + β``, one product.

    The same numbers as ``mf(u[:, None], all_items[None, :])`` without its (B, I, d) temporary.
    """
    y = mf.P(u) @ mf.Q.weight.T  # (B, I)
    return y if mf.beta is None else y + mf.beta.weight[:, 0]


class _PairDiscriminator(nn.Module):
    """IRGAN's discriminator as :func:`grouprec.gan.discriminator_step` calls it: ``D(i, u)``."""

    def __init__(self, f: MF) -> None:
        super().__init__()
        self.f = f

    def forward(self, i: Tensor, u: Tensor) -> Tensor:
        return self.f(u, i)  # (B,) logits f_φ(u, i)


class _PresampledGenerator(nn.Module):
    """Hands :func:`grouprec.gan.discriminator_step` items already drawn from :math:`p_\\theta`.

    The draws of an epoch are made at once, per entity (one softmax per entity, not per pair);
    this module only looks them up, so the discriminator step sees the generator's samples
    without the generator being run once per training pair.
    """

    def forward(self, j: Tensor) -> Tensor:
        return j


class IRGANRecommender(_GenerativeRecommender):
    """IRGAN (Wang et al., SIGIR 2017) for item recommendation, behind the common interface.

    Generator :math:`p_\\theta(i \\mid u) = \\operatorname{softmax}_i(g_\\theta(u, i) / \\tau)` and
    discriminator :math:`D_\\phi(u, i) = \\sigma(f_\\phi(u, i))`, both matrix factorisation scores
    (:class:`grouprec.preference.MF`). Each epoch:

    1. *discriminator*: every training pair :math:`(u, i)` is a real example and one item
       :math:`j \\sim p_\\theta(\\cdot \\mid u)` a generated one; minimise
       :func:`grouprec.gan.discriminator_loss` over batches (:func:`grouprec.gan.discriminator_step`);
    2. *generator*, ``g_steps`` passes over the entities: draw ``n_samples`` items per entity
       from :math:`p_\\theta`, cost them with the generator's GAN loss under the current
       discriminator (``kind="minimax"``, the paper's: :math:`\\log(1 - D_\\phi(u, j)) =
       -\\operatorname{softplus}(f_\\phi(u, j))`), and step along :func:`reinforce_loss`, with
       :func:`leave_one_out_baseline` when ``baseline`` is set.

    Parameters
    ----------
    d : int
        Embedding width of both players.
    temperature : float
        :math:`\\tau` of the generator's softmax.
    n_samples : int
        Items drawn per entity for each generator step.
    g_steps : int
        Generator passes over the entities per epoch.
    baseline : bool
        Subtract from each draw's cost the mean cost of the entity's other draws
        (:func:`leave_one_out_baseline`; variance reduction without bias). Needs ``n_samples``
        of at least 2.
    kind : str
        The generator's per-sample cost, ``"minimax"`` or ``"non-saturating"``
        (:math:`-\\log D_\\phi(u, j)`).
    pretrain_epochs : int
        When positive, the generator starts from matrix factorisation trained with BPR for at
        most this many epochs (:class:`grouprec.preference.BPRRecommender`, early-stopped on
        validation), as the IRGAN code starts from a pre-trained model; 0 starts at random.
    epochs : int
        Largest number of epochs.
    lr_G, lr_D : float
        Adam's learning rates.
    batch_size : int
        Training pairs per discriminator step.
    batch_entities : int
        Entities per generator step.
    weight_decay : float
        L2 penalty on both players' parameters.
    patience : int or None
        Epochs without a better validation NDCG@10 before stopping.
    filter_consumed : bool
        Score training items ``-inf``.
    seed : int
        Seeds the weights, the batch order and the samples. ``fit`` gives the
        caller's global generators back their state (:func:`~grouprec.training.keeps_global_rng`).
    device : str, optional
        Where to train: the CPU by default; ``"cuda"``, ``"mps"`` or ``"auto"`` (a GPU when there
        is one) as :func:`grouprec.training.select_device` reads them. The seeded generator of
        the order and the samples lives there too, so a GPU run differs from a CPU run with the
        same seed.
    progress : bool
        Show a progress bar over epochs.

    Attributes
    ----------
    G_, D_ : MF
        Scores :math:`g_\\theta` and :math:`f_\\phi` of the trained players (best epoch).
    history_ : GanHistory
        Per epoch: ``d_loss``, ``d_real``, ``d_fake``, ``g_loss`` (the generator's GAN loss on
        its samples, the mean cost), validation metrics.
    pretrained_ : BPRRecommender or None
        The fitted MF-BPR model the generator started from, when ``pretrain_epochs`` > 0; its
        ``history_`` is the pre-training run.
    """

    name = "IRGAN"

    def __init__(
        self,
        d: int = 32,
        temperature: float = 1.0,
        n_samples: int = 32,
        g_steps: int = 1,
        baseline: bool = True,
        kind: str = "minimax",
        pretrain_epochs: int = 0,
        epochs: int = 30,
        lr_G: float = 0.01,
        lr_D: float = 0.01,
        batch_size: int = 4096,
        batch_entities: int = 256,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        filter_consumed: bool = True,
        seed: int = DEFAULT_SEED,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        self.d = check_size("d", d)
        self.temperature = check_number("temperature", temperature, 0.0, math.inf, open_low=True)
        self.n_samples = check_size("n_samples", n_samples)
        self.g_steps = check_size("g_steps", g_steps, minimum=0)
        self.baseline = bool(baseline)
        if self.baseline and self.n_samples < 2:
            raise ValueError(
                f"baseline=True needs n_samples >= 2 (the baseline of a draw is the mean cost of "
                f"the other draws), got n_samples={n_samples!r}"
            )
        self.kind = check_choice("kind", kind, gan.GENERATOR_LOSSES)
        self.pretrain_epochs = check_size("pretrain_epochs", pretrain_epochs, minimum=0)
        self.epochs = check_size("epochs", epochs)
        self.lr_G = check_number("lr_G", lr_G, 0.0, math.inf, open_low=True)
        self.lr_D = check_number("lr_D", lr_D, 0.0, math.inf, open_low=True)
        self.batch_size = check_size("batch_size", batch_size)
        self.batch_entities = check_size("batch_entities", batch_entities)
        self.weight_decay = check_number("weight_decay", weight_decay, 0.0, math.inf)
        self.patience = None if patience is None else check_size("patience", patience)
        self.filter_consumed = bool(filter_consumed)
        self.seed = check_size("seed", seed, minimum=0)
        self.device = device
        self.progress = progress

    def log_p(self, u: Tensor) -> Tensor:
        """:math:`\\log p_\\theta(\\cdot \\mid u)` over all items, (B, I), for entity ids ``u`` (B,).

        ``u`` may live anywhere (or be a NumPy array); the result is on the model's device.
        """
        u = torch.as_tensor(u, device=self.G_.P.weight.device)
        return F.log_softmax(_all_scores(self.G_, u) / self.temperature, dim=1)

    def cost(self, u: Tensor, j: Tensor) -> Tensor:
        """The generator's per-sample GAN loss under the current discriminator, shape of ``j``.

        On the model's device, wherever ``u`` and ``j`` come from.
        """
        device = self.D_.P.weight.device
        s = self.D_(torch.as_tensor(u, device=device), torch.as_tensor(j, device=device))
        return -F.softplus(s) if self.kind == "minimax" else F.softplus(-s)

    @keeps_global_rng
    def fit(self, dataset: GroupDataset, task: str) -> IRGANRecommender:
        """Train on ``dataset``'s training pairs for ``task`` ("user" or "group")."""
        self._start_fit(dataset, task)
        train = dataset.train(task)
        if len(train) == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training pairs for task {task!r}")
        seed_everything(self.seed)  # the initial weights
        self.G_ = MF(self.n_entities_, self.n_items_, self.d).to(self.device_)
        self.D_ = MF(self.n_entities_, self.n_items_, self.d).to(self.device_)
        self.pretrained_ = None
        if self.pretrain_epochs:
            self.pretrained_ = BPRRecommender(
                "mf", self.d, self.pretrain_epochs, seed=self.seed, device=self.device
            ).fit(dataset, task)
            self.G_.load_state_dict(self.pretrained_.model_.state_dict())
        opt_G = torch.optim.Adam(self.G_.parameters(), lr=self.lr_G, weight_decay=self.weight_decay)
        opt_D = torch.optim.Adam(self.D_.parameters(), lr=self.lr_D, weight_decay=self.weight_decay)
        gen = self._seeded_generator()
        pairs = self._pairs(train)

        def one_epoch() -> dict[str, float]:
            self.G_.train()
            self.D_.train()
            record = self._discriminator_pass(pairs, opt_D, gen)
            costs: list[tuple[dict[str, Tensor], int]] = []
            for _ in range(self.g_steps):
                order = _randperm(len(pairs.active), gen, self.device_)
                shuffled = pairs.active[order]
                for s in range(0, len(shuffled), self.batch_entities):
                    u = shuffled[s : s + self.batch_entities]
                    costs.append(({"g_loss": self._policy_step(u, opt_G, gen)}, len(u)))
            record.update(_weighted_means(costs, sum(n for _, n in costs)))
            return record

        self.history_ = self._train_epochs(dataset, task, one_epoch, max(self.lr_G, self.lr_D))
        return self

    def _pairs(self, train) -> _Pairs:
        """The training pairs sorted by entity, with what drawing per entity needs."""
        order = np.argsort(train.entity, kind="stable")
        entity = train.entity[order]
        active, first, counts = np.unique(entity, return_index=True, return_counts=True)
        row_of = np.full(self.n_entities_, -1)
        row_of[active] = np.arange(len(active))

        def tensor(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=torch.int64, device=self.device_)

        return _Pairs(
            u=tensor(entity),
            i=tensor(train.item[order]),
            row=tensor(row_of[entity]),
            position=tensor(np.arange(len(order)) - np.repeat(first, counts)),
            active=tensor(active),
            n_max=int(counts.max()),
        )

    def _discriminator_pass(
        self, pairs: _Pairs, opt_D: torch.optim.Optimizer, gen: torch.Generator
    ) -> dict[str, float]:
        """One pass of discriminator steps: every training pair against one draw of the generator.

        The draws are made per entity, ``n_max`` at once from :math:`p_\\theta(\\cdot \\mid u)`,
        and pair number ``k`` of an entity takes draw number ``k``: one softmax per entity instead
        of one per pair.
        """
        with torch.no_grad():  # sampling only: the generator does not learn here
            draws = torch.cat(
                [
                    _multinomial(
                        self.log_p(pairs.active[s : s + self.batch_entities]).exp(),
                        pairs.n_max,
                        gen,
                    )
                    for s in range(0, len(pairs.active), self.batch_entities)
                ]
            )  # (E, n_max)
        j_all = draws[pairs.row, pairs.position]  # (N,) one generated item per training pair
        perm = _randperm(len(pairs.u), gen, self.device_)
        D_pair, sampler = _PairDiscriminator(self.D_), _PresampledGenerator()
        steps: list[tuple[dict[str, Tensor], int]] = []
        for s in range(0, len(perm), self.batch_size):
            b = perm[s : s + self.batch_size]
            inputs = gan.GanInputs(generator=(j_all[b],), condition=(pairs.u[b],))
            out = gan.discriminator_step(
                sampler, D_pair, opt_D, pairs.i[b], inputs, as_tensors=True
            )
            steps.append((out, len(b)))
        return _weighted_means(steps, len(perm))

    def _generator_step(
        self, u: Tensor, opt_G: torch.optim.Optimizer, gen: torch.Generator
    ) -> float:
        """One policy-gradient step of the generator for entities ``u`` (B,); the mean cost."""
        return self._policy_step(u, opt_G, gen).item()

    def _policy_step(self, u: Tensor, opt_G: torch.optim.Optimizer, gen: torch.Generator) -> Tensor:
        """:meth:`_generator_step`, with the mean cost as a scalar tensor on the device."""
        log_p = self.log_p(u)  # (B, I), with a graph to θ
        with torch.no_grad():  # the draws and their costs are data for this step, not functions
            j = _multinomial(log_p.exp(), self.n_samples, gen)  # (B, K)
            cost = self.cost(u[:, None], j)  # (B, K), the discriminator only read
        b = leave_one_out_baseline(cost) if self.baseline else 0.0  # (B, K) baseline
        loss = reinforce_loss(log_p.gather(1, j), cost, b)
        # zero_grad, then backward into the generator's parameters only: the costs carry no graph.
        opt_G.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.G_.parameters()))
        opt_G.step()
        return cost.mean()

    def _generate(self, entities: Tensor) -> Tensor:
        return _all_scores(self.G_, entities)  # (n, I) g_θ(u, i)
