"""Group aggregation: combine the members' scores for each item into one score for the group.

A group recommender often starts from one score per member and candidate item, for example the
predictions of a user model, and needs one score per item for the group. This chapter
(``06_group_aggregation``) has four parts, in the modules below; every public name is
importable from :mod:`grouprec.aggregation` itself:

==================================================  ==========================================
idea                                                module
==================================================  ==========================================
static rules from social choice (average, least     :mod:`grouprec.aggregation.rules`
misery, most pleasure, multiplicative, average
without misery, Borda, approval, plurality, the
fairness-aware greedy rule), :func:`top_k`,
:func:`aggregate` and :data:`RULES`
a static rule over the member scores of any         :mod:`grouprec.aggregation.rule_recommender`
user-level recommender, :class:`RuleRecommender`
learned aggregation: :class:`AGREERecommender`;     :mod:`grouprec.aggregation.agree`
its network :class:`AGREE`, :class:`JointBatches`   :mod:`grouprec.aggregation.agree_network`
and :func:`agree_step_loss`
learned consensus over graphs of members, items     :mod:`grouprec.aggregation.consensus`
and groups: :class:`Consensus`,
:func:`consensus_graphs`, :class:`ConsensusRecommender`
==================================================  ==========================================

The static rules do their work with a fixed formula and learn nothing; :mod:`~.rules` states
the notation (``r``, ``m``, ``R``) used in every docstring. :class:`AGREE` learns how much each
member counts, per candidate item, with an attention network, and adds a group-specific
embedding (Cao et al., 2018). :class:`Consensus` learns a group's representation from three
views (its members, its items, overlapping groups) by propagation over graphs of the training
data, fused by learned gates (Wu et al., 2023). :class:`AGREERecommender`,
:class:`ConsensusRecommender` and :class:`RuleRecommender` implement the common recommender
interface of :mod:`grouprec.evaluation`. Each module lists its own
references.
"""

from grouprec.aggregation.agree import AGREE, AGREERecommender, JointBatches, agree_step_loss
from grouprec.aggregation.consensus import Consensus, ConsensusRecommender, consensus_graphs
from grouprec.aggregation.rule_recommender import LIST_RULES, NORMALISATIONS, RuleRecommender
from grouprec.aggregation.rules import (
    RULES,
    TIE_ATOL,
    aggregate,
    approval,
    average,
    average_without_misery,
    borda,
    fairness_greedy,
    fairness_greedy_list,
    least_misery,
    most_pleasure,
    multiplicative,
    plurality,
    plurality_list,
    top_k,
)

__all__ = [
    "AGREE",
    "LIST_RULES",
    "NORMALISATIONS",
    "RULES",
    "TIE_ATOL",
    "AGREERecommender",
    "Consensus",
    "ConsensusRecommender",
    "JointBatches",
    "RuleRecommender",
    "agree_step_loss",
    "aggregate",
    "approval",
    "average",
    "average_without_misery",
    "consensus_graphs",
    "borda",
    "fairness_greedy",
    "fairness_greedy_list",
    "least_misery",
    "most_pleasure",
    "multiplicative",
    "plurality",
    "plurality_list",
    "top_k",
]
