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
-- This file runs as the connecting user, who needs CREATEROLE (or superuser) unless both roles
-- already exist, and must own the database (or be superuser) to grant CREATE on it.

-- Roles are shared by every database of the cluster, and the migration lock is per database,
-- so two databases migrating at once may race here: creating a role that appeared meanwhile
-- is not an error, and roles already in the wanted state are left untouched (concurrent
-- updates of the same role row fail with "tuple concurrently updated").
DO $$
BEGIN
    -- An administrator may have created both roles beforehand (with passwords); then the
    -- migrating role needs no CREATEROLE at all.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'atrium_owner') THEN
        BEGIN
            CREATE ROLE atrium_owner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'atrium_app') THEN
        BEGIN
            CREATE ROLE atrium_app LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;

    -- Whatever the role had before, the service role gets no way around the tenant policies.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'atrium_app'
               AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication)) THEN
        ALTER ROLE atrium_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;

    -- Whoever runs migrations must be able to become the owner.
    IF current_user <> 'atrium_owner'
       AND NOT pg_has_role(current_user, 'atrium_owner', 'MEMBER') THEN
        EXECUTE format('GRANT atrium_owner TO %I', current_user);
    END IF;

    -- The owner creates the atrium schema in this database.
    EXECUTE format('GRANT CREATE ON DATABASE %I TO atrium_owner', current_database());

    IF shobj_description('atrium_owner'::regrole, 'pg_authid') IS NULL THEN
        COMMENT ON ROLE atrium_owner IS 'Owns every Atrium schema object; migrations run as this role.';
    END IF;
    IF shobj_description('atrium_app'::regrole, 'pg_authid') IS NULL THEN
        COMMENT ON ROLE atrium_app IS 'Atrium service login: owns nothing, no BYPASSRLS, DML grants per table only.';
    END IF;
END
$$;
