#!/bin/sh
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d):
# one database and one login role per service. A service can reach only its own
# database, so no service reads another's tables: they share events, not schemas.
set -eu
for service in booking dispatch reporting gateway; do
  password_var="$(echo "${service}_DB_PASSWORD" | tr '[:lower:]' '[:upper:]')"
  password="$(eval "printf '%s' \"\${${password_var}:-${service}}\"")"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v svc="$service" -v pw="$password" <<'SQL'
CREATE ROLE :"svc" LOGIN PASSWORD :'pw';
CREATE DATABASE :"svc" OWNER :"svc";
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
SQL
done
