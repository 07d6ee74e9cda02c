"""``sla apply PATH…``: SLOs and policies into the catalogue, without a cluster.

Reads every document the way ``sla validate`` does (native kinds and the formats of
other tools); when any is invalid nothing is written. Valid objects go into the
catalogue of the configured store (``SLA_DATABASE_URL``, or the embedded
PostgreSQL), where sli-calculator and policy-evaluator find them. Rows applied from
files are marked as such, so slo-catalog's relist never deletes them.

Exit codes: 0 applied, 1 invalid documents or settings, 3 the store failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sla.errors import StoreError
from sla.runtime.resources import open_store
from sla.runtime.settings import Settings, SettingsError, load_settings
from sla.services.catalogue import apply_objects
from sla.specs import load_paths
from sla.specs.document import NativeObject

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNUSABLE = 3


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")


def run_apply(args: argparse.Namespace) -> int:
    result = load_paths(args.paths)
    for finding in result.findings:
        label = "error" if finding.severity == "error" else "warning"
        print(f"{label}: {finding.describe()}", file=sys.stderr)
    if not result.ok:
        print(f"{len(result.errors)} error(s): nothing applied", file=sys.stderr)
        return EXIT_INVALID
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    try:
        written, unchanged = asyncio.run(_apply(settings, result.objects))
    except StoreError as error:
        print(f"error: the store failed: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"applied: {written} written, {unchanged} unchanged")
    return EXIT_OK


async def _apply(settings: Settings, objects: list[NativeObject]) -> tuple[int, int]:
    async with open_store(settings) as store:
        return await apply_objects(store, objects)
