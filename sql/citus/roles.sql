-- Citus: the roles, before any migration. `atrium migrate` runs this on every run when the
-- `citus` extension is installed in the database (on plain PostgreSQL never), as the connecting
-- user, who must be a superuser of the coordinator. Safe to run again.
--
-- Citus runs each statement's shard work on the workers over connections it opens as the
-- current user. So the roles that own objects or run SECURITY DEFINER functions must be able to
-- log in there: atrium_owner (migrations run as it) and atrium_definer (the functions that cross
-- tenants on purpose). LOGIN is not a password: give them none, and let pg_hba.conf admit them
-- only from the coordinator and the workers (trust or certificates between the nodes, or
-- passwords in Citus's pg_dist_authinfo).

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['atrium_owner', 'atrium_app', 'atrium_definer', 'atrium_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I', role_name);
        END IF;
    END LOOP;

    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname IN ('atrium_owner', 'atrium_app', 'atrium_definer') AND NOT rolcanlogin) THEN
        ALTER ROLE atrium_owner LOGIN;
        ALTER ROLE atrium_app LOGIN;
        ALTER ROLE atrium_definer LOGIN;
    END IF;

    -- Roles belong to the whole cluster, databases do not: roles made before this database had
    -- the extension are unknown to its Citus metadata, and a migration running as atrium_owner
    -- (no superuser) would then have Citus copy them to the workers itself, which only a
    -- superuser may. A function given to each role makes Citus copy and record the role now.
    FOREACH role_name IN ARRAY ARRAY['atrium_owner', 'atrium_app', 'atrium_definer', 'atrium_admin'] LOOP
        IF NOT EXISTS (
            SELECT FROM pg_catalog.pg_dist_object o
            WHERE o.classid = 'pg_catalog.pg_authid'::regclass AND o.objid = role_name::regrole
        ) THEN
            CREATE FUNCTION public.atrium_citus_role() RETURNS void LANGUAGE sql AS 'SELECT';
            EXECUTE pg_catalog.format('ALTER FUNCTION public.atrium_citus_role() OWNER TO %I', role_name);
            DROP FUNCTION public.atrium_citus_role();
        END IF;
    END LOOP;

    -- The tenant setting reaches the shards only as SET LOCAL with this (see TenantScoping).
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_db_role_setting s
        WHERE s.setrole = 'atrium_app'::regrole AND s.setdatabase = 0
          AND 'citus.propagate_set_commands=local' = ANY (s.setconfig)
    ) THEN
        ALTER ROLE atrium_app SET citus.propagate_set_commands = 'local';
    END IF;
END
$$;
