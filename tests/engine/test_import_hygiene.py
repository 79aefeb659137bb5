"""Architecture guards: the engine never imports Textual or a front end; the TUI never builds SQL.

Run-time checks, beside the static import contracts in pyproject.toml (lint-imports, tests/test_import_contracts.py).

Why: the engine must run headless (CI, cron, ssh without a terminal) and be testable without a
UI, and every statement that touches production must come from migration/ (one declarative
definition, quoted with psycopg.sql), never from string literals in screens.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
import migration
names = ["migration"]
for info in pkgutil.walk_packages(migration.__path__, "migration."):
    names.append(info.name)
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, and the test fails on it
        failed[name] = repr(exc)
print(json.dumps({"modules": names, "failed": failed,
                  "textual": sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.")),
                  "above": sorted(m for m in sys.modules if m.split(".")[0] in ("headless", "tui"))}))
"""


def test_importing_every_engine_module_never_loads_textual_or_a_front_end():
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert {"migration.runner", "migration.settings", "migration.backup.dump", "migration.rollback.drop"} <= set(
        report["modules"])
    assert report["failed"] == {}
    assert report["textual"] == []
    assert report["above"] == []  # neither the headless front end nor the wizard


def test_headless_commands_never_load_textual():
    """`migrate-tui sql` goes through headless.entry, but must not import the Textual app for it."""
    code = ("import sys, io, contextlib\nfrom headless.entry import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['sql'])\n"
            "print(rc, any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert out == ["0", "False"]


# A DDL statement: the keywords followed by an object name (or a placeholder / quoted name), as
# in SQL. Prose such as "a plain DROP TABLE (no CASCADE)" or a "Drop table $t?" title is not SQL.
DDL = re.compile(
    r"\b(?:CREATE|DROP|ALTER|TRUNCATE)\s+(?:UNIQUE\s+)?"
    r"(?:TABLE|INDEX|SCHEMA|SEQUENCE|VIEW|MATERIALIZED\s+VIEW|TRIGGER|FUNCTION|ROLE|DATABASE|EXTENSION|TYPE)"
    r"\s+(?:CONCURRENTLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:ONLY\s+)?[\w\"{%]"
)
DDL_ANY_CASE = re.compile(
    r"(?i)\b(?:create|drop|alter)\s+(?:unique\s+)?(?:table|index|schema|sequence|view)\s+if\s+(?:not\s+)?exists\b")
STRING_TOKENS = {tokenize.STRING} | {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "TSTRING_MIDDLE")
                                     if hasattr(tokenize, n)}


def ddl_literals(source: str) -> list[tuple[int, str]]:
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in STRING_TOKENS and (DDL.search(token.string) or DDL_ANY_CASE.search(token.string)):
            found.append((token.start[0], token.string))
    return found


def test_the_detector_finds_ddl_and_ignores_prose():
    assert ddl_literals('x = "CREATE TABLE foo (id int)"')
    assert ddl_literals("x = 'DROP TABLE IF EXISTS {}'")
    assert ddl_literals('x = f"ALTER TABLE {name} ADD COLUMN y int"')
    assert ddl_literals('x = """\nCREATE INDEX idx ON t(c)\n"""')
    assert ddl_literals("x = 'drop table if exists t'")
    assert ddl_literals('x = "CREATE UNIQUE INDEX CONCURRENTLY \\"ix\\" ON t (c)"')
    assert not ddl_literals('x = "Nothing else depends on it: a plain DROP TABLE (no CASCADE)."')
    assert not ddl_literals('x = "[b]Drop table $t?[/b]"')
    assert not ddl_literals("# CREATE TABLE in a comment is not a literal\nx = 1")


def tui_sources() -> list[Path]:
    return sorted((ROOT / "tui").rglob("*.py"))


def test_tui_has_no_ddl_string_literals():
    sources = tui_sources()
    assert sources, "tui/ has no Python files"
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text[:80]}"
                 for path in sources for line, text in ddl_literals(path.read_text(encoding="utf-8"))]
    assert offenders == [], "SQL belongs in migration/, not tui/:\n" + "\n".join(offenders)


def test_tui_does_not_compose_sql_with_psycopg():
    offenders = []
    for path in tui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("psycopg"):
                if any(alias.name == "sql" for alias in node.names) or node.module == "psycopg.sql":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "psycopg.sql" for a in node.names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
