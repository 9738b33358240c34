"""grouprec: group recommendation with deep models and GANs, taught step by step.

Each stage of the course has one module named after it; the larger stages (data, item
features, group aggregation, GAN recommender) are packages whose ``__init__`` maps the chapter
onto its modules:

========================  ===============================  =========================
stage                     module                           notebook
========================  ===============================  =========================
data preprocessing        :mod:`grouprec.data`,
                          :mod:`grouprec.synthetic`        ``01_data``
evaluation                :mod:`grouprec.metrics`,
                          :mod:`grouprec.evaluation`,
                          :mod:`grouprec.protocol`,
                          :mod:`grouprec.base`,
                          :mod:`grouprec.baselines`        ``02_evaluation``
forward/backward          :mod:`grouprec.scratch`          ``03_backprop``
user preferences          :mod:`grouprec.preference`       ``04_user_preferences``
item features             :mod:`grouprec.features`         ``05_item_features``
group aggregation         :mod:`grouprec.aggregation`      ``06_group_aggregation``
GAN losses                :mod:`grouprec.gan`              ``07_gan_losses``
GAN recommender           :mod:`grouprec.gan_recommender`  ``08_gan_recommender``
case study                :mod:`grouprec.case_study`       ``09_case_study``
large models              :mod:`grouprec.features`,
                          :mod:`grouprec.synthetic_text`,
                          :mod:`grouprec.distributed`,
                          :mod:`grouprec.synthetic_large`  ``10_large_models``
========================  ===============================  =========================

Every stage shares :mod:`grouprec.training` (the one training loop: :func:`~grouprec.training.fit`,
early stopping, devices and seeds, checkpoints), :mod:`grouprec.checks` (the argument checks) and
:mod:`grouprec.constants`. Packages that hold more than one idea (``data``, ``scratch``,
``synthetic``, ``training``, ``features``, ``aggregation``, ``gan_recommender``) re-export their
public names, so ``from grouprec.training import fit`` works whatever module holds ``fit``.

Every model class subclasses :class:`grouprec.base.BaseRecommender` (also importable from
:mod:`grouprec.evaluation`): ``fit``, ``score``, ``score_all``, ``recommend``, ``get_params``,
``set_params`` and ``clone`` work the same way for all of them.
"""

__version__ = "0.1.0"
