-- Account flows by mail: email verification, password reset and email change.
--
-- A flow's token is 256 random bits, stored only as its SHA-256 (atrium.account_tokens), with a
-- short code for typing on a phone, stored hashed with the token's hash as salt and good for 5
-- tries. Its mail goes through the outbox of migration 013, in the same transaction. The table is
-- global (users are) and reached by the service only through the SECURITY DEFINER functions below.

ALTER TABLE atrium.users ADD COLUMN email_verified_at timestamptz;
ALTER TABLE atrium.users ADD COLUMN password_changed_at timestamptz;
COMMENT ON COLUMN atrium.users.email_verified_at IS 'When the user proved they receive mail at email (a verification or email-change link or code); NULL until then.';
COMMENT ON COLUMN atrium.users.password_changed_at IS 'When the password was last changed or reset (not when its hash was upgraded); reset tokens issued before it are void.';

ALTER TABLE atrium.tenants ADD COLUMN require_verified_email boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN atrium.tenants.require_verified_email IS 'Members must have verified their email to sign in to (or switch to) this tenant.';

-- Flow tokens -----------------------------------------------------------------------------------

CREATE TABLE atrium.account_tokens (
    token_hash    text        NOT NULL,
    user_id       uuid        NOT NULL,
    purpose       text        NOT NULL,
    email         text        NOT NULL,
    code_hash     text        NOT NULL,
    code_attempts integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    CONSTRAINT account_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT account_tokens_user_fkey FOREIGN KEY (user_id) REFERENCES atrium.users (user_id) ON DELETE CASCADE,
    CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('verify_email', 'password_reset', 'email_change')),
    CONSTRAINT account_tokens_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$' AND code_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX account_tokens_user_idx ON atrium.account_tokens (user_id, purpose, created_at);
CREATE INDEX account_tokens_email_idx ON atrium.account_tokens (lower(email), purpose) WHERE used_at IS NULL;
CREATE INDEX account_tokens_expiry_idx ON atrium.account_tokens (expires_at);
COMMENT ON TABLE atrium.account_tokens IS 'Single-use tokens of the mail flows (verify_email, password_reset, email_change), by hash; a newer token of a user and purpose voids the older ones. Reached only through atrium.auth_* functions.';
COMMENT ON COLUMN atrium.account_tokens.token_hash IS 'Hex SHA-256 of the token (256 random bits); the token itself is never stored.';
COMMENT ON COLUMN atrium.account_tokens.user_id IS 'Whose account.';
COMMENT ON COLUMN atrium.account_tokens.purpose IS 'verify_email, password_reset or email_change.';
COMMENT ON COLUMN atrium.account_tokens.email IS 'The address the mail went to: the user''s email (verification, reset), or the new address (email change). Void if the user''s email changed since (verification, reset).';
COMMENT ON COLUMN atrium.account_tokens.code_hash IS 'Hex SHA-256 of token_hash || '':'' || the short code (upper case).';
COMMENT ON COLUMN atrium.account_tokens.code_attempts IS 'Wrong codes tried against this token; the fifth voids it.';
COMMENT ON COLUMN atrium.account_tokens.created_at IS 'When it was issued.';
COMMENT ON COLUMN atrium.account_tokens.expires_at IS 'When it stops working (set to the time it was superseded, when a newer one was issued).';
COMMENT ON COLUMN atrium.account_tokens.used_at IS 'When it was redeemed; NULL while unused.';
ALTER TABLE atrium.account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.account_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.account_tokens TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.account_tokens IS 'Only atrium_definer (the flow functions) reads or writes flow tokens.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.account_tokens TO atrium_definer;
COMMENT ON COLUMN atrium.sessions.revoked_reason IS 'Why: logout, logout_all, password_changed, password_reset, role_changed, user_disabled, refresh_token_reused, admin.';

ALTER TABLE atrium.auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE atrium.auth_events ADD CONSTRAINT auth_events_kind_check CHECK (kind IN (
    'signup', 'login_succeeded', 'login_failed', 'login_throttled', 'logout', 'logout_all',
    'password_changed', 'tenant_switched', 'refresh_token_reused', 'role_changed', 'member_removed',
    'api_key_created', 'api_key_revoked', 'invitation_created', 'invitation_revoked',
    'invitation_accepted', 'tenant_created', 'tenant_deleted', 'user_disabled', 'user_enabled',
    'sessions_revoked', 'webhook_created', 'webhook_updated', 'webhook_deleted', 'webhook_secret_rotated',
    'email_verification_sent', 'email_verified', 'password_reset_requested', 'password_reset',
    'email_change_requested', 'email_changed'
));

