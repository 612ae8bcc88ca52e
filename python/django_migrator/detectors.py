"""Fake detectors: callables ``fn(operation) -> bool`` that claim migration operations of a
companion app (for example the currency column django-money adds next to every money field), so
that a migration whose every operation is claimed, and whose effects are present, is recorded
without running.

Detectors come from two places: ``register_fake_detector`` (usable as a decorator, typically in an
app's module or ``AppConfig.ready()``), and dotted paths in ``settings.DJANGO_MIGRATOR_FAKE_DETECTORS``.
The exporter finds this module in ``sys.modules`` and calls ``all_detectors()``.
"""

from __future__ import annotations

from typing import Callable

SETTING = "DJANGO_MIGRATOR_FAKE_DETECTORS"

Detector = Callable[[object], bool]

_registered: list[Detector] = []


def register_fake_detector(fn: Detector) -> Detector:
    """Register ``fn(operation) -> bool``; returns ``fn``, so it works as a decorator.
    Registering the same callable twice keeps one entry."""
    if not callable(fn):
        raise TypeError(f"a fake detector must be callable, got {fn!r}")
    if fn not in _registered:
        _registered.append(fn)
    return fn


def unregister_fake_detector(fn: Detector) -> None:
    """Remove ``fn`` if registered (for tests and reloads)."""
    try:
        _registered.remove(fn)
    except ValueError:
        pass


def registered_detectors() -> list[Detector]:
    """The detectors registered in code, in registration order."""
    return list(_registered)


def settings_detectors() -> list[Detector]:
    """The detectors named in ``settings.DJANGO_MIGRATOR_FAKE_DETECTORS``.

    Raises ImproperlyConfigured, naming the entry, when the setting is not a list of dotted paths
    or a path cannot be imported or does not name a callable. Without configured settings there
    are none.
    """
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    if not settings.configured:
        return []
    paths = getattr(settings, SETTING, None)
    if paths is None:
        return []
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        raise ImproperlyConfigured(
            f"{SETTING} must be a list of dotted paths to callables, got {paths!r}"
        )
    found: list[Detector] = []
    for path in paths:
        if not isinstance(path, str):
            raise ImproperlyConfigured(
                f"{SETTING} must be a list of dotted paths to callables; "
                f"{path!r} is not a string"
            )
        try:
            fn = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(f"{SETTING}: cannot import {path!r}: {error}") from error
        if not callable(fn):
            raise ImproperlyConfigured(f"{SETTING}: {path!r} is not callable")
        found.append(fn)
    return found


def all_detectors() -> list[Detector]:
    """Every detector: the registered ones, then those from settings, each callable once."""
    found: list[Detector] = []
    for fn in registered_detectors() + settings_detectors():
        if fn not in found:
            found.append(fn)
    return found
