"""SLA management: SLO measurement, error budgets and release freezes.

The library is layered; lower layers never import higher ones:

    model      pydantic models, no I/O
    budget     budget arithmetic and burn-rate windows (pure)
    policy     freeze decisions (pure)
    specs      foreign SLO formats -> native models
    clients    Prometheus, PostgreSQL, Redis, Kubernetes, event sink
    services   evaluation, enforcement, catalogue
    runtime    settings, logging, CloudEvent adapter, serving
"""

__version__ = "0.1.0"
