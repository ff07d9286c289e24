#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback and create the test role.
# Prints exactly one line on stdout, the SQLAlchemy URL to use; everything else goes to stderr
# (pg_ctlcluster prints notes such as "Removed stale pid file." on stdout).
set -euo pipefail
exec 3>&1 1>&2
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q . || pg_createcluster "$ver" main 3>&-
read -r cver cname port status _ < <(pg_lsclusters -h | head -1)
if [ "$status" != "online" ]; then
  # the server must not inherit fd 3, or a caller reading our stdout would wait for it forever
  pg_ctlcluster "$cver" "$cname" start 3>&-
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
pg_isready -q -h 127.0.0.1 -p "$port"
exists=$(su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname='genarm'\"")
if [ "$exists" != "1" ]; then
  su postgres -c "psql -p $port -q -c \"CREATE ROLE genarm LOGIN SUPERUSER PASSWORD 'genarm'\""
fi
echo "postgresql+psycopg://genarm:genarm@127.0.0.1:$port/postgres" >&3
