"""Every setting is documented in docs/configuration.md, in one unbroken table."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = "| Environment variable | Default | Meaning |"


def table_rows(text: str) -> list[list[str]]:
    """The cells of the settings table: the header, its delimiter row, then contiguous rows.

    A blank line ends a Markdown table; rows after it render as plain text, so they do not count.
    """
    lines = text.splitlines()
    start = lines.index(HEADER)
    assert re.fullmatch(r"\|(\s*:?-+:?\s*\|){3}", lines[start + 1]), "no delimiter row"
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    documented = [row[0] for row in table_rows(DOC.read_text())]
    missing = [
        name
        for name in Settings.model_fields
        if f"`ISSUE_PLATFORM_{name.upper()}`" not in documented
    ]
    assert not missing, f"document these settings in the table of docs/configuration.md: {missing}"


def test_the_table_lists_only_real_settings_once_each() -> None:
    documented = [row[0] for row in table_rows(DOC.read_text())]
    expected = {f"`ISSUE_PLATFORM_{name.upper()}`" for name in Settings.model_fields}
    assert len(documented) == len(set(documented)), "a setting has two rows"
    assert set(documented) <= expected, f"rows for unknown settings: {set(documented) - expected}"


def test_a_row_cut_off_from_the_table_is_noticed() -> None:
    text = f"{HEADER}\n|---|---|---|\n| `A` | 1 | a |\n\n| `B` | 2 | b |\n"
    assert [row[0] for row in table_rows(text)] == ["`A`"]
