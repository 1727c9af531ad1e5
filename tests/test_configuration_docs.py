"""Every setting is documented in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    text = DOC.read_text()
    missing = [
        name for name in Settings.model_fields if f"`ISSUE_PLATFORM_{name.upper()}`" not in text
    ]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"
