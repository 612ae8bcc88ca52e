"""A fuzz campaign against `django_migrator.load_manifest(jsonb)` in a real PostgreSQL backend.

The real manifest of the example project's `default` alias is loaded first; then thousands of
hostile inputs, generated from a fixed seed, are loaded one by one, each in its own transaction:
malformed JSON text, wrong format versions, wrong types and missing keys at every level,
duplicate migrations, unknown and cyclic dependencies, unknown effect kinds, huge and deeply
nested documents, byte-level corruption that still parses, and valid-looking edge cases.

For each input, either the manifest is valid and is loaded (the original is then loaded again),
or the load fails with a SQLSTATE from an explicit allow-list and a message that names the
problem, on the same backend, which stays usable, with the stored manifest untouched.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_fuzz_manifest.py -q -s`
(`-s` shows the summary). The long campaign, with the figures of docs/fuzz.md:
`DJANGO_MIGRATOR_FUZZ_CASES=50000 .venv/bin/python -m pytest tests/e2e/test_fuzz_manifest.py -q -s`.

    DJANGO_MIGRATOR_FUZZ_CASES    how many inputs (default 2000)
    DJANGO_MIGRATOR_FUZZ_SEED     the seed (default 20251126); every input is reproducible alone
    DJANGO_MIGRATOR_FUZZ_REPORT   a path: the summary is also written there as JSON
"""

import json
import math
import os
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from conftest import Shop

