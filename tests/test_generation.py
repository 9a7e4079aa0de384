"""
The template itself: what `cookiecutter` makes of it, for a short list of
meaningful answers, and whether the generated site passes its own checks and
its own test suite.
"""

import html
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
# Files that are copied, not rendered, and may legitimately contain braces.
UNRENDERED = ("uploads/static/uploads/vendor/",)
# The generated site's browser tests check each page with axe-core, pinned in
# frontend/ (installed by `npm ci`); the site has no Node of its own.
AXE_CORE = {"AXE_CORE_JS": str(ROOT / "frontend/node_modules/axe-core/axe.min.js")}
# The first entry of each list is the default, as cookiecutter reads it.
DEFAULTS = {
    key: value[0] if isinstance(value, list) else value
    for key, value in json.loads((ROOT / "cookiecutter.json").read_text()).items()
}


def generate(output_dir, **answers):
    return Path(
        cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers)
    )


def run(args, cwd, env=None, timeout=900):
    """Run a command in the generated site; on failure show what it printed."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**AXE_CORE, **os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout (tail) ---\n{result.stdout[-6000:]}\n"
            f"--- stderr (tail) ---\n{result.stderr[-6000:]}"
        )
    return result


def postgres_available():
    try:
        import psycopg

        with psycopg.connect(f"{POSTGRES_URL}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("default"))


def test_defaults_generate_the_documented_layout(site):
    assert site.name == "big_files"
    for path in [
        "manage.py",
        "gunicorn.conf.py",
        "requirements.txt",
        "requirements-dev.txt",
        ".env",
        ".env.example",
        "README.md",
        "config/settings.py",
        "uploads/engine/__init__.py",
        "uploads/protocols/flowjs.py",
        "uploads/protocols/resumablejs.py",
        "uploads/static/uploads/vendor/manifest.json",
    ]:
        assert (site / path).is_file(), path
    assert "-r requirements.txt" in (site / "requirements-dev.txt").read_text()


def test_no_template_syntax_is_left(site):
    leftovers = []
    for path in site.rglob("*"):
        relative = path.relative_to(site).as_posix()
        if not path.is_file() or relative.startswith(UNRENDERED) or ".venv" in path.parts:
            continue
        text = path.read_text(errors="ignore")
        if "{{ cookiecutter" in text or "{{cookiecutter" in text or "{% raw %}" in text:
            leftovers.append(relative)
    assert leftovers == []


def test_env_has_a_fresh_secret_and_sqlite_by_default(site, tmp_path):
    env = (site / ".env").read_text()
    secret = re.search(r"^DJANGO_SECRET_KEY=(\S+)$", env, re.M).group(1)
    assert len(secret) >= 50
    assert "DATABASE_URL=" not in env.replace("# DATABASE_URL", "")
    other = (generate(tmp_path) / ".env").read_text()
    assert secret not in other
    assert oct((site / ".env").stat().st_mode & 0o777) == "0o600"


def test_every_setting_read_from_the_environment_is_documented(site):
    settings_text = "".join(
        (site / name).read_text() for name in ["config/settings.py", "gunicorn.conf.py"]
    )
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_text))
    names |= set(re.findall(r'environ\.get\("([A-Z_]+)"', settings_text))
    example = (site / ".env.example").read_text()
    missing = sorted(name for name in names if not re.search(rf"^#? ?{name}=", example, re.M))
    assert missing == [], "not in .env.example"
    readme = (site / "README.md").read_text()
    missing = sorted(name for name in names if f"| `{name}` |" not in readme)
    assert missing == [], "not in the README's settings table"


# Run in the generated site: each UPLOADS_* setting as read from the environment
# (the documented values) and as uploads/conf.py's default, once settings.py's
# values are taken away.
READ_UPLOADS_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
from uploads.conf import DEFAULTS, upload_settings
def values():
    return {name: repr(getattr(upload_settings, name)) for name in DEFAULTS}
read = values()
for name in DEFAULTS:
    delattr(settings, f"UPLOADS_{name}")
print(json.dumps({"read": read, "default": values()}))
"""


def readme_default(cell):
    """The value a README settings row gives: `value` first, or "(empty...)"."""
    cell = cell.strip()
    if cell.startswith("(empty"):
        return ""
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"the README's default {cell!r} is not a value the setting reads"
    return match.group(1)


