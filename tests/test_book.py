"""The Jupyter Book website: its table of contents, its citations, and its pages in a real browser.

The fast tests read book/ and notebooks/ only. The others build the site once with
`scripts/build_book.sh` (offline, warnings as errors), serve it on 127.0.0.1 and load every page
in headless Debian Chromium, driven through the DevTools protocol over a pipe (standard library
only). The browser tests skip when Chromium is missing, unless GROUPREC_REQUIRE_BROWSER=1 (as in
CI), where they fail. Screenshots of a few pages are kept in book/_build/screenshots/.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = REPO / "solutions"
HTML = BOOK / "_build" / "html"
SCREENSHOTS = BOOK / "_build" / "screenshots"

#: `{cite}`key`, `{cite:p}`a,b`, `{cite:t}`key` ... in MyST markdown (not inside a code span).
CITE_ROLE = re.compile(r"(?<!`)\{cite(?::[a-z]+)?\}`([^`\n]+)`")
#: Keys read author + year + a word, all lower case: `cao2018agree`.
KEY_FORMAT = re.compile(r"[a-z]+[0-9]{4}[a-z0-9]+")
#: Fields every entry of a type must have (and every entry names its authors, or a book its
#: editors).
REQUIRED_FIELDS = {
    "article": {"title", "journal", "year", "volume", "pages"},
    "inproceedings": {"title", "booktitle", "year"},
    "incollection": {"title", "booktitle", "publisher", "year", "pages"},
    "book": {"title", "publisher", "year"},
    "misc": {"title", "year"},
}


def toc_files() -> list[str]:
    """Every `file:` entry of book/_toc.yml, root first, in reading order."""

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    return [toc["root"], *walk(toc.get("parts", []))]


def notebook_stems() -> list[str]:
    return sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))


def solution_stems() -> list[str]:
    """The worked solutions, `solutions/NN_name_solutions.ipynb`, one per chapter that has them."""
    return sorted(path.stem for path in SOLUTIONS.glob("*.ipynb"))


def markdown_sources() -> dict[str, str]:
    """Every piece of markdown a reader sees: book/*.md and the notebooks' markdown cells."""
    sources = {str(p.relative_to(REPO)): p.read_text() for p in sorted(BOOK.glob("*.md"))}
    for path in sorted([*NOTEBOOKS.glob("*.ipynb"), *SOLUTIONS.glob("*.ipynb")]):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                sources[f"{path.relative_to(REPO)} cell {index}"] = cell.source
    return sources


def bibliography():
    import pybtex.errors
    from pybtex.database import parse_file

    pybtex.errors.set_strict_mode(True)  # a syntax error or a repeated key raises
    return parse_file(str(BOOK / "references.bib"), bib_format="bibtex")


# --- the book's sources -------------------------------------------------------------------------


def test_toc_lists_every_notebook_and_only_existing_pages():
    listed = toc_files()
    chapters = {f.removeprefix("notebooks/") for f in listed if f.startswith("notebooks/")}
    stems = set(notebook_stems())
    assert not stems - chapters, f"notebooks missing from book/_toc.yml: {sorted(stems - chapters)}"
    assert not chapters - stems, "book/_toc.yml lists notebooks that do not exist: " + str(
        [f"notebooks/{c}.ipynb" for c in sorted(chapters - stems)]
    )
    assert len(listed) == len(set(listed)), f"book/_toc.yml lists a page twice: {listed}"
    missing = [
        f for f in listed if not any((BOOK / f).with_suffix(s).exists() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"book/_toc.yml lists pages that do not exist: {missing}"
    # Chapters appear in the order of their numbers.
    order = [f for f in listed if f.startswith("notebooks/")]
    assert order == sorted(order), f"chapters out of order in book/_toc.yml: {order}"


def test_toc_lists_every_solutions_notebook_and_each_chapter_links_its_own():
    listed = toc_files()
    pages = {f.removeprefix("solutions/") for f in listed if f.startswith("solutions/")}
    stems = set(solution_stems())
    assert not stems - pages, f"solutions missing from book/_toc.yml: {sorted(stems - pages)}"
    assert not pages - stems, "book/_toc.yml lists solutions that do not exist: " + str(
        [f"solutions/{p}.ipynb" for p in sorted(pages - stems)]
    )
    order = [f for f in listed if f.startswith("solutions/")]
    assert order == sorted(order), f"solutions out of order in book/_toc.yml: {order}"
    chapters = set(notebook_stems())
    for stem in sorted(stems):
        chapter = stem.removesuffix("_solutions")
        assert stem.endswith("_solutions") and chapter in chapters, (
            f"solutions/{stem}.ipynb must be named after a chapter: notebooks/<chapter>_solutions"
        )
        exercises = [
            c.source
            for c in nbformat.read(NOTEBOOKS / f"{chapter}.ipynb", as_version=4).cells
            if c.cell_type == "markdown" and "## Exercises" in c.source
        ]
        link = f"{{doc}}`../solutions/{stem}`"
        assert exercises and link in exercises[0], (
            f"the Exercises section of notebooks/{chapter}.ipynb does not link {link}"
        )


def test_the_book_links_the_notebooks_folder():
    for folder in ("notebooks", "solutions"):
        link = BOOK / folder
        assert link.is_symlink() and os.readlink(link) == f"../{folder}", (
            f"book/{folder} must be the committed symlink ../{folder}"
        )


def test_every_notebook_has_a_references_section():
    heading = re.compile(r"^#{1,6}\s*(?:\d+\.?\s*)?References\s*$", re.MULTILINE)
    lacking = [
        path.name
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
        if not any(
            c.cell_type == "markdown" and heading.search(c.source)
            for c in nbformat.read(path, as_version=4).cells
        )
    ]
    assert not lacking, f"notebooks without a markdown 'References' heading: {lacking}"


def test_every_cited_key_is_in_references_bib():
    keys = set(bibliography().entries.keys())
    unknown = []
    for where, text in markdown_sources().items():
        for match in CITE_ROLE.finditer(text):
            for key in (k.strip() for k in match.group(1).split(",")):
                if key not in keys:
                    unknown.append(f"{where}: {key!r}")
    assert not unknown, "cited keys missing from book/references.bib:\n" + "\n".join(unknown)


def test_references_bib_is_complete_and_sorted():
    data = bibliography()
    problems = []
    for key, entry in data.entries.items():
        if not KEY_FORMAT.fullmatch(key):
            problems.append(f"{key}: key should read author+year+word in lower case (cao2018agree)")
        needed = REQUIRED_FIELDS.get(entry.type)
        if needed is None:
            problems.append(
                f"{key}: entry type @{entry.type} is not one of {sorted(REQUIRED_FIELDS)}"
            )
            continue
        lacking = needed - {f.lower() for f in entry.fields}
        if lacking:
            problems.append(f"{key}: @{entry.type} lacks {sorted(lacking)}")
        if "author" not in entry.persons and not (
            entry.type == "book" and "editor" in entry.persons
        ):
            problems.append(f"{key}: no author")
        year = entry.fields.get("year", "")
        if not re.fullmatch(r"(19|20)[0-9]{2}", year):
            problems.append(f"{key}: year {year!r} is not a four-digit year")
        elif year not in key:
            problems.append(f"{key}: the key's year differs from the entry's year {year}")
        pages = entry.fields.get("pages")
        if pages is not None and not re.fullmatch(r"[0-9]+(--[0-9]+)?", pages):
            problems.append(f"{key}: pages {pages!r} should read 'first--last'")
        doi = entry.fields.get("doi")
        if doi is not None and not re.fullmatch(r"10\.[0-9]{4,9}/\S+", doi):
            problems.append(f"{key}: doi {doi!r} is not a bare DOI (10.xxxx/...)")
    keys = list(data.entries.keys())
    if keys != sorted(keys):
        problems.append(f"entries are not sorted by key: {keys}")
    assert not problems, "book/references.bib:\n" + "\n".join(problems)


# --- the built site -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def built_site() -> Path:
    """Build the site once per session, from scratch, exactly as the README says."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_book.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0 and not warnings, (
        f"scripts/build_book.sh failed (exit {result.returncode}):\n"
        + ("\n".join(warnings) if warnings else log[-4000:])
    )
    print(f"book built in {time.monotonic() - started:.0f} s")
    return HTML


def page_paths(html: Path) -> list[str]:
    """Every page of the site, relative to its root; index.html only redirects."""
    skip = {"_static", "_sources", "_images"}
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not skip & set(p.relative_to(html).parts) and p.name != "index.html"
    )


def test_every_chapter_is_a_page_with_launch_buttons(built_site):
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    repo_url = config["repository"]["url"].rstrip("/")
    org_repo = urlsplit(repo_url).path.strip("/")
    branch = config["repository"]["branch"]
    for stem in notebook_stems():
        page = built_site / "notebooks" / f"{stem}.html"
        assert page.exists(), f"no page for notebooks/{stem}.ipynb in {built_site}"
        text = page.read_text()
        expected = {
            "Binder": f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=lab/tree/notebooks/{stem}.ipynb",
            "Colab": f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/notebooks/{stem}.ipynb",
            "repository": f'href="{repo_url}"',
        }
        for name, href in expected.items():
            assert href in text, f"{page.name}: no {name} link {href}"
    redirect = (built_site / "index.html").read_text()
    assert 'url=intro.html"' in redirect, "index.html does not redirect to the introduction"


# --- the built site in a browser ----------------------------------------------------------------


def _move_above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevTools:
    """A headless Chromium driven through the DevTools protocol over --remote-debugging-pipe."""

    def __init__(self, executable: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="grouprec-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The browser's ends move above fd 9, so that placing them on 3 and 4 cannot overwrite one.
        to_browser_read, from_browser_write = (
            _move_above_9(to_browser_read),
            _move_above_9(from_browser_write),
        )

        def wire_pipes():  # the browser reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        args = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.log = Path(self.profile) / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=False,
                preexec_fn=wire_pipes,
            )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"Chromium closed the pipe (exit code {self.process.poll()}):\n{tail}"
                )
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def evaluate(self, session: str, expression: str):
        result = self.send(
            "Runtime.evaluate",
            session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


#: Runs in each page once it has loaded: waits for MathJax and images, then reports.
PAGE_REPORT_JS = r"""
(async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const deadline = Date.now() + 20000;
  const wantsMathJax = document.querySelectorAll('.math').length > 0
    || !!document.querySelector('script[src*="_static/mathjax/"]');
  while (wantsMathJax && !(window.MathJax && MathJax.startup && MathJax.startup.promise)
         && Date.now() < deadline) await sleep(50);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  for (const img of document.images) img.loading = 'eager';
  await Promise.all([...document.images].map((img) => img.complete ? null :
    new Promise((resolve) => { img.addEventListener('load', resolve);
                               img.addEventListener('error', resolve); })));
  const widgetViews = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]').length;
  while (widgetViews && document.querySelectorAll('.jupyter-widgets').length === 0
         && Date.now() < deadline) await sleep(50);
  await sleep(200);  // let late console messages arrive

  const math = [...document.querySelectorAll('.math')];
  const skip = new Set(['SCRIPT', 'STYLE', 'PRE', 'CODE', 'TEXTAREA', 'MJX-CONTAINER']);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName.toUpperCase())) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }});
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    if (text.includes('$$') || /\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$/.test(text)) rawTex.push(text.trim().slice(0, 120));
  }
  const links = [...document.querySelectorAll('a[href]')]
    .map((a) => a.href).filter((href) => new URL(href).origin === location.origin);
  return {
    title: document.title,
    mathElements: math.length,
    mathTypeset: math.filter((el) => el.querySelector('mjx-container')).length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    rawTex,
    images: document.images.length,
    brokenImages: [...document.images].filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.src),
    widgetViews,
    widgetsRendered: document.querySelectorAll('.jupyter-widgets').length,
    links: [...new Set(links)],
  };
})()
"""


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"data", "blob", "about"} or parts.hostname == "127.0.0.1"


def load_page(browser: DevTools, url: str, screenshot: Path | None) -> dict:
    """Open url in a fresh tab and return its report, with what went wrong on the way."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        first_event = len(browser.events)
        browser.send("Page.navigate", session, url=url)
        browser.wait_for_event("Page.loadEventFired", session)
        report = browser.evaluate(session, PAGE_REPORT_JS)
        if screenshot is not None:
            height = browser.evaluate(session, "document.documentElement.scrollHeight")
            shot = browser.send(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": 1280, "height": min(height, 2400), "scale": 1},
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = [e for e in browser.events[first_event:] if e.get("sessionId") == session]
    finally:
        browser.send("Target.closeTarget", targetId=target)
    report["console_errors"] = console_errors(events)
    report["request_problems"] = request_problems(events)
    return report


def console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description", details.get("text"))
            errors.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
    return errors


def request_problems(events: list[dict]) -> list[str]:
    """Requests that left 127.0.0.1, failed, or answered with an HTTP error."""
    problems, urls = [], {}
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if not is_local(url):
                problems.append(f"external request (the site must work offline): {url}")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            problems.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], "?")
            if is_local(url):  # external ones are reported above
                problems.append(f"{params['errorText']}: {url}")
    return problems


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature is http.server's
        pass


def chromium_executable() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


#: Pages kept as screenshots (when they exist): the introduction, a chapter heavy with math, one
#: with figures and widgets, and one with training curves and results tables.
SCREENSHOT_PAGES = {
    "intro.html",
    "notation.html",
    "notebooks/03_backprop.html",
    "notebooks/06_group_aggregation.html",
    "notebooks/08_gan_recommender.html",
}


@pytest.fixture(scope="session")
def site_reports(built_site) -> Iterator[dict[str, dict]]:
    """Serve the site on 127.0.0.1, load every page in Chromium and report on each."""
    executable = chromium_executable()
    if executable is None:
        message = "Chromium not found (Debian: apt-get install chromium)"
        if os.environ.get("GROUPREC_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; GROUPREC_REQUIRE_BROWSER=1 requires the browser tests")
        pytest.skip(message)
    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}/"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    browser = DevTools(executable)
    try:
        reports = {}
        for page in page_paths(built_site):
            shot = SCREENSHOTS / page.replace("/", "__").replace(".html", ".png")
            reports[page] = load_page(
                browser, root + page, shot if page in SCREENSHOT_PAGES else None
            )
            reports[page]["root"] = root
        yield reports
    finally:
        browser.close()
        server.shutdown()
        server.server_close()


def failures(reports: dict[str, dict], key: str) -> str:
    """One line per problem listed under key in any page's report (empty when there is none)."""
    return "\n".join(f"{page}: {item}" for page, report in reports.items() for item in report[key])


def test_pages_load_without_console_errors(site_reports):
    problems = failures(site_reports, "console_errors")
    assert not problems, problems


def test_pages_request_nothing_outside_the_site(site_reports):
    problems = failures(site_reports, "request_problems")
    assert not problems, problems


def test_math_is_typeset_by_the_local_mathjax(site_reports):
    problems = []
    for page, report in site_reports.items():
        if report["mathTypeset"] != report["mathElements"]:
            problems.append(
                f"{page}: {report['mathElements'] - report['mathTypeset']} of "
                f"{report['mathElements']} math elements not typeset"
            )
        if report["mathErrors"]:
            problems.append(f"{page}: {report['mathErrors']} TeX errors (mjx-merror)")
        problems += [f"{page}: raw TeX left in the text: {text!r}" for text in report["rawTex"]]
    assert not problems, "\n".join(problems)
    # The check above must not pass vacuously: the notation page is all math.
    assert site_reports["notation.html"]["mathTypeset"] > 20


def test_images_load(site_reports):
    problems = failures(site_reports, "brokenImages")
    assert not problems, problems
    # Not vacuous: every page shows at least the logo.
    assert all(report["images"] > 0 for report in site_reports.values())


def test_widgets_are_drawn_from_their_saved_state(site_reports):
    missing = [
        f"{page}: {report['widgetViews']} widget views, none drawn"
        for page, report in site_reports.items()
        if report["widgetViews"] and not report["widgetsRendered"]
    ]
    assert not missing, "\n".join(missing)


def test_every_chapter_was_loaded(site_reports):
    loaded = {p for p in site_reports if p.startswith("notebooks/")}
    expected = {f"notebooks/{stem}.html" for stem in notebook_stems()}
    assert loaded == expected
    assert all(site_reports[p]["title"] for p in site_reports), "a page without a title"


def test_every_worked_solution_was_loaded_and_shows_its_figures(site_reports):
    """Each solutions notebook is a page of the site, loaded like the chapters; those whose
    notebook draws a figure show it as an image on the page."""
    loaded = {p for p in site_reports if p.startswith("solutions/")}
    assert loaded == {f"solutions/{stem}.html" for stem in solution_stems()}
    for stem in solution_stems():
        nb = nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4)
        figures = sum(
            "image/png" in out.get("data", {})
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
        )
        if figures:  # the logo is one image; the figures come on top of it
            assert site_reports[f"solutions/{stem}.html"]["images"] > figures, stem


def test_internal_links_resolve(site_reports):
    """Every same-site link answers 200, and its #fragment names an element of the target page."""
    pages: dict[str, str | None] = {}
    broken = []
    for page, report in site_reports.items():
        for link in report["links"]:
            url, fragment = urldefrag(link)
            if url not in pages:
                try:
                    with urllib.request.urlopen(url, timeout=10) as response:
                        body = response.read()
                        pages[url] = body.decode() if url.endswith((".html", "/")) else ""
                except urllib.error.HTTPError as error:
                    pages[url] = None
                    broken.append(f"{page}: {link} -> HTTP {error.code}")
            body = pages[url]
            if body and fragment and f'id="{unquote(fragment)}"' not in body:
                broken.append(f"{page}: {link} -> no element with id {unquote(fragment)!r}")
    assert not broken, "\n".join(broken)
    # A site whose pages link nowhere would pass vacuously.
    intro = site_reports["intro.html"]
    assert {urljoin(intro["root"], f"notebooks/{s}.html") for s in notebook_stems()} <= set(
        intro["links"]
    ), "the introduction does not link every chapter"


def test_screenshots_were_kept(site_reports):
    kept = {p.name for p in SCREENSHOTS.glob("*.png")}
    expected = {
        p.replace("/", "__").replace(".html", ".png") for p in SCREENSHOT_PAGES if p in site_reports
    }
    assert expected <= kept and all((SCREENSHOTS / n).stat().st_size > 10_000 for n in expected)


def test_binder_environment_installs_the_package_and_fetches_the_data():
    """The Binder launch button needs binder/: pinned CPU torch, then the package and the data."""
    requirements = (REPO / "binder" / "requirements.txt").read_text()
    assert "torch==" in requirements and "download.pytorch.org/whl/cpu" in requirements
    post_build = REPO / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    script = post_build.read_text()
    assert "pip install" in script and "-e" in script
    for name in ("camra2011", "mafengwo"):
        assert f"grouprec fetch {name}" in script
