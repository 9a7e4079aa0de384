#!/usr/bin/env bash
# Generate a site with the default answers and serve it on http://127.0.0.1:8000
# (gunicorn, SQLite, local files). Log in as demo / demo-password.
#   scripts/demo.sh                          the defaults, on port 8000
#   scripts/demo.sh --port 8080              another port (or DEMO_PORT=8080)
#   scripts/demo.sh project_slug=acme_files  cookiecutter answers, as many as you like
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_DIR:-"$here/build/demo"}
port=${DEMO_PORT:-8000}
answers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    *=*) answers+=("$1"); shift ;;
    *) echo "demo.sh: $1 is neither --port N nor an answer such as project_slug=acme_files" >&2; exit 2 ;;
  esac
done
case "$port" in
  ''|*[!0-9]*) echo "demo.sh: the port must be a number, not '$port'" >&2; exit 2 ;;
esac

python3 -m venv "$out/.venv"
"$out/.venv/bin/pip" install --quiet --upgrade pip
"$out/.venv/bin/pip" install --quiet -r "$here/requirements-dev.txt"
# cookiecutter's own answer says which folder this run made: an earlier run's
# folder (another slug, or one a failed run left) is never picked by mistake.
site=$("$out/.venv/bin/python" - "$here" "$out" "${answers[@]}" <<'PY'
import sys
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

template, output, *answers = sys.argv[1:]
context = dict(answer.split("=", 1) for answer in answers)
try:
    print(cookiecutter(template, no_input=True, overwrite_if_exists=True, output_dir=output, extra_context=context))
except FailedHookException:
    sys.exit(1)  # the hook has said, in one sentence, which answer it refused
PY
)
cd "$site"
export PATH="$out/.venv/bin:$PATH"
python manage.py migrate --noinput
python manage.py compilemessages --ignore=.venv --verbosity 0
python manage.py collectstatic --noinput --verbosity 0
DJANGO_SUPERUSER_USERNAME=demo DJANGO_SUPERUSER_PASSWORD=demo-password \
  DJANGO_SUPERUSER_EMAIL=demo@example.com \
  python manage.py createsuperuser --noinput 2>/dev/null || true
echo "Serving $site on http://127.0.0.1:$port — log in as demo / demo-password. Ctrl-C stops."
exec env DJANGO_DEBUG=False DJANGO_HTTPS=False GUNICORN_BIND="127.0.0.1:$port" gunicorn -c gunicorn.conf.py
