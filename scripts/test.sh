#!/usr/bin/env bash
# Run every test: the template's own (generation, lint, vendored copies) and,
# through them, the generated site's suite on SQLite and PostgreSQL, the
# multi-process gunicorn tests and the browser tests.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -r requirements-dev.txt
exec .venv/bin/python -m pytest tests "$@"
