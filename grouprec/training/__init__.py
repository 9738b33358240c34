"""The training loop every neural model in grouprec goes through.

One function, :func:`fit`, trains any ``nn.Module``: the caller says how to compute the loss of a
batch (``loss_fn(model, batch) -> scalar tensor``) and where batches come from; :func:`fit` does
the rest the same way for every chapter: seeding, device placement, the optimiser, a
``tqdm.auto`` progress bar, validation after every epoch, early stopping on a validation metric
with the best weights restored (Prechelt, 1998), and a :class:`History` of losses and metrics
for plotting. Its epoch loop is :func:`train_epochs`, which the GAN recommenders of
:mod:`grouprec.gan_recommender` use directly with an epoch function of their own: one loop, one
early stopping, one way of keeping the best weights (of several modules at once) for every model.

Batches come from either

* a callable ``make_batches(epoch, rng) -> iterable of batches``, called once per epoch with the
  epoch number (from 1) and a ``numpy.random.Generator`` owned by :func:`fit`, so that shuffling
  and negative sampling are reproducible from the seed; :class:`TripletBatches` is the one used
  for pairwise ranking losses; or
* a re-iterable such as a ``torch.utils.data.DataLoader``, iterated once per epoch.

A batch is a tensor, or a tuple, list or dict of tensors; :func:`fit` moves it to the device,
which is the CPU unless one is asked for (:func:`select_device`; ``device="auto"`` picks a GPU
when the machine has one).

:func:`ranking_val_fn` turns held-out cases (:class:`grouprec.data.EvalCases`) into the
``val_fn`` that :func:`fit` calls, and :func:`save_checkpoint` / :func:`load_checkpoint` store a
model's weights with its constructor arguments and any metadata, exactly.

The package holds one idea a module:

=================================  ==========================================================
module                             what it holds
=================================  ==========================================================
:mod:`~grouprec.training.loop`     :func:`fit` and the optimisers it knows by name
:mod:`~.early_stopping`            :func:`train_epochs` (the epoch loop, early stopping, the
                                   best weights) and :class:`History`
:mod:`~.batches`                   :class:`TripletBatches` and the batch plumbing of the loop
:mod:`~.validation`                :func:`ranking_val_fn`
:mod:`~.devices`                   :func:`seed_everything`, :func:`preserved_rng`,
                                   :func:`keeps_global_rng`, :func:`select_device`,
                                   :func:`epoch_to_device`, :func:`explain_bad_ids`
:mod:`~.checkpoints`               :func:`save_checkpoint`, :func:`read_checkpoint`,
                                   :func:`load_checkpoint`
=================================  ==========================================================

Everything is importable from ``grouprec.training`` itself.
"""

from grouprec.checks import check_id_tensor, check_size
from grouprec.training.batches import Batch, TripletBatches
from grouprec.training.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from grouprec.training.devices import (
    epoch_to_device,
    explain_bad_ids,
    keeps_global_rng,
    preserved_rng,
    seed_everything,
    select_device,
)
from grouprec.training.early_stopping import History, train_epochs
from grouprec.training.loop import OPTIMIZERS, LossFn, fit
from grouprec.training.validation import ValFn, ranking_val_fn

__all__ = [
    "OPTIMIZERS",
    "Batch",
    "History",
    "LossFn",
    "TripletBatches",
    "ValFn",
    "check_id_tensor",
    "check_size",
    "epoch_to_device",
    "explain_bad_ids",
    "fit",
    "keeps_global_rng",
    "load_checkpoint",
    "preserved_rng",
    "ranking_val_fn",
    "read_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "train_epochs",
]
