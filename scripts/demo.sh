#!/usr/bin/env bash
# Generate a site with the default answers and serve it on http://127.0.0.1:8000
# (gunicorn, SQLite, local files). Log in as demo / demo-password.
# Extra arguments are cookiecutter answers: scripts/demo.sh project_slug=acme_files
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_DIR:-"$here/build/demo"}

python3 -m venv "$out/.venv"
"$out/.venv/bin/pip" install --quiet --upgrade pip
"$out/.venv/bin/pip" install --quiet -r "$here/requirements-dev.txt"
"$out/.venv/bin/cookiecutter" "$here" --no-input --overwrite-if-exists --output-dir "$out" "$@"
site=$(ls -td "$out"/*/ | grep -v '/.venv/$' | head -n 1)
cd "$site"
export PATH="$out/.venv/bin:$PATH"
python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0
DJANGO_SUPERUSER_USERNAME=demo DJANGO_SUPERUSER_PASSWORD=demo-password \
  DJANGO_SUPERUSER_EMAIL=demo@example.com \
  python manage.py createsuperuser --noinput 2>/dev/null || true
echo "Serving $site on http://127.0.0.1:8000 — log in as demo / demo-password. Ctrl-C stops."
exec env DJANGO_DEBUG=False DJANGO_HTTPS=False gunicorn -c gunicorn.conf.py
