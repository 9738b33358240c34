"""Names and defaults shared by every stage, kept in one place."""

from __future__ import annotations

#: Environment variable that names the folder holding the datasets.
DATA_ENV = "GROUPREC_DATA"

#: Seed used by every notebook and by the command line unless told otherwise.
DEFAULT_SEED = 0

#: Cut-offs reported by every results table.
DEFAULT_KS = (5, 10)

#: Number of listed negatives per test case in the benchmark files.
N_NEGATIVES = 100

#: The two tasks: recommend to a single user, or to a group.
TASKS = ("user", "group")

#: Column names of interaction tables.
COL_ENTITY = "entity"
COL_ITEM = "item"
COL_RATING = "rating"

#: Columns of the item attribute table (``itemAttributes.tsv``).
ATTRIBUTE_COLUMNS = ("item", "category", "tags", "price", "description")

#: Datasets the package knows by name (folders inside the data directory).
KNOWN_DATASETS = ("camra2011", "mafengwo")

#: Test pairs the benchmark holds out per entity, users and groups alike: CAMRa2011's test files
#: list five items for every user and group, Mafengwo's one. The protocol's validation split holds
#: out as many (a property of the benchmark's design, fixed here so that the test file is not read
#: to draw validation; ``tests/test_data.py`` checks it against the files). Other data: one.
HELD_OUT_PER_ENTITY = {"camra2011": 5, "mafengwo": 1}