@pytest.mark.parametrize("source", [".env.example", "README.md"])
def test_uploads_defaults_are_documented_with_conf_py_s_values(site, source):
    text = (site / source).read_text()
    if source == ".env.example":
        documented = dict(re.findall(r"^# ?(UPLOADS_\w+)=(.*)$", text, re.MULTILINE))
    else:
        rows = re.findall(r"^\| `(UPLOADS_\w+)` \| ([^|]*) \|", text, re.MULTILINE)
        documented = {name: readme_default(cell) for name, cell in rows}
    project = str(site.resolve())
    documented = {name: value.replace("<project>", project) for name, value in documented.items()}
    env = {name: value for name, value in os.environ.items() if not name.startswith("UPLOADS_")}
    result = subprocess.run(
        [sys.executable, "-c", READ_UPLOADS_SETTINGS],
        check=False,
        cwd=site,
        env={**env, **documented, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    names = {f"UPLOADS_{name}" for name in values["default"]}
    assert sorted(names - set(documented)) == [], f"not in {source}"
    settings_text = (site / "config/settings.py").read_text()
    assert sorted(name for name in names if f'"{name}"' not in settings_text) == [], "not read"
    assert values["read"] == values["default"], (
        f"{source} gives another default than uploads/conf.py"
    )


def test_postgresql_answer_points_the_site_at_postgresql(tmp_path):
    site = generate(tmp_path, database="postgresql", project_slug="acme_files")
    assert site.name == "acme_files"
    assert "DATABASE_URL=postgres://127.0.0.1:5432/acme_files" in (site / ".env").read_text()


def test_postgresql_answer_creates_the_database_or_says_how(tmp_path, monkeypatch, capfd):
    if not postgres_available():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    import psycopg

    slug = f"tmpl_db_{uuid.uuid4().hex[:8]}"

    def exists():
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [slug])
            return found.fetchone() is not None

    try:
        # A role that may create databases: the hook makes it.
        monkeypatch.setenv("PGUSER", "postgres")
        generate(tmp_path / "may", database="postgresql", project_slug=slug)
        assert f"Created the PostgreSQL database {slug}." in capfd.readouterr().out
        assert exists()
        # Generated again: it is there already, and that is fine.
        generate(tmp_path / "again", database="postgresql", project_slug=slug)
        assert "already exists" in capfd.readouterr().out
    finally:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{slug}"')
    # A role that may not (or no server): the site is made, and one line says what to run.
    monkeypatch.setenv("PGUSER", "nobody_may_create")
    site = generate(tmp_path / "may-not", database="postgresql", project_slug=slug)
    assert (site / ".env").is_file()
    err = capfd.readouterr().err
    assert "was not created" in err
    assert "createdb -h 127.0.0.1 -p 5432 -U postgres --owner" in err
    assert not exists()


@pytest.mark.parametrize(
    "answers, message",
    [
        ({"project_slug": "3files"}, "project_slug '3files' is not a lower-case Python identifier"),
        ({"project_slug": "big-files"}, "not a lower-case Python identifier"),
        ({"project_slug": "café"}, "not a lower-case Python identifier"),
        ({"project_slug": "uploads"}, "a name the site already uses"),
        ({"project_name": "日本"}, "project_slug is empty"),
        ({"project_name": "  "}, "project_name is empty"),
        ({"description": "two\nlines"}, "description 'two\\nlines' has a line break"),
        ({"email": "you"}, "email 'you' is not an e-mail address"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
    ],
)
def test_invalid_answers_stop_generation_with_one_sentence(tmp_path, capfd, answers, message):
    with pytest.raises(SystemExit) as stopped:
        generate(tmp_path, **answers)
    assert stopped.value.code == 1
    err = capfd.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert list(tmp_path.iterdir()) == []


def test_a_replay_file_edited_by_hand_is_checked_before_anything_is_written(tmp_path):
    """--replay skips the prompts and so the checks at each answer: the pre-gen hook runs them."""
    replay = tmp_path / "replay.json"
    raw = json.loads((ROOT / "cookiecutter.json").read_text())
    # A replay holds the answers, and the template's own settings (_extensions...) as they are.
    answers = {key: value if key.startswith("_") else DEFAULTS[key] for key, value in raw.items()}
    answers.update(project_slug="3files", _template=str(ROOT))
    replay.write_text(json.dumps({"cookiecutter": answers}))
    out = tmp_path / "replayed"
    result = subprocess.run(
        [VENV_BIN / "cookiecutter", "--replay-file", replay, "-o", out, ROOT],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("Error: project_slug '3files' is not a lower-case")
    assert not out.exists() or list(out.iterdir()) == []


def test_a_refusal_on_the_command_line_is_one_sentence_without_traceback(tmp_path):
    result = subprocess.run(
        [VENV_BIN / "cookiecutter", "--no-input", "-o", tmp_path, ROOT, "project_slug=3files"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: project_slug '3files' is not a lower-case Python identifier "
        "(ASCII letters, digits and underscores, not starting with a digit)."
    ]
    assert result.stdout == ""


def test_a_bad_answer_at_the_prompt_stops_before_the_next_question(tmp_path):
    result = subprocess.run(
        [VENV_BIN / "cookiecutter", "-o", tmp_path, ROOT],
        input="Big Files\n3files\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "project_slug" in result.stdout and "description" not in result.stdout
    assert "is not a lower-case Python identifier" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_accented_name_gives_an_ascii_slug(tmp_path):
    assert generate(tmp_path, project_name="Café Über Files").name == "cafe_uber_files"


HOSTILE = {
    "project_name": "Café Über Files",
    # A brace too (cookiecutter itself renders `{{` in an answer given on the
    # command line, so a lone brace is what reaches the files that way).
    "description": 'He said "hi" <b>bold</b> {not a tag} \\',
    "author_name": 'Zoë O\'Brien "Z"',
    "email": "zoe+files@example.org",
}

# Every choice of every question once, and answers that try to break each file
# they land in (TOML, Python, HTML); the defaults are the `site` fixture.
CHOICES = [
    {"database": "postgresql"},
    {"upload_client": "resumable.js"},
    {"license": "BSD-3-Clause"},
    {"license": "Apache-2.0"},
    {"license": "Not open source"},
    HOSTILE,
]

# What a user sees of each choice: the site's default client, and its home page.
SHOW_SITE = """
from django.conf import settings
from django.test import Client

print(settings.UPLOADS_CLIENT)
print(Client(HTTP_HOST="localhost").get("/").content.decode())
"""

# A sentence of each licence's standard text.
LICENSE_WORDS = {
    "MIT": "Permission is hereby granted, free of charge, to any person obtaining a copy",
    "BSD-3-Clause": "3. Neither the name of the copyright holder nor the names of its",
    "Apache-2.0": "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
    "Not open source": "All rights reserved.",
}


def choice_id(answers):
    return "-".join(answers.values()) or "defaults"


@pytest.mark.parametrize("answers", [{}, *CHOICES], ids=choice_id)
def test_every_choice_gives_a_site_that_starts(tmp_path, site, answers):
    project = generate(tmp_path, **answers) if answers else site
    given = {**DEFAULTS, **answers}

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject["description"] == given["description"]
    assert pyproject["authors"] == [{"name": given["author_name"], "email": given["email"]}]
    spdx = {"Not open source": "LicenseRef-Proprietary"}.get(given["license"], given["license"])
    assert pyproject["license"] == spdx
    license_text = (project / "LICENSE").read_text()
    assert LICENSE_WORDS[given["license"]] in license_text
    assert given["author_name"] in license_text or given["license"] == "Apache-2.0"
    readme = (project / "README.md").read_text()
    assert f"{given['author_name']} <{given['email']}>" in readme

    run([VENV_BIN / "ruff", "check", "--no-cache", "."], cwd=project)
    run([VENV_BIN / "ruff", "format", "--check", "--no-cache", "."], cwd=project)
    pytest_starts = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"]
    assert " tests collected" in run(pytest_starts, cwd=project).stdout
    shell = [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW_SITE]
    client, page = run(shell, cwd=project).stdout.split("\n", 1)
    assert client == given["upload_client"]
    assert f"<title>{html.escape(given['project_name'])}</title>" in page
    assert f"<p>{html.escape(given['description'])}</p>" in page


def test_template_syntax_typed_at_the_prompt_is_shown_as_text(tmp_path):
    """Typed answers are not rendered by cookiecutter, so `{{` and `{%` reach
    the site; Django must show them, not run them."""
    description = '{{ request }} {% now "Y" %} <b>hi</b>'
    subprocess.run(
        [VENV_BIN / "cookiecutter", "-o", tmp_path, ROOT],
        input=f"Big Files\n\n{description}\n" + "\n" * 12,
        capture_output=True,
        text=True,
        check=True,
    )
    shell = [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW_SITE]
    page = run(shell, cwd=tmp_path / "big_files").stdout
    assert f"<p>{html.escape(description)}</p>" in page


def fresh_clone(output_dir):
    """A generated site as a new repository's checkout has it: no .env, which is never committed."""
    project = generate(output_dir)
    assert ".env" in (project / ".gitignore").read_text().split()
    (project / ".env").unlink()
    return project


def workflow_steps(workflow):
    """Each `run:` of a GitHub Actions workflow, with the environment it runs in."""
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                yield step["run"], {key: str(value) for key, value in env.items()}


def tools_first(env=None):
    """The virtualenv's `ruff`, `python` and `pre-commit` first, as once it is activated."""
    return {**(env or {}), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}


def test_site_ships_ci_dependabot_editorconfig_and_pre_commit(site):
    workflow = yaml.safe_load((site / ".github/workflows/ci.yml").read_text())
    commands = [command for command, _ in workflow_steps(workflow)]
    for expected in [
        "ruff check .",
        "ruff format --check .",
        "python manage.py makemigrations --check --dry-run",
        "python manage.py check --deploy --fail-level WARNING",
        "pytest -p no:cacheprovider",
    ]:
        assert expected in commands
    test_job = workflow["jobs"]["test"]
    assert test_job["services"]["postgres"]["image"].startswith("postgres:")
    assert test_job["env"]["DATABASE_URL"].startswith("postgres://")
    assert test_job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]

    dependabot = yaml.safe_load((site / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in dependabot["updates"]}
    assert ecosystems == {"pip", "github-actions"}

    hooks = yaml.safe_load((site / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in hooks["repos"]] == ["local"]
    assert all(hook["language"] == "system" for hook in hooks["repos"][0]["hooks"])
    assert "pre-commit==" in (site / "requirements-dev.txt").read_text()
    assert "root = true" in (site / ".editorconfig").read_text()


def test_ci_workflow_commands_pass_on_a_fresh_clone(tmp_path):
    """Every command of the workflow that needs no network or service: the
    installs are already done here, and the suite is run by the tests below."""
    project = fresh_clone(tmp_path)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    ran = []
    for command, env in workflow_steps(workflow):
        if command.startswith(("pip install", "sudo apt-get install", "pytest")):
            continue
        run(["bash", "-c", command], cwd=project, env=tools_first(env))
        ran.append(command)
    assert len(ran) == 5


def test_pre_commit_hooks_pass_without_the_network(tmp_path):
    project = generate(tmp_path / "site")
    run(["git", "init", "-q"], cwd=project)
    run(["git", "add", "-A"], cwd=project)
    env = tools_first({"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")})
    result = run(
        [VENV_BIN / "pre-commit", "run", "--all-files", "--show-diff-on-failure"],
        cwd=project,
        env=env,
    )
    assert re.search(r"^ruff format\.+Passed$", result.stdout, re.M), result.stdout
    assert re.search(r"^migrations match the models\.+Passed$", result.stdout, re.M), result.stdout
    assert run(["git", "diff", "--stat"], cwd=project).stdout == "", "a hook changed files"


def test_check_deploy_passes_with_production_settings(site):
    production = {
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": "x" * 20 + uuid.uuid4().hex + "y" * 20,
        "DJANGO_ALLOWED_HOSTS": "files.example.com",
    }
    run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=site,
        env=production,
    )


def test_hsts_subdomains_and_preload_are_opt_in(site):
    """Both are hard to undo for a whole domain: never on by default, on when asked."""
    production = {
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": "x" * 20 + uuid.uuid4().hex + "y" * 20,
        "DJANGO_ALLOWED_HOSTS": "files.example.com",
    }
    show = [
        sys.executable,
        "-c",
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
        "django.setup(); from django.conf import settings as s;"
        "print(s.SECURE_HSTS_SECONDS > 0, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)",
    ]
    assert run(show, cwd=site, env=production).stdout.split() == ["True", "False", "False"]
    opted_in = {
        **production,
        "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "True",
        "DJANGO_HSTS_PRELOAD": "True",
    }
    assert run(show, cwd=site, env=opted_in).stdout.split() == ["True", "True", "True"]


# The generated suite starts gunicorn, nginx, Chromium, Celery and moto many
# times over; on a loaded two-core machine it takes well over the 15 minutes a
# single command gets.
SUITE_TIMEOUT = 2400


def test_generated_suite_passes_on_sqlite(site):
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=site,
        timeout=SUITE_TIMEOUT,
    )


def test_generated_suite_passes_on_postgresql(tmp_path):
    if not postgres_available():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    site = generate(tmp_path, database="postgresql")
    name = f"tmpl_{uuid.uuid4().hex[:10]}"
    run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=site,
        env={"DATABASE_URL": f"{POSTGRES_URL}/{name}"},
        timeout=SUITE_TIMEOUT,
    )


def test_generated_suite_passes_on_newest_django_and_python_312(tmp_path):
    """The site is pinned to 5.2 LTS; the next LTS line must not surprise its users."""
    python312 = subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"],
        env={**os.environ, "PYENV_VERSION": "3.12.1"},
        capture_output=True,
        text=True,
    )
    if python312.returncode != 0:
        pytest.skip("no Python 3.12 (pyenv 3.12.1) on this machine")
    site = generate(tmp_path / "site")
    venv = tmp_path / "venv"
    run([python312.stdout.strip(), "-m", "venv", str(venv)], cwd=site)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "-r", "requirements-dev.txt"], cwd=site)
    run([*pip, "--upgrade", "django>=6,<7"], cwd=site)
    version = run(
        [str(venv / "bin/python"), "-c", "import django; print(django.__version__)"], cwd=site
    )
    assert version.stdout.startswith("6.")
    run(
        [
            str(venv / "bin/python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not server",
        ],
        cwd=site,
    )
