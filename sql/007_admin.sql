-- Administration from psql. Grant the group role to an administrator's login:
--
--     GRANT atrium_admin TO alice;
--
-- then, in psql:
--
--     SELECT * FROM atrium_admin.create_tenant('Acme', 'acme', 'ceo@acme.example');
--     SELECT atrium_admin.disable_user('mallory@example.com');
--     SELECT atrium_admin.enable_user('mallory@example.com');
--     SELECT atrium_admin.revoke_tenant_sessions('acme');
--     SELECT * FROM atrium_admin.tenant_overview;
--     SELECT * FROM atrium_admin.user_overview;
--
-- Every change is recorded in atrium.auth_events and ends sessions through the same triggers
-- the service relies on, so running servers learn of it at once (NOTIFY atrium_revocations).

CREATE SCHEMA atrium_admin AUTHORIZATION atrium_owner;
COMMENT ON SCHEMA atrium_admin IS 'Functions and views for Atrium administrators (role atrium_admin): create tenants, disable users, end sessions, overviews.';
GRANT USAGE ON SCHEMA atrium_admin TO atrium_admin, atrium_definer;
GRANT CREATE ON SCHEMA atrium_admin TO atrium_definer;
GRANT INSERT ON atrium.tenants TO atrium_definer;

CREATE FUNCTION atrium_admin.create_tenant(p_name text, p_slug text, p_owner_email text, p_valid_for interval DEFAULT interval '7 days')
    RETURNS TABLE (tenant_id uuid, invitation_id uuid, invitation_token text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_tenant constant uuid := gen_random_uuid();
    new_invitation constant uuid := gen_random_uuid();
    -- 244 random bits (two version-4 UUIDs) from PostgreSQL's strong random source.
    token constant text := 'inv_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
BEGIN
    INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES (new_tenant, p_name, p_slug);
    INSERT INTO atrium.invitations (tenant_id, invitation_id, email, role, token_hash, expires_at)
    VALUES (new_tenant, new_invitation, p_owner_email, 'owner',
            encode(sha256(convert_to(token, 'UTF8')), 'hex'), now() + p_valid_for);
    INSERT INTO atrium.auth_events (tenant_id, kind, subject_id, detail)
    VALUES (new_tenant, 'tenant_created', new_invitation,
            jsonb_build_object('by', session_user, 'via', 'psql', 'owner_email', p_owner_email));
    RETURN QUERY SELECT new_tenant, new_invitation, token;
END
$$;
COMMENT ON FUNCTION atrium_admin.create_tenant(text, text, text, interval) IS
    'Creates a tenant and an owner invitation for p_owner_email; returns the invitation token (shown only now) to send to them. They accept it with POST /v1/invitations/accept.';

CREATE FUNCTION atrium_admin.disable_user(p_email text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target uuid;
    live integer;
BEGIN
    SELECT u.user_id INTO target FROM atrium.users u WHERE u.email_normalized = lower(p_email) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user with email %', p_email USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO live FROM atrium.sessions s WHERE s.user_id = target AND s.revoked_at IS NULL;
    UPDATE atrium.users u SET disabled_at = now(), updated_at = now() WHERE u.user_id = target AND u.disabled_at IS NULL;
    IF FOUND THEN
        INSERT INTO atrium.auth_events (tenant_id, kind, subject_id, detail)
        VALUES ('00000000-0000-0000-0000-000000000000', 'user_disabled', target, jsonb_build_object('by', session_user, 'via', 'psql'));
    END IF;
    RETURN live;
END
$$;
COMMENT ON FUNCTION atrium_admin.disable_user(text) IS 'Disables a user: they can no longer sign in and every session of theirs ends on every server. Returns how many sessions ended.';

CREATE FUNCTION atrium_admin.enable_user(p_email text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target uuid;
BEGIN
    UPDATE atrium.users u SET disabled_at = NULL, updated_at = now()
    WHERE u.email_normalized = lower(p_email) AND u.disabled_at IS NOT NULL
    RETURNING u.user_id INTO target;
    IF target IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO atrium.auth_events (tenant_id, kind, subject_id, detail)
    VALUES ('00000000-0000-0000-0000-000000000000', 'user_enabled', target, jsonb_build_object('by', session_user, 'via', 'psql'));
    RETURN true;
END
$$;
COMMENT ON FUNCTION atrium_admin.enable_user(text) IS 'Lets a disabled user sign in again (their old sessions stay ended). Returns false if they were not disabled.';

CREATE FUNCTION atrium_admin.revoke_tenant_sessions(p_tenant text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target uuid;
    ended integer;
BEGIN
    SELECT t.tenant_id INTO target FROM atrium.tenants t
    WHERE t.slug = p_tenant OR t.tenant_id::text = p_tenant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tenant with slug or id %', p_tenant USING ERRCODE = 'P0002';
    END IF;
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'admin'
    WHERE s.tenant_id = target AND s.revoked_at IS NULL;
    GET DIAGNOSTICS ended = ROW_COUNT;
    INSERT INTO atrium.auth_events (tenant_id, kind, detail)
    VALUES (target, 'sessions_revoked', jsonb_build_object('by', session_user, 'via', 'psql', 'sessions', ended));
    RETURN ended;
END
$$;
COMMENT ON FUNCTION atrium_admin.revoke_tenant_sessions(text) IS 'Ends every session of a tenant (by slug or id) on every server; members must sign in again. Returns how many ended.';

CREATE VIEW atrium_admin.tenant_overview AS
    SELECT t.tenant_id, t.name, t.slug, t.created_at,
           (SELECT count(*) FROM atrium.memberships m WHERE m.tenant_id = t.tenant_id) AS members,
           (SELECT count(*) FROM atrium.memberships m WHERE m.tenant_id = t.tenant_id AND m.role = 'owner') AS owners,
           (SELECT count(*) FROM atrium.sessions s
             WHERE s.tenant_id = t.tenant_id AND s.revoked_at IS NULL AND s.expires_at > now()) AS live_sessions,
           (SELECT count(*) FROM atrium.api_keys k
             WHERE k.tenant_id = t.tenant_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS api_keys,
           (SELECT count(*) FROM atrium.invitations i
             WHERE i.tenant_id = t.tenant_id AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()) AS pending_invitations
    FROM atrium.tenants t;
COMMENT ON VIEW atrium_admin.tenant_overview IS 'Every tenant with its member, owner, live session, API key and pending invitation counts.';
COMMENT ON COLUMN atrium_admin.tenant_overview.tenant_id IS 'Tenant id.';
COMMENT ON COLUMN atrium_admin.tenant_overview.name IS 'Display name.';
COMMENT ON COLUMN atrium_admin.tenant_overview.slug IS 'Unique handle.';
COMMENT ON COLUMN atrium_admin.tenant_overview.created_at IS 'When it was created.';
COMMENT ON COLUMN atrium_admin.tenant_overview.members IS 'Members of any role.';
COMMENT ON COLUMN atrium_admin.tenant_overview.owners IS 'Members with the owner role.';
COMMENT ON COLUMN atrium_admin.tenant_overview.live_sessions IS 'Sessions neither revoked nor expired.';
COMMENT ON COLUMN atrium_admin.tenant_overview.api_keys IS 'Usable API keys.';
COMMENT ON COLUMN atrium_admin.tenant_overview.pending_invitations IS 'Invitations that can still be accepted.';

CREATE VIEW atrium_admin.user_overview AS
    SELECT u.user_id, u.email, u.created_at, u.disabled_at,
           (SELECT count(*) FROM atrium.memberships m WHERE m.user_id = u.user_id) AS tenants,
           (SELECT count(*) FROM atrium.sessions s
             WHERE s.user_id = u.user_id AND s.revoked_at IS NULL AND s.expires_at > now()) AS live_sessions
    FROM atrium.users u;
COMMENT ON VIEW atrium_admin.user_overview IS 'Every user with how many tenants they belong to and their live sessions (password hashes are not shown).';
COMMENT ON COLUMN atrium_admin.user_overview.user_id IS 'User id.';
COMMENT ON COLUMN atrium_admin.user_overview.email IS 'Email.';
COMMENT ON COLUMN atrium_admin.user_overview.created_at IS 'When they signed up.';
COMMENT ON COLUMN atrium_admin.user_overview.disabled_at IS 'When they were disabled, if they are.';
COMMENT ON COLUMN atrium_admin.user_overview.tenants IS 'Tenants they belong to.';
COMMENT ON COLUMN atrium_admin.user_overview.live_sessions IS 'Their sessions neither revoked nor expired.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium_admin.create_tenant(text, text, text, interval)', 'atrium_admin.disable_user(text)',
        'atrium_admin.enable_user(text)', 'atrium_admin.revoke_tenant_sessions(text)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_admin', signature);
    END LOOP;
END
$$;
-- The views read as their owner, atrium_definer, whose policies see every tenant.
ALTER VIEW atrium_admin.tenant_overview OWNER TO atrium_definer;
ALTER VIEW atrium_admin.user_overview OWNER TO atrium_definer;
GRANT SELECT ON atrium_admin.tenant_overview, atrium_admin.user_overview TO atrium_admin;
