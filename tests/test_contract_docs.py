"""docs/contract.md lists every error code the service can answer, with its HTTP status.

The codes are collected from the source with ``ast``: the ``code`` of every error class, every
``code=`` argument, the code argument of the helpers that build error answers, and every
``{"code": ...}`` body. A new code without a row in the table fails here.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from app.issue_types.builtins import create_registry
from app.issue_types.registry import PRIORITY_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "contract.md"

# Helpers whose positional argument at this index is an error code, with the status they imply
# (None: the status is another argument or not an HTTP answer).
CODE_ARGUMENT = {
    "PayloadError": 0,
    "TransitionRejected": 0,
    "error_result": 1,
    "Rejection": 2,
    "Rejected": 1,
}
# The ingest use case's typed rejections: kind → the HTTP status the routes answer with.
REJECTED_STATUS = {"INVALID": 422, "NOT_FOUND": 404, "FORBIDDEN": 403}
STATUS_ARGUMENT = {"error_result": 0, "Rejection": 1}


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _const_int(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def _name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _class_statuses(trees: list[ast.Module]) -> dict[str, int]:
    """Error class name → HTTP status, following base classes by name."""
    own: dict[str, int | None] = {}
    bases: dict[str, list[str]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases[node.name] = [b for b in (_name(base) for base in node.bases) if b]
            own[node.name] = None
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "status_code" for t in stmt.targets)
                    and _const_int(stmt.value) is not None
                ):
                    own[node.name] = _const_int(stmt.value)

    def status(name: str, seen: frozenset[str] = frozenset()) -> int | None:
        if own.get(name) is not None:
            return own[name]
        for base in bases.get(name, []):
            if base not in seen:
                found = status(base, seen | {name})
                if found is not None:
                    return found
        return None

    return {name: s for name in own if (s := status(name)) is not None}


def emitted_codes() -> dict[str, set[int | None]]:
    """Every error code found in ``app/``, with the statuses it is answered with."""
    trees = [ast.parse(path.read_text()) for path in sorted((ROOT / "app").rglob("*.py"))]
    statuses = _class_statuses(trees)
    found: dict[str, set[int | None]] = defaultdict(set)

    def add(node: ast.AST | None, status: int | None) -> None:
        code = _const_str(node)
        if code is not None:
            found[code].add(status)

    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets
                    ):
                        add(stmt.value, statuses.get(node.name))
            elif isinstance(node, ast.Call):
                name = _name(node.func)
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        add(keyword.value, statuses.get(name or ""))
                if name in CODE_ARGUMENT and len(node.args) > CODE_ARGUMENT[name]:
                    if name in STATUS_ARGUMENT:
                        status = _const_int(node.args[STATUS_ARGUMENT[name]])
                    elif name == "PayloadError":
                        status = 422
                    elif name == "Rejected":
                        kind = node.args[0]
                        assert isinstance(kind, ast.Attribute), ast.dump(kind)
                        status = REJECTED_STATUS[kind.attr]
                    else:  # TransitionRejected: 409 when it is a conflict, else 422
                        conflict = any(
                            k.arg == "conflict"
                            and isinstance(k.value, ast.Constant)
                            and k.value.value
                            for k in node.keywords
                        )
                        status = 409 if conflict else 422
                    add(node.args[CODE_ARGUMENT[name]], status)
                if _is_codes_get(node):
                    # ``codes.get(status, "fallback")`` in the HTTP error handler
                    add(node.args[1], None)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if _const_str(key) == "code":
                        add(value, None)
                    elif _const_int(key) is not None and _looks_like_code(value):
                        # the status → code table of the HTTP error handler
                        add(value, _const_int(key))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Subscript) and _const_str(target.slice) == "code":
                        add(node.value, None)
    return dict(found)


def _is_codes_get(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "get"
        and isinstance(func.value, ast.Name)
        and func.value.id == "codes"
        and len(call.args) == 2
    )


def _looks_like_code(node: ast.AST) -> bool:
    value = _const_str(node)
    return value is not None and re.fullmatch(r"[a-z]+(?:_[a-z]+)+", value) is not None


def documented_codes() -> dict[str, set[int]]:
    """Rows of the error-code table in docs/contract.md: code → statuses in its HTTP cell."""
    text = DOC.read_text()
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[int]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+)` \| ([^|]*) \|", line)
        if match:
            assert match[1] not in rows, f"{match[1]} is listed twice"
            rows[match[1]] = {int(n) for n in re.findall(r"\b[1-5]\d\d\b", match[2])}
    return rows


def test_the_collector_finds_codes_of_every_kind() -> None:
    codes = emitted_codes()
    # One of each way a code is written: class attribute, code= keyword, PayloadError,
    # TransitionRejected (422 and 409), error_result, an ingest Rejected, a consumer Rejection,
    # the handler's table.
    assert codes["unauthenticated"] == {401}
    assert codes["webhook_not_found"] == {404}
    assert codes["issue_type_exists"] == {409}
    assert codes["event_id_mismatch"] == {422}
    assert codes["missing_substatus"] == {422}
    assert codes["invalid_transition"] == {409}
    assert 422 in codes["event_not_found"]
    assert codes["project_not_found"] == {404}
    assert codes["invalid_json"] == {400}
    assert 405 in codes["method_not_allowed"]
    assert "http_error" in codes


def test_every_error_code_the_service_answers_is_in_the_contract() -> None:
    documented = documented_codes()
    missing = sorted(set(emitted_codes()) - set(documented))
    assert not missing, f"add these error codes to the table in docs/contract.md: {missing}"


def test_every_documented_error_code_exists_with_its_status() -> None:
    emitted = emitted_codes()
    documented = documented_codes()
    stale = sorted(set(documented) - set(emitted))
    assert not stale, f"docs/contract.md lists codes the service never answers: {stale}"
    wrong = {
        code: sorted(s for s in statuses if s is not None)
        for code, statuses in emitted.items()
        if not {s for s in statuses if s is not None} <= documented[code]
    }
    assert not wrong, f"HTTP statuses in docs/contract.md differ from the code: {wrong}"


def test_built_in_type_table_matches_the_registry() -> None:
    text = DOC.read_text()
    section = text.split("### Built-in issue types", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"^\| \d+ \|", line)
    ]
    registry = create_registry()
    categories = {c.id: c.slug for c in registry.categories()}

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    expected = [
        [
            str(t.type_id),
            f"`{t.slug}`",
            categories[t.category_id],
            PRIORITY_NAMES[t.default_priority],
            yes(t.released),
            str(t.noise_config.ignore_limit) if t.noise_config else "–",
            yes(t.enable_auto_resolve),
            yes(t.enable_escalation_detection),
            yes(t.in_default_search),
        ]
        for t in sorted(registry.types(), key=lambda t: t.type_id)
        if t.source == "builtin"
    ]
    assert rows == expected
    noise_hours = {
        t.noise_config.expiry_time.total_seconds() / 3600
        for t in registry.types()
        if t.source == "builtin" and t.noise_config
    }
    assert noise_hours == {24}
    assert "Noise windows of the built-ins last 24 hours." in section
