-- Two-factor sign-in with TOTP (RFC 6238) and single-use recovery codes.
--
-- A user's TOTP secret is stored sealed (AES-256-GCM under a key derived from the server's
-- token keys, bound to the user id), so the table alone does not give it away. The last time
-- step accepted is kept, so a code is accepted once (replay refused). Recovery codes are stored
-- as SHA-256, each good once. A sign-in whose password is right but whose user is enrolled gets a
-- challenge instead of a session: 256 random bits, stored hashed, five minutes, at most five
-- tries, single use. Like users, these tables are global and reached only through SECURITY
-- DEFINER functions.

CREATE TABLE atrium.user_mfa (
    user_id        uuid        NOT NULL,
    sealed_secret  text        NOT NULL,
    key_id         text        NOT NULL,
    confirmed_at   timestamptz,
    last_step      bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_mfa_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_mfa_user_fkey FOREIGN KEY (user_id) REFERENCES atrium.users (user_id) ON DELETE CASCADE
);
COMMENT ON TABLE atrium.user_mfa IS 'A user''s TOTP enrolment: pending until confirmed with a code, then required at sign-in. Reached only through atrium.auth_mfa_* functions.';
COMMENT ON COLUMN atrium.user_mfa.user_id IS 'The user.';
COMMENT ON COLUMN atrium.user_mfa.sealed_secret IS 'The TOTP secret sealed with AES-256-GCM (base64 of nonce, ciphertext, tag), bound to user_id.';
COMMENT ON COLUMN atrium.user_mfa.key_id IS 'kid of the token key the sealing key was derived from.';
COMMENT ON COLUMN atrium.user_mfa.confirmed_at IS 'When the first code was accepted (enrolment done); NULL while pending.';
COMMENT ON COLUMN atrium.user_mfa.last_step IS 'The last time step accepted; codes of it and earlier steps are refused (no replay).';
COMMENT ON COLUMN atrium.user_mfa.created_at IS 'When enrolment began.';
ALTER TABLE atrium.user_mfa ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.user_mfa FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.user_mfa TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.user_mfa IS 'Only atrium_definer (the MFA functions) reads or writes enrolments.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.user_mfa TO atrium_definer;

CREATE TABLE atrium.mfa_recovery_codes (
    user_id   uuid        NOT NULL,
    code_hash text        NOT NULL,
    used_at   timestamptz,
    CONSTRAINT mfa_recovery_codes_pkey PRIMARY KEY (user_id, code_hash),
    CONSTRAINT mfa_recovery_codes_user_fkey FOREIGN KEY (user_id) REFERENCES atrium.user_mfa (user_id) ON DELETE CASCADE,
    CONSTRAINT mfa_recovery_codes_hash_format CHECK (code_hash ~ '^[0-9a-f]{64}$')
);
COMMENT ON TABLE atrium.mfa_recovery_codes IS 'Ten single-use recovery codes per enrolment, by hash; shown to the user once.';
COMMENT ON COLUMN atrium.mfa_recovery_codes.user_id IS 'The user.';
COMMENT ON COLUMN atrium.mfa_recovery_codes.code_hash IS 'Hex SHA-256 of the code (upper case, without dashes).';
COMMENT ON COLUMN atrium.mfa_recovery_codes.used_at IS 'When it was used; NULL while unused.';
ALTER TABLE atrium.mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.mfa_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.mfa_recovery_codes TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.mfa_recovery_codes IS 'Only atrium_definer (the MFA functions) reads or writes recovery codes.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.mfa_recovery_codes TO atrium_definer;

CREATE TABLE atrium.mfa_challenges (
    challenge_hash text        NOT NULL,
    user_id        uuid        NOT NULL,
    sign_in_tenant uuid        NOT NULL,
    expires_at     timestamptz NOT NULL,
    attempts       integer     NOT NULL DEFAULT 0,
    used_at        timestamptz,
    CONSTRAINT mfa_challenges_pkey PRIMARY KEY (challenge_hash),
    CONSTRAINT mfa_challenges_user_fkey FOREIGN KEY (user_id) REFERENCES atrium.users (user_id) ON DELETE CASCADE,
    CONSTRAINT mfa_challenges_hash_format CHECK (challenge_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX mfa_challenges_expiry_idx ON atrium.mfa_challenges (expires_at);
COMMENT ON TABLE atrium.mfa_challenges IS 'Sign-ins waiting for their second factor: the password was right; the challenge names the tenant chosen. Five minutes, five tries, single use.';
COMMENT ON COLUMN atrium.mfa_challenges.challenge_hash IS 'Hex SHA-256 of the challenge token.';
COMMENT ON COLUMN atrium.mfa_challenges.user_id IS 'Who is signing in.';
COMMENT ON COLUMN atrium.mfa_challenges.sign_in_tenant IS 'The tenant the sign-in chose (its session starts there).';
COMMENT ON COLUMN atrium.mfa_challenges.expires_at IS 'When it stops working.';
COMMENT ON COLUMN atrium.mfa_challenges.attempts IS 'Codes tried against it; the fifth wrong one voids it.';
COMMENT ON COLUMN atrium.mfa_challenges.used_at IS 'When it completed a sign-in.';
ALTER TABLE atrium.mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.mfa_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.mfa_challenges TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.mfa_challenges IS 'Only atrium_definer (the MFA functions) reads or writes challenges.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.mfa_challenges TO atrium_definer;

ALTER TABLE atrium.auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE atrium.auth_events ADD CONSTRAINT auth_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_throttled', 'logout', 'logout_all',
    'password_changed', 'tenant_switched', 'refresh_token_reused', 'role_changed', 'member_removed',
    'api_key_created', 'api_key_revoked', 'invitation_created', 'invitation_revoked',
    'invitation_accepted', 'tenant_created', 'tenant_deleted', 'user_disabled', 'user_enabled',
    'sessions_revoked', 'webhook_created', 'webhook_updated', 'webhook_deleted', 'webhook_secret_rotated',
    'email_verification_sent', 'email_verified', 'password_reset_requested', 'password_reset',
    'email_change_requested', 'email_changed',
    'mfa_enrolled', 'mfa_disabled', 'mfa_challenged', 'mfa_failed', 'mfa_recovery_code_used', 'mfa_reset'
));

