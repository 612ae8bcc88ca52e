"""Settings of the accuracy-harness project: two PostgreSQL aliases, `default` and `other`.

The installed apps are Django's contrib apps with migrations, third-party apps with long
migration histories, and `fixtures_ops.opsapp`, whose hand-written migrations use every kind of
migration operation. Connection details come from the environment (ACC_PGHOST, ACC_PGPORT,
ACC_PGUSER, ACC_PGPASSWORD, ACC_DB_PREFIX) so the harness can point the project at a scratch
cluster.
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECRET_KEY = "accuracy-harness-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "django_celery_beat",
    "oauth2_provider",
    "taggit",
    "djmoney",
    "djmoney.contrib.exchange",
    "reversion",
    "axes",
    "fixtures_ops.opsapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "accproject.urls"

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


def _database(name):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("ACC_DB_PREFIX", "") + name,
        "HOST": os.environ.get("ACC_PGHOST", "/var/run/postgresql"),
        "PORT": os.environ.get("ACC_PGPORT", "5432"),
        "USER": os.environ.get("ACC_PGUSER", "postgres"),
        "PASSWORD": os.environ.get("ACC_PGPASSWORD", ""),
    }


DATABASES = {
    "default": _database("default"),
    "other": _database("other"),
}
DATABASE_ROUTERS = ["accproject.routers.AccuracyRouter"]

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
