"""screenshots/ (made by `python -m tui.screenshots`): every picture the README embeds exists and is safe."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_embeds_existing_screenshots_without_passwords():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    embedded = re.findall(r"\]\((screenshots/[\w./-]+\.svg)\)", readme)
    assert len(embedded) >= 10 and any(rel.startswith("screenshots/80x24/") for rel in embedded)
    for rel in embedded:
        svg = (ROOT / rel).read_text(encoding="utf-8")
        assert svg.startswith("<svg"), rel
    target = (ROOT / "screenshots" / "target.svg").read_text(encoding="utf-8").replace("&#160;", " ")
    assert "shop_app:****@127.0.0.1:" in target  # the demo URL, masked
    assert re.search(r"shop_app:[^*@\s]+@", target) is None
