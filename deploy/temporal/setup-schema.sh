#!/bin/sh
# One-shot, run by the `temporal-schema` service in Temporal's admin-tools image: create
# Temporal's two databases on the PostgreSQL server and bring their schemas to the version
# this server release needs. Safe to run on every `docker compose up`: an existing
# database is kept and update-schema applies only what is missing.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD_FILE:?}"
SQL_PASSWORD="$(cat "$SQL_PASSWORD_FILE")"
export SQL_PASSWORD
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
    dir=temporal
    [ "$db" = temporal_visibility ] && dir=visibility
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" \
        -p "${DB_PORT:-5432}" --db "$db" create || echo "$db exists"
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" \
        -p "${DB_PORT:-5432}" --db "$db" setup-schema -v 0.0 || echo "$db has a schema"
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" \
        -p "${DB_PORT:-5432}" --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "Temporal's schemas are up to date"
