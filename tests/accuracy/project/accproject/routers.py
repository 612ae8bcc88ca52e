"""Sends django_celery_beat and axes only to `other`, and every other app only to `default`.

allow_migrate refuses everywhere else, so each alias gets the DDL of its own apps only, while
Django still records every migration on both aliases.
"""

OTHER_APPS = {"django_celery_beat", "axes"}


def home(app_label):
    return "other" if app_label in OTHER_APPS else "default"


class AccuracyRouter:
    def db_for_read(self, model, **hints):
        return home(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return home(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return home(obj1._meta.app_label) == home(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == home(app_label)
