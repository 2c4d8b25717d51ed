"""The built book (``_build/html``) as a reader meets it.

Run after ``jupyter-book build .``; without a build every test skips. Static checks of the
HTML, for every page of ``_toc.yml``:

* the page was built and has text;
* every image and embedded animation resolves (the file exists, or its data URI decodes);
* no traceback or error text in the cells' outputs, no warnings printed into them;
* every cross-reference, citation and glued number resolved (no ``??``, no unresolved
  ``{numref}``/``{cite}``/``{doc}`` role, every glue key of the page's Markdown stored by its
  notebook);
* every local link points to a file that exists, and its ``#anchor`` to an id on that page;
* nothing is loaded from the network (scripts, stylesheets, images, fonts in the stylesheets),
  every local script and stylesheet exists, and no script is declared twice;
* Table 1 (``chapters/07_results.html``) is an HTML table with a row for every model label of
  ``motionseg.results.LABELS``;
* no two tables of a page share an HTML id, and every bold cell is its column's best
  (``tests/tablecheck.py`` reads the page's CSS as a browser applies it);
* chapter N numbers its figures N.1, N.2, ...;
* the site weighs at most 20 MB, and each page's HTML with the images it shows at most 1 MB.

In a browser: each page is opened in headless Chromium (skipped where it is missing) from a
local HTTP server and watched through the DevTools protocol (a minimal WebSocket client below,
no extra package): the page fails on an uncaught JavaScript exception, a console error, a
failed request or a request to any other host, on math that MathJax did not render, and on
an empty page; at 1400 px no table may be wider than the content column (dropdowns and tabs
opened). A screenshot of each page at 1400 px is written to ``_build/screenshots/``, and one at
a phone's 400 px to ``_build/screenshots/phone/``.

Checks that need a page's stored outputs (glue, figures referenced by number, Table 1) skip
for a notebook that has not been executed; the notebook tests (nbval) report those.
"""
from __future__ import annotations

