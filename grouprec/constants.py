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
