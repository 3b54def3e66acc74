"""The fenced code blocks of the README and docs/, with the marker that may precede each one:
`<!-- docs-test: skip: REASON -->` (never run) or `<!-- docs-test: local-model -->` (needs the
local model: run in order, in one folder, under the local_model marker)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^( *)```(\S*)\n(.*?)^\1```$", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"<!-- docs-test: (?P<kind>skip|local-model)(?::(?P<reason>[^>]*))? -->\s*$")
# setting up the environment the test already runs in: not run, whatever block they are in
_SETUP = re.compile(r"^(python3? -m venv |\. \.venv/bin/activate|source \.venv/|pip install )")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    marker: str | None  # None, "skip" or "local-model"
    reason: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """Each command of a bash block, continuation lines joined, setup steps left out."""
        joined = re.sub(r"\\\n\s*", "", self.code)
        commands = []
        for line in joined.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            steps = [s.strip() for s in line.split(" && ") if not _SETUP.match(s.strip())]
            if steps:
                commands.append(" && ".join(steps))
        return commands


def pages() -> list[Path]:
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        found.append(
            Block(
                page=path.relative_to(REPO).as_posix(),
                line=text.count("\n", 0, match.start()) + 1,
                language=match[2],
                code=textwrap.dedent(match[3]),
                marker=marker["kind"] if marker else None,
                reason=(marker["reason"] or "").strip() if marker else "",
            )
        )
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