import base64
import binascii
import copy
import functools
import http.server
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
# another build can be checked by pointing MOTIONSEG_BOOK_HTML at it
BUILD = Path(os.environ.get("MOTIONSEG_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = BUILD.parent / "screenshots"

pytestmark = pytest.mark.skipif(not (BUILD / "index.html").exists(),
                                reason=f"no built book in {BUILD}: run `jupyter-book build .` first")

bs4 = pytest.importorskip("bs4", reason="beautifulsoup4 (installed with jupyter-book) parses the pages")
import tablecheck  # noqa: E402  (needs bs4)


# -- the pages ---------------------------------------------------------------------------------------

def _toc_files() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections"):
                walk(entry.get(key, []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [str(Path(f).with_suffix("")) for f in files]


PAGES = _toc_files()


def _html_path(page: str) -> Path:
    return BUILD / f"{page}.html"


@functools.lru_cache(maxsize=None)
def _soup(path: Path) -> Any:
    return bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _page(page: str) -> Any:
    path = _html_path(page)
    if not path.exists():
        pytest.fail(f"{page}: {path.relative_to(ROOT)} was not built")
    return _soup(path)


@functools.lru_cache(maxsize=None)
def _notebook(page: str) -> dict[str, Any] | None:
    path = ROOT / f"{page}.ipynb"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _executed(page: str) -> bool:
    """False for a notebook none of whose code cells has a stored output."""
    nb = _notebook(page)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"] if nb else []
    return not code or any(c.get("outputs") for c in code)


def _skip_unless_executed(page: str) -> None:
    if not _executed(page):
        pytest.skip(f"{page}.ipynb has no stored outputs (not executed yet; the nbval tests report it)")


def _ids(soup: Any) -> set[str]:
    return {t["id"] for t in soup.find_all(id=True)} | {t["name"] for t in soup.find_all(attrs={"name": True})}


def _is_external(url: str) -> bool:
    return bool(urllib.parse.urlsplit(url).scheme) or url.startswith("//")


def _local_target(page_path: Path, url: str) -> tuple[Path, str]:
    """The file a relative URL on ``page_path`` points to, and its fragment."""
    parts = urllib.parse.urlsplit(url)
    target = page_path if not parts.path else (page_path.parent / urllib.parse.unquote(parts.path)).resolve()
    return target, urllib.parse.unquote(parts.fragment)


def _text_outside_code(soup: Any) -> str:
    copy = bs4.BeautifulSoup(str(soup.find("main") or soup), "html.parser")
    for tag in copy.find_all(["pre", "code", "script", "style"]):
        tag.decompose()
    return copy.get_text(" ")


# -- static checks -------------------------------------------------------------------------------------

def test_toc_is_read() -> None:
    assert PAGES and PAGES[0] == "intro", PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_built(page: str) -> None:
    soup = _page(page)
    main = soup.find("main") or soup.body
    assert main is not None and len(main.get_text(" ", strip=True)) > 200, f"{page}: the page is (nearly) empty"


DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,([^\"'\s)]*)")
MAGIC = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8", "image/gif": b"GIF8"}


def _check_data_uri(uri: str) -> str | None:
    m = DATA_URI.match(uri)
    if not m:
        return "not a data URI"
    mime, _, b64, payload = m.groups()
    try:
        raw = base64.b64decode(payload, validate=True) if b64 else urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        return f"does not decode ({exc})"
    if not raw:
        return "is empty"
    if mime in MAGIC and not raw.startswith(MAGIC[mime]):
        return f"is not a {mime}"
    return None


@pytest.mark.parametrize("page", PAGES)
def test_images_resolve(page: str) -> None:
    soup, path = _page(page), _html_path(page)
    problems = []
    for tag, attr in (("img", "src"), ("source", "src"), ("video", "src"), ("video", "poster"), ("embed", "src"),
                      ("object", "data"), ("iframe", "src"), ("image", "href")):
        for el in soup.find_all(tag):
            url = el.get(attr)
            if url is None:
                if tag == "img":
                    problems.append(f"<img> without src: {str(el)[:80]}")
                continue
            if url.startswith("data:"):
                err = _check_data_uri(url)
                if err:
                    problems.append(f"<{tag} {attr}> data URI {err}")
            elif _is_external(url):
                problems.append(f"<{tag} {attr}={url!r}> is loaded from the network")
            else:
                target, _ = _local_target(path, url)
                if not target.is_file():
                    problems.append(f"<{tag} {attr}={url!r}>: {target} does not exist")
    # animations (matplotlib's to_jshtml) keep their frames as data URIs inside scripts
    for script in soup.find_all("script"):
        for m in re.finditer(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\\n]+", script.get_text()):
            err = _check_data_uri(m.group().replace("\\n", ""))
            if err:
                problems.append(f"animation frame data URI {err}")
    assert not problems, f"{page}:\n" + "\n".join(problems)


ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|\b\w*(Error|Exception)\b:|^\s*Error\b", re.M)


@pytest.mark.parametrize("page", PAGES)
def test_no_error_output(page: str) -> None:
    soup = _page(page)
    problems = [f"traceback output: {el.get_text(' ', strip=True)[:200]}" for el in soup.select(".traceback")]
    for out in soup.select(".cell_output, .output"):
        text = out.get_text("\n")
        m = ERROR_TEXT.search(text)
        if m:
            context = text[max(m.start() - 80, 0):m.end() + 120]
            problems.append(f"error text {m.group()!r} in an output: ...{context}...")
    for out in soup.select(".output.stderr, .stderr"):
        text = out.get_text("\n")
        if re.search(r"\w*Warning\b", text):
            problems.append(f"a warning printed into the page: {text.strip()[:240]}")
    assert not problems, f"{page}:\n" + "\n".join(dict.fromkeys(problems))


# What a reader sees where a glued string is shown with the wrong role ({glue:text} of a Markdown
# object) or a cell's last expression is an object without a display: its Python repr.
OBJECT_REPR = re.compile(r"<[\w.]+ object(?: at 0x[0-9a-f]+)?>")


@pytest.mark.parametrize("page", PAGES)
def test_no_object_repr_in_the_text(page: str) -> None:
    soup = copy.copy(_page(page))  # the parsed page is cached and shared: the other tests need its styles
    for hidden in soup.select("script, style, .cell_input, details.hide"):
        hidden.decompose()
    found = sorted({m.group() for m in OBJECT_REPR.finditer(soup.get_text(" "))})
    assert not found, f"{page}: Python object reprs in the page's text: {found}"


@pytest.mark.parametrize("page", PAGES)
def test_references_resolved(page: str) -> None:
    soup = _page(page)
    bad = soup.select(".problematic")
    problems = [f"{len(bad)} problematic markup element(s)"] if bad else []
    problems += [f"system message: {el.get_text(' ', strip=True)[:160]}" for el in soup.select(".system-message")]
    text = _text_outside_code(soup)
    if "??" in text:
        i = text.index("??")
        problems.append(f"'??' in the text: ...{text[max(i - 60, 0):i + 40]}...")
    for role in re.findall(r"\{(?:cite|numref|ref|doc|glue|eq)[^}]*\}`[^`]*`", text):
        problems.append(f"unrendered role {role!r}")
    for el in soup.select(".bibtex-citation"):
        if el.find("a") is None:  # sphinxcontrib-bibtex renders a key it cannot find as "[]"
            problems.append(f"unresolved citation {el.get_text(strip=True)!r}")
    for el in soup.select(".xref"):
        if el.find_parent("a") is None:
            problems.append(f"unresolved reference {el.get_text(strip=True)!r} ({' '.join(el.get('class', []))})")
    if not _executed(page):  # its figures are missing, so references to them cannot resolve
        tolerated = [p for p in problems if "std-numref" in p]
        problems = [p for p in problems if p not in tolerated]
        if tolerated and not problems:
            pytest.skip(f"{page}.ipynb not executed yet: {len(tolerated)} reference(s) to its figures unresolved")
    assert not problems, f"{page}:\n" + "\n".join(problems)


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`|```\{glue(?::\w+)?\}\s+(\S+)")


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()])
def test_glue_keys_stored(page: str) -> None:
    """Every number glued into the page's Markdown is stored in the notebook (else it vanishes)."""
    nb = _notebook(page)
    assert nb is not None
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    wanted: dict[str, set[str]] = {}
    for m in GLUE_ROLE.finditer(markdown):
        ref = m.group(1) or m.group(2)
        doc, _, key = ref.rpartition("::")
        key = key.split(":", 1)[0]  # drop a format spec
        wanted.setdefault(str(Path(page).parent / doc) if doc else page, set()).add(key)
    if not wanted:
        return
    _skip_unless_executed(page)
    missing = []
    for doc, keys in wanted.items():
        other = _notebook(str(Path(doc)))
        stored = {o["metadata"]["scrapbook"]["name"] for c in (other or {"cells": []})["cells"]
                  for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
        missing += [f"{doc}::{k}" for k in sorted(keys - stored)]
    assert not missing, f"{page}: glued in the text but not stored by the notebook: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_internal_links(page: str) -> None:
    soup, path = _page(page), _html_path(page)
    own_ids = _ids(soup)
    problems = []
    for a in soup.find_all("a", href=True):
        href = a["href"]
        if _is_external(href) or href.startswith(("mailto:", "javascript:")):
            continue
        target, fragment = _local_target(path, href)
        if target == path.resolve():
            if fragment and fragment not in own_ids:
                problems.append(f"#{fragment}: no such anchor on this page")
            continue
        if not target.exists():
            problems.append(f"{href}: {target} does not exist")
        elif fragment and target.suffix == ".html" and fragment not in _ids(_soup(target)):
            problems.append(f"{href}: no anchor #{fragment} on {target.relative_to(BUILD)}")
    assert not problems, f"{page}:\n" + "\n".join(sorted(set(problems)))


@functools.lru_cache(maxsize=None)
def _css_problems(css: Path) -> tuple[str, ...]:
    text = css.read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"@import\s+(?:url\()?\s*['\"]?((?:https?:)?//[^'\")\s]+)", text)
    found += re.findall(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)", text)
    return tuple(f"{css.relative_to(BUILD)} loads {u}" for u in found)


@pytest.mark.parametrize("page", PAGES)
def test_nothing_from_the_network(page: str) -> None:
    soup, path = _page(page), _html_path(page)
    problems = []
    srcs = [s["src"] for s in soup.find_all("script", src=True)]
    links = [(l.get("rel") or [], l["href"]) for l in soup.find_all("link", href=True)]
    for url in srcs + [href for rel, href in links if {"stylesheet", "preload", "modulepreload", "icon"} & set(rel)]:
        if _is_external(url):
            problems.append(f"loads {url} from the network")
            continue
        target, _ = _local_target(path, url)
        if not target.is_file():
            problems.append(f"{url}: {target} does not exist")
        elif target.suffix == ".css":
            problems += _css_problems(target)
    for style in soup.find_all("style"):
        problems += [f"inline style loads {u}" for u in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)",
                                                                      style.get_text())]
    assert not problems, f"{page}:\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("page", PAGES)
def test_scripts_declared_once(page: str) -> None:
    soup = _page(page)
    srcs = [urllib.parse.urlsplit(s["src"]).path for s in soup.find_all("script", src=True)]
    bodies = [s.get_text().strip() for s in soup.find_all("script", src=False)
              if s.get_text().strip() and s.get("type") in (None, "text/javascript", "module")]
    twice = sorted({s for s in srcs if srcs.count(s) > 1}) + sorted({b[:100] for b in bodies if bodies.count(b) > 1})
    assert not twice, f"{page}: declared more than once: {twice}"


def test_table1_has_every_model() -> None:
    from motionseg.results import LABELS

    page = "chapters/07_results"
    _skip_unless_executed(page)
    tables = _page(page).find_all("table")
    assert tables, f"{page}: no HTML table"

    def rows(table: Any) -> list[str]:
        return [" ".join(c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])) for tr in table.find_all("tr")]

    best = max(tables, key=lambda t: sum(any(label in r for r in rows(t)) for label in LABELS.values()))
    missing = [label for label in LABELS.values() if not any(label in r for r in rows(best))]
    assert not missing, f"{page}: Table 1 has no row for {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_table_ids_unique_and_bold_is_best(page: str) -> None:
    """No two tables of a page share an HTML id (pandas addresses each cell's style, the bold "best"
    included, to the table's id, so a shared id lets one table's bold reach the other), and every
    bold cell holds its column's best value (``tablecheck`` reads the CSS as a browser applies it)."""
    soup = _page(page)
    problems = [f"{len(soup.find_all(id=i))} tables share the id {i}" for i in tablecheck.shared_ids(soup)]
    bold = tablecheck.bold_problems(soup)
    problems += bold[:8] + ([f"... and {len(bold) - 8} more"] if len(bold) > 8 else [])
    assert not problems, f"{page}:\n" + "\n".join(problems)


