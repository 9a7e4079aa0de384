"""
Refuse impossible answers, once more, before anything is written.

Each answer is checked as it is given (local_extensions.py, through the
`__check_*` entries of cookiecutter.json), which is where a person at the
prompt hears of a mistake. This hook runs the same checks on the answers as
they reach the generation, for the one path that skips the prompts: a replay
file (`cookiecutter --replay`) edited by hand.
"""

import sys

sys.path.insert(0, "{{ cookiecutter._repo_dir|quoted }}")

from local_extensions import CHECKS  # noqa: E402 - the template's folder, added above

ANSWERS = {
    "project_name": "{{ cookiecutter.project_name|quoted }}",
    "project_slug": "{{ cookiecutter.project_slug|quoted }}",
    "description": "{{ cookiecutter.description|quoted }}",
    "author_name": "{{ cookiecutter.author_name|quoted }}",
    "email": "{{ cookiecutter.email|quoted }}",
    "time_zone": "{{ cookiecutter.time_zone|quoted }}",
}


def main():
    for question, check in CHECKS.items():
        problem = check(ANSWERS[question])
        if problem:
            print(f"Error: {problem}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