CASES = int(os.environ.get("DJANGO_MIGRATOR_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("DJANGO_MIGRATOR_FUZZ_SEED", "20251126"))
REPORT = os.environ.get("DJANGO_MIGRATOR_FUZZ_REPORT")
DATABASE = "fuzz_manifest"
# A hang is a finding too: it surfaces as 57014, which is not allowed.
STATEMENT_TIMEOUT = "120s"

# What load_manifest() itself raises for a ManifestError (src/error.rs); the message starts with
# "django_migrator: ".
EXTENSION_ERRORS = {
    "22032": "invalid_json_text: JSON, but not a manifest (ManifestError::Json)",
    "0A000": "feature_not_supported: a format_version this build does not read",
    "22023": "invalid_parameter_value: every other ManifestError (alias, limits, names, "
             "duplicates, dependencies)",
}
# What PostgreSQL's own jsonb input raises, before the function is called.
POSTGRES_JSON_ERRORS = {
    "22P02": "invalid_text_representation: not JSON",
    "22P05": "untranslatable_character: \\u0000 in a string",
    "22003": "numeric_value_out_of_range: a number beyond numeric",
    "54001": "statement_too_complex: nesting beyond max_stack_depth",
}
# Never allowed: XX000 (ExtError::Spi, and every Rust panic that pgrx turns into an ERROR),
# 3F000 (ExtError::NoSchema: this session has `public` on its search_path), anything else.
ALLOWED = {**EXTENSION_ERRORS, **POSTGRES_JSON_ERRORS}
PANIC_MARKERS = ("panicked at", "rust_begin_unwind", "core::panicking", "std::panicking")
# The extension shortens its messages to 1,000 characters plus "… (message shortened)"
# (src/error.rs): a parser error that quotes a megabyte value must not be a megabyte long. No
# rejection, from the extension or from PostgreSQL, may have a longer message than this.
MAX_MESSAGE_CHARS = 1100
SHORTENED_AT = 1000
SHORTENED = "… (message shortened)"

# serde_json's recursion limit: the manifest parser refuses containers nested this deep (the root
# object included) where it reads them, and it reads an effect whole, unknown fields included
# (see test_unknown_fields_of_an_effect_are_ignored_whatever_their_value). It skips unknown fields
# of the manifest and of a migration without descending into them: any depth PostgreSQL accepts.
SERDE_DEPTH = 128

KINDS = ["create_table", "drop_table", "rename_table", "add_column", "drop_column",
         "rename_column", "alter_column", "add_index", "drop_index", "rename_index",
         "add_constraint", "drop_constraint", "alter_unique_together", "alter_index_together",
         "opaque"]
# Fields without a default, by effect kind (crates/core/src/manifest.rs).
REQUIRED_EFFECT_FIELDS = {
    "create_table": {"table"}, "drop_table": {"table"}, "rename_table": {"old", "new"},
    "add_column": {"table", "column"}, "drop_column": {"table", "column"},
    "rename_column": {"table", "old", "new"}, "alter_column": {"table", "column"},
    "add_index": {"table", "name"}, "drop_index": {"table", "name"},
    "rename_index": {"table", "old", "new"}, "add_constraint": {"table", "name"},
    "drop_constraint": {"table", "name"}, "alter_unique_together": {"table"},
    "alter_index_together": {"table"}, "opaque": set(),
}
# The value a reader assumes for each optional field when it is absent.
DEFAULTS = {"django_version": None, "dependencies": [], "replaces": [], "atomic": True,
            "companion": False, "effects": [], "op": "", "columns": [], "schema": None,
            "reason": "", "old": [], "new": []}
UNICODE = ["é", "日本語のテーブル", "🦀" * 8, "\u202eevil", "a\u0301", "\u2028\u2029",
           "\ufeff", "\u3000", "\x01\x1f\x7f", "Ω≈ç√∫", "\U0010ffff", "\x00", "\ud800",
           "x\udfffy"]


@dataclass
class Case:
    """One input. `text` is JSON text (None: SQL NULL). `expect`: None (any allowed outcome),
    "accept", "null" (NULL in, NULL out, nothing stored) or the SQLSTATEs allowed; `pattern`:
    what the error message must say; `same_digest`: an accepted input must have the original
    manifest's digest."""
    label: str
    text: str | None
    expect: object = None
    pattern: str | None = None
    same_digest: bool = False


@dataclass
class Base:
    """The valid manifest every mutation starts from."""
    value: dict
    text: str
    paths: list = field(default_factory=list)
    edge: list = field(default_factory=list)

    def copy(self):
        return json.loads(self.text)

    @property
    def migrations(self):
        return self.value["migrations"]

    def keys(self):
        return {(m["app"], m["name"]) for m in self.migrations}


# --- JSON helpers ------------------------------------------------------------------------------


def dump(value, rng=None):
    """Compact JSON text; with raw UTF-8 or \\u escapes (a lone surrogate is always escaped)."""
    ascii_only = rng is None or rng.random() < 0.5
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    if not ascii_only:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(value, separators=(",", ":"))
    return text


def beyond_f64(value):
    """Whether `value` is a number that is infinite as an f64: the manifest parser refuses it
    (`number out of range`) wherever it reads it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return False
    try:
        return math.isinf(float(value))
    except OverflowError:
        return True


def strings(value):
    """Every string in `value`, keys included."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def refused_by_postgres(value):
    """Whether PostgreSQL's jsonb input refuses `value`: \u0000 (22P05) or a lone surrogate
    (22P02) in a string. The extension never sees such a manifest."""
    return any("\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s)
               for s in strings(value) if len(s) < 4096)


def value_case(label, value, rng=None, **kwargs):
    case = Case(label, dump(value, rng), **kwargs)
    if refused_by_postgres(value):
        case.expect, case.pattern, case.same_digest = {"22P02", "22P05"}, None, False
    return case


def shortened(message):
    """`message` as the extension reports it (src/error.rs)."""
    return message if len(message) <= SHORTENED_AT else message[:SHORTENED_AT] + SHORTENED


def strict_loads(text):
    """Python's parser, as strict as PostgreSQL's: no NaN or Infinity, exact decimals."""
    def refuse(constant):
        raise ValueError(constant)
    return json.loads(text, parse_constant=refuse, parse_float=Decimal)


def parses(text):
    try:
        strict_loads(text)
    except ValueError:
        return False
    return True


def all_paths(value):
    """Every node below the root, as a tuple of keys and indices."""
    paths, stack = [], [((), value)]
    while stack:
        path, node = stack.pop()
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for key, child in items:
            paths.append(path + (key,))
            stack.append((path + (key,), child))
    paths.sort(key=lambda p: [str(part) for part in p])
    return paths


def node_at(value, path):
    for part in path:
        value = value[part]
    return value


def replace_at(value, path, new):
    node_at(value, path[:-1])[path[-1]] = new
    return value


def delete_at(value, path):
    del node_at(value, path[:-1])[path[-1]]
    return value


def huge_string(rng):
    return "x" * rng.choice([1025, 65_536, 1 << 20])


def hostile_value(rng):
    """A value of any type, for any place."""
    pool = [
        None, True, False, 0, 1, -1, -2**31, 2**31, -2**63, 2**63, 2**64, -(2**64), 0.5, -0.0,
        1e300, -1e-300, "", " ", "x", "0001_initial", "default", "null", "[]",
        [], [None], [[]], [["a", "b"]], ["a", "b", "c"], {}, {"kind": "opaque"}, {"name": ""},
        {"app": "a", "name": "b"}, {"schema": None, "name": "t"},
    ]
    roll = rng.random()
    if roll < 0.03:
        return huge_string(rng)
    if roll < 0.04:
        return rng.choice([10**400, -(10**400)])
    if roll < 0.25:
        return rng.choice(UNICODE) * rng.randint(1, 3)
    if roll < 0.35:
        return -rng.randint(1, 2**70)
    return rng.choice(pool)


def migration_key(migration):
    return [migration["app"], migration["name"]]


# --- the generators, one per category ----------------------------------------------------------


MALFORMED = [
    "", " ", "\n", "{", "}", "[", "]", "{]", "[}", "{,}", "[1,]", "[1 2]", '{"a" 1}',
    '{"a":1 "b":2}', '{"a":1,}', "{'format_version': 1}", "{format_version: 1}", "NaN",
    "Infinity", "-Infinity", '{"a": NaN}', "undefined", "nul", "tru", "fals", "01", "1.", ".5",
    "+1", "-", "1e", "0x10", '"abc', '"\\x41"', '"\\u12"', '"\\ud800"', '"\\udfff"', '"\\u0000"',
    '{"alias": "\\u0000"}', "/* c */ {}", "{} // c", "{}{}", "{} x", "\ufeff{}", '"a\tb"',
    '"line\nbreak"', "[" * 64, "{" * 64, '{"format_version": 1, "alias": "x", "migrations": [}',
    '{"format_version": 1, "alias": "x", "migrations": [{"app": "a", "name": "b"]}',
    '{"format_version": 1 "alias": "x"}', "\\", "'", "\x01", "True", "None",
]
GARBAGE = ["x", ",", "]", "}", "{", "[", '"', "\\", "/", "\x7f", "é", ":", "0", "-", "null"]


def gen_malformed_text(rng, k, base):
    if k < len(MALFORMED):
        text = MALFORMED[k]
        return Case(f"pool {text[:40]!r}", text, expect={"22P02", "22P05"})
    for _ in range(200):
        how = rng.choice(["truncate", "structural", "append", "prepend", "quote"])
        text = base.text
        if how == "truncate":
            text = text[:rng.randrange(1, len(text))]
        elif how == "structural":
            positions = [i for i, c in enumerate(text) if c in '{}[]:,"']
            i = rng.choice(positions)
            text = text[:i] + text[i + 1:]
        elif how == "append":
            text = text + rng.choice(GARBAGE) * rng.randint(1, 3)
        elif how == "prepend":
            text = rng.choice(GARBAGE) + text
        else:
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(["'", '"', "\\", "\n", "\t"]) + text[i:]
        if not parses(text):
            return Case(f"{how} of the manifest", text, expect={"22P02", "22P05"})
    raise AssertionError("could not produce malformed text")


FORMAT_VERSIONS = [
    # (label, JSON text of the value or None to delete the key, expectation, message)
    ("deleted", None, {"22023"}, r"no format_version"),
    ("null", "null", {"22023"}, r"no format_version"),
    ("1", "1", "accept", None),
    ("1e0", "1e0", "accept", None),
    ("0.1e1", "0.1e1", "accept", None),
    ("0", "0", {"0A000"}, r"format_version 0 is not supported"),
    ("2", "2", {"0A000"}, r"format_version 2 is not supported"),
    ("3", "3", {"0A000"}, r"format_version 3 is not supported"),
    ("2^32", str(2**32), {"0A000"}, r"format_version 4294967296 is not supported"),
    ("u64 max", str(2**64 - 1), {"0A000"}, r"is not supported"),
    ("2^64", str(2**64), {"22032"}, r"manifest is not valid"),
    ("-1", "-1", {"22032"}, r"manifest is not valid"),
    ("-2^63", str(-2**63), {"22032"}, r"manifest is not valid"),
    ("1.0", "1.0", {"22032"}, r"manifest is not valid"),
    ("10e-1", "10e-1", {"22032"}, r"manifest is not valid"),
    ("1.5", "1.5", {"22032"}, r"manifest is not valid"),
    ("0.5", "0.5", {"22032"}, r"manifest is not valid"),
    ("1e300", "1e300", {"22032"}, r"manifest is not valid"),
    ("string 1", '"1"', {"22032"}, r"manifest is not valid"),
    ("string one", '"one"', {"22032"}, r"manifest is not valid"),
    ("true", "true", {"22032"}, r"manifest is not valid"),
    ("empty list", "[]", {"22032"}, r"manifest is not valid"),
    ("list [1]", "[1]", {"22032"}, r"manifest is not valid"),
    ("object", '{"major": 1}', {"22032"}, r"manifest is not valid"),
]


def with_format_version(base, raw):
    """The manifest's text with format_version replaced by raw JSON text (None: no key)."""
    value = base.copy()
    del value["format_version"]
    body = dump(value)
    return body if raw is None else '{"format_version":' + raw + "," + body[1:]


def gen_format_version(rng, k, base):
    if k < len(FORMAT_VERSIONS):
        label, raw, expect, pattern = FORMAT_VERSIONS[k]
    else:
        label, raw = "random", None
        roll = rng.random()
        if roll < 0.4:
            number = rng.choice([rng.randint(2, 2**64 - 1), rng.randint(0, 1000)])
            raw = str(number)
            if number == 1:
                expect, pattern = "accept", None
            else:
                expect, pattern = {"0A000"}, rf"format_version {number} is not supported"
        elif roll < 0.6:
            raw, expect, pattern = str(-rng.randint(1, 2**70)), {"22032"}, r"manifest is not valid"
        else:
            value = hostile_value(rng)
            raw = dump(value)
            if value is None:
                expect, pattern = {"22023"}, r"no format_version"
            elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
                expect = "accept" if value == 1 else {"0A000"}
                pattern = None if value == 1 else r"is not supported"
            elif refused_by_postgres(value):
                expect, pattern = {"22P02", "22P05"}, None
            elif beyond_f64(value):
                expect, pattern = {"22032"}, r"manifest is not valid: number out of range"
            else:
                expect, pattern = {"22032"}, r"manifest is not valid"
        label = f"random {raw[:30]}"
    text = with_format_version(base, raw)
    return Case(f"format_version {label}", text, expect=expect, pattern=pattern,
                same_digest=expect == "accept")


def gen_type_mutation(rng, k, base):
    path = rng.choice(base.paths)
    new = hostile_value(rng)
    value = replace_at(base.copy(), path, new)
    # The parser reads every field of the exported manifest, so a number beyond f64 is refused
    # wherever it lands; other values may or may not fit where they land.
    expect, pattern = ({"22032"}, r"manifest is not valid: number out of range") if beyond_f64(
        new) else (None, None)
    return value_case(f"replace {'/'.join(map(str, path))}", value, rng, expect=expect,
                      pattern=pattern)


def deletion_expectation(base, path):
    """(expect, pattern, same_digest) for deleting the node at `path` from the real manifest."""
    key, parent_path = path[-1], path[:-1]
    parent = node_at(base.value, parent_path)
    if isinstance(parent, dict):
        removed = parent[key]
        if parent_path == ():
            required = {"format_version", "alias", "migrations"}
        elif len(parent_path) == 2:
            required = {"app", "name"}
        elif len(parent_path) == 4 and parent_path[2] == "effects":
            required = {"kind"} | REQUIRED_EFFECT_FIELDS[parent["kind"]]
        else:
            required = {"name"}  # a table reference
        if key == "format_version":
            return {"22023"}, r"no format_version", False
        if key in required:
            return {"22032"}, rf"missing field `{key}`", False
        return "accept", None, removed == DEFAULTS[key]
    if len(path) == 2:
        gone = migration_key(parent[key])
        dependents = [m for m in base.migrations if gone in m["dependencies"]]
        if dependents:
            return {"22023"}, r"which is not in the manifest", False
        return "accept", None, False
    if len(path) == 5 and path[2] in ("dependencies", "replaces"):
        return {"22032"}, r"invalid length 1", False
    return "accept", None, False


def gen_key_deletion(rng, k, base):
    path = rng.choice(base.paths)
    expect, pattern, same = deletion_expectation(base, path)
    value = delete_at(base.copy(), path)
    return value_case(f"delete {'/'.join(map(str, path))}", value, rng, expect=expect,
                      pattern=pattern, same_digest=same)


def gen_duplicate_migration(rng, k, base):
    value = base.copy()
    migrations = value["migrations"]
    how = rng.choice(["copy after", "copy anywhere", "same key, other content", "whole list"])
    if how == "whole list":
        migrations.extend(json.loads(json.dumps(migrations)))
    else:
        i = rng.randrange(len(migrations))
        twin = json.loads(json.dumps(migrations[i]))
        if how == "same key, other content":
            twin.update(effects=[], dependencies=[], atomic=not twin["atomic"])
        start = i + 1 if how == "copy after" else 0
        migrations.insert(rng.randint(start, len(migrations)), twin)
    return value_case(f"duplicate: {how}", value, rng, expect={"22023"},
                      pattern=r"is listed twice")


def missing_key(rng, base):
    app = rng.choice(sorted({m["app"] for m in base.migrations}))
    known = base.keys()
    for _ in range(100):
        candidate = rng.choice([
            ["nope", "0001_initial"], [app, "9999_missing"], [app.upper(), "0001_initial"],
            [app, "0001_initial "], [" " + app, "0001_initial"], [app, "0001_Initial"],
            [app.replace("a", "\u0430"), "0001_initial"], ["", ""], [app, ""],
            [app + "\u200b", "0001_initial"], [rng.choice(UNICODE), rng.choice(UNICODE)],
            ["x" * rng.randint(1, 2000), "0001_initial"],
        ])
        if tuple(candidate) not in known:
            return candidate
    raise AssertionError("no unknown dependency found")


def gen_unknown_dependency(rng, k, base):
    value = base.copy()
    migration = rng.choice(value["migrations"])
    dependency = missing_key(rng, base)
    deps = migration["dependencies"]
    deps.insert(rng.randint(0, len(deps)), dependency)
    # The whole message, or as much of it as the extension keeps: with a dependency name of about
    # 900 characters or more, "which is not in the manifest" is cut off.
    message = shortened(f"django_migrator: migration {migration['app']}.{migration['name']} "
                        f"depends on {dependency[0]}.{dependency[1]}, which is not in the manifest")
    return value_case(f"depends on {dependency[0][:20]!r}.{dependency[1][:20]!r}", value, rng,
                      expect={"22023"}, pattern="^" + re.escape(message) + "$")


def gen_cyclic_dependency(rng, k, base):
    value = base.copy()
    migrations = value["migrations"]
    n = len(migrations)
    how = ["self", "forward", "two-cycle", "long cycle", "reversed", "moved"][k % 6]
    if how == "self":
        m = rng.choice(migrations)
        m["dependencies"].append(migration_key(m))
    elif how == "forward":
        i, j = sorted(rng.sample(range(n), 2))
        migrations[i]["dependencies"].append(migration_key(migrations[j]))
    elif how == "two-cycle":
        i, j = sorted(rng.sample(range(n), 2))
        if migration_key(migrations[i]) not in migrations[j]["dependencies"]:
            migrations[j]["dependencies"].append(migration_key(migrations[i]))
        migrations[i]["dependencies"].append(migration_key(migrations[j]))
    elif how == "long cycle":
        ring = sorted(rng.sample(range(n), rng.randint(3, min(12, n))))
        for a, b in zip(ring, ring[1:]):
            migrations[b]["dependencies"].append(migration_key(migrations[a]))
        migrations[ring[0]]["dependencies"].append(migration_key(migrations[ring[-1]]))
    elif how == "reversed":
        migrations.reverse()
    else:
        depended = {tuple(d) for m in migrations for d in m["dependencies"]}
        movable = [i for i, m in enumerate(migrations) if tuple(migration_key(m)) in depended]
        migrations.append(migrations.pop(rng.choice(movable)))
    return value_case(f"cycle: {how}", value, rng, expect={"22023"},
                      pattern=r"which comes later")


def gen_unknown_kind(rng, k, base):
    value = base.copy()
    effects = [e for m in value["migrations"] for e in m["effects"]]
    effect = rng.choice(effects)
    if rng.random() < 0.15:
        effect["op"] = rng.choice(["UnknownOperation", "", "RunSQL", rng.choice(UNICODE)])
        return value_case(f"op {effect['op'][:20]!r}", value, rng, expect="accept")
    kind = effect["kind"]
    new = rng.choice([
        "explode", kind.upper(), kind.title(), kind.replace("_", "-"), kind.replace("_", ""),
        kind + " ", " " + kind, "", "drop_everything", kind.replace("e", "\u0435"),
        "run_sql", "run_python", "create_model", "".join(rng.sample(kind, len(kind))),
        None, 0, [], {}, [kind], {"kind": kind},
    ])
    if new in KINDS:
        new = new + "_"
    effect["kind"] = new
    pattern = r"unknown variant" if isinstance(new, str) else None
    return value_case(f"kind {new!r}", value, rng, expect={"22032"}, pattern=pattern)


def chain(count, effects_each=1):
    """Text of a valid manifest of `count` migrations, each depending on the one before."""
    effect = '{"kind":"opaque","op":"RunPython","reason":"RunPython"}'
    effects = "[" + ",".join([effect] * effects_each) + "]"
    parts = []
    for i in range(count):
        deps = f'[["app","{i - 1:07d}"]]' if i else "[]"
        parts.append(f'{{"app":"app","name":"{i:07d}","dependencies":{deps},"effects":{effects}}}')
    return '{"format_version":1,"alias":"default","migrations":[' + ",".join(parts) + "]}"


def flat(count):
    parts = [f'{{"app":"a","name":"{i:07d}"}}' for i in range(count)]
    return '{"format_version":1,"alias":"default","migrations":[' + ",".join(parts) + "]}"


def with_extra(base, key, raw):
    """The manifest's text with one more top-level member `key`: raw JSON text."""
    return base.text[:-1] + "," + json.dumps(key) + ":" + raw + "}"


HUGE = [
    ("chain of 10,000 migrations", lambda b: Case("", chain(10_000), expect="accept")),
    ("chain of 50,000 migrations", lambda b: Case("", chain(50_000), expect="accept")),
    ("200,000 migrations, the limit", lambda b: Case("", flat(200_000), expect="accept")),
    ("200,001 migrations", lambda b: Case("", flat(200_001), expect={"22023"},
                                          pattern=r"200001 migrations, more than the limit")),
    ("one migration with 100,000 effects", lambda b: Case("", chain(1, 100_000), expect="accept")),
    ("4 MB alias", lambda b: value_case("", dict(b.value, alias="a" * (4 << 20)),
                                        expect="accept")),
    ("4 MB app label", lambda b: value_case("", dict(b.value, migrations=[
        dict(b.migrations[0], app="a" * (4 << 20))] + b.migrations[1:]), expect={"22023"},
        pattern=r"the app label")),
    ("4 MB string in an unknown field", lambda b: Case(
        "", with_extra(b, "notes", json.dumps("n" * (4 << 20))), expect="accept",
        same_digest=True)),
    ("100,000 unknown keys", lambda b: Case("", with_extra(b, "extra", json.dumps(
        {f"k{i}": i for i in range(100_000)})), expect="accept", same_digest=True)),
    ("a migration with 20,000 dependencies", lambda b: Case("", fan_in(20_000),
                                                            expect="accept")),
]


def fan_in(count):
    parts = [f'{{"app":"a","name":"{i:07d}"}}' for i in range(count)]
    deps = ",".join(f'["a","{i:07d}"]' for i in range(count))
    parts.append(f'{{"app":"b","name":"0001","dependencies":[{deps}]}}')
    return '{"format_version":1,"alias":"default","migrations":[' + ",".join(parts) + "]}"


def gen_huge(rng, k, base):
    label, make = HUGE[k % len(HUGE)]
    case = make(base)
    case.label = label
    return case


def nested(depth, opener, closer, leaf="0"):
    return opener * depth + leaf + closer * depth


DEEP = [
    # (label, depth of the nesting, where, shape); the containers above it are counted in LEVELS.
    ("100 arrays in an unknown field", 100, "unknown", "array"),
    ("126 arrays in an unknown field", 126, "unknown", "array"),
    ("127 arrays in an unknown field", 127, "unknown", "array"),
    ("1,000 arrays in an unknown field", 1_000, "unknown", "array"),
    ("5,000 arrays in an unknown field", 5_000, "unknown", "array"),
    ("5,000 objects in an unknown field", 5_000, "unknown", "object"),
    ("5,000 arrays in an unknown field of a migration", 5_000, "migration", "array"),
    ("5,000 arrays as migrations", 5_000, "migrations", "array"),
    ("122 objects as a table reference", 122, "table", "object"),
    ("123 objects as a table reference", 123, "table", "object"),
    ("5,000 objects as a table reference", 5_000, "table", "object"),
    ("122 arrays as an effect's reason", 122, "reason", "array"),
    ("123 arrays as an effect's reason", 123, "reason", "array"),
    ("200,000 arrays in an unknown field", 200_000, "unknown", "array"),
]
# Containers above the nesting: the root object; for "migration" also the list and the migration;
# for "table" and "reason" the list, the migration, its effects and the effect.
LEVELS = {"unknown": 1, "migration": 3, "migrations": 1, "table": 5, "reason": 5}


def gen_deep_nesting(rng, k, base):
    label, depth, where, shape = DEEP[k % len(DEEP)]
    inner = (nested(depth, "[", "]") if shape == "array"
             else nested(depth, '{"a":', "}"))
    mini = '{"format_version":1,"alias":"default","migrations":[{"app":"a","name":"1","effects":['
    if where == "unknown":
        text = with_extra(base, "deep", inner)
    elif where == "migration":
        value = base.copy()
        value["migrations"][0]["deep"] = "@deep@"
        text = dump(value).replace('"@deep@"', inner, 1)
    elif where == "migrations":
        text = '{"format_version":1,"alias":"default","migrations":' + inner + "}"
    elif where == "table":
        text = mini + '{"kind":"drop_table","table":' + inner + "}]}]}"
    else:
        text = mini + '{"kind":"opaque","reason":' + inner + "}]}]}"
    levels = depth + LEVELS[where]
    if depth >= 100_000:
        # PostgreSQL's jsonb input gives up first, beyond max_stack_depth.
        expect, pattern = {"54001"}, r"stack depth limit exceeded"
    elif where in ("unknown", "migration"):
        # Skipped by the parser whatever their depth: the manifest is the original.
        expect, pattern = "accept", None
    elif where == "migrations":
        # A migration read from a list: its first field, the app label, is a list.
        expect, pattern = {"22032"}, r"invalid type: sequence, expected a string"
    elif levels >= SERDE_DEPTH:
        # An effect is read whole before its kind is known, so its depth counts.
        expect, pattern = {"22032"}, r"manifest is not valid: recursion limit exceeded"
    elif where == "table":
        expect, pattern = {"22032"}, r"missing field `name`"
    else:
        expect, pattern = {"22032"}, r"invalid type: sequence, expected a string"
    return Case(label, text, expect=expect, pattern=pattern, same_digest=expect == "accept")


CORRUPTION_CHARS = '{}[]":,0123456789 -.eE\\atfnulr' + "é\x7f\t"


def gen_byte_corruption(rng, k, base):
    for _ in range(500):
        text = base.text
        edits = rng.randint(1, 4)
        for _ in range(edits):
            i = rng.randrange(len(text))
            how = rng.choice(["replace", "delete", "insert", "duplicate", "swap"])
            char = rng.choice(CORRUPTION_CHARS) if rng.random() < 0.7 else chr(
                rng.randint(0x20, 0x7e))
            if how == "replace":
                text = text[:i] + char + text[i + 1:]
            elif how == "delete":
                text = text[:i] + text[i + 1:]
            elif how == "insert":
                text = text[:i] + char + text[i:]
            elif how == "duplicate":
                j = min(len(text), i + rng.randint(1, 40))
                text = text[:j] + text[i:j] + text[j:]
            elif i + 1 < len(text):
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        try:
            strict_loads(text)
        except (ValueError, RecursionError):
            continue
        if text != base.text:
            return Case(f"{edits} byte edit(s)", text)
    raise AssertionError("no corruption of the manifest still parses")


EDGE_EFFECT = {"kind": "create_table", "op": "CreateModel",
               "table": {"schema": None, "name": "edge_item"}, "columns": ["id", "name"]}


def edge_cases(base):
    """(label, make) pairs: valid-looking inputs whose outcome is known. Most append one
    migration (`added`) so that the names of the real ones, which others depend on, stay."""
    def added(**fields):
        migration = {"app": "edge", "name": "0001_initial",
                     "dependencies": [migration_key(base.migrations[0])],
                     "effects": [EDGE_EFFECT], **fields}
        return dict(base.value, migrations=base.migrations + [migration])

    def added_effect(**changes):
        return added(effects=[dict(EDGE_EFFECT, **changes)])

    def case(value_of, expect=None, pattern=None):
        return lambda rng: value_case("", value_of, rng, expect=expect, pattern=pattern)

    def alias(name, expect, pattern=None):
        return case(dict(base.value, alias=name), expect, pattern)

    def shuffled(rng):
        value = base.copy()
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                items = list(node.items())
                rng.shuffle(items)
                node.clear()
                node.update(items)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return value_case("", value, rng, expect="accept", same_digest=True)

    def unknown_key(rng):
        value = base.copy()
        objects = [node for node in (node_at(value, p) for p in [()] + base.paths)
                   if isinstance(node, dict)]
        key = "x_" + rng.choice(["note", "format_version", "kind", "é", "🦀", ""])
        rng.choice(objects)[key] = hostile_value(rng)
        unknown = value_case("", value, rng)
        if unknown.expect is None:
            # Readers ignore fields they do not know (docs/manifest.md), whatever their value.
            unknown.expect, unknown.same_digest = "accept", True
        return unknown

    def text(text, **kwargs):
        return lambda rng: Case("", text, **kwargs)

    invalid = r"manifest is not valid"
    names = r"a column, index or constraint name"
    spaced = json.dumps(base.value, separators=(" ,\n\t", "\r\n: \t"))
    return [
        ("no migrations", case(dict(base.value, migrations=[]), "accept")),
        ("alias ' '", alias(" ", {"22023"}, r"alias must be a non-empty name")),
        ("alias ''", alias("", {"22023"}, r"alias must be a non-empty name")),
        ("alias tab and newline", alias("\t\n", {"22023"}, r"alias must be a non-empty name")),
        ("alias ideographic space", alias("\u3000", {"22023"}, r"alias must be a non-empty")),
        ("alias zero-width space", alias("\u200b", None)),
        ("alias null", alias(None, {"22032"}, invalid)),
        ("alias 1", alias(1, {"22032"}, invalid)),
        ("alias unicode", alias("базаданных🦀", "accept")),
        ("alias SQL", alias("'; DROP TABLE django_migrator.manifest; --", "accept")),
        ("a new migration", case(added(), "accept")),
        ("app label of 1024 bytes", case(added(app="a" * 1024), "accept")),
        ("app label of 1025 bytes", case(added(app="a" * 1025), {"22023"}, r"the app label")),
        ("app label of 512 two-byte characters", case(added(app="é" * 512), "accept")),
        ("app label of 1026 bytes in two-byte characters",
         case(added(app="é" * 513), {"22023"}, r"the app label")),
        ("empty app label", case(added(app=""), {"22023"}, r"the app label in migration \.")),
        ("empty migration name", case(added(name=""), {"22023"}, r"the migration name")),
        ("migration name of 1025 bytes",
         case(added(name="n" * 1025), {"22023"}, r"the migration name")),
        ("names with quotes, dots and backslashes",
         case(added(app='a."b"', name="0001\\'x"), "accept")),
        ("astral characters in a name", case(added(name="🦀\U0010ffff"), "accept")),
        ("empty table name", case(added_effect(table={"schema": None, "name": ""}), {"22023"},
                                  r"a table name")),
        ("empty schema", case(added_effect(table={"schema": "", "name": "t"}), {"22023"},
                              r"a table name")),
        ("schema of 1025 bytes", case(added_effect(table={"schema": "s" * 1025, "name": "t"}),
                                      {"22023"}, r"a table name")),
        ("table name of 1024 bytes", case(added_effect(table={"name": "t" * 1024}), "accept")),
        ("explicit schema", case(added_effect(table={"schema": "audit", "name": "t"}), "accept")),
        ("empty column name", case(added_effect(columns=["id", ""]), {"22023"}, names)),
        ("column name of 1025 bytes", case(added_effect(columns=["c" * 1025]), {"22023"},
                                           names)),
        ("empty index name", case(added_effect(kind="add_index", name=""), {"22023"}, names)),
        ("rename to an empty column", case(added_effect(
            kind="rename_column", old="a", new=""), {"22023"}, names)),
        ("rename_table with a bad new name", case(added_effect(
            kind="rename_table", old={"name": "a"}, new={"name": ""}), {"22023"},
            r"a table name")),
        ("every effect kind with its fields", case(added(effects=[
            {"kind": "create_table", "table": {"name": "t"}, "columns": ["a"]},
            {"kind": "add_column", "table": {"name": "t"}, "column": "b"},
            {"kind": "alter_column", "table": {"name": "t"}, "column": "b"},
            {"kind": "rename_column", "table": {"name": "t"}, "old": "b", "new": "c"},
            {"kind": "add_index", "table": {"name": "t"}, "name": "i", "columns": ["a"]},
            {"kind": "rename_index", "table": {"name": "t"}, "old": "i", "new": "j"},
            {"kind": "drop_index", "table": {"name": "t"}, "name": "j"},
            {"kind": "add_constraint", "table": {"name": "t"}, "name": "k"},
            {"kind": "drop_constraint", "table": {"name": "t"}, "name": "k"},
            {"kind": "alter_unique_together", "table": {"name": "t"}, "new": [["a", "c"]]},
            {"kind": "alter_index_together", "table": {"name": "t"}, "old": [], "new": []},
            {"kind": "drop_column", "table": {"name": "t"}, "column": "c"},
            {"kind": "rename_table", "old": {"name": "t"}, "new": {"schema": "s", "name": "u"}},
            {"kind": "drop_table", "table": {"schema": "s", "name": "u"}},
            {"kind": "opaque"}]), "accept")),
        ("every migration a companion", case(dict(base.value, migrations=[
            dict(m, companion=True) for m in base.migrations]), "accept")),
        ("django_version null", case(dict(base.value, django_version=None), "accept")),
        ("replaces unknown migrations", case(added(replaces=[["gone", "0001"], ["", ""]]))),
        ("a dependency listed twice", case(added(
            dependencies=[migration_key(base.migrations[0])] * 2), "accept")),
        ("dependency as a list of three", case(added(
            dependencies=[migration_key(base.migrations[0]) + ["x"]]), {"22032"}, invalid)),
        ("atomic 1", case(added(atomic=1), {"22032"}, r"invalid type")),
        ("keys in another order", shuffled),
        ("an unknown key", unknown_key),
        ("pretty-printed", lambda rng: Case("", json.dumps(base.value, indent=rng.randint(1, 8)),
                                            expect="accept", same_digest=True)),
        ("whitespace everywhere", text(" \n" + spaced + "\t\r\n", expect="accept",
                                       same_digest=True)),
        ("escaped key", text(base.text.replace('"alias"', '"\\u0061lias"', 1),
                             expect="accept", same_digest=True)),
        ("format_version twice, 1 last", text('{"format_version":2,' + base.text[1:],
                                              expect="accept", same_digest=True)),
        ("format_version twice, 2 last", text(
            base.text.replace('"format_version":1', '"format_version":1,"format_version":2', 1),
            expect={"0A000"}, pattern=r"format_version 2 is not supported")),
        ("top-level list", text("[]", expect={"22032"}, pattern=invalid)),
        ("top-level string", text('"manifest"', expect={"22032"}, pattern=invalid)),
        ("top-level number", text("1", expect={"22032"}, pattern=invalid)),
        ("top-level JSON null", text("null", expect={"22032"}, pattern=invalid)),
        ("top-level true", text("true", expect={"22032"}, pattern=invalid)),
        ("empty object", text("{}", expect={"22023"}, pattern=r"no format_version")),
        ("SQL NULL", text(None, expect="null")),
        ("number beyond numeric", text(with_extra(base, "n", "1e1000000"), expect={"22003"})),
        ("number beyond f64", text(with_extra(base, "n", "1e400"), expect="accept",
                                   same_digest=True)),
        ("negative number beyond f64", text(with_extra(base, "n", "-1e400"), expect="accept",
                                            same_digest=True)),
        ("number beyond f64 as format_version", text(
            with_format_version(base, "1e400"), expect={"22032"},
            pattern=r"manifest is not valid: number out of range")),
        ("number beyond f64 as the alias", case(
            dict(base.value, alias=10**400), {"22032"},
            r"manifest is not valid: number out of range")),
        ("number beyond f64 as atomic", case(
            added(atomic=-(10**400)), {"22032"}, r"manifest is not valid: number out of range")),
        ("number beyond f64 as a column", case(
            added_effect(columns=["id", 10**400]), {"22032"},
            r"manifest is not valid: number out of range")),
        ("number below f64", text(with_extra(base, "n", "1e-400"), expect="accept",
                                  same_digest=True)),
        ("2^63 in an unknown field", text(with_extra(base, "n", str(2**63)), expect="accept",
                                          same_digest=True)),
        ("\\u0000 in the alias", text(dump(dict(base.value, alias="a\x00b")),
                                      expect={"22P05"})),
        ("lone surrogate in a name", text(dump(added(name="\ud800")), expect={"22P02"})),
    ]


def gen_edge_case(rng, k, base):
    cases = base.edge
    label, make = cases[k] if k < len(cases) else rng.choice(cases)
    case = make(rng)
    case.label = label
    return case


# Categories: generator and share of the cases; the fixed-list ones get at least one round.
CATEGORIES = {
    "malformed_text": (gen_malformed_text, 0.10),
    "format_version": (gen_format_version, 0.06),
    "type_mutation": (gen_type_mutation, 0.26),
    "key_deletion": (gen_key_deletion, 0.12),
    "duplicate_migration": (gen_duplicate_migration, 0.05),
    "unknown_dependency": (gen_unknown_dependency, 0.05),
    "cyclic_dependency": (gen_cyclic_dependency, 0.06),
    "unknown_kind": (gen_unknown_kind, 0.06),
    "byte_corruption": (gen_byte_corruption, 0.16),
    "edge_case": (gen_edge_case, 0.08),
    "deep_nesting": (gen_deep_nesting, None),
    "huge": (gen_huge, None),
}


def schedule(total, base):
    """The (category, index in the category) of every case, interleaved from the seed. Huge and
    deep inputs are a fixed round plus a few more per thousand cases, not a share."""
    counts = {"huge": len(HUGE) + total // 5000, "deep_nesting": len(DEEP) + total // 500}
    rest = max(0, total - sum(counts.values()))
    for name, (_, share) in CATEGORIES.items():
        if share is not None:
            counts[name] = round(rest * share)
    counts["edge_case"] = max(counts["edge_case"], len(base.edge))
    counts["format_version"] = max(counts["format_version"], len(FORMAT_VERSIONS))
    counts["malformed_text"] = max(counts["malformed_text"], len(MALFORMED))
    order = [(name, k) for name, count in counts.items() for k in range(count)]
    random.Random(SEED).shuffle(order)
    return order


def make_case(name, k, base):
    rng = random.Random(f"{SEED}:{name}:{k}")
    return CATEGORIES[name][0](rng, k, base)


# --- running the inputs ------------------------------------------------------------------------


STATE = """SELECT pg_backend_pid(), i.alias, i.digest, i.loaded_at, i.migrations, i.effects
             FROM django_migrator.manifest_info() i"""
SCAN = """SELECT (SELECT count(*) FROM django_migrator.scan()),
                 (SELECT count(*) FROM django_migrator.status())"""


class Stats:
    def __init__(self):
        self.by_category = {}

    def add(self, category, outcome, seconds, message_chars=0):
        entry = self.by_category.setdefault(
            category, {"tried": 0, "accepted": 0, "rejected": {}, "longest_message": 0,
                       "seconds": 0.0})
        entry["tried"] += 1
        entry["seconds"] += seconds
        entry["longest_message"] = max(entry["longest_message"], message_chars)
        if outcome == "accepted":
            entry["accepted"] += 1
        else:
            entry["rejected"][outcome] = entry["rejected"].get(outcome, 0) + 1

    def total(self, key):
        return sum(entry[key] for entry in self.by_category.values())

    def longest_message(self):
        return max((entry["longest_message"] for entry in self.by_category.values()), default=0)

    def table(self):
        lines = [f"{'category':<20} {'tried':>6} {'accepted':>8} {'longest msg':>11} "
                 f"{'seconds':>8}  rejected by SQLSTATE"]
        for name, entry in sorted(self.by_category.items()):
            rejected = ", ".join(f"{code} {n}" for code, n in sorted(entry["rejected"].items()))
            lines.append(f"{name:<20} {entry['tried']:>6} {entry['accepted']:>8} "
                         f"{entry['longest_message']:>11} {entry['seconds']:>8.1f}  "
                         f"{rejected or '-'}")
        return "\n".join(lines)


class Campaign:
    def __init__(self, conn, base, original_digest, out_dir):
        self.conn = conn
        self.base = base
        self.original = original_digest
        self.out_dir = out_dir
        self.baseline = self.state()
        self.pid = self.baseline[0]
        self.stats = Stats()
        self.failures = []

    def state(self):
        row = self.conn.execute(STATE).fetchone()
        assert row is not None, "manifest_info() is empty: the stored manifest is gone"
        return row

    def load(self, text):
        with self.conn.transaction():
            return self.conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)",
                                     (text,)).fetchone()[0]

    def keep(self, name, k, case):
        """Writes the input to a file, for a failure message."""
        path = Path(self.out_dir) / f"{name}-{k}.json"
        path.write_text("NULL" if case.text is None else case.text, encoding="utf-8",
                        errors="surrogatepass")
        return path

    def fail(self, name, k, case, problem):
        path = self.keep(name, k, case)
        self.failures.append(f"[{name} #{k}, seed {SEED}] {case.label}: {problem} (input: {path})")

    def run(self, name, k, case):
        started = time.monotonic()
        message_chars = 0
        try:
            digest = self.load(case.text)
        except psycopg.errors.Error as error:
            if self.conn.broken or self.conn.closed:
                path = self.keep(name, k, case)
                pytest.fail(f"the backend died on [{name} #{k}, seed {SEED}] {case.label}: "
                            f"{error!r} (input: {path})")
            outcome = self.rejected(name, k, case, error)
            message_chars = len(error.diag.message_primary or "")
        else:
            outcome = self.accepted(name, k, case, digest)
        self.stats.add(name, outcome, time.monotonic() - started, message_chars)

    def accepted(self, name, k, case, digest):
        state = self.state()
        if case.text is None:
            if digest is not None or state != self.baseline:
                self.fail(name, k, case, f"SQL NULL returned {digest!r} and left {state}")
            return "accepted"
        if case.expect not in (None, "accept"):
            self.fail(name, k, case, f"accepted (digest {digest}), expected {case.expect}")
        if state[0] != self.pid or state[2] != digest:
            self.fail(name, k, case, f"load_manifest returned {digest} but manifest_info() "
                                     f"says {state}")
        if case.same_digest and digest != self.original:
            self.fail(name, k, case, f"the same manifest got digest {digest}, not {self.original}")
        # What was accepted can be used: scan() and status() over it.
        try:
            _, statuses = self.conn.execute(SCAN).fetchone()
        except psycopg.errors.Error as error:
            if self.conn.broken:
                pytest.fail(f"the backend died scanning [{name} #{k}] {case.label}: {error!r} "
                            f"(input: {self.keep(name, k, case)})")
            self.fail(name, k, case, f"accepted, but scan() fails with {error.sqlstate} "
                                     f"{(error.diag.message_primary or '')[:300]!r}")
        else:
            if statuses != state[4]:
                self.fail(name, k, case, f"status() has {statuses} rows for {state[4]} migrations")
        restored = self.load(self.base.text)
        assert restored == self.original, f"reloading the original gave digest {restored}"
        self.baseline = self.state()
        return "accepted"

    def rejected(self, name, k, case, error):
        code = error.sqlstate
        message = error.diag.message_primary or ""
        detail = error.diag.message_detail or ""
        state = self.state() if not self.conn.broken else None
        if state is None or state[0] != self.pid:
            pytest.fail(f"[{name} #{k}] {case.label}: the backend changed after {code} "
                        f"{message[:200]} (input: {self.keep(name, k, case)})")
        if state != self.baseline:
            self.fail(name, k, case, f"{code} left the stored manifest changed: {state}, "
                                     f"before {self.baseline}")
        if code not in ALLOWED:
            self.fail(name, k, case, f"SQLSTATE {code} is not allowed: {message[:300]!r}")
            return code
        if not message.strip():
            self.fail(name, k, case, f"{code} with an empty message")
        if len(message) > MAX_MESSAGE_CHARS:
            self.fail(name, k, case, f"{code} with a message of {len(message)} characters: "
                                     f"{message[:200]!r}...")
        if any(marker in message or marker in detail for marker in PANIC_MARKERS):
            self.fail(name, k, case, f"{code} carries a Rust panic: {message[:300]!r}")
        from_extension = message.startswith("django_migrator: ")
        if (code in EXTENSION_ERRORS) != from_extension:
            self.fail(name, k, case, f"{code} from the wrong place: {message[:300]!r}")
        if from_extension and len(message) <= len("django_migrator: manifest is not valid: "):
            self.fail(name, k, case, f"{code} does not say what is wrong: {message!r}")
        if case.expect == "accept" or case.expect == "null":
            self.fail(name, k, case, f"rejected with {code} {message[:300]!r}, expected success")
        elif case.expect is not None and code not in case.expect:
            self.fail(name, k, case, f"{code} {message[:300]!r}, expected {sorted(case.expect)}")
        elif case.pattern and not re.search(case.pattern, message):
            self.fail(name, k, case, f"{code} {message[:300]!r} does not match {case.pattern!r}")
        return code


# --- fixtures and tests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(cluster):
    """The real manifest of the example project's default alias, as the CLI exports it."""
    run = Shop(cluster, "fuzz_").cli("manifest", "--database", "default")
    assert run.code == 0, str(run)
    value = run.json()
    assert value["format_version"] == 1 and len(value["migrations"]) > 10, value
    manifest = Base(value, dump(value))
    manifest.paths = all_paths(value)
    manifest.edge = edge_cases(manifest)
    return manifest


@pytest.fixture(scope="module")
def fuzz_db(cluster):
    cluster.psql("postgres", f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    cluster.psql("postgres", f'CREATE DATABASE "{DATABASE}"')
    cluster.psql(DATABASE, "CREATE EXTENSION django_migrator")
    try:
        yield DATABASE
    finally:
        cluster.psql("postgres", f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


@pytest.fixture
def conn(cluster, fuzz_db):
    connection = psycopg.connect(host=str(cluster.sock), port=cluster.port, user="postgres",
                                 dbname=fuzz_db, autocommit=True)
    try:
        connection.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
        # Tens of thousands of deliberate errors, each logged with its statement (some of them
        # megabytes), would flood the cluster's log; a crash is logged by the postmaster anyway.
        connection.execute("SET log_min_messages = fatal")
        connection.execute("SET log_min_error_statement = panic")
        yield connection
    finally:
        connection.close()


def server_log(cluster):
    path = cluster.dir / "postgres.log"
    try:
        return path.read_bytes()
    except OSError:
        return None


CRASH_LINES = re.compile(rb"terminated by signal|server process .* was terminated|"
                         rb"terminating any other active server processes|PANIC:|TRAP:")


def write_report(stats, seconds, original, log_state):
    summary = {
        "cases": stats.total("tried"), "seed": SEED, "seconds": round(seconds, 1),
        "accepted": stats.total("accepted"), "longest_message": stats.longest_message(),
        "original_digest": original, "server_log": log_state,
        "categories": {name: dict(entry, seconds=round(entry["seconds"], 2))
                       for name, entry in sorted(stats.by_category.items())},
    }
    Path(REPORT).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def test_load_manifest_survives_hostile_input(cluster, base, conn, tmp_path):
    log_before = server_log(cluster)
    original = conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)",
                            (base.text,)).fetchone()[0]
    info = conn.execute("SELECT digest, migrations FROM django_migrator.manifest_info()").fetchone()
    assert info == (original, len(base.migrations)), info
    # Every real migration recorded, none of its tables there: scans of accepted manifests have
    # history rows and drift to evaluate.
    conn.execute("""CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app text NOT NULL,
                                                    name text NOT NULL, applied timestamptz)""")
    conn.execute("""INSERT INTO django_migrations (app, name, applied)
                    SELECT m ->> 'app', m ->> 'name', now()
                      FROM jsonb_array_elements(%s::jsonb -> 'migrations') m""", (base.text,))
    drift_before = conn.execute(SCAN).fetchone()[0]
    campaign = Campaign(conn, base, original, tmp_path)

    started = time.monotonic()
    for name, k in schedule(CASES, base):
        campaign.run(name, k, make_case(name, k, base))
    seconds = time.monotonic() - started

    # The stored manifest is the original, and readable.
    assert campaign.state()[2] == original
    drift, statuses = conn.execute(SCAN).fetchone()
    assert (drift, statuses) == (drift_before, len(base.migrations)), (drift, statuses)

    log_after = server_log(cluster)
    if log_before is None or log_after is None:
        log_state = "unreadable"
    else:
        crashes = CRASH_LINES.findall(log_after[len(log_before):])
        log_state = "clean" if not crashes else f"{len(crashes)} crash lines"
    stats = campaign.stats
    print(f"\nload_manifest fuzz campaign: {stats.total('tried')} inputs, seed {SEED}, "
          f"{seconds:.1f} s; {stats.total('accepted')} accepted (original reloaded after each); "
          f"longest error message {stats.longest_message()} characters; server log {log_state}")
    print(stats.table())
    if REPORT:
        write_report(stats, seconds, original, log_state)

    assert not campaign.failures, (
        f"{len(campaign.failures)} of {stats.total('tried')} inputs misbehaved:\n"
        + "\n".join(campaign.failures[:20]))
    assert log_state in ("clean", "unreadable"), f"the server log reports a crash: {log_state}"


def load(conn, text):
    return conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)", (text,)).fetchone()[0]