CREATE FUNCTION atrium.auth_mfa_state(p_user uuid)
    RETURNS TABLE (sealed_secret text, key_id text, confirmed boolean, last_step bigint, recovery_codes_left integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.sealed_secret, m.key_id, m.confirmed_at IS NOT NULL, m.last_step,
           (SELECT count(*)::integer FROM atrium.mfa_recovery_codes r WHERE r.user_id = m.user_id AND r.used_at IS NULL)
    FROM atrium.user_mfa m WHERE m.user_id = p_user
$$;
COMMENT ON FUNCTION atrium.auth_mfa_state(uuid) IS 'A user''s enrolment (sealed secret, whether confirmed, last step accepted, unused recovery codes); no row when not enrolled.';

CREATE FUNCTION atrium.auth_mfa_begin(p_user uuid, p_sealed_secret text, p_key_id text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A pending enrolment is replaced; a confirmed one stays (disable it first).
    INSERT INTO atrium.user_mfa AS m (user_id, sealed_secret, key_id) VALUES (p_user, p_sealed_secret, p_key_id)
    ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, key_id = excluded.key_id, created_at = now(), last_step = 0
    WHERE m.confirmed_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_begin(uuid, text, text) IS 'Starts (or restarts) a pending TOTP enrolment; false when the user already has a confirmed one.';

CREATE FUNCTION atrium.auth_mfa_accept_step(p_user uuid, p_step bigint)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.user_mfa m SET last_step = p_step WHERE m.user_id = p_user AND m.last_step < p_step;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_accept_step(uuid, bigint) IS 'Records a code''s time step as used; false if that step or a later one was used already (a replay).';

CREATE FUNCTION atrium.auth_mfa_confirm(p_user uuid, p_step bigint, p_recovery_hashes text[], p_address text, p_request_id text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.user_mfa m SET confirmed_at = now(), last_step = p_step
    WHERE m.user_id = p_user AND m.confirmed_at IS NULL AND m.last_step < p_step;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO atrium.mfa_recovery_codes (user_id, code_hash) SELECT p_user, h FROM unnest(p_recovery_hashes) AS h;
    PERFORM atrium.auth_account_event('mfa_enrolled', NULL, p_user, p_address, p_request_id, '{}');
    RETURN true;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_confirm(uuid, bigint, text[], text, text) IS 'Completes a pending enrolment with the step of the first accepted code and the hashes of its recovery codes.';

CREATE FUNCTION atrium.auth_mfa_reseal(p_user uuid, p_old_key_id text, p_sealed_secret text, p_key_id text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE atrium.user_mfa SET sealed_secret = p_sealed_secret, key_id = p_key_id WHERE user_id = p_user AND key_id = p_old_key_id
$$;
COMMENT ON FUNCTION atrium.auth_mfa_reseal(uuid, text, text, text) IS 'Re-seals a secret under the current signing key (after a key rotation), if it is still sealed under the old one.';

CREATE FUNCTION atrium.auth_mfa_use_recovery_code(p_user uuid, p_code_hash text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.mfa_recovery_codes r SET used_at = now()
    WHERE r.user_id = p_user AND r.code_hash = p_code_hash AND r.used_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_use_recovery_code(uuid, text) IS 'Uses up a recovery code; false if it is not one of the user''s unused codes.';

CREATE FUNCTION atrium.auth_mfa_disable(p_user uuid, p_kind text, p_address text, p_request_id text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_kind NOT IN ('mfa_disabled', 'mfa_reset') THEN
        RAISE EXCEPTION 'not an MFA removal: %', p_kind USING ERRCODE = '22023';
    END IF;
    DELETE FROM atrium.user_mfa m WHERE m.user_id = p_user;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM atrium.mfa_challenges c WHERE c.user_id = p_user;
    PERFORM atrium.auth_account_event(p_kind, NULL, p_user, p_address, p_request_id, '{}');
    RETURN true;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_disable(uuid, text, text, text) IS 'Removes a user''s enrolment, recovery codes and open challenges (by the user: mfa_disabled; by support: mfa_reset).';

CREATE FUNCTION atrium.auth_mfa_challenge(p_user uuid, p_tenant uuid, p_challenge_hash text, p_lifetime interval, p_address text, p_request_id text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM atrium.mfa_challenges c WHERE c.challenge_hash IN (
        SELECT o.challenge_hash FROM atrium.mfa_challenges o WHERE o.expires_at < now() - interval '1 hour' LIMIT 100
    );
    INSERT INTO atrium.mfa_challenges (challenge_hash, user_id, sign_in_tenant, expires_at)
    VALUES (p_challenge_hash, p_user, p_tenant, now() + p_lifetime);
    PERFORM atrium.auth_account_event('mfa_challenged', NULL, p_user, p_address, p_request_id, '{}');
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_challenge(uuid, uuid, text, interval, text, text) IS 'Opens a second-factor challenge for a sign-in whose password was right.';

CREATE FUNCTION atrium.auth_mfa_find_challenge(p_challenge_hash text)
    RETURNS TABLE (user_id uuid, tenant_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every try counts before the code is even looked at; the fifth voids the challenge.
    RETURN QUERY
    UPDATE atrium.mfa_challenges c SET attempts = c.attempts + 1
    WHERE c.challenge_hash = p_challenge_hash AND c.used_at IS NULL AND c.expires_at > now() AND c.attempts < 5
    RETURNING c.user_id, c.sign_in_tenant;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_find_challenge(text) IS 'The user and tenant of a live challenge, counting the try (at most five); nothing when unknown, used, expired or tried out.';

CREATE FUNCTION atrium.auth_mfa_complete_challenge(p_challenge_hash text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.mfa_challenges c SET used_at = now()
    WHERE c.challenge_hash = p_challenge_hash AND c.used_at IS NULL AND c.expires_at > now();
    IF NOT FOUND THEN
        -- Used by a concurrent request: this one starts no session.
        RAISE EXCEPTION 'the challenge was used meanwhile' USING ERRCODE = 'AT012';
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.auth_mfa_complete_challenge(text) IS 'Uses up a challenge in the transaction that starts the session; fails (AT012) if it was used meanwhile.';

CREATE FUNCTION atrium.auth_mfa_failed(p_user uuid, p_address text, p_request_id text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT atrium.auth_account_event('mfa_failed', NULL, p_user, p_address, p_request_id, '{}');
$$;
COMMENT ON FUNCTION atrium.auth_mfa_failed(uuid, text, text) IS 'Records a wrong second factor.';

CREATE FUNCTION atrium.auth_mfa_recovery_used(p_user uuid, p_address text, p_request_id text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT atrium.auth_account_event('mfa_recovery_code_used', NULL, p_user, p_address, p_request_id, '{}');
$$;
COMMENT ON FUNCTION atrium.auth_mfa_recovery_used(uuid, text, text) IS 'Records that a recovery code was used.';

CREATE FUNCTION atrium_admin.reset_mfa(p_email text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target uuid;
BEGIN
    SELECT u.user_id INTO target FROM atrium.users u WHERE u.email_normalized = lower(p_email);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user with email %', p_email USING ERRCODE = 'no_data_found';
    END IF;
    RETURN atrium.auth_mfa_disable(target, 'mfa_reset', NULL, 'psql:' || session_user);
END
$$;
COMMENT ON FUNCTION atrium_admin.reset_mfa(text) IS 'Support: removes a user''s two-factor enrolment and recovery codes (they sign in with the password alone and can enrol again); audited as mfa_reset with the administrator''s role.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.auth_mfa_state(uuid)', 'atrium.auth_mfa_begin(uuid, text, text)', 'atrium.auth_mfa_accept_step(uuid, bigint)',
        'atrium.auth_mfa_confirm(uuid, bigint, text[], text, text)', 'atrium.auth_mfa_use_recovery_code(uuid, text)',
        'atrium.auth_mfa_disable(uuid, text, text, text)', 'atrium.auth_mfa_challenge(uuid, uuid, text, interval, text, text)',
        'atrium.auth_mfa_find_challenge(text)', 'atrium.auth_mfa_complete_challenge(text)', 'atrium.auth_mfa_failed(uuid, text, text)',
        'atrium.auth_mfa_recovery_used(uuid, text, text)', 'atrium.auth_mfa_reseal(uuid, text, text, text)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
    ALTER FUNCTION atrium_admin.reset_mfa(text) OWNER TO atrium_definer;
    REVOKE ALL ON FUNCTION atrium_admin.reset_mfa(text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION atrium_admin.reset_mfa(text) TO atrium_admin;
END
$$;
