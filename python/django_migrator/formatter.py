"""A text rendering of a MigrationReport, laid out like the CLI's own text report."""

from __future__ import annotations

from .report import CLEAN_STATUSES, MigrationReport

_STATUS_WORDS = {
    "clean": "clean",
    "skipped": "skipped",
    "drift": "DRIFT",
    "pending": "PENDING",
    "failed": "FAILED",
    "not_run": "not run",
}
_STATUS_COLORS = {
    "clean": "32",
    "skipped": "2",
    "not_run": "2",
    "pending": "33",
    "drift": "1;31",
    "failed": "1;31",
}
_MAKEMIGRATIONS_WORDS = {
    "skipped": "skipped",
    "no_changes": "no model changes",
    "created": "created new migrations",
    "changes_detected": "MODEL CHANGES WITHOUT MIGRATIONS",
}
# Longer lists are shortened unless verbose, as the CLI does.
_LIST_LIMIT = 10


def _age(epoch_seconds: int) -> str:
    """How long ago, roughly, as the CLI says it: "12 s", "3 min", "5 h", "2 d"."""
    import time

    secs = max(0, int(time.time()) - int(epoch_seconds))
    if secs < 120:
        return f"{secs} s"
    if secs < 7200:
        return f"{secs // 60} min"
    if secs < 172800:
        return f"{secs // 3600} h"
    return f"{secs // 86400} d"


def status_word(status: str) -> str:
    return _STATUS_WORDS.get(status, status.upper())


class TextReportFormatter:
    """``TextReportFormatter().render(report)`` -> the report as text.

    One block per alias (status word, drift grouped by kind, repairs, applied, pending, warnings,
    errors), then a summary line. ``quiet`` keeps only the summary line; ``verbose`` lists every
    applied and pending migration and the makemigrations output; ``color`` adds ANSI colours.
    """

    def __init__(self, color: bool = False, verbose: bool = False, quiet: bool = False):
        self.color = color
        self.verbose = verbose
        self.quiet = quiet

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _status(self, status: str) -> str:
        return self._paint(_STATUS_COLORS.get(status, "1;31"), f"{status_word(status):<8}")

    def render(self, report: MigrationReport) -> str:
        lines: list[str] = []
        count = len(report.db_reports)
        if not self.quiet:
            lines.append(
                f"django-migrator {report.command} · Django {report.django_version} · "
                f"{count} database{'' if count == 1 else 's'}"
            )
            project = report.extra.get("project") or {}
            if project.get("source") == "cache":
                lines.append(
                    f"project: from the cache of a run {_age(project.get('written_at', 0))} ago; "
                    "nothing Django read has changed since (--no-cache starts Django)"
                )
            step = report.makemigrations
            if step is not None:
                words = _MAKEMIGRATIONS_WORDS.get(step.status, "FAILED")
                lines.append(f"makemigrations: {self._paint('2' if step.is_clean else '1;31', words)}")
                if not step.is_clean or step.status == "created" or self.verbose:
                    lines.extend(f"    {line}" for line in step.output.splitlines())
            width = max([len(db.alias) for db in report.db_reports] + [8])
            for db in report.db_reports:
                lines.append("")
                lines.extend(self._alias(report.command, db, width))
            lines.append("")
        unclean = [
            f"{db.alias} ({status_word(db.status).lower()})"
            for db in report.db_reports
            if db.status not in CLEAN_STATUSES
        ]
        if report.makemigrations is not None and not report.makemigrations.is_clean:
            unclean.insert(0, "makemigrations")
        if unclean:
            summary = f"{len(unclean)} of {count} not clean: {', '.join(unclean)}"
            lines.append(self._paint("1;31", summary))
        else:
            lines.append(self._paint("32", f"all {count} clean"))
        return "\n".join(lines) + "\n"

    def _alias(self, command: str, db, width: int) -> list[str]:
        # A skipped alias and an install say what happened in their first warning.
        headline = db.status == "skipped" or command == "install"
        if headline:
            summary = db.warnings[0] if db.warnings else ""
        else:
            parts = []
            drifted = db.drift_count()
            if drifted:
                parts.append(f"{drifted} drifted")
            if db.migrated:
                parts.append(f"{len(db.migrated)} applied")
            parts.append(f"{len(db.pending)} pending")
            parts.append(f"{sum(db.timings_ms.values())} ms")
            summary = " · ".join(parts)
        lines = [f"{db.alias:<{width}}  {self._status(db.status)}  {summary}"]
        if db.drift is not None:
            for kind, rows in db.drift.by_kind().items():
                lines.append(f"    {kind} ({len(rows)})")
                lines.extend(f"      {row.app}.{row.name}: {row.detail}" for row in rows)
        if db.repairs:
            applied = any(step.applied for step in db.repairs)
            lines.append(f"    repair ({'applied' if applied else 'plan, not applied'}):")
            lines.extend(
                f"      {step.action:<11} {step.app}.{step.name}: {step.reason}"
                for step in db.repairs
            )
        if db.migrated and (self.verbose or len(db.migrated) <= _LIST_LIMIT):
            lines.append(f"    applied: {', '.join(db.migrated)}")
        if db.pending:
            if self.verbose or len(db.pending) <= _LIST_LIMIT:
                lines.append(f"    pending: {', '.join(db.pending)}")
            else:
                lines.append(f"    pending: {len(db.pending)} migrations (-v lists them)")
        warnings = db.warnings[1:] if headline else db.warnings
        lines.extend(f"    {self._paint('33', 'warning:')} {w}" for w in warnings)
        lines.extend(f"    {self._paint('1;31', 'error:')} {e}" for e in db.errors)
        return lines
