"""
The site under measurement: generated from one moment of the template, its
databases, and the generated test suite's own server helpers
(`uploads/tests/servers.py`), which prepare it and serve it with gunicorn.
"""

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest  # servers.py skips when PostgreSQL is unreachable

HERE = Path(__file__).resolve().parent
TEMPLATE_ROOT = HERE.parent
SLUG = "bench_site"
# What cookiecutter reads from the template repository.
TEMPLATE_PATHS = [
    "cookiecutter.json",
    "local_extensions.py",
    "hooks",
    "{{cookiecutter.project_slug}}",
]
SETUP_TIMEOUT = 300  # each of cookiecutter, migrate, count_queries.py...


def run(command, *, cwd, env=None, timeout=SETUP_TIMEOUT):
    """Run a setup command; its output is shown only when it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def snapshot_template(template, destination):
    """
    Copy the template's files as git sees them: tracked or new, never ignored.
    cookiecutter would otherwise render whatever lies in the folder (a
    .ruff_cache, __pycache__, a stray database), and others editing the tree
    meanwhile could hand it half a change; a copy is one moment of the tree.
    """
    listing = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--"]
        + TEMPLATE_PATHS,
        cwd=template,
    )
    for name in filter(None, listing.split("\0")):
        source = template / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def describe_template(template, snapshot):
    """Which state of a tree others keep editing was measured: HEAD, edits, a digest of the copy."""
    head = run(["git", "rev-parse", "--short", "HEAD"], cwd=template).strip()
    edited = run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--"] + TEMPLATE_PATHS,
        cwd=template,
    )
    digest = hashlib.sha256()
    for path in sorted(p for p in snapshot.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(snapshot)).encode() + b"\0" + path.read_bytes())
    return (
        f"{head} + {len(edited.splitlines())} uncommitted file(s), "
        f"snapshot sha256 {digest.hexdigest()[:12]}"
    )


def generate_site(template, workdir, database):
    """
    cookiecutter --no-input into `workdir`, with its replay and cache kept
    there too; the site's root and a description of the template measured.
    """
    snapshot = snapshot_template(template, workdir / "template")
    config = workdir / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {workdir / 'cookiecutter' / 'templates'}\n"
        f"replay_dir: {workdir / 'cookiecutter' / 'replay'}\n"
    )
    run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(config)]
        + ["--output-dir", str(workdir), str(snapshot)]
        + [f"project_slug={SLUG}", f"database={database}"],
        cwd=workdir,
    )
    return workdir / SLUG, describe_template(template, snapshot)


def load_servers(root):
    """The generated site's `uploads.tests.servers`: its SITE_ROOT is that site."""
    sys.path.insert(0, str(root))
    return importlib.import_module("uploads.tests.servers")


def open_databases(args, stack, workdir, servers):
    """
    {name: DATABASE_URL} for every database used, and a note for PostgreSQL
    when it is only wanted for counting queries and cannot be reached.
    PostgreSQL databases are made for the run and dropped when `stack` closes.
    """
    urls, notes = {}, {}
    users = postgres_users(servers)
    for database in dict.fromkeys([*args.databases, *args.query_databases]):
        if database == "sqlite":
            (workdir / "db").mkdir(exist_ok=True)
            urls["sqlite"] = f"sqlite:///{workdir / 'db' / 'site.sqlite3'}"
            continue
        try:
            urls["postgresql"] = stack.enter_context(
                servers.postgres_database(host=args.pg_host, port=args.pg_port, users=users)
            )
        except pytest.skip.Exception as unreachable:
            if database in args.databases:
                raise RuntimeError(unreachable.msg) from None
            notes["postgresql"] = f"skipped: {unreachable.msg}"
    return urls, notes


def postgres_users(servers):
    """PGUSER, when set, is the one user tried; libpq reads PGPASSWORD by itself."""
    return [os.environ["PGUSER"]] if os.environ.get("PGUSER") else servers.POSTGRES_USERS


def prepare_sites(servers, root, workdir, database_urls, args):
    """
    {database: Site} for every served database, prepared as the tests prepare
    a site (each its own folder: media, staging, logs); the databases that only
    count queries are migrated.
    """
    sites = {}
    for database in args.databases:
        site = servers.Site(
            workdir / f"site-{database}", database_urls[database], workers=args.workers
        )
        site.database = database
        (site.folder / "logs").mkdir(parents=True)
        site.prepare()
        sites[database] = site
    for database, url in database_urls.items():
        if database not in sites:
            manage = [sys.executable, "manage.py", "migrate", "--noinput"]
            run(manage, cwd=root, env=dict(sites[args.databases[0]].env, DATABASE_URL=url))
    return sites


def package_sites(servers, root, workdir, stack, args):
    """
    The packages the template replaces (packages.py), each in its own
    virtualenv and project, on a database of its own on each served database's
    server, prepared (migrated, a user made).
    """
    import packages

    venvs = args.package_venvs or workdir / "venvs"
    venvs.mkdir(parents=True, exist_ok=True)
    package_site = packages.package_site_class(servers)
    sites = []
    for name in packages.PACKAGES:
        venv = packages.install(name, venvs, root)
        for database in args.databases:
            if database == "sqlite":
                url = f"sqlite:///{workdir / 'db' / f'{name}.sqlite3'}"
            else:
                url = stack.enter_context(
                    servers.postgres_database(
                        host=args.pg_host, port=args.pg_port, users=postgres_users(servers)
                    )
                )
            site = package_site(
                name, workdir / f"{name}-{database}", url, venv, workers=args.workers
            )
            site.database = database
            site.prepare()
            sites.append(site)
    return sites


def gunicorn_settings(root, env):
    """What gunicorn.conf.py resolves to under this environment, for the report's header."""
    code = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c.get(k) for k in "
        "('worker_class', 'workers', 'threads', 'keepalive')}))"
    )
    return json.loads(run([sys.executable, "-c", code], cwd=root, env=env))


def install_helpers(workdir):
    """Copies of our helper modules in the temp dir: nothing is imported from the tree."""
    (workdir / "ceiling").mkdir()
    shutil.copy(HERE / "ceiling_app.py", workdir / "ceiling")
    shutil.copy(HERE / "count_queries.py", workdir)
    (workdir / "profiler").mkdir()
    shutil.copy(HERE / "profiled_wsgi.py", workdir / "profiler")
