"""django_migrator: checks Django's migration history against the live PostgreSQL schema."""

__version__ = "0.1.0"
