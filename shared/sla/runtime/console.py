"""Budget snapshots for people: a rich table, coloured by status."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from sla.model.snapshot import BudgetSnapshot

STATUS_STYLE = {
    "healthy": "green",
    "warning": "yellow",
    "critical": "bold red",
    "exhausted": "bold white on red",
    "no_data": "dim",
}


def _percent(value: float | None) -> str:
    # Display only: decisions were taken on the exact figures before this.
    return "—" if value is None else f"{value * 100:.2f}%"


def _remaining_style(value: float | None) -> str:
    if value is None:
        return "dim"
    if value <= 0:
        return "bold red"
    return "yellow" if value < 0.25 else "green"


def _fastest_burn(snapshot: BudgetSnapshot) -> str:
    rates = [(w, r) for w, r in snapshot.burn_rates.items() if r is not None]
    if not rates or not snapshot.alerts:
        return "—"
    shortest = snapshot.alerts[0].long_window
    rate = snapshot.burn_rates.get(shortest)
    return "—" if rate is None else f"{rate:.2f} ({shortest})"


def snapshot_table(snapshots: Sequence[BudgetSnapshot]) -> Table:
    table = Table(title="Error budgets", title_justify="left")
    table.add_column("SLO", no_wrap=True)
    for column in ("objective", "window", "SLI", "remaining", "burn", "status"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("exhausted at / reason", overflow="fold")
    for snap in sorted(snapshots, key=lambda s: s.slo):
        remaining = snap.error_budget.remaining
        eta = (
            snap.exhaustion_eta.strftime("%Y-%m-%d %H:%M UTC")
            if snap.exhaustion_eta
            else ""
        )
        table.add_row(
            snap.slo,
            f"{snap.objective:g}%",
            snap.window,
            _percent(snap.sli),
            Text(_percent(remaining), style=_remaining_style(remaining)),
            _fastest_burn(snap),
            Text(snap.status, style=STATUS_STYLE[snap.status]),
            snap.reason or eta,
        )
    return table
