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
# The browser tests drive Debian's Chromium (never a downloaded browser); they
# skip, saying why, where it cannot be installed.
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
  || echo "Chromium could not be installed: the browser tests will skip." >&2
exec .venv/bin/python -m pytest tests "$@"
