"""GAN recommenders behind the common interface (chapter ``08_gan_recommender``).

Two ways to make a generative adversarial network recommend items:

* :class:`CFGANRecommender`, CFGAN (Chae et al., CIKM 2018): a *vector-wise* conditional GAN.
  The generator :math:`G_\\theta` maps a condition :math:`\\mathbf{c}_u` (the entity's history,
  see :func:`conditions`) and optional noise :math:`\\mathbf{z}` to a real-valued vector
  :math:`\\hat{\\mathbf{y}}_u \\in (0, 1)^{|\\mathcal{I}|}` over all items; the discriminator
  :math:`D_\\phi` judges (vector, condition) pairs. The discriminator sees a generated vector only
  through the *partial mask* :math:`\\mathbf{m}_u = \\mathbf{e}_u + \\mathbf{k}_u` (the entity's
  items plus sampled non-items, :func:`sample_masks`), and the generator also pays the
  *zero-reconstruction* penalty :math:`\\alpha_{ZR} \\sum_{j \\in N^{ZR}_u} \\hat y_{uj}^2`
  (:func:`zero_reconstruction`). Training is :func:`grouprec.gan.train_step`, unchanged.
* :class:`IRGANRecommender`, IRGAN (Wang et al., SIGIR 2017), for item recommendation: the
  generator is a distribution :math:`p_\\theta(i \\mid u) = \\operatorname{softmax}_i(g_\\theta(u, i))`
  over item ids, from which it *samples*; the discriminator :math:`D_\\phi(u, i) =
  \\sigma(f_\\phi(u, i))` tells training pairs from sampled ones. A sampled item id is an integer,
  so no gradient flows from the discriminator back into :math:`\\theta`; the generator learns by
  the policy gradient (REINFORCE, Williams 1992), :func:`reinforce_loss`.

Both recommend with the generator: CFGAN ranks items by :math:`\\hat{\\mathbf{y}}_u` (noise at its
mean, :math:`\\mathbf{z} = \\mathbf{0}`), IRGAN by :math:`g_\\theta(u, i)`. Items the entity already
consumed in training are filtered out (score :math:`-\\infty`) unless ``filter_consumed=False``;
:meth:`CFGANRecommender.filtered` gives the same fitted model with the other setting, for a
like-for-like comparison with models that do not filter, and :class:`ConsumedFilter` gives any
other recommender the same filtering. Both GANs stop early on the validation NDCG@10 and never
read the test split.

The chapter has three parts, one module each; every public name is importable from
:mod:`grouprec.gan_recommender` itself:

==================================================  ==========================================
idea                                                module
==================================================  ==========================================
what both GANs share: argument checks, random       :mod:`grouprec.gan_recommender.common`
draws on the generator's device, the record of a
run (:class:`GanHistory`), the base class of the
two recommenders
CFGAN: :func:`conditions`, :func:`sample_masks`,    :mod:`grouprec.gan_recommender.cfgan`
:func:`zero_reconstruction`,
:class:`CFGANGenerator`,
:class:`CFGANDiscriminator`,
:class:`CFGANRecommender`, :data:`OBJECTIVES`
IRGAN: :func:`leave_one_out_baseline`,              :mod:`grouprec.gan_recommender.irgan`
:func:`reinforce_loss`, :class:`IRGANRecommender`
==================================================  ==========================================
"""

from grouprec.evaluation import ConsumedFilter  # re-exported: chapter 08 imports it from here
from grouprec.gan_recommender.cfgan import (
    OBJECTIVES,
    TRAIN_ROWS,  # noqa: F401  (public, though not in __all__, as before the split)
    CFGANDiscriminator,
    CFGANGenerator,
    CFGANRecommender,
    conditions,
    sample_masks,
    zero_reconstruction,
)
from grouprec.gan_recommender.common import GanHistory
from grouprec.gan_recommender.irgan import (
    IRGANRecommender,
    leave_one_out_baseline,
    reinforce_loss,
)

__all__ = [
    "CFGANDiscriminator",
    "CFGANGenerator",
    "CFGANRecommender",
    "ConsumedFilter",
    "GanHistory",
    "IRGANRecommender",
    "OBJECTIVES",
    "conditions",
    "leave_one_out_baseline",
    "reinforce_loss",
    "sample_masks",
    "zero_reconstruction",
]
