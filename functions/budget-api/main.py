"""budget-api: the read API over SLOs, budgets, freezes and the audit log; manual
overrides; the system's Prometheus metrics; a status page.

Plain HTTP, not CloudEvents: functions-framework serves ``handler`` with its
``http`` signature in ASGI mode. Routes, authentication and errors are in
:mod:`sla.runtime.budget_api`; the queries in :mod:`sla.services.budget_api`.
"""

from __future__ import annotations

from sla.runtime.budget_api import BudgetApi

function = BudgetApi()
handler = function.target()
