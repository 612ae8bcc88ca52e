"""The installable package: `pip wheel ./python` builds one wheel holding the `django_migrator`
package and the `django-migrator` binary; installed into a fresh virtualenv, both work on the
example project with nothing from the checkout on the path.

Slow (it compiles the CLI in release mode), so it runs only when DJANGO_MIGRATOR_WHEEL_TEST=1, as
`make wheel-test` sets it. Skips, saying why, when the build tools are missing: cargo, or the
maturin version pinned in python/pyproject.toml from the package index. The cargo build goes to
target/wheel (CARGO_TARGET_DIR), so it never touches target/release and later runs are
incremental. The database part needs the extension installed (make build) and a throwaway
cluster, as the end-to-end tests do.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "python" / "pyproject.toml"
REQUIREMENTS = ROOT / "python" / "requirements-dev.txt"
TARGET_DIR = Path(os.environ.get("DJANGO_MIGRATOR_WHEEL_TARGET", ROOT / "target" / "wheel"))
BUILD_TIMEOUT = 3600
MANAGE = "examples/shop/manage.py"

if os.environ.get("DJANGO_MIGRATOR_WHEEL_TEST") != "1":
    pytest.skip("builds the wheel (slow): run it with `make wheel-test` "
                "(DJANGO_MIGRATOR_WHEEL_TEST=1)", allow_module_level=True)


def _load_e2e_support():
    spec = importlib.util.spec_from_file_location(
        "django_migrator_e2e_support", ROOT / "tests" / "e2e" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e_support()
cluster = e2e.cluster  # the session's throwaway PostgreSQL 15 cluster (a pytest fixture)


def clean_env(**extra):
    """No checkout path, no other virtualenv, no binary override: only what the wheel installs."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SHOP_", "PG"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH", "CARGO_TARGET_DIR")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(argv, timeout=600, **kwargs):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
    return proc


def describe(proc):
    return (f"$ {' '.join(map(str, proc.args))}\nexit status {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}")


def maturin_requirement():
    match = re.search(r'requires\s*=\s*\[\s*"(maturin[^"]*)"', PYPROJECT.read_text())
    assert match, f"no maturin requirement in {PYPROJECT}"
    return match.group(1)


def requirement_lines(*names):
    """The lines of requirements-dev.txt for these distributions (the example project's needs)."""
    wanted = []
    for line in REQUIREMENTS.read_text().splitlines():
        name = re.split(r"[\s\[<>=~!;]", line.strip(), maxsplit=1)[0].lower()
        if name in names:
            wanted.append(line.strip())
    return wanted


@pytest.fixture(scope="module")
def build_tools(tmp_path_factory):
    if shutil.which("cargo") is None:
        pytest.skip("cannot build the wheel: cargo is not on PATH (scripts/ensure-deps.sh "
                    "installs the Rust toolchain)")
    requirement = maturin_requirement()
    probe = run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                 "-q", "-d", tmp_path_factory.mktemp("maturin"), requirement], timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"cannot build the wheel: {requirement} is not available from the package "
                    f"index:\n{probe.stderr.strip()[-2000:]}")


