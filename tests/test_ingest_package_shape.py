"""The ingest package stays readable: no file over 500 lines, no function over 80 (issue 14).

The package (``app/occurrences/ingest``) holds one role per file: the use case, the pipeline's
steps, the statements, running them on the driver, and the group-commit writer. A file or a
function past these sizes mixes roles again; split it by role, not by line count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "app" / "occurrences" / "ingest"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
FILES = sorted(PACKAGE.glob("*.py"))


def test_the_package_has_its_files() -> None:
    names = {path.name for path in FILES}
    assert {"usecase.py", "statements.py", "driver.py", "writer.py", "write.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_file_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.name}: {lines} lines"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_function_over_80_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: {long}"
