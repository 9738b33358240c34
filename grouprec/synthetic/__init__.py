"""Synthetic e-commerce data with a planted group-decision rule.

The source article's case study (§4.3) is an e-commerce platform with browsing, purchase and
rating records, and items described by a category, tags, a price and a text. No public group
dataset has all of that, so this module generates one whose ground truth is known: every latent
vector, every user's utility for every item, and the rule by which each group turns its
members' utilities into a joint choice. A model trained on the files can then be checked
against the truth (did the attention weights recover the planted weights? which aggregation
rule explains the group choices best?).

Generative story
----------------
All randomness comes from one ``numpy.random.Generator`` per component, spawned from ``seed``,
so the same arguments give the same files byte for byte, and changing only ``rule`` changes only
the group choices (the users, items and groups stay identical, and the group choices reuse the
same random draws, so datasets generated under different rules form paired comparisons).

*Categories* k = 1..K. A latent centroid and a price level

    μ_k ~ N(0, s_μ² I_d),        m_k ~ N(log 25, 0.6²),        π ~ Dirichlet(α 1_K).

*Items* i = 1..I. A category, a latent vector, a quality (popularity) bias, a standardised
relative price (positively correlated with quality, ρ = 0.5) and the price itself

    c_i ~ Categorical(π),        q_i = μ_{c_i} + σ_q ε_i,        b_i ~ N(0, σ_b²),
    ξ_i = ρ b_i / σ_b + √(1 - ρ²) η_i,        price_i = exp(m_{c_i} + s_price ξ_i),

with ε_i ~ N(0, I_d), η_i ~ N(0, 1). Every vocabulary word ``v`` of the category (tags,
adjectives, nouns, uses) has a random direction a_v ~ N(0, I_d); the item's words are drawn with
probability ∝ exp(β a_v·δ_i / √d), where δ_i = (q_i - μ_{c_i}) / σ_q is the item's position
within its category. So the tags and the description carry signal about q_i beyond the
category, as real item text does. An item has 1-3 category tags plus ``premium`` (price in the
top 20% of its category), ``budget`` (bottom 20%) or ``bestseller`` (top 10% of b_i) when they
apply; its description is "[generic adjective] adjective noun for use[, generic tail]", 5-12
words. (:mod:`grouprec.synthetic_text` rewords these descriptions with seeded synonyms, for
experiments in which meaning and wording come apart; the generator's output is not affected.)

*Users* u = 1..U. A primary category a_u ~ Categorical(π) and, with probability 0.4, a second one
a'_u; a taste vector mixing their centroids, and a price sensitivity

    p_u = ω_u μ_{a_u} + (1 - ω_u) μ_{a'_u} + σ_p ε_u,   ω_u ~ U(0.5, 1)  (ω_u = 1 without a'_u),
    ψ_u = ψ̄ exp(0.5 ζ_u),   ζ_u ~ N(0, 1).

*Utility* of item i for user u (the ground truth a model should recover)

    v_ui = p_u·q_i / √d + b_i - ψ_u ξ_i.

*Behaviour* follows the random-utility (logit) model (McFadden, 1974). User u browses
n_u = clip(round(20 exp(0.5 ζ'_u)), 3, I/2) distinct items, ζ'_u ~ N(0, 1), drawn without
replacement with probability ∝ exp(v_ui / τ_b). They are computed with the Gumbel-top-k trick
(Kool et al., 2019): the n_u largest v_ui / τ_b + G_ui, G ~ Gumbel(0, 1).
The user buys the k_u browsed items of largest v_ui, k_u = 1 + Binomial(n_u - 1, 0.3), and rates
each purchase from its noisy utility:

    y_ui = 1 + Σ_j 1[v_ui + σ_y ν_ui > t_j],   ν_ui ~ N(0, 1),

where t_1..t_4 are the 5%, 15%, 40% and 70% quantiles of r + σ_y ν over all purchases (a
skewed-positive rating distribution, as on real shops).

*Groups* are households (2-4 members, disjoint) and friend groups (3-8 members, overlapping).
A group grows from a random seed member; the others are drawn without replacement with
probability ∝ exp(κ cos(p_seed, p_v)) (homophily; κ is larger for friends, who share tastes, than
for households). Each group has member weights w_g = softmax(η z_g), z_gu ~ N(0, 1), so one
member tends to lead. The group's utility for item i follows the planted ``rule``
(Masthoff, 2011):

    average:        v_gi = (1 / |g|) Σ_{u∈g} v_ui
    least_misery:   v_gi = min_{u∈g} v_ui
    most_pleasure:  v_gi = max_{u∈g} v_ui
    weighted:       v_gi = Σ_{u∈g} w_gu v_ui      (a "leader" rule when w_g is concentrated)

and the group chooses n_g = 2 + Poisson(4) items drawn without replacement with probability
∝ exp(v_gi / τ_g) (Gumbel-top-k again; the order of the draws is a Plackett-Luce ranking, kept
in :attr:`SyntheticData.group_choices`). Group ratings map v_gi + σ_y ν to 1-5 like user ratings,
with thresholds from the group choices.

*Test split* (leave one out, as in the benchmarks): every user with at least 3 purchases and every
group holds out one positive chosen uniformly, with 100 distinct negatives drawn uniformly from
the items the user never browsed (purchases are browses) or the group never chose. The browse
events of held-out purchases are removed from ``userBrowse.txt``: they would reveal the answer.

Files (the AGREE format read by :func:`grouprec.data.load_dataset`, plus three)
---------------------------------------------------------------------------------
``groupMember.txt``, ``{user,group}Rating{Train,Test,Negative}.txt`` (``id item rating``, ratings
1-5), ``itemAttributes.tsv`` (item, category, tags separated by ``|``, price, description),
``userBrowse.txt`` (``user item``, in browsing order) and ``groupRule.json`` (the rule, its
parameters, the generator arguments and, for ``weighted``, each group's member weights).

Modules
-------
:mod:`~grouprec.synthetic.model` holds the constants of the story, :class:`SyntheticData` and
:func:`aggregate`; :mod:`~grouprec.synthetic.simulate` draws a dataset
(:func:`generate_ecommerce`); :mod:`~grouprec.synthetic.files` writes and re-reads the files
(:func:`write_ecommerce`, :func:`regenerate`). Everything is importable from
``grouprec.synthetic`` itself; the command line ``python -m grouprec synthetic`` (in
:mod:`grouprec.__main__`) calls :func:`generate_ecommerce`, then :func:`write_ecommerce`.

References
----------
- D. McFadden. Conditional logit analysis of qualitative choice behavior. In P. Zarembka (ed.),
  Frontiers in Econometrics, 105-142. Academic Press, 1974.
- W. Kool, H. van Hoof, M. Welling. Stochastic beams and where to find them: the Gumbel-top-k
  trick for sampling sequences without replacement. ICML 2019.
- R. L. Plackett. The analysis of permutations. Applied Statistics 24(2), 193-202, 1975.
- J. Masthoff. Group recommender systems: combining individual models. In F. Ricci et al.
  (eds.), Recommender Systems Handbook, 677-702. Springer, 2011.
- D. Cao, X. He, L. Miao, Y. An, C. Yang, R. Hong. Attentive group recommendation. SIGIR 2018,
  645-654 (the file format).
"""

