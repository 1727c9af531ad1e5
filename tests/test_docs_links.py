"""The README and docs/ stand alone: every link stays inside the repository and resolves.

Relative links must name a file or directory of the repository (and, for Markdown files, an
existing heading when they carry an anchor); absolute links may only point at the local service
or the reserved example domains. The docs must not send readers to a contract kept elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "deploy").rglob("*.md")]
)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0"}  # noqa: S104 (a name, nothing binds here)
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
BARE_URL = re.compile(r"(?<![<(\"'])\b(?:https?|ftp)://[^\s)>\]`]+")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
FORBIDDEN = re.compile(r"SPEC\.md|SPEC\s*§|shared/SPEC")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link target of a Markdown text, outside code."""
    prose = _prose(text)
    found: list[str] = []
    for pattern in (INLINE_LINK, REFERENCE, AUTOLINK, HTML_LINK, BARE_URL):
        found += [m.group(1) if pattern.groups else m.group(0) for m in pattern.finditer(prose)]
    return found


def slug(heading: str) -> str:
    """The anchor a heading gets on the usual Markdown renderers (GitHub's rule)."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (repeats numbered as renderers do)."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def problem(source: Path, target: str) -> str | None:
    """Why a link is not allowed, or None."""
    parts = urlsplit(target)
    if parts.scheme or target.startswith("//"):
        host = (parts.hostname or "").lower()
        if parts.scheme in ("http", "https") and (
            host in LOCAL_HOSTS or any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS)
        ):
            return None
        return "points outside the repository"
    if not parts.path:
        file = source
    else:
        file = (source.parent / unquote(parts.path)).resolve()
        if not file.is_relative_to(ROOT):
            return "points outside the repository"
        if not file.exists():
            return "names a file that does not exist"
    if parts.fragment and file.suffix == ".md" and parts.fragment not in anchors(file):
        return f"names a heading that {file.relative_to(ROOT)} does not have"
    return None


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_scanner_sees_every_kind_of_link(tmp_path: Path) -> None:
    text = (
        "See [a](x.md), ![b](img/c.png), [d][r], <https://e.org/f>, "
        '<a href="g.html">g</a>, https://h.example.com/i and `[no](code.md)`.\n\n'
        "[r]: ../outside.md\n\n```\n[no](fenced.md) https://fenced.org\n```\n"
    )
    assert links(text) == [
        "x.md",
        "img/c.png",
        "../outside.md",
        "https://e.org/f",
        "g.html",
        "https://h.example.com/i",
    ]
    assert problem(ROOT / "README.md", "../shared/SPEC.md") == "points outside the repository"
    assert problem(ROOT / "README.md", "https://github.com/x") == "points outside the repository"
    assert problem(ROOT / "README.md", "http://127.0.0.1:8000/docs") is None
    assert problem(ROOT / "README.md", "docs/nothing.md") == "names a file that does not exist"
    assert problem(ROOT / "README.md", "docs/contract.md#no-such-heading") is not None
    assert problem(ROOT / "README.md", "docs/contract.md#error-codes") is None
    assert slug("`POST /status-changes` (detectors, `ingest` scope)") == (
        "post-status-changes-detectors-ingest-scope"
    )


@pytest.mark.parametrize("path", DOCS, ids=_id)
def test_links_stay_inside_the_repository_and_resolve(path: Path) -> None:
    bad = [f"{t}: {why}" for t in links(path.read_text()) if (why := problem(path, t))]
    assert not bad, f"{_id(path)} has links that do not stand alone: {bad}"


@pytest.mark.parametrize("path", DOCS, ids=_id)
def test_no_reference_to_a_contract_outside_the_repository(path: Path) -> None:
    lines = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not lines, f"{_id(path)} cites SPEC; link docs/contract.md instead: {lines}"
