"""The wizard's actions in one place: buttons, key bindings and command-palette entries.

Each :class:`WizardAction` names an ``App.action_<name>`` method on
:class:`tui.app.MigrateApp`. A screen lists the actions it offers (for example
``TARGET_ACTIONS``) and :func:`bindings_for` turns them into key bindings; the
same list gives the screen's buttons and the command palette's entries, so one
line here adds all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class WizardAction:
    name: str  # the app action: MigrateApp.action_<name>
    label: str  # button label and footer text
    key: str  # key binding (Textual key names, comma-separated for several)
    help: str  # command-palette help line
    variant: str = "default"  # Button variant: default, primary, success, warning, error


MIGRATE = WizardAction("migrate", "Migrate", "m", "Run the guide's 8 migration steps in one transaction", "primary")
SHOW_SQL = WizardAction("show_sql", "Show SQL", "s", "Preview the exact SQL the migration runs (dry run)")
REFRESH = WizardAction("refresh", "Refresh", "r", "Read the server facts and the table state again")
QUIT = WizardAction("quit", "Quit", "q", "Leave the wizard", "error")
ROLLBACK = WizardAction("rollback", "Rollback", "d", "Preview and perform the manual rollback (DROP the table)",
                        "warning")
AUDIT_LOG = WizardAction("audit_log", "Audit log", "l", "Read the audit log of every operation")

# Later screens (checklist, backup, rollback, audit log) insert their actions here.
TARGET_ACTIONS: list[WizardAction] = [MIGRATE, SHOW_SQL, REFRESH, ROLLBACK, AUDIT_LOG, QUIT]

# Offered by the command palette from every screen (when the app allows them: MigrateApp.check_action).
PALETTE_ACTIONS: list[WizardAction] = [MIGRATE, SHOW_SQL, REFRESH, ROLLBACK, AUDIT_LOG]


def bindings_for(actions: list[WizardAction]) -> list[Binding]:
    return [Binding(a.key, f"app.{a.name}", a.label, tooltip=a.help) for a in actions]
