-- The narrow paths across tenants. Each function is SECURITY DEFINER, owned by atrium_definer,
-- pins its search_path, takes the fewest arguments it can and returns the fewest columns it
-- can. EXECUTE is revoked from PUBLIC and granted to atrium_app only.
--
-- Why they exist: sign-in must find a user and their memberships before any tenant is chosen;
-- a refresh token, API key or invitation arrives before its tenant is known; and ending a
-- user's sessions everywhere spans tenants. Everything else the service does happens inside a
-- transaction scoped to one tenant, under the row-level security policies.

CREATE FUNCTION atrium.auth_find_login(p_email text)
    RETURNS TABLE (user_id uuid, password_hash text, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.user_id, u.password_hash, u.disabled_at IS NOT NULL
    FROM atrium.users u
    WHERE u.email_normalized = lower(p_email)
$$;
COMMENT ON FUNCTION atrium.auth_find_login(text) IS 'Sign-in: the user with this email (case-insensitive), their password hash and whether they are disabled.';

CREATE FUNCTION atrium.auth_user_tenants(p_user uuid)
    RETURNS TABLE (tenant_id uuid, name text, slug text, role text, joined_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.tenant_id, t.name, t.slug, m.role, m.created_at
    FROM atrium.memberships m
    JOIN atrium.tenants t ON t.tenant_id = m.tenant_id
    WHERE m.user_id = p_user
    ORDER BY t.name, t.tenant_id
$$;
COMMENT ON FUNCTION atrium.auth_user_tenants(uuid) IS 'The tenants a user belongs to, with their role in each (sign-in, switch, GET /v1/tenants).';

CREATE FUNCTION atrium.auth_user(p_user uuid)
    RETURNS TABLE (user_id uuid, email text, disabled boolean, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.user_id, u.email, u.disabled_at IS NOT NULL, u.created_at
    FROM atrium.users u WHERE u.user_id = p_user
$$;
COMMENT ON FUNCTION atrium.auth_user(uuid) IS 'A user''s profile (GET /v1/me).';

CREATE FUNCTION atrium.auth_create_user(p_user uuid, p_email text, p_password_hash text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO atrium.users (user_id, email, password_hash) VALUES (p_user, p_email, p_password_hash)
$$;
COMMENT ON FUNCTION atrium.auth_create_user(uuid, text, text) IS 'Sign-up or first invitation: creates a user (unique violation users_email_key when the email is taken).';

CREATE FUNCTION atrium.auth_set_password_hash(p_user uuid, p_password_hash text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE atrium.users SET password_hash = p_password_hash, updated_at = now() WHERE user_id = p_user
$$;
COMMENT ON FUNCTION atrium.auth_set_password_hash(uuid, text) IS 'Stores a new password hash: a password change, or a rehash with current parameters at sign-in.';

CREATE FUNCTION atrium.auth_tenant_members()
    RETURNS TABLE (user_id uuid, email text, role text, joined_at timestamptz, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.user_id, u.email, m.role, m.created_at, u.disabled_at IS NOT NULL
    FROM atrium.memberships m
    JOIN atrium.users u ON u.user_id = m.user_id
    WHERE m.tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid
    ORDER BY m.created_at, m.user_id
$$;
COMMENT ON FUNCTION atrium.auth_tenant_members() IS 'Members of the current transaction''s tenant (atrium.set_tenant) with their emails; nothing without a tenant.';

CREATE FUNCTION atrium.auth_refresh(p_token_hash text, p_new_hash text, p_grace_seconds integer)
    RETURNS TABLE (outcome text, tenant_id uuid, session_id uuid, user_id uuid, role text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    presented atrium.refresh_tokens;
    session atrium.sessions;
    latest timestamptz;
    member_role text;
BEGIN
    SELECT * INTO presented FROM atrium.refresh_tokens r WHERE r.token_hash = p_token_hash FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text;
        RETURN;
    END IF;
    -- Serialise refreshes of one session: concurrent ones see each other's rotation.
    SELECT * INTO session FROM atrium.sessions s
    WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id FOR UPDATE;
    IF session.revoked_at IS NOT NULL OR session.expires_at <= now() THEN
        RETURN QUERY SELECT 'invalid'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
        RETURN;
    END IF;
    IF presented.superseded_at IS NOT NULL THEN
        SELECT max(r.superseded_at) INTO latest FROM atrium.refresh_tokens r
        WHERE r.tenant_id = presented.tenant_id AND r.session_id = presented.session_id;
        IF presented.superseded_at < latest OR now() - presented.superseded_at > make_interval(secs => p_grace_seconds) THEN
            -- An old token came back: someone kept a copy. End the whole family.
            UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'refresh_token_reused'
            WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id;
            INSERT INTO atrium.auth_events (tenant_id, kind, user_id, subject_id)
            VALUES (presented.tenant_id, 'refresh_token_reused', session.user_id, presented.session_id);
            RETURN QUERY SELECT 'reused'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
            RETURN;
        END IF;
        -- Within the grace window the token just replaced counts as a retry of that refresh.
    END IF;
    SELECT m.role INTO member_role
    FROM atrium.memberships m JOIN atrium.users u ON u.user_id = m.user_id
    WHERE m.tenant_id = presented.tenant_id AND m.user_id = session.user_id AND u.disabled_at IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::text, presented.tenant_id, presented.session_id, session.user_id, NULL::text;
        RETURN;
    END IF;
    UPDATE atrium.refresh_tokens r SET superseded_at = clock_timestamp()
    WHERE r.tenant_id = presented.tenant_id AND r.session_id = presented.session_id AND r.superseded_at IS NULL;
    INSERT INTO atrium.refresh_tokens (tenant_id, token_hash, session_id)
    VALUES (presented.tenant_id, p_new_hash, presented.session_id);
    UPDATE atrium.sessions s SET last_refreshed_at = now()
    WHERE s.tenant_id = presented.tenant_id AND s.session_id = presented.session_id;
    RETURN QUERY SELECT 'rotated'::text, presented.tenant_id, presented.session_id, session.user_id, member_role;
END
$$;
COMMENT ON FUNCTION atrium.auth_refresh(text, text, integer) IS
    'Rotates the refresh token with hash p_token_hash to p_new_hash. Outcome rotated (with the member''s current role), invalid (unknown token, ended session, membership or user gone) or reused (an old token: the session is revoked). The token replaced last is accepted again within p_grace_seconds, as a client retrying the same refresh.';

CREATE FUNCTION atrium.auth_api_key(p_key_hash text)
    RETURNS TABLE (tenant_id uuid, key_id uuid, role text, name text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- last_used_at is kept to the minute: at most one write a minute per key.
    UPDATE atrium.api_keys k SET last_used_at = now()
    WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
      AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
    RETURN QUERY
        SELECT k.tenant_id, k.key_id, k.role, k.name FROM atrium.api_keys k
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());
END
$$;
COMMENT ON FUNCTION atrium.auth_api_key(text) IS 'Authenticates an API key by the hash of its secret: its tenant, id and role while it is neither revoked nor expired.';

CREATE FUNCTION atrium.auth_invitation(p_token_hash text)
    RETURNS TABLE (tenant_id uuid, invitation_id uuid, email text, role text, expires_at timestamptz,
                   accepted_at timestamptz, revoked_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.tenant_id, i.invitation_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at
    FROM atrium.invitations i WHERE i.token_hash = p_token_hash
$$;
COMMENT ON FUNCTION atrium.auth_invitation(text) IS 'Finds an invitation by the hash of its token, before its tenant is known.';

CREATE FUNCTION atrium.auth_revoked_sessions()
    RETURNS TABLE (session_id uuid, keep_until timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM atrium.revoked_sessions r WHERE r.keep_until < now() - interval '1 day';
    RETURN QUERY SELECT r.session_id, r.keep_until FROM atrium.revoked_sessions r WHERE r.keep_until > now();
END
$$;
COMMENT ON FUNCTION atrium.auth_revoked_sessions() IS 'Sessions ended recently enough that some access token of theirs may not have expired; a server loads them at start and after reconnecting its listener.';

CREATE FUNCTION atrium.auth_revoke_user_sessions(p_user uuid, p_reason text, p_except uuid)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ended integer;
BEGIN
    IF p_reason NOT IN ('logout_all', 'password_changed') THEN
        RAISE EXCEPTION 'unexpected reason %', p_reason USING ERRCODE = '22023';
    END IF;
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = p_reason
    WHERE s.user_id = p_user AND s.revoked_at IS NULL AND s.session_id IS DISTINCT FROM p_except;
    GET DIAGNOSTICS ended = ROW_COUNT;
    RETURN ended;
END
$$;
COMMENT ON FUNCTION atrium.auth_revoke_user_sessions(uuid, text, uuid) IS 'Ends every session of a user in every tenant, except p_except (logout-all; a password change keeps the session that made it).';

CREATE FUNCTION atrium.auth_login_throttle(p_account text, p_address text)
    RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    window_start constant timestamptz := now() - interval '1 hour';
    is_recognized boolean;
    pair_since timestamptz;
    budget integer;
    used integer;
    freed_at timestamptz;
    pair_count integer;
    pair_last timestamptz;
    address_count integer;
    address_last timestamptz;
    wait double precision := 0;
BEGIN
    SELECT a.last_success_at INTO pair_since FROM atrium.login_addresses a
    WHERE a.account = p_account AND a.client_address = p_address;
    is_recognized := coalesce(pair_since > now() - interval '30 days', false);
    budget := CASE WHEN is_recognized THEN 20 ELSE 80 END;

    -- 1. The account's hourly budget: 80 failures from unrecognised addresses, 20 from
    --    addresses that signed in to it within 30 days. At most 100 an hour, ever.
    SELECT count(*) INTO used FROM atrium.login_failures f
    WHERE f.account = p_account AND f.failed_at > window_start AND f.recognized = is_recognized;
    IF used >= budget THEN
        SELECT f.failed_at INTO freed_at FROM atrium.login_failures f
        WHERE f.account = p_account AND f.failed_at > window_start AND f.recognized = is_recognized
        ORDER BY f.failed_at OFFSET used - budget LIMIT 1;
        wait := greatest(wait, extract(epoch FROM freed_at + interval '1 hour' - now()));
    END IF;

    -- 2. This account from this address, since its last success: free for 3 failures, then
    --    waits of 1, 2, 4 … seconds, up to 15 minutes.
    SELECT count(*), max(f.failed_at) INTO pair_count, pair_last FROM atrium.login_failures f
    WHERE f.account = p_account AND f.client_address = p_address
      AND f.failed_at > greatest(window_start, coalesce(pair_since, window_start));
    IF pair_count >= 3 THEN
        wait := greatest(wait, extract(epoch FROM pair_last - now()) + least(2 ^ (pair_count - 3), 900));
    END IF;

    -- 3. This address across all accounts: free for 20 failures an hour, then the same growth.
    SELECT count(*), max(f.failed_at) INTO address_count, address_last FROM atrium.login_failures f
    WHERE f.client_address = p_address AND f.failed_at > window_start;
    IF address_count >= 20 THEN
        wait := greatest(wait, extract(epoch FROM address_last - now()) + least(2 ^ (address_count - 20), 900));
    END IF;

    RETURN ceil(greatest(wait, 0))::integer;
END
$$;
COMMENT ON FUNCTION atrium.auth_login_throttle(text, text) IS
    'Seconds a sign-in for account (hex SHA-256 of the lower-cased email) from address must wait; 0 to go ahead. Policy: per account at most 80 failures an hour from unrecognised addresses plus 20 from addresses that signed in to it within 30 days; per account and address growing waits after 3 failures; per address growing waits after 20 failures an hour over all accounts. No wait exceeds the hour, and none applies to an address that has not failed.';

CREATE FUNCTION atrium.auth_record_login(p_account text, p_address text, p_succeeded boolean)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_succeeded THEN
        INSERT INTO atrium.login_addresses (account, client_address, last_success_at)
        VALUES (p_account, p_address, clock_timestamp())
        ON CONFLICT (account, client_address) DO UPDATE SET last_success_at = excluded.last_success_at;
    ELSE
        INSERT INTO atrium.login_failures (account, client_address, recognized)
        VALUES (p_account, p_address, EXISTS (
            SELECT 1 FROM atrium.login_addresses a
            WHERE a.account = p_account AND a.client_address = p_address AND a.last_success_at > now() - interval '30 days'));
    END IF;
    -- Keep the tables small: a few expired rows go with every call.
    DELETE FROM atrium.login_failures f WHERE f.ctid IN (
        SELECT ctid FROM atrium.login_failures WHERE failed_at < now() - interval '1 hour' LIMIT 50);
    DELETE FROM atrium.login_addresses a WHERE a.ctid IN (
        SELECT ctid FROM atrium.login_addresses WHERE last_success_at < now() - interval '30 days' LIMIT 50);
END
$$;
COMMENT ON FUNCTION atrium.auth_record_login(text, text, boolean) IS 'Records a sign-in outcome for throttling: a failure counts against the account and address, a success makes the address recognised for 30 days.';

CREATE FUNCTION atrium.auth_record_account_event(p_kind text, p_user uuid, p_address text, p_request_id text, p_detail jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_kind NOT IN ('login_failed', 'login_throttled', 'logout_all', 'password_changed') THEN
        RAISE EXCEPTION 'not an account-level event: %', p_kind USING ERRCODE = '22023';
    END IF;
    INSERT INTO atrium.auth_events (tenant_id, kind, user_id, client_address, request_id, detail)
    VALUES ('00000000-0000-0000-0000-000000000000', p_kind, p_user, p_address, p_request_id, coalesce(p_detail, '{}'));
END
$$;
COMMENT ON FUNCTION atrium.auth_record_account_event(text, uuid, text, text, jsonb) IS 'Appends an account-level auth event (no tenant: the nil UUID) such as a failed sign-in.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.auth_find_login(text)', 'atrium.auth_user_tenants(uuid)', 'atrium.auth_user(uuid)',
        'atrium.auth_create_user(uuid, text, text)', 'atrium.auth_set_password_hash(uuid, text)',
        'atrium.auth_tenant_members()', 'atrium.auth_refresh(text, text, integer)', 'atrium.auth_api_key(text)',
        'atrium.auth_invitation(text)', 'atrium.auth_revoked_sessions()', 'atrium.auth_revoke_user_sessions(uuid, text, uuid)',
        'atrium.auth_login_throttle(text, text)', 'atrium.auth_record_login(text, text, boolean)',
        'atrium.auth_record_account_event(text, uuid, text, text, jsonb)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
