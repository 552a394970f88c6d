"""The committed JSON Schemas match the models, and the compatibility check enforces the rule."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from msashop.contracts.envelope import Envelope
from msashop.contracts.events import Payload
from msashop.contracts.schema import (
    SCHEMA_DIR,
    compatibility_problems,
    main,
    payload_classes,
    render,
    schema_of,
    schemas,
)

GENERATED = schemas()


def test_every_payload_and_the_envelope_have_a_schema() -> None:
    assert set(GENERATED) == {"envelope"} | {cls.subject for cls in payload_classes()}
    assert {"shipping.calculate", "order.created"} <= set(GENERATED)
    assert GENERATED["order.created"]["x-version"] == "1.1"


def test_the_envelope_schema_has_the_guides_fields() -> None:
    fields = set(GENERATED["envelope"]["properties"])
    expected = {"id", "source", "type", "timestamp", "correlation_id", "causation_id", "data", "metadata"}
    assert expected | {"traceparent", "key"} <= fields


def test_committed_schema_files_equal_what_the_models_generate() -> None:
    committed = {p.stem: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(GENERATED), "run: python -m msashop.contracts.schema"
    stale = [s for s, schema in GENERATED.items() if committed[s] != render(schema)]
    assert stale == [], f"stale schemas {stale}: run python -m msashop.contracts.schema"


@pytest.mark.parametrize("subject", sorted(GENERATED))
def test_no_model_breaks_its_committed_schema_without_a_major_version(subject: str) -> None:
    committed = json.loads((SCHEMA_DIR / f"{subject}.json").read_text())
    assert compatibility_problems(committed, GENERATED[subject]) == []


# --- the compatibility check on models that change ------------------------------------------
class V1(Payload):
    subject = "test.thing"
    version = "1.0"
    thing_id: str
    amount: Decimal
    note: str | None = None


def _schema(version: str, **changes: Any) -> dict[str, Any]:
    """V1's schema with `version`; changes: drop=<field>, require=<field>, optional=<field>, retype=<field>,
    add_required=<field>, add_optional=<field>."""
    schema = copy.deepcopy(schema_of(V1, "1.0"))
    schema["x-version"] = version
    props, required = schema["properties"], schema["required"]
    if name := changes.get("drop"):
        del props[name]
        if name in required:
            required.remove(name)
    if name := changes.get("optional"):
        required.remove(name)
    if name := changes.get("require"):
        required.append(name)
    if name := changes.get("retype"):
        props[name] = {"type": "integer"}
    if name := changes.get("add_required"):
        props[name] = {"type": "string"}
        required.append(name)
    if name := changes.get("add_optional"):
        props[name] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    return schema


OLD = _schema("1.0")


def test_an_added_optional_field_with_a_minor_bump_is_compatible() -> None:
    assert compatibility_problems(OLD, _schema("1.1", add_optional="colour")) == []


def test_a_changed_schema_needs_a_version_bump() -> None:
    [problem] = compatibility_problems(OLD, _schema("1.0", add_optional="colour"))
    assert "bump the minor" in problem


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"drop": "amount"}, "amount: required field removed"),
        ({"optional": "amount"}, "amount: required field became optional"),
        ({"retype": "amount"}, "amount.: type changed"),
        ({"add_required": "colour"}, "colour: new required field"),
        ({"require": "note"}, "note: became required"),
    ],
)
def test_breaking_changes_are_refused_in_the_same_major_version(
    change: dict[str, str], expected: str
) -> None:
    problems = compatibility_problems(OLD, _schema("1.1", **change))
    assert [p.removesuffix(" (needs a new major version)") for p in problems] == [expected]
    assert compatibility_problems(OLD, _schema("2.0", **change)) == []


def test_removing_an_optional_field_is_not_breaking() -> None:
    assert compatibility_problems(OLD, _schema("1.1", drop="note")) == []


def test_a_change_inside_a_nested_model_is_found() -> None:
    old = schema_of(Envelope, "1.0")
    new = copy.deepcopy(old)
    new["$defs"]["Metadata"]["properties"]["version"] = {"type": "integer"}
    assert compatibility_problems(old, new) == ["metadata.version.: type changed (needs a new major version)"]


def test_a_version_going_down_is_refused() -> None:
    assert compatibility_problems(_schema("1.1"), OLD) == ["version went down from 1.1 to 1.0"]


def test_the_writer_refuses_a_breaking_change_and_writes_the_rest(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert {p.stem for p in tmp_path.glob("*.json")} == set(GENERATED)
    published = json.loads((tmp_path / "order.created.json").read_text())
    published["required"].append("coupon")  # a field the current model no longer requires
    published["properties"]["coupon"] = {"type": "string"}
    (tmp_path / "order.created.json").write_text(json.dumps(published))
    (tmp_path / "payment.charge.json").unlink()

    assert main([str(tmp_path)]) == 1
    assert json.loads((tmp_path / "order.created.json").read_text()) == published  # left alone
    assert (tmp_path / "payment.charge.json").read_text() == render(GENERATED["payment.charge"])
