"""Draw the book's architecture and protocol diagrams as SVG files in ``notebooks/figures/``.

Each diagram is one function below that draws exactly what a chapter builds, with the symbols of
``book/notation.md`` and the chapter's shapes. They share a few drawing helpers (:class:`Diagram`:
boxes, arrows, labels, a legend), so that every picture has the same look: data in blue boxes,
parameters in yellow, operations in grey, masks in green, losses in red; forward arrows blue,
gradients vermilion (the Okabe-Ito colours, which read the same to colour-blind readers).

Run ``python scripts/draw_diagrams.py`` after changing a diagram and commit the SVG files;
``--out DIR`` writes them elsewhere, ``--png DIR`` also writes PNGs to look at. It prints any
label that overlaps another, leaves its box or runs into another box. The SVG files are
deterministic (a fixed hash salt, no date, text kept as text), so an unchanged diagram gives an
unchanged file; ``tests/test_diagrams.py`` checks that every figure is written and up to date,
holds its key labels, has no colliding labels, and is shown by a chapter.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.text import Text

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "notebooks" / "figures"

#: The settings every diagram is drawn and saved with (set only while drawing, never globally).
RC = {
    "svg.hashsalt": "grouprec-diagrams",  # fixed ids: the same drawing gives the same file
    "svg.fonttype": "none",  # text stays text: searchable, and sharp at any size
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
}

# Okabe-Ito colours: distinguishable with every common form of colour blindness.
FORWARD = "#0072B2"  # blue: the forward pass, data flow
BACKWARD = "#D55E00"  # vermilion: gradients
GREEN = "#009E73"  # masks, selections
GREY = "#555555"
#: Fill and edge colour of each kind of box.
STYLES = {
    "data": ("#E3EEF8", "#0072B2"),
    "param": ("#FFF4CC", "#B08A00"),
    "op": ("#EFEFEF", "#555555"),
    "loss": ("#FBE3D6", "#D55E00"),
    "mask": ("#DDF2EA", "#009E73"),
    "plain": ("#FFFFFF", "#555555"),
}
FONT = 12  # points; the figures are about 9 inches wide, shown at about 700 px
SMALL = 10.5  # notes beside the arrows

#: Calligraphic letters as the Unicode characters that DejaVu Sans has. Matplotlib draws
#: ``\mathcal`` from a font whose glyphs sit in the private-use area, which a browser cannot
#: show when the text is kept as text; these letter-like symbols display everywhere.
CALLIGRAPHIC = {"\\mathcal{L}": "\u2112", "\\mathcal{M}": "\u2133"}


def portable(s: str) -> str:
    """``s`` with every calligraphic letter replaced by its Unicode character."""
    for tex, char in CALLIGRAPHIC.items():
        s = s.replace(tex, char)
    if "\\mathcal" in s or "\\mathbb" in s:
        raise ValueError(f"{s!r}: only {sorted(CALLIGRAPHIC)} display in a browser")
    return s


@dataclass
class Box:
    """A drawn box: its centre, its size, and the text inside it."""

    x: float
    y: float
    w: float
    h: float
    patch: FancyBboxPatch
    label: Text

    def left(self, dy: float = 0.0) -> tuple[float, float]:
        return (self.x - self.w / 2, self.y + dy)

    def right(self, dy: float = 0.0) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + dy)

    def top(self, dx: float = 0.0) -> tuple[float, float]:
        return (self.x + dx, self.y + self.h / 2)

    def bottom(self, dx: float = 0.0) -> tuple[float, float]:
        return (self.x + dx, self.y - self.h / 2)


class Diagram:
    """A figure whose data coordinates are inches, with the drawing helpers of every diagram."""

    def __init__(self, width: float, height: float) -> None:
        self.fig = Figure(figsize=(width, height))
        FigureCanvasAgg(self.fig)  # a canvas of its own: no pyplot, no global state
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self.boxes: list[Box] = []

    def box(
        self,
        x: float,
        y: float,
        text: str,
        w: float = 1.2,
        h: float = 0.5,
        kind: str = "data",
        size: float = FONT,
    ) -> Box:
        """A rounded box centred at (x, y) with ``text`` centred in it."""
        fill, edge = STYLES[kind]
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=fill,
            edgecolor=edge,
            linewidth=1.2,
            zorder=2,
        )
        self.ax.add_patch(patch)
        label = self.ax.text(
            x, y, portable(text), ha="center", va="center", fontsize=size, zorder=3, linespacing=1.3
        )
        b = Box(x, y, w, h, patch, label)
        self.boxes.append(b)
        return b

    def arrow(
        self,
        start: tuple[float, float],
        end: tuple[float, float],
        color: str = FORWARD,
        rad: float = 0.0,
        style: str = "-",
        lw: float = 1.6,
    ) -> FancyArrowPatch:
        """An arrow from ``start`` to ``end``, straight or bent by ``rad``."""
        a = FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=13,
            color=color,
            linewidth=lw,
            linestyle=style,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=0,
            shrinkB=0,
            zorder=1,
        )
        self.ax.add_patch(a)
        return a

    def line(
        self,
        points: list[tuple[float, float]],
        color: str = FORWARD,
        style: str = "-",
        lw: float = 1.6,
    ) -> None:
        """A polyline with an arrow head on its last segment (for routed connections)."""
        xs, ys = zip(*points[:-1], strict=True)
        self.ax.plot(xs, ys, color=color, linewidth=lw, linestyle=style, zorder=1)
        self.arrow(points[-2], points[-1], color=color, style=style, lw=lw)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        ha: str = "center",
        va: str = "center",
        color: str = "black",
        size: float = FONT,
        **kw,
    ) -> Text:
        """A free label."""
        return self.ax.text(
            x, y, portable(s), ha=ha, va=va, color=color, fontsize=size, zorder=3, **kw
        )

    def legend(
        self, x: float, y: float, entries: list[tuple[str, str, str]], dy: float = 0.32
    ) -> None:
        """Short arrows (colour, line style, meaning), one per line, from (x, y) downwards."""
        for k, (color, style, meaning) in enumerate(entries):
            yy = y - k * dy
            self.arrow((x, yy), (x + 0.45, yy), color=color, style=style)
            self.text(x + 0.55, yy, meaning, ha="left", size=FONT - 1)

    def problems(self) -> list[str]:
        """Overlapping labels, labels that leave their box, and text outside the figure."""
        with matplotlib.rc_context(RC):
            self.fig.canvas.draw()
        renderer = self.fig.canvas.get_renderer()
        texts = [t for t in self.ax.texts if t.get_text().strip()]
        extents = [t.get_window_extent(renderer).padded(1.0) for t in texts]  # 1 px apart
        out = []
        for k, a in enumerate(extents):
            for m in range(k + 1, len(extents)):
                if a.overlaps(extents[m]):
                    out.append(f"{texts[k].get_text()!r} overlaps {texts[m].get_text()!r}")
        frame = self.fig.bbox
        for t, e in zip(texts, extents, strict=True):
            if e.x0 < frame.x0 or e.x1 > frame.x1 or e.y0 < frame.y0 or e.y1 > frame.y1:
                out.append(f"{t.get_text()!r} leaves the figure")
        labels = {id(b.label) for b in self.boxes}
        for b in self.boxes:
            inner = b.patch.get_window_extent(renderer)
            e = b.label.get_window_extent(renderer)
            if e.x0 < inner.x0 or e.x1 > inner.x1 or e.y0 < inner.y0 or e.y1 > inner.y1:
                out.append(f"{b.label.get_text()!r} does not fit in its box")
            for t, e in zip(texts, extents, strict=True):
                if id(t) not in labels and inner.overlaps(e):
                    out.append(f"{t.get_text()!r} runs into the box {b.label.get_text()!r}")
        return out

    def save(self, path: Path) -> None:
        """Write the figure as SVG (no date, so an unchanged drawing is an unchanged file)."""
        with matplotlib.rc_context(RC):
            self.fig.savefig(path, format="svg", metadata={"Date": None})


# --------------------------------------------------------------------------------------------
# Chapter 02: the evaluation protocol
# --------------------------------------------------------------------------------------------


def protocol() -> Diagram:
    """``grouprec.protocol``: training, validation and test data, and the two readings."""
    D = Diagram(9.4, 6.6)
    for x, title in ((1.45, "training"), (4.7, "validation"), (7.85, "test")):
        D.text(x, 6.3, title, size=FONT + 1, weight="bold")
    files = D.box(1.45, 5.45, "training files\n(as published)", w=2.2, h=0.7, kind="plain")
    train = D.box(
        1.45, 3.7, "training data\n$\\mathbf{R},\\ \\mathbf{Y}$\nP.training_data", w=2.2, h=1.0
    )
    D.arrow(files.bottom(), train.top())
    D.text(1.6, 4.6, "rating-0 rows dropped,\nrepeated pairs merged", ha="left", size=SMALL)
    val = D.box(4.7, 3.7, "validation data\nP.validation_data", w=2.3, h=0.7, kind="mask")
    D.arrow(train.right(), val.left())
    D.text(
        4.7,
        5.1,
        "as many held-out pairs per entity\nas the test (5 on CAMRa2011,\n1 on Mafengwo), each ranked\nagainst 100 negatives drawn\nfrom every other item",
        size=SMALL,
    )
    test = D.box(7.85, 5.45, "test file\n(as published)", w=2.2, h=0.7, kind="plain")
    cases = D.box(7.85, 3.7, "test cases: test item\n+ its 100 listed negatives", w=2.6, h=0.7)
    D.arrow(test.bottom(), cases.top())
    model = D.box(3.4, 1.7, "fitted model", w=1.7, h=0.55)
    D.line([train.bottom(-0.5), (0.95, 1.7), model.left()])
    D.text(1.05, 2.0, "refit on all\ntraining data", ha="left", size=SMALL)
    D.text(
        4.55,
        2.8,
        "select and stop early\non validation NDCG@10",
        ha="right",
        size=SMALL,
        color=GREEN,
    )
    D.line([val.bottom(), (val.x, 2.35), (3.4, 2.35), model.top()], color=GREEN)
    pub = D.box(
        7.85,
        2.25,
        "as published: every test case,\nall listed candidates",
        w=2.9,
        h=0.7,
        kind="plain",
    )
    cor = D.box(
        7.85,
        0.85,
        "corrected: cases seen in training\ndropped; consumed items\nexcluded (score $-\\infty$)",
        w=2.9,
        h=0.95,
        kind="plain",
    )
    D.arrow(cases.bottom(), pub.top())
    D.arrow(model.right(0.1), pub.left(-0.1))
    D.arrow(model.right(-0.1), cor.left(0.1))
    D.text(
        3.4,
        0.65,
        "test data never change training,\nselection or early stopping",
        size=SMALL,
        color=BACKWARD,
    )
    return D


# --------------------------------------------------------------------------------------------
# Chapter 03: the computation graph of the MLP tower
# --------------------------------------------------------------------------------------------


def computation_graph() -> Diagram:
    """Chapter 03, section 3: the forward and backward pass of the small NCF MLP tower."""
    D = Diagram(9.4, 8.0)
    xn, xf, xb = 4.55, 4.25, 4.85  # node column, forward and backward arrow columns
    ys = [0.6, 2.0, 3.4, 4.8, 6.2, 7.45]  # rows of the nodes, bottom to top
    nodes = [
        ("ids $u,\\ i$   (B,)", "plain"),
        ("$\\mathbf{X} = [\\,\\mathbf{P}[u]\\ \\ \\mathbf{Q}[i]\\,]$   (B, 2d)", "data"),
        ("$\\mathbf{Z}^{(1)}$   (B, h)", "data"),
        ("$\\mathbf{A}^{(1)}$   (B, h)", "data"),
        ("$\\mathbf{Z}^{(2)}$   (B, 1)", "data"),
        ("$\\mathcal{L}$   (scalar)", "loss"),
    ]
    boxes = [
        D.box(xn, y, s, w=2.9 if k == 1 else 1.9, kind=kind)
        for k, ((s, kind), y) in enumerate(zip(nodes, ys, strict=True))
    ]
    # Each step: its name, what enters it from outside, and that input's gradient.
    steps = [
        (
            "lookup, concatenate",
            "$\\mathbf{P}$ (|U|, d),  $\\mathbf{Q}$ (|I|, d)",
            "scatter-add: $\\partial\\mathcal{L}/\\partial\\mathbf{P},\\ "
            "\\partial\\mathcal{L}/\\partial\\mathbf{Q}$",
        ),
        (
            "linear",
            "$\\mathbf{W}^{(1)}\\ (h, 2d),\\ \\mathbf{b}^{(1)}$",
            "$\\boldsymbol{\\Delta}^{(1)\\top}\\mathbf{X},\\ \\boldsymbol{\\Delta}^{(1)\\top}\\mathbf{1}$",
        ),
        ("ReLU", None, None),
        (
            "linear",
            "$\\mathbf{W}^{(2)}\\ (1, h),\\ \\mathbf{b}^{(2)}$",
            "$\\boldsymbol{\\Delta}^{(2)\\top}\\mathbf{A}^{(1)},\\ "
            "\\boldsymbol{\\Delta}^{(2)\\top}\\mathbf{1}$",
        ),
        ("$\\sigma$ + BCE", "targets $\\mathbf{y}$   (B, 1)", None),
    ]
    # The local rule of each backward step (right of the backward arrow).
    rules = [
        "split the columns",
        "$\\cdot\\ \\mathbf{W}^{(1)}$",
        "$\\odot\\ \\phi'(\\mathbf{Z}^{(1)})$, ReLU: $\\mathbf{Z}^{(1)} > 0$",
        "$\\cdot\\ \\mathbf{W}^{(2)}$",
        "$(\\hat{\\mathbf{y}} - \\mathbf{y})\\,/\\,B$",
    ]
    # The gradient that arrives at each node (right column), with the chapter's code name.
    grads = [
        None,
        "$\\partial\\mathcal{L}/\\partial\\mathbf{X}$   dX",
        "$\\boldsymbol{\\Delta}^{(1)} = \\partial\\mathcal{L}/\\partial\\mathbf{Z}^{(1)}$   dZ1",
        "$\\partial\\mathcal{L}/\\partial\\mathbf{A}^{(1)}$   dA1",
        "$\\boldsymbol{\\Delta}^{(2)} = \\partial\\mathcal{L}/\\partial\\mathbf{Z}^{(2)}$   dZ2",
        None,
    ]
    for k, (name, param, pgrad) in enumerate(steps):
        lo, hi = boxes[k], boxes[k + 1]
        mid = (lo.y + hi.y) / 2
        D.arrow((xf, lo.top()[1]), (xf, hi.bottom()[1]))
        D.arrow((xb, hi.bottom()[1]), (xb, lo.top()[1]), color=BACKWARD)
        D.text(xb + 0.12, mid, rules[k], ha="left", color=BACKWARD)
        if param is None:
            D.text(xf - 0.12, mid, name, ha="right")
            continue
        p = D.box(1.3, mid, param, w=2.4, h=0.42, kind="param", size=FONT - 1)
        D.text((p.right()[0] + xf) / 2, mid + 0.12, name, va="bottom", size=FONT - 1)
        D.arrow(p.right(0.06), (xf, mid + 0.06))
        if pgrad is not None:
            D.arrow((xf, mid - 0.1), p.right(-0.1), color=BACKWARD)
            D.text(p.x, p.y - 0.3, pgrad, color=BACKWARD, size=FONT - 1, va="top")
    for box, g in zip(boxes, grads, strict=True):
        if g is not None:
            D.text(box.right()[0] + 0.25, box.y, g, ha="left", color=BACKWARD)
    D.legend(0.2, 7.6, [(FORWARD, "-", "forward: values"), (BACKWARD, "-", "backward: gradients")])
    return D


# --------------------------------------------------------------------------------------------
# Chapter 04: MF and NeuMF;  chapter 05: the hybrid item encoder
# --------------------------------------------------------------------------------------------


def mf_neumf() -> Diagram:
    """``grouprec.preference.MF`` and ``NeuMF`` side by side, for a batch of B pairs."""
    D = Diagram(9.4, 6.2)
    # MF, left panel
    D.text(1.6, 5.85, "MF", size=FONT + 2, weight="bold")
    u = D.box(0.8, 0.5, "user $u$", w=1.1, kind="plain")
    i = D.box(2.4, 0.5, "item $i$", w=1.1, kind="plain")
    p = D.box(0.8, 1.8, "$\\mathbf{p}_u$  (B, d)", w=1.3)
    q = D.box(2.4, 1.8, "$\\mathbf{q}_i$  (B, d)", w=1.3)
    beta = D.box(3.55, 3.05, "$\\beta_i$  (B,)", w=1.0, kind="param")
    dot = D.box(1.6, 3.05, "$\\mathbf{p}_u \\cdot \\mathbf{q}_i$", w=1.3, kind="op")
    plus = D.box(1.6, 4.25, "+", w=0.5, kind="op")
    y = D.box(1.6, 5.25, "$\\hat{y}_{ui}$  (B,)", w=1.3, kind="loss")
    D.arrow(u.top(), p.bottom())
    D.arrow(i.top(), q.bottom())
    D.text(0.95, 1.15, "row of $\\mathbf{P}$", ha="left", size=SMALL)
    D.text(2.55, 1.15, "row of $\\mathbf{Q}$", ha="left", size=SMALL)
    D.arrow(p.top(), dot.bottom(-0.3))
    D.arrow(q.top(), dot.bottom(0.3))
    D.arrow(i.right(), beta.bottom(), rad=0.3)
    D.arrow(dot.top(), plus.bottom())
    D.arrow(beta.top(), plus.right(), rad=0.3)
    D.arrow(plus.top(), y.bottom())
    D.ax.plot([4.35, 4.35], [0.2, 6.0], color="#BBBBBB", lw=1)

    # NeuMF, right panel
    D.text(6.9, 5.85, "NeuMF", size=FONT + 2, weight="bold")
    u = D.box(5.7, 0.5, "user $u$", w=1.1, kind="plain")
    i = D.box(7.7, 0.5, "item $i$", w=1.1, kind="plain")
    pG = D.box(5.0, 1.8, "$\\mathbf{p}^{G}_u$", w=0.75)
    qG = D.box(5.95, 1.8, "$\\mathbf{q}^{G}_i$", w=0.75)
    pM = D.box(7.45, 1.8, "$\\mathbf{p}^{M}_u$", w=0.75)
    qM = D.box(8.4, 1.8, "$\\mathbf{q}^{M}_i$", w=0.75)
    D.text(9.3, 1.2, "four tables,\neach row (d)", ha="right", size=SMALL)
    for src, dst in ((u, pG), (u, pM), (i, qG), (i, qM)):
        D.arrow(src.top(), dst.bottom())
    gmf = D.box(
        5.5, 3.05, "GMF: $\\odot$\n$\\boldsymbol{\\phi}^{G}$  (B, d)", w=1.5, h=0.75, kind="op"
    )
    mlp = D.box(
        7.95, 3.05, "MLP: concatenate,\nReLU layers\n$2d \\to d \\to d/2$", w=1.9, h=0.95, kind="op"
    )
    D.arrow(pG.top(), gmf.bottom(-0.25))
    D.arrow(qG.top(), gmf.bottom(0.25))
    D.arrow(pM.top(), mlp.bottom(-0.45))
    D.arrow(qM.top(), mlp.bottom(0.45))
    cat = D.box(
        6.75,
        4.25,
        "$\\mathbf{h}^\\top[\\,\\boldsymbol{\\phi}^{G};\\ \\boldsymbol{\\phi}^{M}\\,] + b$",
        w=2.3,
        kind="op",
    )
    D.arrow(gmf.top(), cat.bottom(-0.5))
    D.arrow(mlp.top(), cat.bottom(0.5))
    D.text(8.1, 3.78, "$\\boldsymbol{\\phi}^{M}$  (B, d/2)", ha="left", size=SMALL)
    y = D.box(6.75, 5.25, "$\\hat{y}_{ui}$  (B,)", w=1.3, kind="loss")
    D.arrow(cat.top(), y.bottom())
    return D


def hybrid_encoder() -> Diagram:
    """Chapter 05's hybrid: ``q_i = enc_θ(f_i) + o_i v_i``, ``β_i = w_βᵀ f_i + o_i b_i``."""
    D = Diagram(9.4, 6.4)
    i = D.box(4.6, 0.45, "item $i$", w=1.1, kind="plain")
    v = D.box(1.1, 1.75, "$\\mathbf{v}_i$  (B, d)\nfree vector", w=1.5, h=0.75, kind="param")
    f = D.box(3.4, 1.75, "$\\mathbf{f}_i$  (B, $n_f$)\nits features", w=1.6, h=0.75)
    b = D.box(8.1, 1.75, "$b_i$  (B,)\nfree bias", w=1.3, h=0.75, kind="param")
    for dst in (v, f, b):
        D.arrow(i.top(), dst.bottom())
    ov = D.box(1.1, 3.15, "$\\times\\ o_i$", w=0.9, kind="mask")
    enc = D.box(
        3.4, 3.15, "$\\operatorname{enc}_\\theta$: linear,\nReLU, linear", w=1.8, h=0.75, kind="op"
    )
    wb = D.box(6.0, 3.15, "$\\mathbf{w}_\\beta^\\top \\mathbf{f}_i$  (B,)", w=1.4, kind="op")
    ob = D.box(8.1, 3.15, "$\\times\\ o_i$", w=0.9, kind="mask")
    D.arrow(v.top(), ov.bottom())
    D.arrow(f.top(), enc.bottom())
    D.arrow(f.right(0.2), wb.bottom(-0.3))
    D.arrow(b.top(), ob.bottom())
    q = D.box(
        2.3,
        4.5,
        "$\\mathbf{q}_i = \\operatorname{enc}_\\theta(\\mathbf{f}_i) + o_i\\mathbf{v}_i$",
        w=2.8,
    )
    beta = D.box(7.05, 4.5, "$\\beta_i = \\mathbf{w}_\\beta^\\top\\mathbf{f}_i + o_i b_i$", w=2.5)
    D.arrow(ov.top(), q.bottom(-1.2))
    D.arrow(enc.top(), q.bottom(1.1))
    D.arrow(wb.top(), beta.bottom(-1.05))
    D.arrow(ob.top(), beta.bottom(1.05))
    D.text(3.5, 3.85, "(B, d)", ha="left", size=SMALL)
    D.text(
        7.95,
        2.5,
        "$o_i = 0$ for a new item;\nin training $o_i = 0$\nwith probability $\\rho$",
        ha="right",
        size=SMALL,
        color=GREEN,
    )
    u = D.box(0.75, 5.75, "user $u$", w=1.1, kind="plain")
    p = D.box(2.3, 5.75, "$\\mathbf{p}_u$  (B, d)", w=1.3)
    y = D.box(
        5.2,
        5.75,
        "$\\hat{y}_{ui} = \\mathbf{p}_u \\cdot \\mathbf{q}_i + \\beta_i$",
        w=2.8,
        kind="loss",
    )
    D.arrow(u.right(), p.left())
    D.arrow(p.right(), y.left())
    D.arrow(q.top(0.9), y.bottom(-0.7))
    D.arrow(beta.top(-0.7), y.bottom(0.7))
    return D


