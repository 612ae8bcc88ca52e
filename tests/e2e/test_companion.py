"""The companion step (lifecycle step 4): a migration whose every operation a fake detector claims,
and whose effects are present, is recorded without running, with or without --repair."""

from pathlib import Path

FIXTURES = str(Path(__file__).resolve().parent / "fixtures")
COMPANION = {"PYTHONPATH": FIXTURES}
SKU = "catalog.0002_product_sku"


def _forget_sku(shop):
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0002_product_sku'")
    assert SKU not in shop.recorded("default")


def test_migrate_all_records_a_present_companion_migration_without_repair(migrated_shop):
    shop = migrated_shop
    _forget_sku(shop)
    run, report = shop.cli_json("--settings", "settings_companion", "migrate-all", env=COMPANION)
    assert run.code == 0, str(run)
    default = next(a for a in report["aliases"] if a["alias"] == "default")
    assert [(r["action"], f"{r['app']}.{r['name']}", r["applied"]) for r in default["repairs"]] == [
        ("fake_apply", SKU, True)
    ]
    assert default["drift"] == [] and default["migrated"] == []
    applied = shop.sql(
        "default",
        "SELECT extract(microseconds FROM applied)::bigint % 1000000 FROM django_migrations "
        "WHERE app = 'catalog' AND name = '0002_product_sku'",
    )
    assert applied == "999999"
    journal = shop.sql("default", "SELECT count(*) FROM django_migrator.repairs")
    assert journal == "1"


def test_check_shows_the_companion_step_and_writes_nothing(migrated_shop):
    shop = migrated_shop
    _forget_sku(shop)
    run, report = shop.cli_json("--settings", "settings_companion", "check", env=COMPANION)
    assert run.code == 0, str(run)
    default = next(a for a in report["aliases"] if a["alias"] == "default")
    assert [(r["action"], f"{r['app']}.{r['name']}", r["applied"]) for r in default["repairs"]] == [
        ("fake_apply", SKU, False)
    ]
    assert default["drift"] == []
    assert SKU not in shop.recorded("default")


def test_without_the_detector_it_is_ordinary_drift(migrated_shop):
    shop = migrated_shop
    _forget_sku(shop)
    run, report = shop.cli_json("migrate-all")
    assert run.code == 1, str(run)
    default = next(a for a in report["aliases"] if a["alias"] == "default")
    assert [(d["kind"], f"{d['app']}.{d['name']}") for d in default["drift"]] == [
        ("unrecorded_present", SKU)
    ]
    assert default["repairs"] == []
    assert SKU not in shop.recorded("default")


def test_a_companion_migration_whose_effects_are_absent_is_left_to_migrate(shop):
    # Empty databases: nothing is present, so the companion step records nothing and Django's
    # migrate applies the companion migration like any other.
    run, report = shop.cli_json("--settings", "settings_companion", "migrate-all", env=COMPANION)
    assert run.code == 0, str(run)
    default = next(a for a in report["aliases"] if a["alias"] == "default")
    assert default["repairs"] == []
    assert SKU in default["migrated"]
    assert shop.sql("default", "SELECT count(*) FROM django_migrator.repairs") == "0"
