"""Spec files → native SLODefinition and SLAPolicy objects.

Reads the project's own kinds and the SLO formats of other tools: OpenSLO
(v1; v1alpha and v2alpha where they map), Sloth (``prometheus/v1`` files and
``sloth.slok.dev/v1`` objects), Pyrra (``pyrra.dev/v1alpha1``) and
slo-generator (``sre.google.com/v2`` and its shared config).

Every problem is a finding with a file, line, document, field path in the
source's own field names, and the value written there. Findings are of two
severities, and the line between them is what the result would measure:

error
    The document cannot become a native object that measures what its author
    meant, so ``sla validate`` fails: unreadable files, YAML syntax errors,
    a key repeated in one mapping (YAML would keep the last value without a
    word), empty files, unknown kinds or versions, unknown fields (a misspelt
    optional field would otherwise vanish), values the native model rejects
    (objective of 100, a window of ``30x``, an unknown time zone), and source
    features with no native form that decide what is counted: non-Prometheus metric
    sources, threshold metrics, Sloth SLI plugins, composite objectives,
    calendar windows other than a week or a month, queries whose events per
    window cannot be told. Two documents defining the same object are an error
    too: applying both would keep one.

note
    The native objects measure what the source meant, and something was left
    out, filled in or rewritten on the way: fields with no native counterpart
    that only name, route or shape alerts and rules (display names, alert
    labels, notification targets, rule plugins, exporters, Pyrra grouping);
    defaults a tool would apply (Sloth's 30-day period, slo-generator's 28
    days); rewrites (``{{.window}}`` → ``$window``, ``rate`` → ``increase``);
    and documents that produce no object of their own (an OpenSLO Service or
    SLI, an slo-generator shared config). Notes never fail validation.
"""

from sla.specs.document import Finding, SourceDocument
from sla.specs.loader import Converted, LoadResult, load_paths, load_text
from sla.specs.native import to_yaml

__all__ = [
    "Converted",
    "Finding",
    "LoadResult",
    "SourceDocument",
    "load_paths",
    "load_text",
    "to_yaml",
]
