"""The rollback's typed confirmation says what becomes of each dependent: kept in the copy, lost, or refused."""

from __future__ import annotations

from dataclasses import replace

from conftest import flat, widget_text
from textual.app import App

from migration.events import Dependent, Preview
from tui.dialogs.confirm_drop import ConfirmDropDialog

PREVIEW = Preview("public", "database_backups", True, 3, 98304, "96 kB", (), "public.database_backups_id_seq",
                  (Dependent("view", "public.recent_backups", None, "pg_class", 2, owner="app", keep="pg_dump"),),
                  'DROP TABLE IF EXISTS "public"."database_backups" CASCADE', "18.6")
LOST = Dependent("table column", "public.audit_rows.snap", "public.audit_rows", "pg_class", 3, 2, owner="app",
                 why_lost="a column of another relation: DROP ... CASCADE drops its values with it")
THEIRS = Dependent("view", "public.their_view", None, "pg_class", 4, owner="other_team", ours=False, keep="pg_dump")


class Harness(App):
    def __init__(self, preview: Preview, safety_copy: bool = True) -> None:
        super().__init__()
        self.preview, self.safety_copy = preview, safety_copy

    def on_mount(self) -> None:
        self.push_screen(ConfirmDropDialog(self.preview, safety_copy=self.safety_copy))


async def _summary(preview: Preview, safety_copy: bool = True) -> str:
    app = Harness(preview, safety_copy)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        return flat(widget_text(app.screen, "#confirm-drop-summary"))


async def test_the_dialog_says_the_copy_keeps_the_dependents():
    text = await _summary(PREVIEW)
    assert "A safety copy of the table and of what recreates those 1 object(s)" in text
    assert "a restore brings them back" in text


async def test_the_dialog_marks_what_no_copy_can_hold_and_what_belongs_to_others():
    text = await _summary(replace(PREVIEW, dependents=(*PREVIEW.dependents, LOST, THEIRS)))
    assert "table column public.audit_rows.snap (alters table public.audit_rows) — NOT recoverable: a column of" \
        in text
    assert "view public.their_view — owned by other_team: migrate-tui does not drop it" in text
    assert "those 1 object(s)" in text


async def test_without_a_copy_nothing_is_promised():
    text = await _summary(replace(PREVIEW, dependents=(*PREVIEW.dependents, LOST)), safety_copy=False)
    assert "NOT recoverable" not in text and "restore brings them back" not in text
    assert "No safety copy will be taken." in text
