"""Every relative link and anchor in README.md and docs/*.md resolves.

Cheap: it reads the Markdown files only. Anchors follow GitHub's rule: the heading's text,
lower-cased, with punctuation dropped and spaces turned into hyphens.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def outside_code(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in outside_code(page.read_text()):
        heading = re.match(r"#{1,6} (.*)", line)
        if heading:
            found.add(slug(heading.group(1)))
    return found


def links(page: Path) -> list[str]:
    return [
        target
        for line in outside_code(page.read_text())
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line))
        if not re.match(r"[a-z]+:", target)
    ]


def test_the_docs_are_there():
    names = {page.name for page in PAGES}
    assert {"README.md", "configuration.md", "getting-started.md", "architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
