"""Settings of the example shop: two PostgreSQL databases plus a read replica.

Connection details come from the environment so that tests can point the project at a scratch
cluster and at fresh databases (SHOP_DB_PREFIX).
"""
import os
import sys

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECRET_KEY = "example-shop-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "taggit",
    "catalog",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "shop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(name, **extra):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("SHOP_DB_PREFIX", "") + name,
        "HOST": os.environ.get("SHOP_PGHOST", "/var/run/postgresql"),
        "PORT": os.environ.get("SHOP_PGPORT", "5432"),
        "USER": os.environ.get("SHOP_PGUSER", "postgres"),
        "PASSWORD": os.environ.get("SHOP_PGPASSWORD", ""),
        **extra,
    }


DATABASES = {
    "default": _database("shop"),
    "analytics": _database("shop_analytics"),
    # A read-only view of default; TEST MIRROR makes the test runner reuse default's database.
    "replica": _database("shop", TEST={"MIRROR": "default"}),
}
DATABASE_ROUTERS = ["shop.routers.ShopRouter"]

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Lets tests simulate a project that prints on start-up.
if os.environ.get("SHOP_NOISY") == "1":
    print('{"export_version": 999} noise on stdout from settings.py')
    print("noise on stderr from settings.py", file=sys.stderr)
