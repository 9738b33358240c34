"""The diagrams of ``scripts/draw_diagrams.py``: written, valid, labelled, up to date, and used.

Each diagram is drawn into a temporary folder by running the script as a reader would. The
checks: every diagram is written and parses as SVG; its text is kept as text and holds the labels
that say what it shows; no label overlaps another, leaves its box or runs into another box; the
committed figures are the script's current output; every figure a chapter shows exists, and every
committed figure is shown by a chapter (or is listed in ``PENDING``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "draw_diagrams.py"
FIGURES = ROOT / "notebooks" / "figures"

#: Committed figures that no chapter shows yet: their chapters are being re-executed, and the
#: markdown cell that shows each goes in afterwards. Empty this set once they are in.
PENDING: set[str] = set()

#: Words each diagram must show as text (compared without white space, since matplotlib writes
#: mathematics glyph by glyph).
KEY_LABELS = {
    "02_protocol.svg": [
        "training files",
        "P.training_data",
        "P.validation_data",
        "as published",
        "corrected",
        "listed negatives",
    ],
    "03_computation_graph.svg": [
        "forward: values",
        "backward: gradients",
        "dX",
        "dZ1",
        "dA1",
        "dZ2",
        "ReLU",
        "scatter-add",
    ],
    "04_mf_neumf.svg": ["MF", "NeuMF", "GMF", "MLP"],
    "05_hybrid_encoder.svg": ["enc", "free vector", "free bias", "features", "probability"],
    "06_agree_attention.svg": ["attention MLP", "softmax", "padded slots", "prediction layer"],
    "06_consensus.svg": ["member level", "group level", "item level", "gated fusion"],
    "08_cfgan_loop.svg": [
        "generator",
        "discriminator",
        "partial mask",
        "zero-reconstruction",
        "update",
    ],
}


def _load_script():
    spec = importlib.util.spec_from_file_location("draw_diagrams", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


draw_diagrams = _load_script()
NAMES = sorted(draw_diagrams.DIAGRAMS)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> Path:
    """The folder the script wrote its diagrams to, run as a reader would run it."""
    out = tmp_path_factory.mktemp("figures")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, cwd=ROOT)
    return out


def _text(path: Path) -> str:
    return "".join(ET.parse(path).getroot().itertext())


def test_every_diagram_is_written_and_has_labels():
    assert set(KEY_LABELS) == set(NAMES), "give every diagram its key labels here"


def test_every_diagram_is_written(drawn):
    assert sorted(p.name for p in drawn.iterdir()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_diagram_is_svg_with_its_labels_as_text(drawn, name):
    root = ET.parse(drawn / name).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = re.sub(r"\s+", "", _text(drawn / name))
    missing = [label for label in KEY_LABELS[name] if re.sub(r"\s+", "", label) not in text]
    assert not missing, f"{name} lacks the labels {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_diagram_text_displays_in_a_browser(drawn, name):
    # Private-use code points are glyphs of matplotlib's own fonts that a browser cannot show.
    svg = (drawn / name).read_text(encoding="utf-8")
    private = sorted({f"U+{ord(c):04X}" for c in svg if 0xE000 <= ord(c) <= 0xF8FF})
    assert not private, f"{name} has text no browser font can show: {private}"
    assert "STIXNonUnicode" not in svg


@pytest.mark.parametrize("name", NAMES)
def test_diagram_labels_do_not_collide(name):
    assert draw_diagrams.draw(name).problems() == []


def test_drawing_is_deterministic(drawn, tmp_path):
    draw_diagrams.main(["--out", str(tmp_path)])
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == (drawn / name).read_bytes(), name


def _writer(path: Path) -> str | None:
    """The matplotlib version that wrote an SVG file (from its metadata)."""
    found = re.search(r"Matplotlib v([^,\s<]+)", path.read_text(encoding="utf-8"))
    return found.group(1) if found else None


@pytest.mark.parametrize("name", NAMES)
def test_committed_figure_is_up_to_date(drawn, name):
    committed = FIGURES / name
    assert committed.exists(), f"run `python scripts/draw_diagrams.py` to write {name}"
    advice = (
        f"notebooks/figures/{name} differs from what the script draws: "
        "run `python scripts/draw_diagrams.py` and commit the result"
    )
    if _writer(committed) == matplotlib.__version__:
        assert committed.read_bytes() == (drawn / name).read_bytes(), advice
    else:
        # Another matplotlib writes the same drawing with other bytes; the words must agree.
        assert _text(committed) == _text(drawn / name), advice


def _shown_figures() -> dict[str, list[str]]:
    """Figure file name -> the notebooks whose markdown shows it."""
    shown: dict[str, list[str]] = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            source = "".join(cell["source"])
            for target in re.findall(r"\]\((figures/[^)\s]+)\)", source):
                shown.setdefault(target.removeprefix("figures/"), []).append(path.name)
    return shown


def test_every_figure_a_chapter_shows_exists():
    missing = {
        name: books for name, books in _shown_figures().items() if not (FIGURES / name).exists()
    }
    assert not missing, f"chapters show figures that notebooks/figures lacks: {missing}"


def test_every_committed_figure_is_shown_by_a_chapter():
    committed = {p.name for p in FIGURES.iterdir()}
    assert committed == set(NAMES), "notebooks/figures holds exactly the script's diagrams"
    unused = committed - set(_shown_figures()) - PENDING
    assert not unused, f"no chapter shows {sorted(unused)}"


def test_pending_figures_are_not_shown_yet():
    done = PENDING & set(_shown_figures())
    assert not done, f"remove {sorted(done)} from PENDING: a chapter shows them now"
