"""Finish the generated site: write its local .env with a fresh secret."""

import secrets
from pathlib import Path

DATABASE = "{{ cookiecutter.database }}"
SLUG = "{{ cookiecutter.project_slug }}"


def database_line():
    if DATABASE == "postgresql":
        return f"DATABASE_URL=postgres://127.0.0.1:5432/{SLUG}\n"
    return "# DATABASE_URL unset: SQLite in db.sqlite3 beside manage.py.\n"


def write_env():
    """A .env for running the site on this machine; production sets real values."""
    secret_key = secrets.token_urlsafe(50)
    Path(".env").write_text(
        "# Local settings written by the template. Every setting is documented in .env.example.\n"
        f"DJANGO_SECRET_KEY={secret_key}\n"
        "DJANGO_DEBUG=True\n"
        "DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]\n"
        + database_line()
    )
    Path(".env").chmod(0o600)


def main():
    write_env()


if __name__ == "__main__":
    main()