# --------------------------------------------------------------------------------------------
# Chapter 06: AGREE's attention and the consensus model
# --------------------------------------------------------------------------------------------


def agree_attention() -> Diagram:
    """``grouprec.aggregation.AGREE``: attention over the members for one candidate j."""
    D = Diagram(9.4, 6.4)
    ys = (4.8, 4.0, 3.2)  # one row per member
    members = [
        D.box(0.8, y, f"$\\mathbf{{p}}_{{u_{k}}}$", w=0.8, h=0.45) for k, y in enumerate(ys, 1)
    ]
    D.text(0.8, 5.45, "members\n$u \\in \\mathcal{M}_g$", size=SMALL)
    qj = D.box(0.8, 1.9, "$\\mathbf{q}_j$", w=0.8, h=0.45)
    D.text(0.8, 2.45, "candidate $j$", size=SMALL)
    att = D.box(
        2.9,
        3.45,
        "attention MLP,\nonce per member:\n\n$o_{gu}(j) =$\n$\\mathbf{h}^\\top\\mathrm{ReLU}(\\mathbf{W}_p\\mathbf{p}_u$\n"
        "$+\\ \\mathbf{W}_q\\mathbf{q}_j + \\mathbf{b})$",
        w=2.3,
        h=3.5,
        kind="op",
    )
    for m in members:
        D.arrow(m.right(), (att.left()[0], m.y))
    D.arrow(qj.right(), (att.left()[0], qj.y))
    soft = D.box(
        5.15,
        4.0,
        "softmax\nover $\\mathcal{M}_g$\n\nof $o_{gu}(j)$\n(B, c, S)",
        w=1.2,
        h=2.2,
        kind="op",
    )
    for y in ys:
        D.arrow((att.right()[0], y), (soft.left()[0], y))
    D.text(5.0, 2.45, "padded slots:\n$o = -\\infty$", size=SMALL, color=GREY)
    # The weights as bars: one per member, summing to 1 (the lengths only illustrate).
    x0 = 6.1
    for y, a in zip(ys, (0.55, 0.3, 0.15), strict=True):
        D.arrow((soft.right()[0], y), (x0, y), color=GREEN)
        D.ax.add_patch(Rectangle((x0, y - 0.14), 1.7 * a, 0.28, color=GREEN, zorder=2))
        D.arrow((x0 + 1.7 * a, y), (7.5, y), color=GREEN, lw=1.0)
    D.text(6.65, 5.35, "$\\alpha_{gu}(j)$, summing to 1", size=SMALL, color=GREEN)
    wsum = D.box(
        8.35, 4.0, "$\\sum_{u}\\,\\alpha_{gu}(j)\\,\\mathbf{p}_u$", w=1.7, h=1.9, kind="op"
    )
    D.line([(0.8, 5.8), (0.8, 6.05), (8.35, 6.05), wsum.top()], color=GREY)
    D.text(4.3, 5.88, "$\\mathbf{p}_u$ of the members", size=SMALL, color=GREY)
    eg = D.box(6.5, 2.2, "$\\mathbf{e}_g$  group $g$", w=1.5, h=0.45, kind="param")
    gj = D.box(8.35, 2.2, "$\\mathbf{a}_g(j)$\n(B, c, d)", w=1.3, h=0.7)
    D.arrow(wsum.bottom(), gj.top())
    D.arrow(eg.right(), gj.left())
    D.text(7.47, 2.45, "+", size=FONT + 2)
    pred = D.box(
        4.4,
        0.75,
        "prediction layer\n$\\mathbf{w}_2^\\top\\mathrm{ReLU}(\\mathbf{W}_1[\\mathbf{a}_g(j)\\odot"
        "\\mathbf{q}_j;\\,\\mathbf{a}_g(j);\\,\\mathbf{q}_j] + \\mathbf{b}_1) + b_2$",
        w=4.1,
        h=0.75,
        kind="op",
    )
    D.line([qj.bottom(), (0.8, 0.75), pred.left()])
    D.line([gj.bottom(), (8.35, 1.35), (6.0, 1.35), (6.0, pred.top()[1])])
    y = D.box(8.35, 0.75, "$\\hat{y}_{gj}$  (B, c)", w=1.4, h=0.45, kind="loss")
    D.arrow(pred.right(), y.left())
    return D


