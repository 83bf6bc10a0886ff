-- atrium:run-as session-user
--
-- Two more roles for identity and administration (created only if missing, like 001):
--
--   atrium_definer  owns the few SECURITY DEFINER functions and triggers that must cross
--                   tenant boundaries on purpose: finding a user by email at login, listing a
--                   user's tenants, rotating a refresh token found by its hash, revoking a
--                   user's sessions everywhere. Policies name it explicitly; nothing logs in
--                   as it and atrium_app is not a member.
--   atrium_admin    a group role for database administrators: EXECUTE on the functions of
--                   the atrium_admin schema (GRANT atrium_admin TO alice).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'atrium_definer') THEN
        BEGIN
            CREATE ROLE atrium_definer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'atrium_admin') THEN
        BEGIN
            CREATE ROLE atrium_admin NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The owner hands function ownership to atrium_definer, which needs membership.
    IF NOT pg_has_role('atrium_owner', 'atrium_definer', 'MEMBER') THEN
        GRANT atrium_definer TO atrium_owner;
    END IF;
    IF shobj_description('atrium_definer'::regrole, 'pg_authid') IS NULL THEN
        COMMENT ON ROLE atrium_definer IS 'Owns Atrium''s SECURITY DEFINER functions that cross tenant boundaries on purpose; never logs in.';
    END IF;
    IF shobj_description('atrium_admin'::regrole, 'pg_authid') IS NULL THEN
        COMMENT ON ROLE atrium_admin IS 'Database administrators of Atrium: may run the functions of the atrium_admin schema.';
    END IF;
END
$$;