@pytest.fixture(scope="module")
def wheel(build_tools, tmp_path_factory):
    """The wheel `pip wheel ./python` builds."""
    dist = tmp_path_factory.mktemp("dist")
    env = clean_env(CARGO_TARGET_DIR=str(TARGET_DIR))
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                "-w", dist, "./python"], timeout=BUILD_TIMEOUT, cwd=ROOT, env=env)
    assert proc.returncode == 0, describe(proc)
    wheels = sorted(dist.glob("django_migrator-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}: {os.listdir(dist)}"
    print(f"built {wheels[0].name} ({wheels[0].stat().st_size} bytes)")
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtualenv with the wheel and what the example project needs."""
    path = tmp_path_factory.mktemp("wheel-venv") / "venv"
    proc = run([sys.executable, "-m", "venv", path], cwd=ROOT, env=clean_env())
    assert proc.returncode == 0, describe(proc)
    extras = requirement_lines("django", "psycopg", "django-taggit")
    proc = run([path / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                wheel, *extras], timeout=900, cwd=ROOT, env=clean_env())
    assert proc.returncode == 0, describe(proc)
    return path


def test_wheel_holds_the_package_and_the_binary(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    scripts = [n for n in names if re.fullmatch(r"django_migrator-[^/]+\.data/scripts/django-migrator", n)]
    assert scripts, names
    for module in ("__init__.py", "api.py", "report.py", "formatter.py", "detectors.py",
                   "exporter.py", "apps.py", "management/commands/migrate_all.py",
                   "management/commands/migrator.py"):
        assert f"django_migrator/{module}" in names, names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: django-migrator" in metadata
    assert "Version: 0.2.0" in metadata
    assert "Requires-Python: >=3.10" in metadata
    assert re.search(r"^Requires-Dist: [Dd]jango>=4\.2", metadata, re.M), metadata


def test_binary_is_on_the_venv_path(venv):
    binary = venv / "bin" / "django-migrator"
    assert os.access(binary, os.X_OK)
    proc = run([binary, "--version"], env=clean_env())
    assert proc.returncode == 0, describe(proc)
    print(proc.stdout.strip())
    assert proc.stdout.strip() == "django-migrator 0.2.0"
    # Also by name, as a shell with the venv activated finds it.
    env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = run(["django-migrator", "--version"], env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "django-migrator 0.2.0", describe(proc)


def test_package_imports_from_site_packages(venv, tmp_path):
    code = ("import django_migrator, django_migrator.runner as r; "
            "print(django_migrator.__file__); print(r.find_binary()); "
            "print(django_migrator.__version__)")
    proc = run([venv / "bin" / "python", "-c", code], cwd=tmp_path, env=clean_env())
    assert proc.returncode == 0, describe(proc)
    module_file, binary, version = proc.stdout.split()
    assert Path(module_file).is_relative_to(venv), module_file
    assert Path(binary) == venv / "bin" / "django-migrator"
    assert version == "0.2.0"


@pytest.fixture
def shop_settings(tmp_path):
    (tmp_path / "wheel_shop_settings.py").write_text(
        'from shop.settings import *  # noqa: F401,F403\n\n'
        'INSTALLED_APPS = [*INSTALLED_APPS, "django_migrator"]\n')
    return tmp_path


def test_migrate_all_on_the_example_project(venv, cluster, shop_settings):
    prefix = "wheel_"
    cluster.drop_databases(prefix)
    cluster.create_databases(prefix)
    shop = e2e.Shop(cluster, prefix)
    env = shop.env(PYTHONPATH=str(shop_settings), DJANGO_SETTINGS_MODULE="wheel_shop_settings")
    for key in ("VIRTUAL_ENV", "DJANGO_MIGRATOR_BIN"):
        env.pop(key, None)
    python = venv / "bin" / "python"
    try:
        check = run([python, MANAGE, "migrate_all", "--check"], cwd=ROOT, env=env)
        print(check.stdout)
        assert check.returncode == 1, describe(check)  # empty databases: everything pending
        assert "2 of 3 not clean: default (pending), analytics (pending)" in check.stdout
        migrate = run([python, MANAGE, "migrate_all", "--non-interactive"], cwd=ROOT, env=env)
        assert migrate.returncode == 0, describe(migrate)
        check = run([python, MANAGE, "migrate_all", "--check", "--format", "json"], cwd=ROOT,
                    env=env)
        assert check.returncode == 0, describe(check)
        report = json.loads(check.stdout)
        assert report["all_clean"] is True
        assert [a["alias"] for a in report["aliases"]] == ["default", "analytics", "replica"]
    finally:
        cluster.drop_databases(prefix)
