"""Routes the metrics app to the analytics database and everything else to default.

The replica alias is read-only: nothing is migrated or written there.
"""

ANALYTICS_APPS = {"metrics"}


def _home(app_label):
    return "analytics" if app_label in ANALYTICS_APPS else "default"


class ShopRouter:
    def db_for_read(self, model, **hints):
        return _home(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return _home(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return _home(obj1._meta.app_label) == _home(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == _home(app_label)
