"""The CLI's JSON report (``--format json``) as typed objects.

The JSON shape is the one documented in the README ("The JSON report"): one document per run with
``format_version``, ``command``, ``all_clean``, ``django_version``, the optional ``makemigrations``
step, one entry per alias under ``aliases`` and the run's ``timings_ms``. Here the aliases are
``MigrationReport.db_reports`` and each alias's drift rows are wrapped in a ``DriftReport``.

``MigrationReport.from_dict(d).to_dict() == d`` for every report the CLI writes: keys this version
does not know are kept in ``extra`` and written back, so a newer CLI's additions survive a round
trip. Only the standard library is used, so this module imports without Django settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1

# Alias statuses; `clean` and `skipped` count as clean.
CLEAN = "clean"
SKIPPED = "skipped"
DRIFT = "drift"
PENDING = "pending"
FAILED = "failed"
NOT_RUN = "not_run"
STATUSES = (CLEAN, SKIPPED, DRIFT, PENDING, FAILED, NOT_RUN)
CLEAN_STATUSES = frozenset({CLEAN, SKIPPED})

# Drift kinds, as django_migrator.scan() names them.
UNRECORDED_PRESENT = "unrecorded_present"
HALF_APPLIED = "half_applied"
RECORDED_MISSING = "recorded_missing"
INCONSISTENT_HISTORY = "inconsistent_history"
ORPHAN_RECORD = "orphan_record"
DRIFT_KINDS = (
    UNRECORDED_PRESENT,
    HALF_APPLIED,
    RECORDED_MISSING,
    INCONSISTENT_HISTORY,
    ORPHAN_RECORD,
)

# Repair actions, as django_migrator.repair() names them.
REPAIR_ACTIONS = ("fake_apply", "fake_rewind", "warn", "refuse")

# makemigrations step statuses; the last two make the run not clean.
MAKEMIGRATIONS_STATUSES = ("skipped", "no_changes", "created", "changes_detected", "failed")
MAKEMIGRATIONS_UNCLEAN = frozenset({"changes_detected", "failed"})


class ReportFormatError(ValueError):
    """The document is not a report this version can read."""


def _require(data: Any, what: str, keys: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise ReportFormatError(f"{what}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in keys if key not in data]
    if missing:
        raise ReportFormatError(f"{what}: missing field(s) {', '.join(missing)}")


def _list(data: dict, key: str, what: str) -> list:
    value = data[key]
    if not isinstance(value, list):
        raise ReportFormatError(f"{what}.{key}: expected a list, got {type(value).__name__}")
    return value


def _extra(data: dict, known: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


@dataclass
class Guard:
    """One guard that ran on an alias (connection_live, test_mirror_isolation, ...)."""

    name: str
    ok: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("name", "ok", "detail")

    @classmethod
    def from_dict(cls, data: dict) -> Guard:
        _require(data, "guard", cls.FIELDS)
        return cls(data["name"], data["ok"], data["detail"], _extra(data, cls.FIELDS))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.extra}


@dataclass
class DriftRow:
    """One row of django_migrator.scan() on an alias."""

    app: str
    name: str
    kind: str
    recorded: bool
    present: int
    missing: int
    detail: str
    # What was checked, e.g. [{"object": "table", "name": "x", "expected": "present", "ok": false}]
    objects: Any = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("app", "name", "kind", "recorded", "present", "missing", "detail", "objects")

    @classmethod
    def from_dict(cls, data: dict) -> DriftRow:
        _require(data, "drift row", cls.FIELDS)
        return cls(
            app=data["app"],
            name=data["name"],
            kind=data["kind"],
            recorded=data["recorded"],
            present=data["present"],
            missing=data["missing"],
            detail=data["detail"],
            objects=data["objects"],
            extra=_extra(data, cls.FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "kind": self.kind,
            "recorded": self.recorded,
            "present": self.present,
            "missing": self.missing,
            "detail": self.detail,
            "objects": self.objects,
            **self.extra,
        }

    @property
    def migration(self) -> str:
        """``app.name``."""
        return f"{self.app}.{self.name}"

    @property
    def is_error(self) -> bool:
        """Orphan records are information, never an error."""
        return self.kind != ORPHAN_RECORD


@dataclass
class DriftReport:
    """The drift rows of one alias, in scan() order (graph order, then orphan records)."""

    rows: list[DriftRow] = field(default_factory=list)

    @classmethod
    def from_list(cls, data: list) -> DriftReport:
        if not isinstance(data, list):
            raise ReportFormatError(f"drift: expected a list, got {type(data).__name__}")
        return cls([DriftRow.from_dict(row) for row in data])

    def to_list(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]

    def total_drift_count(self) -> int:
        """Rows that make the alias unclean: every kind but ``orphan_record``."""
        return sum(1 for row in self.rows if row.is_error)

    def by_kind(self) -> dict[str, list[DriftRow]]:
        """Rows grouped by kind, kinds in alphabetical order (as the CLI's text report shows
        them), rows in scan() order within each kind."""
        groups: dict[str, list[DriftRow]] = {}
        for row in self.rows:
            groups.setdefault(row.kind, []).append(row)
        return {kind: groups[kind] for kind in sorted(groups)}

    @property
    def errors(self) -> list[DriftRow]:
        return [row for row in self.rows if row.is_error]

    @property
    def orphans(self) -> list[DriftRow]:
        return [row for row in self.rows if not row.is_error]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class RepairStep:
    """One step of a repair plan: fake_apply, fake_rewind, warn or refuse."""

    action: str
    app: str
    name: str
    reason: str
    # Whether it was written: false for a `check --repair` plan, a warning or a refusal.
    applied: bool
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("action", "app", "name", "reason", "applied")

    @classmethod
    def from_dict(cls, data: dict) -> RepairStep:
        _require(data, "repair step", cls.FIELDS)
        return cls(
            action=data["action"],
            app=data["app"],
            name=data["name"],
            reason=data["reason"],
            applied=data["applied"],
            extra=_extra(data, cls.FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "app": self.app,
            "name": self.name,
            "reason": self.reason,
            "applied": self.applied,
            **self.extra,
        }

    @property
    def migration(self) -> str:
        return f"{self.app}.{self.name}"


@dataclass
class MakeMigrations:
    """The makemigrations step that runs before the aliases."""

    status: str
    output: str
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("status", "output")

    @classmethod
    def from_dict(cls, data: dict) -> MakeMigrations:
        _require(data, "makemigrations", cls.FIELDS)
        return cls(data["status"], data["output"], _extra(data, cls.FIELDS))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "output": self.output, **self.extra}

    @property
    def is_clean(self) -> bool:
        return self.status not in MAKEMIGRATIONS_UNCLEAN


@dataclass
class DbReport:
    """What happened on one alias of DATABASES."""

    alias: str
    status: str
    guards: list[Guard] = field(default_factory=list)
    # None only when the document has no `drift` key; the CLI always writes one.
    drift: DriftReport | None = None
    repairs: list[RepairStep] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings_ms: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("alias", "status", "guards", "drift", "repairs", "migrated", "pending", "warnings",
              "errors", "timings_ms")
    REQUIRED = ("alias", "status")

    @classmethod
    def from_dict(cls, data: dict) -> DbReport:
        what = f"alias {data.get('alias', '?')!r}" if isinstance(data, dict) else "alias"
        _require(data, what, cls.REQUIRED)
        lists = {
            key: list(_list(data, key, what)) if key in data else []
            for key in ("migrated", "pending", "warnings", "errors")
        }
        return cls(
            alias=data["alias"],
            status=data["status"],
            guards=[Guard.from_dict(g) for g in _list(data, "guards", what)]
            if "guards" in data else [],
            drift=DriftReport.from_list(data["drift"]) if "drift" in data else None,
            repairs=[RepairStep.from_dict(r) for r in _list(data, "repairs", what)]
            if "repairs" in data else [],
            timings_ms=dict(data.get("timings_ms", {})),
            extra=_extra(data, cls.FIELDS),
            **lists,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alias": self.alias,
            "status": self.status,
            "guards": [g.to_dict() for g in self.guards],
        }
        if self.drift is not None:
            out["drift"] = self.drift.to_list()
        out.update(
            repairs=[r.to_dict() for r in self.repairs],
            migrated=list(self.migrated),
            pending=list(self.pending),
            warnings=list(self.warnings),
            errors=list(self.errors),
            timings_ms=dict(self.timings_ms),
        )
        out.update(self.extra)
        return out

    @property
    def is_clean(self) -> bool:
        return self.status in CLEAN_STATUSES

    def drift_count(self) -> int:
        """Drift rows that are errors (0 when nothing was scanned)."""
        return self.drift.total_drift_count() if self.drift is not None else 0

    def failed_guards(self) -> list[Guard]:
        return [g for g in self.guards if not g.ok]


@dataclass
class MigrationReport:
    """A whole run of `django-migrator check` / `migrate-all` / `migrator`."""

    format_version: int
    command: str
    all_clean: bool
    django_version: str
    db_reports: list[DbReport] = field(default_factory=list)
    makemigrations: MakeMigrations | None = None
    timings_ms: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The CLI's exit status for this run (0 clean, 1 not clean); not part of the document.
    exit_status: int | None = field(default=None, compare=False)

    FIELDS = ("format_version", "command", "all_clean", "django_version", "makemigrations",
              "aliases", "timings_ms")
    REQUIRED = ("format_version", "command", "all_clean", "django_version", "aliases")

    def __post_init__(self):
        if self.exit_status is None:
            self.exit_status = 0 if self.all_clean else 1

    @classmethod
    def from_dict(cls, data: dict, exit_status: int | None = None) -> MigrationReport:
        _require(data, "report", ("format_version",))
        if data["format_version"] != FORMAT_VERSION:
            raise ReportFormatError(
                f"report format_version {data['format_version']!r} is not supported "
                f"(this django_migrator reads format_version {FORMAT_VERSION})"
            )
        _require(data, "report", cls.REQUIRED)
        return cls(
            format_version=data["format_version"],
            command=data["command"],
            all_clean=data["all_clean"],
            django_version=data["django_version"],
            db_reports=[DbReport.from_dict(a) for a in _list(data, "aliases", "report")],
            makemigrations=MakeMigrations.from_dict(data["makemigrations"])
            if data.get("makemigrations") is not None else None,
            timings_ms=dict(data.get("timings_ms", {})),
            extra=_extra(data, cls.FIELDS),
            exit_status=exit_status,
        )

    @classmethod
    def from_json(cls, text: str, exit_status: int | None = None) -> MigrationReport:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ReportFormatError(f"the report is not JSON: {error}") from None
        return cls.from_dict(data, exit_status=exit_status)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "command": self.command,
            "all_clean": self.all_clean,
            "django_version": self.django_version,
        }
        if self.makemigrations is not None:
            out["makemigrations"] = self.makemigrations.to_dict()
        out["aliases"] = [db.to_dict() for db in self.db_reports]
        out["timings_ms"] = dict(self.timings_ms)
        out.update(self.extra)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @property
    def aliases(self) -> list[str]:
        return [db.alias for db in self.db_reports]

    def get(self, alias: str) -> DbReport | None:
        for db in self.db_reports:
            if db.alias == alias:
                return db
        return None

    def __getitem__(self, alias: str) -> DbReport:
        db = self.get(alias)
        if db is None:
            raise KeyError(alias)
        return db

    def unclean(self) -> list[DbReport]:
        return [db for db in self.db_reports if not db.is_clean]

    def total_drift_count(self) -> int:
        return sum(db.drift_count() for db in self.db_reports)
