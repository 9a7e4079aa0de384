"""Finish the generated site: write its local .env with a fresh secret, and
create its PostgreSQL database when that answer was chosen."""

import getpass
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

DATABASE = "{{ cookiecutter.database }}"
SLUG = "{{ cookiecutter.project_slug }}"


def database_line():
    if DATABASE == "postgresql":
        return f"DATABASE_URL=postgres://127.0.0.1:5432/{SLUG}"
    return "# DATABASE_URL unset: SQLite in db.sqlite3 beside manage.py."


def write_env():
    """A .env for running the site on this machine; production sets real values."""
    secret_key = secrets.token_urlsafe(50)
    lines = [
        "# Local settings written by the template. Every setting is documented in .env.example.",
        f"DJANGO_SECRET_KEY={secret_key}",
        "DJANGO_DEBUG=True",
        "DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]",
        database_line(),
    ]
    Path(".env").write_text("\n".join(lines) + "\n")
    Path(".env").chmod(0o600)


def create_database():
    """
    The PostgreSQL database the .env points at, made with `createdb` where this
    machine's user may; otherwise one line says the command to run. Never
    stops the generation: the site is there either way.
    """
    if DATABASE != "postgresql":
        return
    createdb = shutil.which("createdb")
    if createdb is not None:
        try:
            result = subprocess.run(
                [createdb, "-h", "127.0.0.1", "-p", "5432", SLUG],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
        else:
            if result.returncode == 0:
                print(f"Created the PostgreSQL database {SLUG}.")
                return
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
            if "already exists" in reason:
                print(f"The PostgreSQL database {SLUG} already exists; the site will use it.")
                return
    else:
        reason = "createdb is not installed here"
    print(
        f"The PostgreSQL database {SLUG} was not created ({reason}). Create it with:\n"
        f"  createdb -h 127.0.0.1 -p 5432 -U postgres --owner {getpass.getuser()} {SLUG}\n"
        "and put the user and password in DATABASE_URL in .env if your server asks for them.",
        file=sys.stderr,
    )


def main():
    write_env()
    create_database()


if __name__ == "__main__":
    main()
