"""tracking/schema.py is the one owner of llmflow's MLflow vocabulary: no other module spells
an "llmflow.*" tag, param or attribute name (module paths are not names of the vocabulary)."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "llmflow"
LITERAL = re.compile(r"""["']llmflow\.[a-z_]+(?:\.[a-z_]*)*["']""")
# module paths, not vocabulary: import strings and importlib.resources packages
MODULE = re.compile(r"""["']llmflow\.(providers|serving|writer_process|tracking|worker)\b""")


def test_no_llmflow_literal_outside_the_schema():
    found = []
    for path in SRC.rglob("*.py"):
        name = path.relative_to(SRC).as_posix()
        if name == "tracking/schema.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if LITERAL.search(line) and not MODULE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "name these in tracking/schema.py:\n" + "\n".join(found)
