-- atrium:run-as session-user
--
-- Roles. Roles belong to the whole PostgreSQL cluster, so this migration only creates what is
-- missing and then pins the attributes that matter for safety.
--
--   atrium_owner  owns every Atrium object; migrations run as it (SET ROLE). It does not log
--                 in unless an administrator gives it LOGIN and a password.
--   atrium_app    the role the service connects as: owns nothing, may not bypass row-level
--                 security, and holds only the DML grants each table gives it.
--
-- This file runs as the connecting user, who therefore needs CREATEROLE (or superuser).

-- Two databases of one cluster migrating at once may both try to create a role (the advisory
-- lock is per database), so losing that race is not an error.
DO $$
BEGIN
    BEGIN
        CREATE ROLE atrium_owner NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    BEGIN
        CREATE ROLE atrium_app LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    -- Whoever runs migrations must be able to become the owner.
    IF current_user <> 'atrium_owner'
       AND NOT pg_has_role(current_user, 'atrium_owner', 'MEMBER') THEN
        EXECUTE format('GRANT atrium_owner TO %I', current_user);
    END IF;
    -- The owner creates the atrium schema in this database.
    EXECUTE format('GRANT CREATE ON DATABASE %I TO atrium_owner', current_database());
END
$$;

-- Whatever the role had before, the service role gets no way around the tenant policies.
ALTER ROLE atrium_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;

COMMENT ON ROLE atrium_owner IS 'Owns every Atrium schema object; migrations run as this role.';
COMMENT ON ROLE atrium_app IS 'Atrium service login: owns nothing, no BYPASSRLS, DML grants per table only.';