from grouprec.synthetic.files import (
    FILES,
    RULE_FILE,
    regenerate,
    write_ecommerce,
)
from grouprec.synthetic.model import (  # noqa: F401 (the story's constants, by their symbols)
    ALPHA,
    BETA_WORDS,
    CATALOGUE,
    ETA_WEIGHTS,
    FORMAT_VERSION,
    FRIENDS_MAX,
    FRIENDS_MIN,
    FRIENDS_P,
    GENERIC_ADJECTIVES,
    GENERIC_TAILS,
    HOUSEHOLD_P,
    HOUSEHOLD_SIZES,
    KAPPA_FRIENDS,
    KAPPA_HOUSEHOLD,
    LAMBDA_BAR,
    LOG_PRICE_MEAN,
    LOG_PRICE_SD,
    MAX_BLOCK,
    MEAN_BROWSE,
    MEAN_GROUP_EXTRA,
    MIN_PURCHASES_FOR_TEST,
    P_BUY,
    P_GENERIC_ADJECTIVE,
    P_SECOND_CATEGORY,
    P_TAIL,
    RATING_LEVELS,
    RHO,
    RULES,
    S_MU,
    S_PRICE,
    SIGMA_B,
    SIGMA_P,
    SIGMA_Q,
    SIGMA_Y,
    SLOTS,
    STREAMS,
    TAU_BROWSE,
    SyntheticData,
    aggregate,
)
from grouprec.synthetic.simulate import generate_ecommerce

__all__ = [
    "CATALOGUE",
    "FILES",
    "RULES",
    "RULE_FILE",
    "SyntheticData",
    "aggregate",
    "generate_ecommerce",
    "regenerate",
    "write_ecommerce",
]