def refusal(conn, text):
    """Loads `text`, which must be refused on the same backend without touching the stored
    manifest; returns the error."""
    before = conn.execute(STATE).fetchone()
    with pytest.raises(psycopg.errors.Error) as raised:
        load(conn, text)
    error = raised.value
    message, detail = error.diag.message_primary or "", error.diag.message_detail or ""
    assert not conn.broken
    assert conn.execute(STATE).fetchone() == before, "a refused manifest changed the stored one"
    assert not any(marker in message or marker in detail for marker in PANIC_MARKERS), message
    assert len(message) <= MAX_MESSAGE_CHARS, f"{len(message)} characters: {message[:200]!r}"
    return error


def with_first_migration(base, **fields):
    """The manifest's text with `fields` (raw JSON text) added to its first migration."""
    value = base.copy()
    for key in fields:
        value["migrations"][0][key] = f"@{key}@"
    text = dump(value)
    for key, raw in fields.items():
        text = text.replace(f'"@{key}@"', raw, 1)
    return text


def with_effect(base, effect):
    """The manifest's text with one more migration, whose only effect is `effect` (JSON text)."""
    value = base.copy()
    value["migrations"].append({"app": "edge", "name": "0001_initial", "effects": ["@effect@"]})
    return dump(value).replace('"@effect@"', effect, 1)