CHAPTER = re.compile(r"chapters/(\d+)_")


@pytest.mark.parametrize("page", [p for p in PAGES if CHAPTER.match(p)])
def test_figures_numbered_per_chapter(page: str) -> None:
    """Chapter N numbers its figures N.1, N.2, ... (``numbered: true`` on the chapters' part of the TOC)."""
    _skip_unless_executed(page)
    chapter = int(CHAPTER.match(page).group(1))
    numbers = [el.get_text(strip=True) for el in _page(page).select("figcaption .caption-number")]
    expected = [f"Fig. {chapter}.{k}" for k in range(1, len(numbers) + 1)]
    assert numbers == expected, f"{page}: figures numbered {numbers[:5]}..., expected {expected[:5]}..."


SITE_LIMIT = 20_000_000  # bytes: the whole site (issue 24)
PAGE_LIMIT = 1_000_000  # bytes: a page's HTML and the images it shows


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_site_is_light() -> None:
    """``_build/html`` at most 20 MB; if not, the largest folders say where the weight is."""
    total = sum(p.stat().st_size for p in _files(BUILD))
    if total > SITE_LIMIT:
        by_folder: dict[str, int] = {}
        for p in _files(BUILD):
            key = "/".join(p.relative_to(BUILD).parent.parts[:2]) or "."
            by_folder[key] = by_folder.get(key, 0) + p.stat().st_size
        top = sorted(by_folder.items(), key=lambda kv: -kv[1])[:6]
        pytest.fail(f"the site holds {total / 1e6:.1f} MB (limit {SITE_LIMIT / 1e6:.0f} MB); largest: "
                    + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in top))


