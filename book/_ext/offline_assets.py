"""Serve MathJax 3 and the ipywidgets HTML manager from the built site, never from a CDN.

Both come from the npm packages pinned in the repository's package.json (`npm ci` installs them
into node_modules/). When an HTML build finishes, the files the pages load are copied into
``_static/mathjax/`` and ``_static/widgets/`` (with widgets_mathjax3.js from this folder);
``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` there. A missing package stops
the build with a message saying what to run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: What each served folder needs: (npm package directory, files and folders inside it).
#: MathJax's combined component loads fonts and TeX extensions (input/tex/extensions/*) on demand,
#: and its context menu loads the accessibility (a11y, sre) and ui components.
ASSETS = {
    "mathjax": (
        "mathjax/es5",
        ["tex-mml-chtml.js", "input", "output/chtml", "a11y", "sre", "ui", "adaptors"],
    ),
    # embed.js is the standalone manager (no RequireJS); its icon fonts sit beside it.
    "widgets": ("@jupyter-widgets/html-manager/dist", ["embed.js", "*.woff2", "*.woff", "*.ttf"]),
}


#: Written beside the widget manager: makes its MathJax 2 call work with MathJax 3. It is kept in
#: _ext/ because Jupyter Book adds every script in book/_static/ to every page.
WIDGETS_SHIM = Path(__file__).with_name("widgets_mathjax3.js")


def _node_modules(app: Sphinx) -> Path:
    return Path(app.srcdir).resolve().parent / "node_modules"


def _sources(app: Sphinx) -> dict[str, list[tuple[Path, Path]]]:
    """Map each served folder to (source, relative destination) pairs; fail if any is missing."""
    root = _node_modules(app)
    found: dict[str, list[tuple[Path, Path]]] = {}
    for target, (package_dir, patterns) in ASSETS.items():
        base = root / package_dir
        pairs = []
        for pattern in patterns:
            matches = sorted(base.glob(pattern))
            if not matches:
                raise ExtensionError(
                    f"offline_assets: {base / pattern} not found. Run `npm ci` in the repository "
                    "root (scripts/setup.sh does) to install the pinned MathJax and widget manager."
                )
            pairs += [(path, path.relative_to(base)) for path in matches]
        found[target] = pairs
    return found


def check_sources(app: Sphinx) -> None:
    """Fail at the start of the build, not after it, when node_modules lacks a package."""
    if app.builder.format == "html":
        _sources(app)


def copy_assets(app: Sphinx, exception: Exception | None) -> None:
    """Copy the served files into the output's _static folder after a successful HTML build."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for target, pairs in _sources(app).items():
        for source, relative in pairs:
            destination = static / target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, destination, dirs_exist_ok=True)
            else:
                shutil.copy2(source, destination)
        LOGGER.info(f"offline_assets: served {target} from {_node_modules(app)}")
    shutil.copy2(WIDGETS_SHIM, static / "widgets" / WIDGETS_SHIM.name)


def drop_repeated_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Write each script once per page.

    sphinx-thebe registers an inline script (`const THEBE_JS_URL = ...`) after the HTML builder
    has started; Sphinx 7 then lists it twice (once named None, once ""), and the second copy
    throws "Identifier 'THEBE_JS_URL' has already been declared" in the browser.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (
            getattr(script, "filename", None) or "",
            getattr(script, "priority", None),
            tuple(sorted((k, str(v)) for k, v in attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_sources)
    app.connect("html-page-context", drop_repeated_scripts)
    app.connect("build-finished", copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