BEYOND_SERDE = [
    # (id, JSON text of a value that serde_json cannot hold)
    ("128 levels of nesting", nested(127, "[", "]")),
    ("1,000 levels of objects", nested(1_000, '{"a":', "}")),
    ("number beyond f64", "1e400"),
    ("negative number beyond f64", "-1e400"),
]


@pytest.mark.parametrize("where", ["manifest", "migration"])
@pytest.mark.parametrize("extra", [raw for _, raw in BEYOND_SERDE],
                         ids=[name for name, _ in BEYOND_SERDE])
def test_values_serde_json_cannot_hold_are_ignored_in_unknown_fields(base, conn, where, extra):
    """What PostgreSQL accepts but serde_json could not hold, in a field readers ignore (an
    unknown field of the manifest or of a migration): the manifest is read without it. These
    inputs used to fail with XX000, before the parser saw them."""
    empty = load(conn, dump(dict(base.value, migrations=[])))
    text = (with_extra(base, "x_unknown", extra) if where == "manifest"
            else with_first_migration(base, x_unknown=extra))
    digest = load(conn, text)
    original = load(conn, base.text)
    assert digest == original != empty
    load(conn, text)
    info = conn.execute("SELECT digest, migrations FROM django_migrator.manifest_info()").fetchone()
    assert info == (original, len(base.migrations)), info


