#!/usr/bin/env bash
# Build the book website into book/_build/html, offline, from the notebooks' stored outputs.
# Every warning is an error, and every page is rebuilt (a cached page would hide its warnings).
# Extra arguments go to `jupyter-book build` (e.g. `--builder linkcheck` needs the network).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run 'bash scripts/setup.sh' first" >&2; exit 2; }
[ -f node_modules/mathjax/es5/tex-mml-chtml.js ] || {
    echo "MathJax is not installed: run 'npm ci' in the repository root (scripts/setup.sh does)" >&2
    exit 2
}

# Every page named in book/_toc.yml must exist, and every notebook (chapter or solutions) must be
# in it.
"$PY" - <<'PY'
import sys
from pathlib import Path

import yaml


def files(node):
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for value in node.values():
            yield from files(value)
    elif isinstance(node, list):
        for value in node:
            yield from files(value)


book = Path("book")
toc = yaml.safe_load((book / "_toc.yml").read_text())
listed = [toc["root"], *files(toc.get("parts", []))]
missing = [f for f in listed if not any((book / f).with_suffix(s).exists() for s in (".md", ".ipynb"))]
unlisted = sorted(
    f"{folder}/{p.stem}"
    for folder in ("notebooks", "solutions")
    for p in Path(folder).glob("*.ipynb")
    if f"{folder}/{p.stem}" not in listed
)
for name in missing:
    print(f"book/_toc.yml lists {name}, but neither book/{name}.md nor book/{name}.ipynb exists", file=sys.stderr)
for name in unlisted:
    print(f"{name}.ipynb is not in the book: add it to book/_toc.yml", file=sys.stderr)
sys.exit(1 if missing or unlisted else 0)
PY

exec .venv/bin/jupyter-book build book --all -W -n --keep-going "$@"
