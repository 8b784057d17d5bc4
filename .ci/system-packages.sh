#!/usr/bin/env bash
# Debian packages the tests need, installed when missing:
#   postgresql: a server on loopback for tests/runners/test_postgres.py (scaling out on many machines);
#               the test connects as postgresql+psycopg://nas:nas@127.0.0.1:5432/postgres
#               (KEYPOINT_NAS_PG_URL overrides).
#   chromium:   the headless browser kaleido renders the analysis report's PNGs with.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
pg_lsclusters -h | grep -q "^$version main .* online" || pg_ctlcluster "$version" main start
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='nas'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE nas LOGIN PASSWORD 'nas' CREATEDB\""
echo "system packages: postgresql $version on 127.0.0.1:5432 (role nas), $(chromium --version 2>/dev/null | head -n 1)"
