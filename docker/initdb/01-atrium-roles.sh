#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory.
# Creates Atrium's two roles with passwords and a database owned by the owner role;
# `atrium migrate` (as atrium_owner) does the rest.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$ATRIUM_OWNER_PASSWORD" -v app_password="$ATRIUM_APP_PASSWORD" <<'SQL'
CREATE ROLE atrium_owner LOGIN CREATEROLE PASSWORD :'owner_password';
CREATE ROLE atrium_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'app_password';
CREATE DATABASE atrium OWNER atrium_owner;
REVOKE ALL ON DATABASE atrium FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE atrium TO atrium_app;
SQL
