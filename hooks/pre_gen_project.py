"""Refuse answers that would generate a broken site, before anything is written."""

import re
import sys
import zoneinfo

SLUG = "{{ cookiecutter.project_slug }}"
EMAIL = "{{ cookiecutter.email }}"
TIME_ZONE = "{{ cookiecutter.time_zone }}"

# Names the generated project already uses at its top level: a slug equal to one
# of them would shadow a package the site imports.
RESERVED = {"config", "uploads", "templates", "static", "django", "test", "tests"}


def fail(sentence):
    print(f"ERROR: {sentence}", file=sys.stderr)
    sys.exit(1)


def main():
    if not SLUG.isidentifier() or not re.fullmatch(r"[a-z_][a-z0-9_]*", SLUG):
        fail(
            f"project_slug {SLUG!r} is not a lower-case Python identifier "
            "(letters, digits and underscores, not starting with a digit)."
        )
    if SLUG in RESERVED:
        fail(f"project_slug {SLUG!r} is a name the site already uses; choose another.")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", EMAIL):
        fail(f"email {EMAIL!r} is not an e-mail address.")
    if TIME_ZONE not in zoneinfo.available_timezones():
        fail(f"time_zone {TIME_ZONE!r} is not an IANA time zone such as 'Europe/Paris' or 'UTC'.")


if __name__ == "__main__":
    main()
