"""Every relative link in the README and docs/ leads somewhere: the file or folder exists in
the repository, and a #anchor names a heading of the Markdown file it points into (GitHub's
heading ids: lower case, punctuation dropped, spaces as hyphens)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target), outside code spans and fenced blocks
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def heading_ids(page):
    ids = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            text = match.group(1).strip().lower()
            ids.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return ids


def relative_links(page):
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_heading_ids_follow_githubs_rule(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# The `puffer` command\n## Exit statuses\n```\n# not a heading\n```\n## 2026-12-02: the default's seeds\n")
    assert heading_ids(page) == {"the-puffer-command", "exit-statuses", "2026-12-02-the-defaults-seeds"}


def test_links_are_found_outside_code_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) ![gif](x.gif) `[b](b.md)` [web](https://example.org) [c](#c)\n```\n[d](d.md)\n```\n")
    assert relative_links(page) == ["a.md", "x.gif", "#c"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists() or ROOT not in (destination, *destination.parents):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and destination.suffix == ".md" and anchor not in heading_ids(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert broken == []