OUT_OF_RANGE = r"number out of range"
RECURSION = r"recursion limit exceeded"
SEQUENCE = r"invalid type: sequence, expected a string"
# (id, the manifest's text with the value where the parser reads it, what the message must say):
# a number serde_json cannot hold, or containers nested beyond its recursion limit.
REFUSED_WHERE_READ = [
    ("1e400 as format_version", lambda b: with_format_version(b, "1e400"), OUT_OF_RANGE),
    ("-1e400 as format_version", lambda b: with_format_version(b, "-1e400"), OUT_OF_RANGE),
    ("1e400 as the alias", lambda b: dump(dict(b.value, alias=10**400)), OUT_OF_RANGE),
    ("1e400 as django_version", lambda b: dump(dict(b.value, django_version=10**400)),
     OUT_OF_RANGE),
    ("1e400 as migrations", lambda b: dump(dict(b.value, migrations=10**400)), OUT_OF_RANGE),
    ("1e400 as an app label", lambda b: with_first_migration(b, app="1e400"), OUT_OF_RANGE),
    ("1e400 as atomic", lambda b: with_first_migration(b, atomic="1e400"), OUT_OF_RANGE),
    ("1e400 in a dependency", lambda b: with_first_migration(
        b, dependencies='[["auth", 1e400]]'), OUT_OF_RANGE),
    ("1e400 as a table name", lambda b: with_effect(
        b, '{"kind":"drop_table","table":{"name":1e400}}'), OUT_OF_RANGE),
    ("1e400 as an effect kind", lambda b: with_effect(b, '{"kind":1e400}'), OUT_OF_RANGE),
    # The root, the migration list, the migration, its effects and the effect, then 123 lists.
    ("128 levels: arrays as an effect's reason", lambda b: with_effect(
        b, '{"kind":"opaque","reason":' + nested(123, "[", "]") + "}"), RECURSION),
    ("1,000 levels: objects as a table reference", lambda b: with_effect(
        b, '{"kind":"drop_table","table":' + nested(995, '{"a":', "}") + "}"), RECURSION),
    # Read from a list, a migration's first field (the app label) is a list, and a dependency's
    # first element too: refused for their type before any depth counts.
    ("1,000 levels: arrays as migrations", lambda b: dump(
        dict(b.value, migrations="@m@")).replace('"@m@"', nested(999, "[", "]")), SEQUENCE),
    ("1,000 levels: arrays as dependencies", lambda b: with_first_migration(
        b, dependencies=nested(997, "[", "]")), SEQUENCE),
    ("1,000 levels: arrays as format_version", lambda b: with_format_version(
        b, nested(999, "[", "]")), r"invalid type: sequence, expected u64"),
]


