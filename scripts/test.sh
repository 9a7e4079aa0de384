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
# GNU gettext's msgfmt compiles the site's French and German (compilemessages).
command -v msgfmt >/dev/null || (apt-get update && apt-get install -y gettext) \
  || echo "gettext could not be installed: the site's tests cannot compile its translations." >&2
# The deploy kit's tests run real nginx (Debian's package) in front of gunicorn.
[ -x /usr/sbin/nginx ] || (apt-get update && apt-get install -y nginx) \
  || echo "nginx could not be installed: the nginx tests will skip." >&2
# The vendored flow.js, resumable.js and tus-js-client are compared byte for
# byte with their pinned npm packages when npm is here; without it, only with
# their manifest.
if command -v npm >/dev/null; then
  npm ci --prefix frontend --no-audit --no-fund --silent \
    || echo "npm ci failed: vendored copies are checked against their manifest only." >&2
fi
exec .venv/bin/python -m pytest tests "$@"