def _page_weight(page: str) -> tuple[int, list[tuple[int, str]]]:
    """Bytes of a page's HTML (with its data URIs) and of the local images it shows; the images by size."""
    soup, path = _page(page), _html_path(page)
    images = {}
    for tag, attr in (("img", "src"), ("source", "src"), ("video", "src"), ("video", "poster")):
        for el in soup.find_all(tag):
            url = el.get(attr) or ""
            if url and not url.startswith("data:") and not _is_external(url):
                target, _ = _local_target(path, url)
                if target.is_file():
                    images[target] = target.stat().st_size
    html = path.stat().st_size
    return html + sum(images.values()), sorted(((n, t.name) for t, n in images.items()), reverse=True)


@pytest.mark.parametrize("page", PAGES)
def test_page_is_light(page: str) -> None:
    """A page's HTML and the images it shows weigh at most 1 MB (a reader on a slow line waits for them).

    With the chapters' outputs stored before issue 24 (GIFs of 500-670 KB, JPEGs at quality 88),
    chapters 04, 05 and 08 fail here until they are run again with the compact defaults of
    ``figures.show`` and the animations.
    """
    total, images = _page_weight(page)
    html = _html_path(page).stat().st_size
    assert total <= PAGE_LIMIT, (f"{page}: {total / 1e6:.2f} MB (limit {PAGE_LIMIT / 1e6:.0f} MB): HTML "
                                 f"{html / 1e3:.0f} KB, {len(images)} images, the largest "
                                 + ", ".join(f"{name[-12:]} {n / 1e3:.0f} KB" for n, name in images[:4]))