def consensus() -> Diagram:
    """``grouprec.aggregation.ConsensusRecommender``: three views of a group, gated and fused."""
    D = Diagram(9.4, 6.0)
    emb = D.box(
        4.7,
        5.4,
        "embeddings:  $\\mathbf{P}$ (|U|, d) users,   $\\mathbf{Q}$ (|I|, d) items,   "
        "$\\mathbf{E}$ (|G|, d) groups",
        w=7.6,
        kind="param",
    )
    specs = [
        (
            1.6,
            "member level\nhypergraph: a group joins\nits members and items\n"
            "$\\mathbf{E}_M$  (|G|, d)",
            "$\\mathbf{P},\\ \\mathbf{Q},\\ \\mathbf{E}$",
        ),
        (
            4.7,
            "group level\noverlap graph of groups\n(Jaccard, $\\hat{\\mathbf{W}}$)\n"
            "$\\mathbf{E}_G$  (|G|, d)",
            "$\\mathbf{E}$",
        ),
        (
            7.8,
            "item level\ngroup-item graph,\nLightGCN\n$\\mathbf{E}_I$  (|G|, d)",
            "$\\mathbf{Q},\\ \\mathbf{E}$",
        ),
    ]
    views = []
    for x, text, uses in specs:
        v = D.box(x, 3.55, text, w=2.6, h=1.45, kind="op")
        D.arrow((x, emb.bottom()[1]), v.top())
        D.text(x + 0.1, 4.62, uses, ha="left", size=SMALL)
        views.append(v)
    D.arrow(views[1].left(), views[0].right(), color=GREEN)
    D.text(3.15, 4.62, "$\\mathbf{E}_G$ gates the\nitem messages", size=SMALL, color=GREEN)
    fuse = D.box(
        5.35,
        1.6,
        "gated fusion:  $\\tilde{\\mathbf{e}}_g = \\sum_{v}\\ "
        "\\sigma(\\mathbf{w}_v^\\top \\mathbf{e}_{v,g} + b_v)\\ \\mathbf{e}_{v,g}$",
        w=5.3,
        h=0.6,
        kind="op",
    )
    for v, dx in zip(views, (-2.0, 0.0, 2.0), strict=True):
        D.arrow(v.bottom(0.6 if dx < 0 else 0.0), fuse.top(dx))
    D.text(8.1, 1.6, "$v \\in \\{M, G, I\\}$", ha="left", size=SMALL)
    qt = D.box(1.35, 0.5, "$\\tilde{\\mathbf{Q}}$  (|I|, d)", w=1.6, h=0.45)
    D.arrow(views[0].bottom(-0.6), qt.top(-0.35))
    D.text(1.15, 1.3, "items propagated\nthrough the\nmember level", ha="left", size=SMALL)
    y = D.box(
        5.35,
        0.5,
        "$\\hat{y}_{gj} = \\tilde{\\mathbf{e}}_g^\\top \\tilde{\\mathbf{q}}_j$   (B, c)",
        w=2.9,
        kind="loss",
    )
    D.arrow(fuse.bottom(), y.top())
    D.arrow(qt.right(), y.left())
    return D


