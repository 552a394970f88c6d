"""JSON Schema of the envelope and of every payload, generated from the pydantic models.

`python -m msashop.contracts.schema` writes them to contracts/schemas/<subject>.json, the files
other teams and tools read. It refuses a breaking change (a required field removed or made
optional, a new required field, a field's type changed) unless the payload's major version was
bumped, and a changed schema whose version was not bumped at all. The rule is in README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from msashop.contracts import events
from msashop.contracts.envelope import Envelope
from msashop.contracts.events import Payload

SCHEMA_DIR = Path(__file__).parent / "schemas"
ENVELOPE_SUBJECT = "envelope"
ENVELOPE_VERSION = "1.0"
VERSION_KEY = "x-version"
# Words that describe a schema without changing what it accepts.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})

Schema = dict[str, Any]


def payload_classes() -> list[type[Payload]]:
    """Every payload defined in contracts.events (subclasses made elsewhere, e.g. in tests, are not)."""
    found: list[type[Payload]] = []
    pending: list[type[Payload]] = [Payload]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__ == events.__name__:
                found.append(sub)
    return sorted(found, key=lambda cls: cls.subject)


def schema_of(model: type[BaseModel], version: str) -> Schema:
    schema = model.model_json_schema()
    schema[VERSION_KEY] = version
    return schema


def schemas() -> dict[str, Schema]:
    """{subject: JSON Schema}: the envelope under "envelope", then every payload by subject."""
    result = {ENVELOPE_SUBJECT: schema_of(Envelope, ENVELOPE_VERSION)}
    for cls in payload_classes():
        if cls.subject in result:
            raise ValueError(f"two payloads use the subject {cls.subject!r}")
        result[cls.subject] = schema_of(cls, cls.version)
    return result


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _resolve(node: Schema, root: Schema) -> Schema:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Schema = root["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return node


def _shape(node: Any, root: Schema) -> Any:
    """What a schema accepts, with references inlined and annotations dropped."""
    if isinstance(node, dict):
        node = _resolve(node, root)
        return {k: _shape(v, root) for k, v in node.items() if k not in _ANNOTATIONS | {VERSION_KEY}}
    if isinstance(node, list):
        return [_shape(v, root) for v in node]
    return node


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Why a consumer or producer written against `old` would break on `new` (empty: compatible)."""
    problems: list[str] = []
    _compare(old, new, old, new, "", problems)
    return problems


def _compare(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, out: list[str]) -> None:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    if "properties" not in old:
        if "items" in old and "items" in new and old.get("type") == new.get("type") == "array":
            _compare(old["items"], new["items"], old_root, new_root, f"{path}[]", out)
        elif _shape(old, old_root) != _shape(new, new_root):
            out.append(f"{path or 'the payload'}: type changed")
        return
    if "properties" not in new:
        out.append(f"{path or 'the payload'}: is no longer an object")
        return
    old_props, new_props = old["properties"], new["properties"]
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(old_required):
        if name not in new_props:
            out.append(f"{path}{name}: required field removed")
        elif name not in new_required:
            out.append(f"{path}{name}: required field became optional")
    for name in sorted(new_required - old_required):
        out.append(f"{path}{name}: " + ("became required" if name in old_props else "new required field"))
    for name in sorted(set(old_props) & set(new_props)):
        _compare(old_props[name], new_props[name], old_root, new_root, f"{path}{name}.", out)


def compatibility_problems(old: Schema, new: Schema) -> list[str]:
    """What is wrong with replacing the published schema `old` by `new` under the versioning rule."""
    old_version, new_version = str(old.get(VERSION_KEY, "1.0")), str(new.get(VERSION_KEY, "1.0"))
    if _parts(new_version) < _parts(old_version):
        return [f"version went down from {old_version} to {new_version}"]
    if major(new_version) > major(old_version):
        return []  # a new major version may change anything (README: new subject or dual-publish)
    problems = [f"{p} (needs a new major version)" for p in breaking_changes(old, new)]
    if not problems and _shape(old, old) != _shape(new, new) and new_version == old_version:
        problems.append(f"the schema changed but its version is still {old_version} (bump the minor)")
    return problems


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> dict[str, list[str]]:
    """Write every schema; a subject whose change breaks the rule is left as it was and reported."""
    directory.mkdir(parents=True, exist_ok=True)
    refused: dict[str, list[str]] = {}
    for subject, schema in schemas().items():
        target = directory / f"{subject}.json"
        if target.exists():
            problems = compatibility_problems(json.loads(target.read_text()), schema)
            if problems:
                refused[subject] = problems
                continue
        target.write_text(render(schema))
    return refused


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else SCHEMA_DIR
    refused = write(directory)
    for subject, problems in refused.items():
        for problem in problems:
            print(f"{subject}: {problem}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
