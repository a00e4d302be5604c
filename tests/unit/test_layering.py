"""The import layering of design.md, enforced on the source (as trio enforces its _core)."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import pytest

from tests.support import REPO

if TYPE_CHECKING:
    from pathlib import Path

OURS = {"protocol", "gateway", "session_worker", "supervisor", "emulators", "devtools"}

# package → the packages of ours it may import (design.md's package table). devtools (the
# demo, chaos and the harness: the product run against the emulators) may import anything,
# like tests and benchmarks; nothing of the product imports it.
ALLOWED = {
    "protocol": set(),
    "emulators": set(),
    "gateway": {"protocol"},
    "session_worker": {"protocol"},
    "supervisor": {"protocol", "gateway", "session_worker"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_design_allows(package: str) -> None:
    """Each package imports only the packages of ours that design.md allows."""
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imports_of(path) - ALLOWED[package] - {package}
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_supervisor_uses_only_service_entry_points() -> None:
    """The supervisor reaches into the services only for their entry functions and configs."""
    allowed_modules = {"gateway", "gateway.config", "session_worker", "session_worker.config"}
    offenders = []
    for path in sorted((REPO / "supervisor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in ("gateway", "session_worker")
                and node.module not in allowed_modules
            ):
                offenders.append(f"{path.relative_to(REPO)}: from {node.module} import ...")
    assert not offenders, "\n".join(offenders)