@pytest.mark.parametrize("make, problem", [(make, problem) for _, make, problem in
                                           REFUSED_WHERE_READ],
                         ids=[name for name, _, _ in REFUSED_WHERE_READ])
def test_values_serde_json_cannot_hold_are_refused_where_the_parser_reads_them(
        base, conn, make, problem):
    load(conn, base.text)
    error = refusal(conn, make(base))
    message = error.diag.message_primary
    assert error.sqlstate == "22032", f"{error.sqlstate} {message[:300]!r}"
    assert re.match(rf"django_migrator: manifest is not valid: {problem} at line 1 column \d+$",
                    message), message[:300]


@pytest.mark.xfail(strict=True, raises=psycopg.errors.InvalidJsonText, reason=(
    "an effect is read whole (serde's internally tagged enum) before its fields are matched, so "
    "its unknown fields, and those of its table references, are refused with 22032 `recursion "
    "limit exceeded` or `number out of range` instead of being ignored"))
@pytest.mark.parametrize("where", ["effect", "table reference"])
@pytest.mark.parametrize("extra", [raw for _, raw in BEYOND_SERDE],
                         ids=[name for name, _ in BEYOND_SERDE])
def test_unknown_fields_of_an_effect_are_ignored_whatever_their_value(base, conn, where, extra):
    """docs/manifest.md: readers ignore fields they do not know. An effect with an unknown field
    is the same effect."""
    plain = '{"kind":"drop_table","table":{"name":"t"}}'
    if where == "effect":
        odd = '{"kind":"drop_table","table":{"name":"t"},"x_unknown":' + extra + "}"
    else:
        odd = '{"kind":"drop_table","table":{"name":"t","x_unknown":' + extra + "}}"
    expected = load(conn, with_effect(base, plain))
    load(conn, base.text)
    assert load(conn, with_effect(base, odd)) == expected


def test_error_messages_are_shortened(base, conn):
    """A parser error quotes the offending value: a megabyte value gives a message of about a
    thousand characters, which says it was shortened."""
    megabyte = "v" * (1 << 20)
    load(conn, base.text)
    for text, code, start in [
        (with_format_version(base, json.dumps(megabyte)), "22032",
         'django_migrator: manifest is not valid: invalid type: string "vvv'),
        (with_first_migration(base, atomic=json.dumps(megabyte)), "22032",
         'django_migrator: manifest is not valid: invalid type: string "vvv'),
        (with_effect(base, json.dumps({"kind": megabyte})), "22032",
         "django_migrator: manifest is not valid: unknown variant `vvv"),
        (dump(dict(base.value, migrations=[dict(base.migrations[0], app=megabyte)])), "22023",
         "django_migrator: the app label in migration vvv"),
    ]:
        error = refusal(conn, text)
        message = error.diag.message_primary
        assert (error.sqlstate, message[:len(start)]) == (code, start), message[:300]
        assert message.endswith(SHORTENED), message[-100:]
