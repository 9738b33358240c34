"""Data stage: load, audit, clean and split group-recommendation data (``01_data``).

Everything here is a pure function of its input: loading returns the files exactly as they are
(published numbers use them unchanged), and each cleaning step returns a new dataset together
with a record of what it changed (see :attr:`GroupDataset.log`). The stage has four parts, one
module each; every public name is importable from :mod:`grouprec.data` itself:

==============================================  =============================================
idea                                            module
==============================================  =============================================
the typed containers: :class:`Interactions`,    :mod:`grouprec.data.containers`
:class:`EvalCases`, :class:`GroupDataset`
finding and reading the benchmark files:        :mod:`grouprec.data.loading`
:func:`load_dataset`, :func:`find_dataset`,
:func:`resolve_data_dir`, :data:`FILES`,
:class:`DataFormatError`
audit and cleaning: :func:`audit`,              :mod:`grouprec.data.cleaning`
:func:`members_beyond_users`, the cleaning
steps, :func:`clean`, :func:`benchmark_clean`
negative sampling and the validation split:     :mod:`grouprec.data.sampling`
:class:`NegativeSampler`,
:func:`split_validation`
==============================================  =============================================
"""

from grouprec.data.cleaning import (
    audit,
    benchmark_clean,
    binarise,
    clean,
    deduplicate,
    drop_seen_test_cases,
    drop_zero_ratings,
    filter_negatives,
    members_beyond_users,
    normalise_ratings,
    remove_test_leakage,
    seen_test_cases,
)
from grouprec.data.containers import EvalCases, GroupDataset, Interactions
from grouprec.data.loading import (
    FILES,  # noqa: F401  (public, though not in __all__, as before the split)
    ID_MAX,  # noqa: F401
    ITEM_ATTRIBUTES,  # noqa: F401
    DataFormatError,
    find_dataset,
    load_dataset,
    resolve_data_dir,
)
from grouprec.data.sampling import NegativeSampler, split_validation

__all__ = [
    "DataFormatError",
    "EvalCases",
    "GroupDataset",
    "Interactions",
    "NegativeSampler",
    "audit",
    "benchmark_clean",
    "binarise",
    "clean",
    "deduplicate",
    "drop_seen_test_cases",
    "drop_zero_ratings",
    "filter_negatives",
    "find_dataset",
    "load_dataset",
    "members_beyond_users",
    "normalise_ratings",
    "remove_test_leakage",
    "resolve_data_dir",
    "seen_test_cases",
    "split_validation",
]
