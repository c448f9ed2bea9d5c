"""The privacy manifest: what each party receives, field by field, generated from the message schemas.

Every field's meaning is the ``description`` of its property in docs/asyncapi.yaml (the same schemas
the backends validate against), so a field cannot be published without being explained: a property
without a description stops the generator. Retention and legal basis are per party. The Markdown goes
between the markers in docs/privacy.md (``vending privacy manifest --write docs/privacy.md``), and a
test checks that it is current and that every field of every message of the demo day is in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from firmware.config.packaged import contract_file
from simulator.safe_output import replace_section

BEGIN = "<!-- simulator/privacy/manifest.py: begin -->"
END = "<!-- simulator/privacy/manifest.py: end -->"
SPEC = contract_file()

# party -> (what it is, retention, proposed legal basis, message kinds it receives)
PARTIES: dict[str, dict[str, Any]] = {
    "vendor": {
        "who": "the operator: runs stock and prices, receives reports over MQTT",
        "retention": "180 days by default (`vending backend vendor --retention-days`), counted back from each "
        "machine's newest record, then only a tombstone (machine, seq, digest); a student's records at once on "
        "the school's erasure request",
        "legal_basis": "the vending contract with the school (PDPA art. 19 para. 1 subpara. 2; GDPR art. 6(1)(b))",
        "kinds": ["sale", "denial", "stock", "alert", "cmd-result", "summary", "status", "heartbeat", "vendor-request"],
    },
    "issuer": {
        "who": "the card issuer: holds the money, receives sealed settlements; with issuer-held accounts it also "
        "answers each tap's inquiry and each debit's authorisation and hears every debit's outcome; with purse "
        "cards, the debits a machine could not settle itself",
        "retention": "its own legal period for money records (`vending backend issuer --retention-days`; "
        "off by default); not erased on request, listed in the student's export",
        "legal_basis": "the stored-value card contract with the card holder (PDPA art. 19 para. 1 subpara. 2; "
        "GDPR art. 6(1)(b))",
        "kinds": [
            "settlement",
            "settlement-document",
            "account",
            "account-document",
            "auth-request",
            "auth-document",
            "unresolved",
            "unresolved-document",
            "credit",
            "credit-document",
            "credit-given",
            "credit-given-document",
            "issuer-request",
        ],
    },
    "school": {
        "who": "the school: the only party that knows who holds which card; receives from the machine only the "
        "guardian alerts sealed to it (machines that take its controls), and the answers to its own requests "
        "about one student",
        "retention": "the roster while a student is enrolled; a term key until `vending keys retire`; guardian "
        "alerts as long as its notification system needs them (the school's policy)",
        "legal_basis": "the school's statutory duties (PDPA art. 15; GDPR art. 6(1)(e)); to be confirmed by the "
        "school's data-protection officer, as are the other two",
        "kinds": ["vendor-answer", "issuer-answer", "guardian-alert", "guardian-alert-document"],
    },
    "machine": {
        "who": "each vending machine: takes the issuer's lost-card list (if it checks lost cards) and the school's "
        "guardian controls (if it takes them), each signed by its author and sealed with a key only that author "
        "and its machines hold; the vendor that runs the broker carries the sealed blobs and reads neither",
        "retention": "the list and the controls of the latest version only, replaced whole by the next; the "
        "version applied is journaled",
        "legal_basis": "the issuer's card contract (the hotlist) and the school's duty of care with the guardian's "
        "consent (the controls); to be confirmed by the school's data-protection officer",
        "kinds": ["hotlist", "hotlist-document", "controls", "controls-document", "credits", "credits-document"],
    },
}


def _fields(schema: dict[str, Any], kind: str) -> dict[str, str]:
    """Field -> description; the variants of a ``oneOf`` are merged, each distinct meaning kept (``; ``)."""
    variants = schema.get("oneOf", [schema])
    found: dict[str, list[str]] = {}
    for variant in variants:
        for name, prop in variant["properties"].items():
            description = prop.get("description")
            if not description:
                raise ValueError(f"docs/asyncapi.yaml: {kind}.{name} has no description: say what it is for")
            said = found.setdefault(name, [])
            if (text := " ".join(str(description).split())) not in said:
                said.append(text)
    return {name: "; ".join(said) for name, said in found.items()}


def manifest(spec: Path = SPEC) -> dict[str, Any]:
    schemas = yaml.safe_load(spec.read_text())["components"]["schemas"]
    parties = {}
    for party, facts in PARTIES.items():
        messages = {kind: _fields(schemas[kind], kind) for kind in facts["kinds"]}
        parties[party] = {key: value for key, value in facts.items() if key != "kinds"} | {"messages": messages}
    return {"source": "docs/asyncapi.yaml", "parties": parties}


def markdown(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for party, facts in document["parties"].items():
        who = str(facts["who"])
        lines += [f"### {party.capitalize()}", "", f"{who[0].upper()}{who[1:]}.", ""]
        lines += [f"- **Retention:** {facts['retention']}.", f"- **Legal basis (proposed):** {facts['legal_basis']}."]
        for kind, fields in facts["messages"].items():
            lines += ["", f"#### {party.capitalize()}: `{kind}`", "", "| field | what it is for |", "|---|---|"]
            lines += [f"| {name} | {meaning.replace('|', '/')} |" for name, meaning in fields.items()]
        lines.append("")
    return "\n".join(lines)


def write(doc: Path, document: dict[str, Any]) -> None:
    """The manifest into ``doc`` between its markers (``VendingError`` naming ``doc`` without them)."""
    replace_section(doc, BEGIN, END, markdown(document))
