#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback and create the test role; prints the URL to use.
set -euo pipefail
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q online; then
  pg_lsclusters -h | grep -q . || pg_createcluster "$ver" main >/dev/null
  pg_ctlcluster "$ver" main start
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
pg_isready -q -h 127.0.0.1
exists=$(su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='genarm'\"")
if [ "$exists" != "1" ]; then
  su postgres -c "psql -q -c \"CREATE ROLE genarm LOGIN SUPERUSER PASSWORD 'genarm'\"" >&2
fi
echo "postgresql+psycopg://genarm:genarm@127.0.0.1:5432/postgres"
