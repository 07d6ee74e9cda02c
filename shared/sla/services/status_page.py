"""The status page: every SLO with a budget bar, and the freezes in force.

Pure rendering, from the response models to one HTML document: no script, no
external resource, every value passed through :func:`html.escape`. The page
reloads itself with ``<meta http-equiv=refresh>``, and colour only repeats what the
words already say (status names, "overspent"), so it is legible in any browser,
in a text browser, and to a screen reader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Final

from sla.model.api import FreezeView, SloSummary

REFRESH_SECONDS: Final = 60
"""One evaluation tick: budgets change at most once a minute."""

_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d8dee4;
vertical-align:middle}
th{background:#f3f5f7}
.bar{width:12rem;height:.9rem;background:#e6e9ec;border:1px solid #aab2bb;
display:inline-block;vertical-align:middle}
.fill{height:100%;background:#2f8f46}
.warning .fill{background:#c28a00}.critical .fill,.exhausted .fill{background:#c62828}
.figure{display:inline-block;min-width:8rem;margin-left:.5rem}
.overspent{color:#b00020;font-weight:600}
.status{font-weight:600}.muted{color:#57606a}.nowrap{white-space:nowrap}
"""


def percent(fraction: float | None) -> str:
    """``0.2534`` → ``25.3 %``; no figure → ``–``."""
    if fraction is None or not math.isfinite(fraction):
        return "–"
    return f"{fraction * 100:.1f} %"


def bar_width(remaining: float | None) -> float:
    """The bar's width in percent: remaining budget clamped to 0–100."""
    if remaining is None or not math.isfinite(remaining):
        return 0.0
    return min(100.0, max(0.0, remaining * 100))


def budget_cell(remaining: float | None) -> str:
    width = bar_width(remaining)
    if remaining is None:
        figure = '<span class="muted">no data</span>'
    elif remaining < 0:
        figure = f'<span class="overspent">overspent {percent(-remaining)}</span>'
    else:
        figure = f"{percent(remaining)} left"
    return (
        f'<span class="bar" role="img" aria-label="{width:.1f} percent left">'
        f'<span class="fill" style="width:{width:.1f}%;display:block"></span></span>'
        f'<span class="figure">{figure}</span>'
    )


def burn_rates_text(burn_rates: dict[str, float | None]) -> str:
    shown = [
        f"{escape(window)} {rate:.2f}"
        for window, rate in burn_rates.items()
        if rate is not None and math.isfinite(rate)
    ]
    return " · ".join(shown) or '<span class="muted">–</span>'


def _time(moment: datetime | None) -> str:
    return "–" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def slo_row(slo: SloSummary) -> str:
    status = escape(slo.status)
    service = escape(slo.service or "")
    objective = "" if slo.objective is None else f"{slo.objective:g} %"
    invalid = (
        f'<br><span class="overspent">invalid: {escape(slo.validation_error)}</span>'
        if slo.validation_error
        else ""
    )
    return (
        f'<tr class="{status}"><td>{escape(slo.slo)}{invalid}</td>'
        f"<td>{service}</td><td>{escape(objective)} / {escape(slo.window or '')}</td>"
        f'<td class="status">{status}</td>'
        f'<td class="nowrap">{budget_cell(slo.remaining)}</td>'
        f"<td>{burn_rates_text(slo.burn_rates)}</td>"
        f"<td>{_time(slo.evaluated_at)}</td></tr>"
    )


def freeze_row(freeze: FreezeView) -> str:
    dry_run = " (dry run)" if freeze.dry_run else ""
    return (
        f"<tr><td>{escape(freeze.policy)}</td><td>{escape(freeze.scope)}</td>"
        f"<td>{_time(freeze.since or freeze.decided_at)}</td>"
        f"<td>{escape(freeze.reason)}{escape(dry_run)}</td></tr>"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _table(headings: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_status_page(
    slos: Sequence[SloSummary],
    freezes: Sequence[FreezeView],
    *,
    generated_at: datetime,
    refresh_seconds: int = REFRESH_SECONDS,
) -> str:
    """The whole page; SLOs in the order given (least budget first)."""
    slo_table = _table(
        ("SLO", "service", "objective / window", "status", "error budget",
         "burn rates", "evaluated"),
        [slo_row(slo) for slo in slos],
        "No SLODefinitions in the catalogue.",
    )  # fmt: skip
    freeze_table = _table(
        ("policy", "scope", "since", "reason"),
        [freeze_row(freeze) for freeze in freezes],
        "No freeze in force.",
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>SLA status</title><style>{_STYLE}</style></head><body>"
        f'<h1>SLA status</h1><p class="muted">{_count(len(slos), "SLO")}, '
        f"{_count(len(freezes), 'freeze')} in force; "
        f"generated {_time(generated_at)}, "
        f"refreshed every {int(refresh_seconds)} s.</p>"
        f"<h2>Freezes in force</h2>{freeze_table}"
        f"<h2>Error budgets</h2>{slo_table}</body></html>"
    )
