"""migrate-tui's engine: settings, the table definition, the migration runner and friends.

Importable and testable without Textual (tests/engine/test_import_hygiene.py proves it).
"""

__version__ = "0.1.0"
