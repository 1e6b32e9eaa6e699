"""docs/events.md cannot go stale: it names every topic, event type and field there is.

The sources of truth, read here without running anything:

- the topics: `paykit.messaging.topics.TOPICS` (name, partitions);
- the event types the services publish: the string literals of the modules under
  services/*/src that call `paykit.messaging.envelope.pack`, with the topics those
  modules import and the producer name they pass;
- the message of each event type: the comment that opens the message in
  protos/paykit/events/v1/*.proto (`// payment.succeeded: ...`);
- the fields: the generated descriptors of paykit.events.v1 and paykit.common.v1.Money.

The doc's tables are parsed: the topics table (`| topic | key | partitions |
producer | event types |`), the event types table (`| event type | topic | message
| producer | published when |`) and, under a heading naming a message in
backticks, its field table (`| # | field | type | meaning |`).
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from paykit.messaging import topics as topics_module
from paykit.messaging.topics import TOPICS, dlq_of

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "events.md"
EVENT_PROTOS = REPO_ROOT / "protos" / "paykit" / "events" / "v1"
SERVICES = REPO_ROOT / "services"
EVENTS_PACKAGE = "paykit.events.v1"
MONEY = "paykit.common.v1.Money"
ENVELOPE_MODULE = "paykit.messaging.envelope"
TOPICS_MODULE = "paykit.messaging.topics"
RESERVED = "reserved"

EVENT_TYPE = re.compile(r"[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*")
TABLE_ROW = re.compile(r"^\|(.*)\|\s*$")
MESSAGE_HEADING = re.compile(r"^#{2,5} .*?`(paykit\.[a-z0-9_.]+\.[A-Z]\w*)`")

TOPIC_HEADER = ["topic", "key", "partitions", "producer", "event types"]
EVENT_HEADER = ["event type", "topic", "message", "producer", "published when"]
FIELD_HEADER = ["#", "field", "type", "meaning"]

SCALAR_NAMES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}


# -- the doc ---------------------------------------------------------------------------


def _cells(line: str) -> list[str] | None:
    match = TABLE_ROW.match(line.strip())
    if match is None:
        return None
    return [cell.strip() for cell in match.group(1).split("|")]


def _plain(cell: str) -> str:
    return cell.replace("`", "").strip()


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    heading: str | None  # the message named by the closest heading above, if any


def doc_tables(text: str) -> list[Table]:
    tables: list[Table] = []
    heading: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            found = MESSAGE_HEADING.match(lines[i])
            heading = found.group(1) if found else None
        header = _cells(lines[i])
        separator = _cells(lines[i + 1]) if i + 1 < len(lines) else None
        if header is not None and separator is not None and all(set(c) <= set("-: ") for c in separator):
            rows = []
            i += 2
            while i < len(lines) and (row := _cells(lines[i])) is not None:
                rows.append(row)
                i += 1
            tables.append(Table([_plain(c).lower() for c in header], rows, heading))
            continue
        i += 1
    return tables


def _table(tables: list[Table], header: list[str]) -> Table:
    found = [t for t in tables if t.header == header]
    assert len(found) == 1, f"docs/events.md needs exactly one table with the header {header}"
    return found[0]


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


@pytest.fixture(scope="module")
def tables() -> list[Table]:
    assert DOC.is_file(), "docs/events.md is missing"
    return doc_tables(DOC.read_text())


@pytest.fixture(scope="module")
def doc_topics(tables: list[Table]) -> dict[str, list[str]]:
    return {_plain(row[0]): row for row in _table(tables, TOPIC_HEADER).rows}


@pytest.fixture(scope="module")
def doc_events(tables: list[Table]) -> dict[str, list[str]]:
    rows = _table(tables, EVENT_HEADER).rows
    events = {_plain(row[0]): row for row in rows}
    assert len(events) == len(rows), "an event type is listed twice in docs/events.md"
    return events


# -- the code --------------------------------------------------------------------------


@dataclass
class Producer:
    """A module under services/*/src that packs events."""

    path: Path
    event_types: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    producers: set[str] = field(default_factory=set)


def _producer_name(node: ast.AST) -> str | None:
    """The literal of `producer="..."` in a call, or of a module's `PRODUCER = "..."`."""
    if isinstance(node, ast.keyword):
        named = node.arg == "producer"
    elif isinstance(node, ast.Assign):
        named = any(isinstance(t, ast.Name) and t.id == "PRODUCER" for t in node.targets)
    else:
        return None
    value = node.value
    if named and isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def _producing_modules() -> list[Producer]:
    found = []
    for path in sorted(SERVICES.glob("*/src/**/*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        imports_pack = any(
            isinstance(node, ast.ImportFrom)
            and node.module == ENVELOPE_MODULE
            and any(alias.name == "pack" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not imports_pack:
            continue
        module = Producer(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == TOPICS_MODULE:
                for alias in node.names:
                    value = getattr(topics_module, alias.name, None)
                    if isinstance(value, str):
                        module.topics.add(value)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if EVENT_TYPE.fullmatch(node.value):
                    module.event_types.add(node.value)
            elif (producer := _producer_name(node)) is not None:
                module.producers.add(producer)
        found.append(module)
    return found


@pytest.fixture(scope="module")
def producing_modules() -> list[Producer]:
    modules = _producing_modules()
    assert modules, "no module under services/*/src packs events: the scan is broken"
    return modules


def proto_event_messages() -> dict[str, str]:
    """event type -> message full name, from the comment that opens each message."""
    found: dict[str, str] = {}
    for path in sorted(EVENT_PROTOS.glob("*.proto")):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            declared = re.match(r"^message (\w+) \{", line)
            if declared is None:
                continue
            start = index
            while start > 0 and lines[start - 1].startswith("//"):
                start -= 1
            if start == index:
                continue
            opening = re.match(r"^//\s*([a-z_.]+)(?::|\s*$)", lines[start])
            if opening is not None and EVENT_TYPE.fullmatch(opening.group(1)):
                found[opening.group(1)] = f"{EVENTS_PACKAGE}.{declared.group(1)}"
    return found


def documented_messages() -> dict[str, Descriptor]:
    """Every message of paykit.events.v1 (events, the envelope, LedgerLine) and Money."""
    messages: dict[str, Descriptor] = {}
    for path in sorted(EVENT_PROTOS.glob("*.proto")):
        module = importlib.import_module(f"{EVENTS_PACKAGE}.{path.stem}_pb2")
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            messages[descriptor.full_name] = descriptor
    money = importlib.import_module("paykit.common.v1.money_pb2")
    messages[MONEY] = money.Money.DESCRIPTOR
    return messages


def type_name(f: FieldDescriptor) -> str:
    """As the doc writes it: `string`, `paykit.common.v1.Money`, `repeated paykit.events.v1.LedgerLine`."""
    if f.message_type is not None:
        name = f.message_type.full_name
    elif f.enum_type is not None:
        name = f.enum_type.full_name
    else:
        name = SCALAR_NAMES[f.type]
    return f"repeated {name}" if f.is_repeated else name


# -- the checks ------------------------------------------------------------------------


def test_every_topic_is_listed_with_its_partitions(doc_topics: dict[str, list[str]]) -> None:
    declared = {spec.name: spec for spec in TOPICS}
    assert set(doc_topics) == set(declared), (
        f"docs/events.md topics differ from topics.py: missing {sorted(set(declared) - set(doc_topics))}, "
        f"unknown {sorted(set(doc_topics) - set(declared))}"
    )
    for name, spec in declared.items():
        assert _plain(doc_topics[name][2]) == str(spec.partitions), f"{name}: partitions in docs/events.md"
    text = DOC.read_text()
    assert dlq_of("payment.events") in text and "<topic>.dlq" in text.replace("`", ""), "DLQ naming"


def test_topics_nothing_publishes_on_are_marked_reserved(
    doc_topics: dict[str, list[str]], producing_modules: list[Producer]
) -> None:
    published = {topic for module in producing_modules for topic in module.topics}
    for name, row in doc_topics.items():
        if name not in published:
            assert RESERVED in row[3].lower(), f"{name}: no service publishes on it: the doc says reserved"
            assert "none" in row[4].lower(), f"{name}: a reserved topic lists no event type"


def test_every_published_event_type_is_documented(
    doc_events: dict[str, list[str]], producing_modules: list[Producer]
) -> None:
    published = {t: module for module in producing_modules for t in module.event_types}
    assert published, "no event type found in the producing modules: the scan is broken"
    messages = proto_event_messages()
    for event_type, module in sorted(published.items()):
        where = module.path.relative_to(REPO_ROOT)
        assert event_type in doc_events, f"{event_type} (published in {where}) is not in docs/events.md"
        row = doc_events[event_type]
        assert _plain(row[1]) in module.topics, f"{event_type}: topic {row[1]} is not what {where} imports"
        assert _plain(row[3]) in module.producers, f"{event_type}: producer {row[3]} != {module.producers}"
        assert event_type in messages, f"{event_type} opens no message comment in protos/paykit/events/v1"
        assert _plain(row[2]) == messages[event_type], f"{event_type}: {row[2]} != {messages[event_type]}"
    print(f"\nevents catalogue: {len(published)} published event types documented")


def test_every_documented_event_type_exists(
    doc_events: dict[str, list[str]],
    doc_topics: dict[str, list[str]],
    producing_modules: list[Producer],
) -> None:
    published = {t for module in producing_modules for t in module.event_types}
    declared = proto_event_messages()
    for event_type, row in doc_events.items():
        assert event_type in published or event_type in declared, f"{event_type}: documented, exists nowhere"
        assert event_type in _names(doc_topics[_plain(row[1])][4]), (
            f"{event_type}: not in the topics table's row for {row[1]}"
        )
    for event_type in declared:
        assert event_type in doc_events, f"{event_type} has a message in the protos but no docs/events.md row"


def test_every_message_and_field_is_documented(tables: list[Table]) -> None:
    field_tables = {t.heading: t for t in tables if t.header == FIELD_HEADER and t.heading}
    messages = documented_messages()
    for name, descriptor in messages.items():
        assert name in field_tables, f"docs/events.md has no field table under a heading naming `{name}`"
        documented = {(_plain(r[0]), _plain(r[1]), _plain(r[2])) for r in field_tables[name].rows}
        actual = {(str(f.number), f.name, type_name(f)) for f in descriptor.fields}
        assert documented == actual, (
            f"{name}: fields in docs/events.md differ from the proto: "
            f"missing {sorted(actual - documented)}, wrong or extra {sorted(documented - actual)}"
        )
        empty = [r[1] for r in field_tables[name].rows if not _plain(r[3])]
        assert not empty, f"{name}: fields without a meaning: {empty}"
    print(f"events catalogue: {len(messages)} messages, every field documented")
