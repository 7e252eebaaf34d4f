"""The package's layering: every import of `keras_gcnprune` (function-level ones included)
points down the tiers below, never up or sideways, so that a file's path says what it may use.

Run it alone with `python -m pytest tests/test_layering.py`.
"""

import ast
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Lowest first; a package may import only from the tiers before its own.
TIERS = [
    {"backend", "outputs"},
    {"graphs", "losses"},
    {"layers", "data"},
    {"models", "pruning"},
    {"reports"},
    {"training"},
    {"export"},
    {"deploy", "app"},
    {"bench"},
    {"cli"},
]
TIER = {package: rank for rank, packages in enumerate(TIERS) for package in packages}
FACE = "keras_gcnprune/__init__.py"  # the package's face: its version, importable from anywhere


def package_of(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).parts
    return parts[0] if parts[0] == "cli" else parts[1].removesuffix(".py")


def imported_packages(path: Path) -> set[str]:
    """The sub-packages of keras_gcnprune that a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "keras_gcnprune":
            found |= {alias.name for alias in node.names if alias.name in TIER}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_gcnprune."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names
                      if alias.name.startswith("keras_gcnprune.")}
    return found


def source_files() -> list[Path]:
    files = [*(PROJECT_ROOT / "keras_gcnprune").rglob("*.py"),
             *(PROJECT_ROOT / "cli").rglob("*.py")]
    return [path for path in files if path.relative_to(PROJECT_ROOT).as_posix() != FACE]


def test_every_package_is_in_a_tier():
    assert {package_of(path) for path in source_files()} <= set(TIER)


def test_imports_point_down_the_tiers():
    upward = []
    for path in source_files():
        package = package_of(path)
        for imported in imported_packages(path) - {package}:
            if TIER[imported] >= TIER[package]:
                upward.append(f"{path.relative_to(PROJECT_ROOT)} imports {imported}")
    assert not upward, "imports that do not point down the tiers:\n" + "\n".join(upward)
