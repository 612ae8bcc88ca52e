"""The project cache: `check` without starting Django when nothing Django read has changed.

Each test works on its own copy of the example project, so that it can change files.
"""

import json
import shutil
import time

import pytest

from conftest import ROOT

PASSWORD = "cache-pw-Ω-7f3a"


@pytest.fixture
def project(tmp_path):
    """A copy of examples/shop; returns the path of its manage.py."""
    target = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "shop", target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return target


def cache_env(project, env=None):
    """This test's own cache directory (next to its copy of the project)."""
    return {"DJANGO_MIGRATOR_CACHE_DIR": str(project.parent / "cache"),
            "DJANGO_MIGRATOR_CACHE": "1", **(env or {})}


def check(shop, project, *args, env=None):
    run = shop.cli("check", "--format", "json", *args, manage=str(project / "manage.py"),
                   env=cache_env(project, env))
    return run, run.json()


def source(report):
    return report["project"]["source"]


def drift_of(report):
    return {entry["alias"]: [(r["app"], r["name"], r["kind"]) for r in entry["drift"]]
            for entry in report["aliases"]}


def entries(project):
    directory = project.parent / "cache"
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def test_a_second_check_reads_the_cache_and_still_scans_the_databases(migrated_shop, project):
    shop = migrated_shop
    run, first = check(shop, project)
    assert run.code == 0 and source(first) == "django", str(run)

    run, second = check(shop, project)
    assert run.code == 0, str(run)
    assert source(second) == "cache"
    assert second["makemigrations"] == first["makemigrations"]
    assert [a["status"] for a in second["aliases"]] == [a["status"] for a in first["aliases"]]

    # The databases are scanned on every run: drift made after the cache was written shows.
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0002_product_sku'")
    run, third = check(shop, project)
    assert run.code == 1, str(run)
    assert source(third) == "cache"
    assert drift_of(third)["default"] == [("catalog", "0002_product_sku", "unrecorded_present")]
    # The text report says where the project came from.
    code, out, _ = shop.cli("check", "--color", "never", manage=str(project / "manage.py"),
                            env=cache_env(project))
    assert code == 1
    assert out.splitlines()[1].startswith("project: from the cache of a run "), out


def test_a_new_migration_file_is_seen_at_once(migrated_shop, project):
    shop = migrated_shop
    assert source(check(shop, project)[1]) == "django"
    assert source(check(shop, project)[1]) == "cache"

    (project / "catalog" / "migrations" / "0006_noop.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('catalog', '0005_fill_sku')]\n"
        "    operations = [migrations.RunSQL('SELECT 1', migrations.RunSQL.noop)]\n")
    run, report = check(shop, project)
    assert run.code == 1, str(run)
    assert source(report) == "django"
    default = {a["alias"]: a for a in report["aliases"]}["default"]
    assert default["pending"] == ["catalog.0006_noop"], default


def test_an_edited_model_or_migration_is_seen_at_once(migrated_shop, project):
    shop = migrated_shop
    assert source(check(shop, project)[1]) == "django"
    models = project / "catalog" / "models.py"
    time.sleep(0.01)  # a different mtime even on coarse clocks
    models.write_text(models.read_text().replace(
        "class Product(models.Model):",
        "class Product(models.Model):\n    barcode = models.CharField(max_length=20, default='')",
        1))
    run, report = check(shop, project)
    assert run.code == 1, str(run)
    assert source(report) == "django"
    assert report["makemigrations"]["status"] == "changes_detected", report["makemigrations"]
    # The verdict is cached too, with Django's words.
    run, again = check(shop, project)
    assert run.code == 1 and source(again) == "cache", str(run)
    assert again["makemigrations"] == report["makemigrations"]


def test_a_changed_environment_variable_that_settings_read_is_a_miss(migrated_shop, project):
    shop = migrated_shop
    assert source(check(shop, project)[1]) == "django"
    assert source(check(shop, project, env={"SHOP_NOISY": "1"})[1]) == "django"
    assert source(check(shop, project, env={"SHOP_NOISY": "1"})[1]) == "cache"
    # A variable nothing read does not matter.
    assert source(check(shop, project, env={"SHOP_NOISY": "1", "UNRELATED": "x"})[1]) == "cache"


def test_migrate_all_never_uses_the_cache_but_fills_it(shop, project):
    run = shop.cli("migrate-all", "--non-interactive", "--format", "json",
                   manage=str(project / "manage.py"), env=cache_env(project))
    assert run.code == 0 and source(run.json()) == "django", str(run)
    run = shop.cli("migrate-all", "--non-interactive", "--format", "json",
                   manage=str(project / "manage.py"), env=cache_env(project))
    assert run.code == 0 and source(run.json()) == "django", str(run)
    run, report = check(shop, project)
    assert run.code == 0 and source(report) == "cache", str(run)


def test_no_cache_and_the_environment_switch_start_django(migrated_shop, project):
    shop = migrated_shop
    assert source(check(shop, project)[1]) == "django"
    assert source(check(shop, project, "--no-cache")[1]) == "django"
    assert source(check(shop, project, env={"DJANGO_MIGRATOR_CACHE": "off"})[1]) == "django"
    assert source(check(shop, project)[1]) == "cache"


@pytest.fixture
def password_role(migrated_shop):
    shop = migrated_shop
    role = f"{shop.prefix}cache_pw"
    shop.sql("postgres", f"CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    try:
        yield shop, {"SHOP_PGHOST": "127.0.0.1", "SHOP_PGUSER": role, "SHOP_PGPASSWORD": PASSWORD}
    finally:
        shop.cluster.drop_databases(shop.prefix)
        shop.sql("postgres", f'DROP ROLE "{role}"')


def test_the_cache_never_holds_a_password_and_still_connects(password_role, project):
    shop, env = password_role
    run, report = check(shop, project, env=env)
    assert run.code == 0 and source(report) == "django", str(run)
    [entry] = entries(project)
    text = entry.read_text()
    assert PASSWORD not in text and json.dumps(PASSWORD)[1:-1] not in text
    assert entry.stat().st_mode & 0o777 == 0o600
    assert entry.parent.stat().st_mode & 0o777 == 0o700

    run, report = check(shop, project, env=env)
    assert run.code == 0 and source(report) == "cache", str(run)
    # A changed password is a changed variable: a miss, and the new password is used.
    run, report = check(shop, project, env={**env, "SHOP_PGPASSWORD": "wrong"})
    assert run.code == 1 and source(report) == "django", str(run)


def test_a_password_written_in_settings_is_never_cached(password_role, project):
    shop, env = password_role
    settings = project / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace(
        'os.environ.get("SHOP_PGPASSWORD", "")', repr(PASSWORD)))
    assert repr(PASSWORD) in settings.read_text(), "the settings no longer read SHOP_PGPASSWORD"
    env = {k: v for k, v in env.items() if k != "SHOP_PGPASSWORD"}

    run, report = check(shop, project, env=env)
    assert run.code == 0 and source(report) == "django", str(run)
    assert entries(project) == []
    run, report = check(shop, project, env=env)
    assert run.code == 0 and source(report) == "django", str(run)
