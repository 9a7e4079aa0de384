"""Finish the generated site: write its local .env with a fresh secret."""

import secrets
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


def main():
    write_env()


if __name__ == "__main__":
    main()
