"""`django-migrator migrator` on a terminal: the menu, driven through a pseudo-terminal as a
person drives it (arrow keys, Enter, Esc, a typed answer), and the repair confirmation that a
terminal gets and a pipe does not.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_menu.py -q`.
"""

import re
import time

import pexpect
import pytest

from conftest import BIN, MANAGE, PYTHON, ROOT

# Each test's whole conversation with the terminal must end within this many seconds.
BUDGET = 55
DOWN = "\x1b[B"
UP = "\x1b[A"
ENTER = "\r"
ESC = "\x1b"
CHOICES = [
    "Full migrate: every database",
    "Full migrate with repair",
    "Forensic check: report and repair plan, change nothing",
    "makemigrations only",
    "Migrate one database",
    "Status view",
    "Quit",
]
PROMPT = "django-migrator: what now? (Esc to quit)"
CONFIRM = "Apply it to django_migrations? [y/N]"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(output):
    """Terminal output as the lines a person reads: escape sequences dropped, and of each line
    only what was written after its last carriage return (spinners and the menu redraw their
    line that way)."""
    lines = []
    for line in ANSI.sub("", output).split("\n"):
        segments = [segment for segment in line.split("\r") if segment]
        lines.append(segments[-1] if segments else "")
    return "\n".join(lines)


class Terminal:
    """The CLI on a pseudo-terminal (stdin, stdout and stderr all the terminal)."""

    def __init__(self, shop, *args):
        if not BIN.is_file():
            pytest.fail(f"no django-migrator binary at {BIN}")
        self.deadline = time.monotonic() + BUDGET
        self.child = pexpect.spawn(
            str(BIN), ["--manage", MANAGE, "--python", PYTHON, "--color", "never", *args],
            cwd=str(ROOT), env=shop.env(TERM="xterm"), encoding="utf-8",
            dimensions=(60, 220), timeout=BUDGET)
        self.transcript = ""

    def _left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fail("the test ran out of its time budget")
        return left

    def fail(self, why):
        self.child.terminate(force=True)
        pytest.fail(f"{why}\n--- terminal so far\n{self.screen()}")

    def expect(self, text):
        """Waits for `text` (literal) and returns everything printed up to it."""
        try:
            self.child.expect_exact(text, timeout=self._left())
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            self.transcript += self.child.before or ""
            self.fail(f"never saw {text!r} ({type(error).__name__})")
        seen = self.child.before + self.child.after
        self.transcript += seen
        return seen

    def send(self, keys):
        self.child.send(keys)

    def finish(self):
        """Waits for the process to end; returns (exit status, the rest of its output)."""
        try:
            self.child.expect(pexpect.EOF, timeout=self._left())
        except pexpect.TIMEOUT:
            self.fail("still running at the end of the time budget")
        rest = self.child.before
        self.transcript += rest
        self.child.close()
        return self.child.exitstatus, rest

    def screen(self):
        return plain(self.transcript)

    def menu(self):
        """Waits for the whole menu to be drawn."""
        return self.expect(CHOICES[-1])

    def choose(self, label):
        """Moves from the first entry down to `label` with the arrow keys, and presses Enter."""
        self.send(DOWN * CHOICES.index(label) + ENTER)


def forget_analytics_row(shop):
    """An unrecorded-but-present migration: the row of metrics.0002 deleted on analytics."""
    shop.sql("analytics", "DELETE FROM django_migrations "
                          "WHERE app = 'metrics' AND name = '0002_pageview_referrer'")


def journal_size(shop, alias):
    return int(shop.sql(alias, "SELECT count(*) FROM django_migrator.repairs"))


def test_the_menu_lists_every_choice_and_esc_quits(shop):
    term = Terminal(shop, "migrator")
    term.menu()

    screen = term.screen()
    assert PROMPT in screen, screen
    for label in CHOICES:
        assert label in screen, screen
    assert re.search(r"^> Full migrate: every database$", screen, re.M), screen
    term.send(ESC)
    code, _ = term.finish()

    assert code == 0, term.screen()
    assert "django-migrator migrate-all" not in term.screen()
    assert not shop.table_exists("default", "django_migrations")


def test_quit_exits_0_and_runs_nothing(shop):
    term = Terminal(shop, "migrator")
    term.menu()
    # Up from the first entry wraps to the last, Quit; down from there back to the first.
    term.send(UP)
    term.expect("> Quit")
    term.send(DOWN)
    term.expect("> Full migrate: every database")
    term.choose("Quit")
    code, _ = term.finish()

    assert code == 0, term.screen()
    assert "django-migrator migrate-all" not in term.screen()
    assert not shop.table_exists("default", "django_migrations")


