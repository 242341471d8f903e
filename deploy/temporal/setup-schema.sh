#!/usr/bin/env bash
# Creates Temporal's two PostgreSQL databases (temporal, temporal_visibility) and brings
# their schemas to the version the pinned server needs, with the pinned
# temporal-sql-tool and the schemas embedded in it. Safe to run again: a database that
# exists is kept, and only the schema versions it lacks are applied.
#
#   SQL_HOST=10.0.0.5 SQL_PORT=5432 SQL_USER=temporal SQL_PASSWORD=… \
#   TEMPORAL_SQL_TOOL=./temporal-sql-tool ./setup-schema.sh
set -euo pipefail

: "${SQL_HOST:?SQL_HOST: the address of PostgreSQL}"
: "${SQL_USER:?SQL_USER: a role that may create databases}"
export SQL_PLUGIN=postgres12 SQL_HOST SQL_USER
export SQL_PORT=${SQL_PORT:-5432} SQL_PASSWORD=${SQL_PASSWORD:-}
tool=${TEMPORAL_SQL_TOOL:-temporal-sql-tool}

for pair in temporal:temporal temporal_visibility:visibility; do
	db=${pair%%:*} schema=postgresql/v12/${pair#*:}
	"$tool" --db "$db" create-database
	"$tool" --db "$db" setup-schema -v 0.0
	"$tool" --db "$db" update-schema --schema-name "$schema"
done
echo "setup-schema: temporal and temporal_visibility are ready"