# -- in a browser ----------------------------------------------------------------------------------------

def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class DevTools:
    """Just enough of a WebSocket client (RFC 6455) to speak the Chrome DevTools protocol."""

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        url = urllib.parse.urlsplit(ws_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buf = bytearray()
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.buf = bytearray(rest)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("DevTools closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)  # clients must mask what they send
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _receive(self) -> dict[str, Any]:
        data = b""
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._take(8))[0]
            mask = self._take(4) if b1 & 0x80 else None
            payload = self._take(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x0, 0x1, 0x2):
                data += payload
                if b0 & 0x80:
                    return json.loads(data)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            reply = self._receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def collect(self, seconds: float, until: str | None = None) -> bool:
        """Gather events for ``seconds``, or until event ``until`` arrives (then True)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                event = self._receive()
            except (socket.timeout, TimeoutError):
                break
            self.events.append(event)
            if until and event.get("method") == until:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(BUILD)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium (install the Debian package `chromium`, or set CHROMIUM): browser checks skipped")
    profile = tempfile.mkdtemp(prefix="site-test-chromium-")
    proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}",
                             "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium ({exe}) did not start its DevTools endpoint")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        tools = DevTools(f"ws://127.0.0.1:{port}{path}")
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


DESKTOP, PHONE = 1400, 400  # px: the widths a reader sees the book at
# Measures, in the page's content column, every table, with dropdowns opened and every tab's
# content shown so that hidden tables are measured too (after the screenshot: it changes the page).
MEASURE_TABLES = """(() => {
    const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const show = document.createElement('style');
    show.textContent = '.sd-tab-content, .toggle-hidden, details > * { display: block !important; }';
    document.head.appendChild(show);
    const box = article.getBoundingClientRect(), css = getComputedStyle(article);
    const column = box.width - parseFloat(css.paddingLeft) - parseFloat(css.paddingRight);
    const tables = [...article.querySelectorAll('table')].map(t => ({
        id: t.id, width: Math.max(t.getBoundingClientRect().width, t.scrollWidth),
        name: ((t.caption && t.caption.innerText) || (t.rows[0] && t.rows[0].innerText) || '').replace(/\\s+/g, ' ').slice(0, 70)}));
    return {column, tables};
})()"""


def _open(browser: DevTools, url: str, screenshot: Path, width: int = DESKTOP,
          mobile: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Load ``url`` in a fresh tab ``width`` px wide; returns the problems seen and a few facts about
    the page (its text, math, and the width of its content column and of each of its tables)."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile}, session=session)
        browser.events.clear()
        browser.call("Page.navigate", {"url": url}, session=session)
        loaded = browser.collect(30, until="Page.loadEventFired")
        browser.collect(1.0)  # late scripts (async, deferred) and their errors
        facts = browser.call("Runtime.evaluate", {"expression": """(async () => {
            const math = document.querySelectorAll('.math, span.math, div.math').length;
            let rendered = -1;
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                await MathJax.startup.promise; rendered = document.querySelectorAll('mjx-container').length; }
            const main = document.querySelector('main') || document.body;
            return {math, rendered, text: main ? main.innerText.length : 0,
                    height: document.documentElement.scrollHeight};
        })()""", "awaitPromise": True, "returnByValue": True}, session=session, timeout=30)["result"]["value"]
        browser.collect(0.2)
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        facts.update(browser.call("Runtime.evaluate", {"expression": MEASURE_TABLES, "returnByValue": True},
                                  session=session)["result"]["value"])
        events = [e for e in browser.events if e.get("sessionId") == session]
    finally:
        browser.call("Target.closeTarget", {"targetId": target})
    origin = urllib.parse.urlsplit(url).netloc
    problems = [] if loaded else ["the load event never fired"]
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            problems.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}"
                            f" ({d.get('url', '')}:{d.get('lineNumber', '')})")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            problems.append("console error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                         for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            if urllib.parse.urlsplit(p["entry"].get("url", "")).path == "/favicon.ico":
                continue  # asked for by the browser, not by the page
            problems.append(f"browser error: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            req = urllib.parse.urlsplit(p["request"]["url"])
            if req.scheme in ("http", "https", "ws", "wss") and req.netloc != origin:
                problems.append(f"request to the network: {p['request']['url']}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            problems.append(f"request failed: {p.get('errorText')}")
    return list(dict.fromkeys(problems)), facts


def _blank(png: bytes) -> bool:
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png), format="png")
    return float(img[..., :3].std()) < 0.01


_VISITS: dict[tuple[str, int], tuple[list[str], dict[str, Any], Path]] = {}


def _visit(page: str, server: str, browser: DevTools, width: int = DESKTOP) -> tuple[list[str], dict[str, Any], Path]:
    """Open a page once per width (the checks at one width share the visit); screenshots go to
    ``_build/screenshots/`` (desktop) and ``_build/screenshots/phone/``."""
    if not _html_path(page).exists():
        pytest.fail(f"{page}: not built")
    if (page, width) not in _VISITS:
        folder = SCREENSHOTS if width == DESKTOP else SCREENSHOTS / "phone"
        shot = folder / f"{page.replace('/', '__')}.png"
        problems, facts = _open(browser, f"{server}/{page}.html", shot, width, mobile=width < 800)
        _VISITS[(page, width)] = (problems, facts, shot)
    return _VISITS[(page, width)]


@pytest.mark.parametrize("page", PAGES)
def test_page_in_browser(page: str, server: str, browser: DevTools) -> None:
    problems, facts, shot = _visit(page, server, browser)
    problems = list(problems)
    if facts["text"] < 200:
        problems.append(f"the page is (nearly) empty: {facts['text']} characters of text")
    if _blank(shot.read_bytes()):
        problems.append(f"the screenshot {shot} is blank")
    if facts["math"] and facts["rendered"] < 1:
        problems.append(f"{facts['math']} math element(s) but MathJax rendered none "
                        f"({'MathJax not loaded' if facts['rendered'] < 0 else 'nothing typeset'})")
    assert not problems, f"{page}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_tables_fit_the_column(page: str, server: str, browser: DevTools) -> None:
    """At 1400 px no table is wider than the page's content column (else a reader scrolls sideways to
    see its right-hand columns), tables in dropdowns and tabs included."""
    _, facts, _ = _visit(page, server, browser)
    column = facts["column"]
    wide = [f"{t['width']:.0f} px: {t['name'] or t['id']}" for t in facts["tables"] if t["width"] > column + 1]
    assert not wide, f"{page}: {len(wide)} table(s) wider than the {column:.0f} px column:\n" + "\n".join(wide)


@pytest.mark.parametrize("page", PAGES)
def test_page_on_a_phone(page: str, server: str, browser: DevTools) -> None:
    """At 400 px (a phone) the page loads without errors and shows something; its screenshot is in
    ``_build/screenshots/phone/`` for a person to look at."""
    problems, facts, shot = _visit(page, server, browser, PHONE)
    problems = list(problems)
    if _blank(shot.read_bytes()):
        problems.append(f"the screenshot {shot} is blank")
    assert not problems, f"{page} at {PHONE} px:\n" + "\n".join(problems)