def test_status_view_shows_every_migration_by_app(migrated_shop):
    shop = migrated_shop
    forget_analytics_row(shop)
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("Status view")
    term.expect("django-migrator status · Django 5.2.")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 1, screen
    assert re.search(r"^default +clean *$", screen, re.M), screen
    assert re.search(r"^analytics +DRIFT *$", screen, re.M), screen
    assert re.search(r"^    \[X\] 0001_initial +\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", screen, re.M)
    assert re.search(r"^    \[!\] 0002_pageview_referrer +unrecorded_present "
                     r"\(1 present, 0 missing\)$", screen, re.M), screen
    assert "skipped: same database as default" in screen
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")


def test_forensic_check_shows_the_plan_and_writes_nothing(migrated_shop):
    shop = migrated_shop
    forget_analytics_row(shop)
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("Forensic check: report and repair plan, change nothing")
    term.expect("django-migrator check · Django 5.2.")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 1, screen
    assert CONFIRM not in screen, "a check has nothing to confirm"
    assert "    repair (plan, not applied):" in screen.splitlines(), screen
    assert re.search(r"^      fake_apply +metrics\.0002_pageview_referrer: not recorded, but "
                     r"column metrics_pageview\.referrer is present$", screen, re.M), screen
    assert screen.rstrip().splitlines()[-1] == "1 of 3 not clean: analytics (drift)", screen
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")
    assert journal_size(shop, "analytics") == 0


@pytest.mark.parametrize("answer", ["n", ""])
def test_full_migrate_with_repair_asks_first_and_a_no_writes_nothing(migrated_shop, answer):
    shop = migrated_shop
    forget_analytics_row(shop)
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("Full migrate with repair")
    shown = term.expect(CONFIRM)

    plan = plain(shown)
    assert 'Repair plan for alias "analytics":' in plan, plan
    assert re.search(r"^  fake_apply +metrics\.0002_pageview_referrer: not recorded, but column "
                     r"metrics_pageview\.referrer is present$", plan, re.M), plan
    # Asked while the lock is held and before anything is written.
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")
    term.send(answer + "\r")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 1, screen
    assert "error: repair declined; nothing was written" in screen, screen
    assert re.search(r"^analytics +DRIFT +", screen, re.M), screen
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")
    assert journal_size(shop, "analytics") == 0


def test_full_migrate_with_repair_writes_the_row_after_a_yes(migrated_shop):
    shop = migrated_shop
    forget_analytics_row(shop)
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("Full migrate with repair")
    term.expect(CONFIRM)
    term.send("y\r")
    term.expect("django-migrator migrate-all · Django 5.2.")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 0, screen
    assert "    repair (applied):" in screen.splitlines(), screen
    assert screen.rstrip().splitlines()[-1] == "all 3 clean", screen
    assert "metrics.0002_pageview_referrer" in shop.recorded("analytics")
    assert journal_size(shop, "analytics") == 1


def test_full_migrate_runs_every_alias(shop):
    term = Terminal(shop, "migrator")
    term.menu()
    term.send(ENTER)
    term.expect("django-migrator migrate-all · Django 5.2.")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 0, screen
    assert screen.rstrip().splitlines()[-1] == "all 3 clean", screen
    assert shop.table_exists("default", "catalog_product")
    assert shop.table_exists("analytics", "metrics_pageview")


def test_migrate_one_database_asks_which(shop):
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("Migrate one database")
    term.expect("Which database?")
    term.expect("replica")
    term.send(DOWN + ENTER)
    term.expect("django-migrator migrate-all · Django 5.2.")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 0, screen
    assert "· 1 database" in screen, screen
    assert re.search(r"^analytics +clean +", screen, re.M), screen
    assert shop.table_exists("analytics", "metrics_pageview")
    assert not shop.table_exists("default", "django_migrations")


def test_makemigrations_only_runs_djangos_makemigrations(shop):
    term = Terminal(shop, "migrator")
    term.menu()
    term.choose("makemigrations only")
    term.expect("No changes detected")
    code, _ = term.finish()

    assert code == 0, term.screen()
    assert not shop.table_exists("default", "django_migrations")


# --- prompts outside the menu -----------------------------------------------------------------

def test_migrate_all_repair_on_a_terminal_asks_and_non_interactive_does_not(migrated_shop):
    shop = migrated_shop
    forget_analytics_row(shop)

    term = Terminal(shop, "migrate-all", "--repair")
    term.expect(CONFIRM)
    term.send("n\r")
    code, _ = term.finish()
    assert code == 1, term.screen()
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")

    term = Terminal(shop, "migrate-all", "--repair", "--non-interactive")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 0, screen
    assert CONFIRM not in screen, screen
    assert "metrics.0002_pageview_referrer" in shop.recorded("analytics")


def test_migrator_with_a_choice_on_a_terminal_runs_without_the_menu(shop):
    term = Terminal(shop, "migrator", "--auto")
    code, _ = term.finish()

    screen = term.screen()
    assert code == 0, screen
    assert PROMPT not in screen, screen
    assert screen.rstrip().splitlines()[-1] == "all 3 clean", screen
