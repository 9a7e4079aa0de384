"""
The template's own Jinja filters, loaded by cookiecutter from `_extensions` in
cookiecutter.json (cookiecutter puts this folder on `sys.path` while it runs).

- `ascii_slug` derives the default `project_slug` from the name.
- `checked(question)` refuses a bad answer. cookiecutter 2.7 has no per-question
  validation, but it renders `__` entries of cookiecutter.json in order, as soon
  as the questions before them are answered; each `__check_<question>` entry
  placed right after its question runs its check there, before the next prompt.
  A refusal is one sentence on stderr and nothing else: a failing
  pre_gen_project hook would come after every question, with cookiecutter's
  traceback (hooks/pre_gen_project.py runs the same checks again, for a
  replay file that skips the prompts).
- `quoted` makes free text safe between the double quotes of a Python or TOML
  string. HTML never gets raw answers: the site's templates show them through
  Django's autoescaping (config/context_processors.py).
"""

import re
import sys
import unicodedata
import zoneinfo

from jinja2.ext import Extension

# Names the generated project already uses at its top level: a slug equal to one
# of them would shadow a package the site imports.
RESERVED_SLUGS = {"config", "uploads", "documents", "templates", "static", "django"}
RESERVED_SLUGS |= {"test", "tests"}  # the standard library's, and pytest's habit

# Control characters (tab, newline, DEL...): every free-text answer is one line.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def ascii_slug(name):
    """'Café Über Files' -> 'cafe_uber_files': accents dropped, the rest joined by '_'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def one_line(question, value):
    if not value.strip():
        return f"{question} is empty."
    if CONTROL.search(value):
        return f"{question} {value!r} has a line break or another control character; give one line."
    return None


def slug_problem(slug):
    if not slug:
        return "project_slug is empty: the name has no ASCII letters or digits; give a slug."
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", slug):
        return (
            f"project_slug {slug!r} is not a lower-case Python identifier "
            "(ASCII letters, digits and underscores, not starting with a digit)."
        )
    if slug in RESERVED_SLUGS:
        return f"project_slug {slug!r} is a name the site already uses; choose another."
    return None


def email_problem(email):
    if not re.fullmatch(r"[^@\s\"'<>\\]+@[^@\s\"'<>\\]+\.[^@\s\"'<>\\]+", email):
        return f"email {email!r} is not an e-mail address such as 'you@example.com'."
    return None


def time_zone_problem(time_zone):
    if time_zone not in zoneinfo.available_timezones():
        return f"time_zone {time_zone!r} is not an IANA time zone such as 'Europe/Paris' or 'UTC'."
    return None


CHECKS = {
    "project_name": lambda value: one_line("project_name", value),
    "project_slug": slug_problem,
    "description": lambda value: one_line("description", value),
    "author_name": lambda value: one_line("author_name", value),
    "email": email_problem,
    "time_zone": time_zone_problem,
}


def checked(value, question):
    """The answer itself, or, for a bad one, one sentence on stderr and exit status 1."""
    problem = CHECKS[question](value)
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        # SystemExit passes through cookiecutter untouched: no traceback, and
        # nothing has been written yet.
        raise SystemExit(1)
    return value


def quoted(value):
    r"""
    The text for between the double quotes of a Python or TOML string: `\u0022`
    for a quote (both languages read it, and ruff format keeps the double
    quotes it would swap for single ones around a `\"`), `\\` for a backslash.
    """
    return value.replace("\\", "\\\\").replace('"', "\\u0022")


class TemplateFilters(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters.update(ascii_slug=ascii_slug, checked=checked, quoted=quoted)
