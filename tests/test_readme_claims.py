"""README's "Safety guarantees, and the tests that prove them": every test it cites exists.

The table is parsed from README.md; each backticked ``*.py`` in its "proven by" column must be
a file of this repository (a bare ``test_x.py`` is looked up in the directory of the last full
path in the same cell), a ``*`` pattern must match at least one file, and a ``file.py::name``
must define that test function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Safety guarantees, and the tests that prove them"


def guarantee_rows() -> list[tuple[str, str]]:
    """(guarantee, proven-by cell) for each row of the table."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADING)
    rows: list[tuple[str, str]] = []
    in_table = False
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if in_table:
                break
            continue
        in_table = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-", ":"} or cells[0] == "guarantee":
            continue
        assert len(cells) == 3, f"a row of the guarantees table does not have 3 cells: {line}"
        rows.append((cells[0], cells[2]))
    return rows


def citations(cell: str) -> list[str]:
    """The cited files (``dir/file.py``, ``file.py``, ``file.py::test``, ``test_*.py``), resolved to repo paths."""
    found: list[str] = []
    directory = None
    for token in re.findall(r"`([^`]+)`", cell):
        path = token.split("::", 1)[0]
        if not path.endswith(".py"):
            continue
        if "/" in path:
            directory = path.rsplit("/", 1)[0]
        else:
            assert directory is not None, f"{token} is cited before any directory in: {cell}"
            token = f"{directory}/{token}"
        found.append(token)
    return found


def test_every_cited_test_exists():
    rows = guarantee_rows()
    assert len(rows) >= 8, f"the guarantees table was not found or lost rows: {rows}"
    cited = [c for _, cell in rows for c in citations(cell)]
    assert len(cited) >= 20, cited
    missing = []
    for citation in cited:
        path, _, name = citation.partition("::")
        files = sorted(ROOT.glob(path)) if "*" in path else [ROOT / path] if (ROOT / path).is_file() else []
        if not files:
            missing.append(citation)
            continue
        if name:
            tree = ast.parse(files[0].read_text(encoding="utf-8"))
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if name not in defined:
                missing.append(citation)
    assert not missing, f"README cites tests that do not exist: {missing}"


def test_the_parser_resolves_bare_names_and_tests():
    cell = ("`tests/faults/test_fault_kill9.py` (text), `test_fault_signals.py::test_x`, "
            "`tests/engine/test_backup*.py`, `benchmarks/under_load.py`, `pg_stat_activity`")
    assert citations(cell) == ["tests/faults/test_fault_kill9.py", "tests/faults/test_fault_signals.py::test_x",
                               "tests/engine/test_backup*.py", "benchmarks/under_load.py"]
