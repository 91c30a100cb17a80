"""Every relative link of the documentation resolves: the file exists, and a #anchor names one of its headings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

PAGES = sorted(
    [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "DEVELOPERS.md", *(REPO / "docs").glob("*.md")],
    key=str,
)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The page without its code, where brackets and hashes are not links or headings."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page has; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked offline
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_the_check_sees_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Speed and memory\n\n## How far from 0.55, and why\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#speed-and-memory) [ok](other.md#how-far-from-055-and-why) `[code](gone.md)`\n"
        "[gone](gone.md) [bad](other.md#speed) [self](#nowhere)\n```\n[fenced](gone.md)\n```\n"
    )
    assert broken_links(page) == [
        "gone.md: no such file",
        "other.md#speed: no heading with anchor #speed",
        "#nowhere: no heading with anchor #nowhere",
    ]


def test_readme_stays_a_front_door():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
