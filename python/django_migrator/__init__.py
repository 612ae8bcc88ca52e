"""django_migrator: checks Django's migration history against the live PostgreSQL schema.

The names below are imported lazily, so that importing the package needs neither Django settings
nor Django itself (the exporter may import it while the project starts).
"""

from importlib import import_module

__version__ = "0.2.0"

_EXPORTS = {
    "Migrator": "api",
    "MigratorOptions": "api",
    "MigratorLogger": "api",
    "MigratorError": "errors",
    "BinaryNotFound": "errors",
    "TextReportFormatter": "formatter",
    "MigrationReport": "report",
    "DbReport": "report",
    "DriftReport": "report",
    "DriftRow": "report",
    "Guard": "report",
    "RepairStep": "report",
    "MakeMigrations": "report",
    "ReportFormatError": "report",
    "register_fake_detector": "detectors",
    "unregister_fake_detector": "detectors",
    "all_detectors": "detectors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