# --------------------------------------------------------------------------------------------
# Chapter 08: CFGAN's loop
# --------------------------------------------------------------------------------------------


def cfgan_loop() -> Diagram:
    """``grouprec.gan_recommender.CFGANRecommender``: one training step, with both masks."""
    D = Diagram(9.4, 6.6)
    c = D.box(1.0, 5.55, "condition $\\mathbf{c}_u$\n(B, |I|)", w=1.6, h=0.7)
    z = D.box(1.0, 4.35, "noise $\\mathbf{z}$\n(optional)", w=1.6, h=0.7, kind="plain")
    G = D.box(
        3.45,
        4.95,
        "generator $G_\\theta$\n$\\sigma(\\mathrm{MLP}_\\theta([\\mathbf{c}_u;\\mathbf{z}]))$",
        w=2.3,
        h=0.8,
        kind="op",
    )
    D.arrow(c.right(), G.left(0.15))
    D.arrow(z.right(), G.left(-0.2))
    yhat = D.box(5.85, 4.95, "$\\hat{\\mathbf{y}}_u \\in (0, 1)^{|I|}$\ngenerated", w=1.9, h=0.75)
    D.arrow(G.right(), yhat.left())
    zr = D.box(
        8.3,
        4.95,
        "zero-reconstruction\npenalty $\\mathcal{L}_{ZR}$ on\n$\\mathbf{m}^{ZR}_u$: non-items\n"
        "with prob. $s_{ZR}$",
        w=1.95,
        h=1.25,
        kind="mask",
    )
    D.arrow(yhat.right(), zr.left())
    e = D.box(1.0, 2.45, "real row $\\mathbf{e}_u$\n(B, |I|), binary", w=1.7, h=0.75)
    m = D.box(
        3.45,
        2.45,
        "partial mask\n$\\mathbf{m}_u = \\mathbf{e}_u + \\mathbf{k}_u$\n"
        "$\\mathbf{k}_u$: non-items, prob. $s_{PM}$",
        w=2.4,
        h=1.05,
        kind="mask",
    )
    D.arrow(e.right(), m.left())
    Dm = D.box(
        5.85,
        2.45,
        "discriminator $D_\\phi$\n$\\sigma(s_\\phi([\\mathbf{x}\\odot\\mathbf{m}_u;\\ "
        "\\mathbf{c}_u]))$",
        w=2.3,
        h=0.8,
        kind="op",
    )
    D.arrow(m.right(), Dm.left())
    D.arrow(yhat.bottom(-0.3), Dm.top(-0.3))
    D.text(
        5.45,
        3.7,
        "fake $\\mathbf{x} = \\hat{\\mathbf{y}}_u$\n(detached for $D_\\phi$'s step)",
        ha="right",
        size=SMALL,
    )
    D.line([e.bottom(), (1.0, 1.45), (5.25, 1.45), Dm.bottom(-0.6)])
    D.text(2.2, 1.25, "real $\\mathbf{x} = \\mathbf{e}_u$", size=SMALL)
    D.line([c.top(), (1.0, 6.25), (6.9, 6.25), (6.9, Dm.top()[1])], color=GREY)
    D.text(4.0, 6.4, "$\\mathbf{c}_u$ also goes to $D_\\phi$", size=SMALL, color=GREY)
    lossD = D.box(
        5.85, 0.5, "$\\mathcal{L}_D$: real $\\to$ 1, fake $\\to$ 0", w=2.7, h=0.5, kind="loss"
    )
    D.arrow(Dm.bottom(0.3), lossD.top(0.3))
    lossG = D.box(
        8.3,
        2.45,
        "$\\mathcal{L}_G$: fake $\\to$ 1\n$+\\ \\mathcal{L}_{ZR}$",
        w=1.6,
        h=0.75,
        kind="loss",
    )
    D.arrow(Dm.right(), lossG.left())
    D.arrow(zr.bottom(), lossG.top())
    # The two updates of a step: D_phi on detached fakes first, then G_theta through D_phi.
    D.arrow(lossD.top(0.7), Dm.bottom(0.7), color=BACKWARD, style="--")
    D.text(6.65, 1.2, "update $\\phi$", ha="left", size=SMALL, color=BACKWARD)
    D.line([lossG.top(-0.55), (7.75, 4.1), (3.45, 4.1), G.bottom()], color=BACKWARD, style="--")
    D.text(3.6, 4.25, "update $\\theta$ through $D_\\phi$", ha="left", size=SMALL, color=BACKWARD)
    D.legend(
        0.2,
        0.85,
        [(FORWARD, "-", "values"), (BACKWARD, "--", "gradient steps, fresh masks each step")],
    )
    return D


#: Every diagram: its file name and the function that draws it.
DIAGRAMS: dict[str, Callable[[], Diagram]] = {
    "02_protocol.svg": protocol,
    "03_computation_graph.svg": computation_graph,
    "04_mf_neumf.svg": mf_neumf,
    "05_hybrid_encoder.svg": hybrid_encoder,
    "06_agree_attention.svg": agree_attention,
    "06_consensus.svg": consensus,
    "08_cfgan_loop.svg": cfgan_loop,
}


def draw(name: str) -> Diagram:
    """The diagram ``name`` (a key of :data:`DIAGRAMS`), drawn with the settings :data:`RC`."""
    with matplotlib.rc_context(RC):
        return DIAGRAMS[name]()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder to write the SVGs to")
    parser.add_argument(
        "--png", type=Path, metavar="DIR", help="also write a PNG of each here, to look at"
    )
    args = parser.parse_args(argv)
    for folder in (args.out, args.png):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    for name in DIAGRAMS:
        diagram = draw(name)
        for problem in diagram.problems():
            print(f"{name}: {problem}")
        if args.png is not None:
            with matplotlib.rc_context(RC):
                diagram.fig.savefig(args.png / name.replace(".svg", ".png"), dpi=100)
        diagram.save(args.out / name)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
