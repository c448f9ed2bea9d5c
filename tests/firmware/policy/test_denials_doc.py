from __future__ import annotations

import re

from firmware.messages import TEXTS
from tests.conftest import ROOT


def test_every_denial_reason_is_documented_with_both_texts():
    doc = (ROOT / "docs/denials.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE))
    reasons = {key.split(".", 1)[1] for key in TEXTS if key.startswith("denied.")}
    assert documented == reasons
    for reason in reasons:
        zh, en = TEXTS[f"denied.{reason}"]
        assert f"| {zh} | {en} |" in doc, reason


def test_every_reason_the_code_can_give_has_a_text():
    source = "\n".join(p.read_text() for p in (ROOT / "firmware").rglob("*.py"))
    given = set(re.findall(r'Denial\("([a-z_]+)"', source))
    assert given <= {key.split(".", 1)[1] for key in TEXTS if key.startswith("denied.")}