-- Flows -----------------------------------------------------------------------------------------

CREATE FUNCTION atrium.auth_account_event(p_kind text, p_tenant uuid, p_user uuid, p_address text, p_request_id text, p_detail jsonb)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO atrium.auth_events (tenant_id, kind, user_id, client_address, request_id, detail)
    VALUES (coalesce(p_tenant, '00000000-0000-0000-0000-000000000000'), p_kind, p_user, p_address, p_request_id, coalesce(p_detail, '{}'));
$$;
COMMENT ON FUNCTION atrium.auth_account_event(text, uuid, uuid, text, text, jsonb) IS 'Internal to the flow functions: appends an auth event of a user (nil tenant unless one is named).';
REVOKE ALL ON FUNCTION atrium.auth_account_event(text, uuid, uuid, text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION atrium.auth_issue_account_token(
    p_user uuid, p_purpose text, p_email text, p_token_hash text, p_code_hash text, p_lifetime interval,
    p_spacing interval, p_per_hour integer
) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wait integer := 0;
    last_issued timestamptz;
    issued_in_hour integer;
    oldest_in_hour timestamptz;
BEGIN
    -- One issuer per user at a time, so two requests cannot both pass the limits.
    PERFORM 1 FROM atrium.users u WHERE u.user_id = p_user FOR UPDATE;
    SELECT max(t.created_at), count(*), min(t.created_at) INTO last_issued, issued_in_hour, oldest_in_hour
    FROM atrium.account_tokens t
    WHERE t.user_id = p_user AND t.purpose = p_purpose AND t.created_at > now() - interval '1 hour';
    IF last_issued > clock_timestamp() - p_spacing THEN
        wait := ceil(extract(epoch FROM last_issued + p_spacing - clock_timestamp()))::integer;
    ELSIF issued_in_hour >= p_per_hour THEN
        wait := ceil(extract(epoch FROM oldest_in_hour + interval '1 hour' - clock_timestamp()))::integer;
    END IF;
    IF wait > 0 THEN
        -- The whole transaction goes, the mail it was to send with it.
        RAISE EXCEPTION 'too many mails of this kind; retry in % seconds', wait USING ERRCODE = 'AT010', DETAIL = wait::text;
    END IF;
    UPDATE atrium.account_tokens t SET expires_at = least(t.expires_at, clock_timestamp())
    WHERE t.user_id = p_user AND t.purpose = p_purpose AND t.used_at IS NULL AND t.expires_at > clock_timestamp();
    -- Keep the table small: a few tokens a day past expiry go with every issue.
    DELETE FROM atrium.account_tokens t WHERE t.token_hash IN (
        SELECT a.token_hash FROM atrium.account_tokens a WHERE a.expires_at < now() - interval '1 day' LIMIT 20
    );
    INSERT INTO atrium.account_tokens (token_hash, user_id, purpose, email, code_hash, expires_at)
    VALUES (p_token_hash, p_user, p_purpose, p_email, p_code_hash, clock_timestamp() + p_lifetime);
END
$$;
COMMENT ON FUNCTION atrium.auth_issue_account_token(uuid, text, text, text, text, interval, interval, integer) IS
    'Issues a flow token (voiding the user''s older ones of that purpose); fails with AT010 (detail: seconds to wait) when one was issued within p_spacing or p_per_hour within the hour.';

CREATE FUNCTION atrium.auth_find_account_token(p_purpose text, p_token_hash text, p_email text, p_code text)
    RETURNS TABLE (token_hash text, user_id uuid, email text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit atrium.account_tokens;
    owner atrium.users;
BEGIN
    IF p_token_hash IS NOT NULL THEN
        SELECT * INTO hit FROM atrium.account_tokens t
        WHERE t.token_hash = p_token_hash AND t.purpose = p_purpose FOR UPDATE;
    ELSE
        -- A code names no token: the newest live one sent to that address for this purpose.
        SELECT * INTO hit FROM atrium.account_tokens t
        WHERE lower(t.email) = lower(p_email) AND t.purpose = p_purpose AND t.used_at IS NULL AND t.expires_at > now()
        ORDER BY t.created_at DESC LIMIT 1 FOR UPDATE;
        IF FOUND AND hit.code_hash <> encode(sha256(convert_to(hit.token_hash || ':' || upper(p_code), 'UTF8')), 'hex') THEN
            -- A wrong code counts; the fifth voids the token.
            UPDATE atrium.account_tokens t SET code_attempts = t.code_attempts + 1,
                expires_at = CASE WHEN t.code_attempts + 1 >= 5 THEN least(t.expires_at, now()) ELSE t.expires_at END
            WHERE t.token_hash = hit.token_hash;
            RETURN;
        END IF;
    END IF;
    IF NOT FOUND OR hit.used_at IS NOT NULL OR hit.expires_at <= now() THEN
        RETURN;
    END IF;
    SELECT * INTO owner FROM atrium.users u WHERE u.user_id = hit.user_id;
    IF NOT FOUND OR owner.disabled_at IS NOT NULL THEN
        RETURN;
    END IF;
    -- Verification and reset speak for the address the account has now; a reset also ends
    -- with any later password change.
    IF p_purpose <> 'email_change' AND lower(owner.email) <> lower(hit.email) THEN
        RETURN;
    END IF;
    IF p_purpose = 'password_reset' AND owner.password_changed_at >= hit.created_at THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT hit.token_hash, hit.user_id, hit.email;
END
$$;
COMMENT ON FUNCTION atrium.auth_find_account_token(text, text, text, text) IS
    'The live flow token with this hash, or the newest one sent to p_email whose code is p_code (a wrong code counts against it; five void it). Nothing when it is unknown, used, expired, superseded or no longer speaks for the account. Locks it until commit.';

CREATE FUNCTION atrium.auth_use_account_token(p_purpose text, p_token_hash text)
    RETURNS TABLE (user_id uuid, email text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
BEGIN
    SELECT * INTO hit FROM atrium.auth_find_account_token(p_purpose, p_token_hash, NULL, NULL);
    IF hit.user_id IS NULL THEN
        RETURN;
    END IF;
    UPDATE atrium.account_tokens t SET used_at = now() WHERE t.token_hash = hit.token_hash;
    RETURN QUERY SELECT hit.user_id, hit.email;
END
$$;
COMMENT ON FUNCTION atrium.auth_use_account_token(text, text) IS 'Internal to the redeeming functions: uses up the live token of this purpose and hash (see atrium.auth_find_account_token); its user and address, or nothing.';
REVOKE ALL ON FUNCTION atrium.auth_use_account_token(text, text) FROM PUBLIC;

CREATE FUNCTION atrium.auth_verify_email(p_token_hash text, p_address text, p_request_id text)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
BEGIN
    SELECT * INTO hit FROM atrium.auth_use_account_token('verify_email', p_token_hash);
    IF hit.user_id IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE atrium.users u SET email_verified_at = coalesce(u.email_verified_at, now()), updated_at = now() WHERE u.user_id = hit.user_id;
    PERFORM atrium.auth_account_event('email_verified', NULL, hit.user_id, p_address, p_request_id, jsonb_build_object('email', hit.email));
    RETURN hit.user_id;
END
$$;
COMMENT ON FUNCTION atrium.auth_verify_email(text, text, text) IS 'Redeems a verification token: marks the email verified; returns the user, or NULL.';

CREATE FUNCTION atrium.auth_reset_password(p_token_hash text, p_password_hash text, p_address text, p_request_id text)
    RETURNS SETOF uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
BEGIN
    SELECT * INTO hit FROM atrium.auth_use_account_token('password_reset', p_token_hash);
    IF hit.user_id IS NULL THEN
        RAISE EXCEPTION 'the reset token is not valid' USING ERRCODE = 'AT013';
    END IF;
    -- The mail reached the address, so it is verified too.
    UPDATE atrium.users u SET password_hash = p_password_hash, password_changed_at = now(), updated_at = now(),
        email_verified_at = coalesce(u.email_verified_at, now())
    WHERE u.user_id = hit.user_id;
    PERFORM atrium.auth_account_event('password_reset', NULL, hit.user_id, p_address, p_request_id, '{}');
    RETURN QUERY
    UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'password_reset'
    WHERE s.user_id = hit.user_id AND s.revoked_at IS NULL
    RETURNING s.session_id;
END
$$;
COMMENT ON FUNCTION atrium.auth_reset_password(text, text, text, text) IS 'Redeems a reset token: sets the new password hash and ends every session of the user (other servers learn it through the revocation trigger); returns the sessions ended. Fails (AT013) when the token is not valid.';

CREATE FUNCTION atrium.auth_change_email(p_token_hash text, p_address text, p_request_id text)
    RETURNS TABLE (user_id uuid, old_email text, new_email text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
    previous text;
BEGIN
    SELECT * INTO hit FROM atrium.auth_use_account_token('email_change', p_token_hash);
    IF hit.user_id IS NULL THEN
        RETURN;
    END IF;
    SELECT u.email INTO previous FROM atrium.users u WHERE u.user_id = hit.user_id FOR UPDATE;
    -- users_email_key refuses an address taken meanwhile (unique_violation).
    UPDATE atrium.users u SET email = hit.email, email_verified_at = now(), updated_at = now() WHERE u.user_id = hit.user_id;
    -- Tokens sent to the old address speak for it no more.
    UPDATE atrium.account_tokens t SET expires_at = least(t.expires_at, now())
    WHERE t.user_id = hit.user_id AND t.purpose <> 'email_change' AND t.used_at IS NULL;
    PERFORM atrium.auth_account_event('email_changed', NULL, hit.user_id, p_address, p_request_id,
        jsonb_build_object('old', previous, 'new', hit.email));
    RETURN QUERY SELECT hit.user_id, previous, hit.email;
END
$$;
COMMENT ON FUNCTION atrium.auth_change_email(text, text, text) IS 'Redeems an email-change token: the account takes the new (now verified) address; returns the user with old and new address, or nothing.';

CREATE FUNCTION atrium.auth_change_password(p_user uuid, p_password_hash text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE atrium.users SET password_hash = p_password_hash, password_changed_at = now(), updated_at = now() WHERE user_id = p_user
$$;
COMMENT ON FUNCTION atrium.auth_change_password(uuid, text) IS 'A password change by the user: stores the new hash and voids reset tokens issued before it.';

CREATE FUNCTION atrium.auth_mail_profile(p_user uuid)
    RETURNS TABLE (email text, email_verified boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.email, u.email_verified_at IS NOT NULL FROM atrium.users u WHERE u.user_id = p_user AND u.disabled_at IS NULL
$$;
COMMENT ON FUNCTION atrium.auth_mail_profile(uuid) IS 'A user''s address and whether it is verified (NULL row for a disabled or unknown user).';

CREATE FUNCTION atrium.auth_email_taken(p_email text)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM atrium.users u WHERE u.email_normalized = lower(p_email))
$$;
COMMENT ON FUNCTION atrium.auth_email_taken(text) IS 'Whether an account has this address (for an email change by a signed-in user who gave their password).';

CREATE FUNCTION atrium.auth_record_flow_event(p_kind text, p_tenant uuid, p_user uuid, p_address text, p_request_id text, p_detail jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_kind NOT IN ('email_verification_sent', 'password_reset_requested', 'email_change_requested') THEN
        RAISE EXCEPTION 'not a flow request event: %', p_kind USING ERRCODE = '22023';
    END IF;
    PERFORM atrium.auth_account_event(p_kind, p_tenant, p_user, p_address, p_request_id, p_detail);
END
$$;
COMMENT ON FUNCTION atrium.auth_record_flow_event(text, uuid, uuid, text, text, jsonb) IS 'Appends the auth event of a flow request (a verification sent, a reset or email change requested).';

CREATE FUNCTION atrium.auth_user_verification(p_user uuid)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.email_verified_at IS NOT NULL FROM atrium.users u WHERE u.user_id = p_user
$$;
COMMENT ON FUNCTION atrium.auth_user_verification(uuid) IS 'Whether the user has verified their email.';

CREATE FUNCTION atrium.auth_require_verified_email(p_user uuid, p_tenant uuid)
    RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM atrium.tenants t, atrium.users u
        WHERE t.tenant_id = p_tenant AND t.require_verified_email AND u.user_id = p_user AND u.email_verified_at IS NULL
    ) THEN
        RAISE EXCEPTION 'this tenant requires a verified email' USING ERRCODE = 'AT011';
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.auth_require_verified_email(uuid, uuid) IS 'In the transaction that starts a session: fails (AT011) if the tenant requires a verified email and the user has not verified theirs.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'atrium.auth_issue_account_token(uuid, text, text, text, text, interval, interval, integer)',
        'atrium.auth_find_account_token(text, text, text, text)', 'atrium.auth_verify_email(text, text, text)',
        'atrium.auth_reset_password(text, text, text, text)', 'atrium.auth_change_email(text, text, text)',
        'atrium.auth_change_password(uuid, text)', 'atrium.auth_mail_profile(uuid)', 'atrium.auth_email_taken(text)',
        'atrium.auth_record_flow_event(text, uuid, uuid, text, text, jsonb)', 'atrium.auth_user_verification(uuid)',
        'atrium.auth_require_verified_email(uuid, uuid)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
    ALTER FUNCTION atrium.auth_account_event(text, uuid, uuid, text, text, jsonb) OWNER TO atrium_definer;
    ALTER FUNCTION atrium.auth_use_account_token(text, text) OWNER TO atrium_definer;
END
$$;
