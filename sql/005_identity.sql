-- Identity: users (global), and per tenant: memberships, sessions with their refresh tokens,
-- API keys, invitations and the audit trail of auth events; plus login throttling.
--
-- Tenant tables follow 003's pattern (tenant_id leading the key, RLS enabled and forced, one
-- isolation policy). Where atrium_definer must see across tenants, an extra policy says so
-- for that role only. Users and the throttling tables have no tenant: atrium_app has no
-- privilege on them at all and reaches them only through the functions of 006.

GRANT USAGE ON SCHEMA atrium TO atrium_definer;
GRANT CREATE ON SCHEMA atrium TO atrium_definer;
GRANT SELECT, UPDATE ON atrium.tenants TO atrium_definer;
CREATE POLICY definer_access ON atrium.tenants TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.tenants IS 'atrium_definer (the cross-tenant SECURITY DEFINER functions) sees every tenant.';

-- Users ---------------------------------------------------------------------------------------

CREATE TABLE atrium.users (
    user_id          uuid        NOT NULL,
    email            text        NOT NULL,
    email_normalized text        GENERATED ALWAYS AS (lower(email)) STORED,
    password_hash    text        NOT NULL,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email_normalized),
    CONSTRAINT users_email_format CHECK (char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_password_hash_format CHECK (password_hash LIKE '$scrypt$%')
);
COMMENT ON TABLE atrium.users IS 'People who can sign in; global (a user may belong to several tenants). Reached by the service only through atrium.auth_* functions.';
COMMENT ON COLUMN atrium.users.user_id IS 'User id (random UUID).';
COMMENT ON COLUMN atrium.users.email IS 'Email as the user typed it; unique case-insensitively.';
COMMENT ON COLUMN atrium.users.email_normalized IS 'Lower-cased email, the unique login key.';
COMMENT ON COLUMN atrium.users.password_hash IS 'scrypt hash in PHC string format ($scrypt$ln=..,r=..,p=..$salt$hash); upgraded at login when parameters change.';
COMMENT ON COLUMN atrium.users.disabled_at IS 'When the user was disabled (cannot sign in; every session ended); NULL when active.';
COMMENT ON COLUMN atrium.users.created_at IS 'When the user signed up or accepted their first invitation.';
COMMENT ON COLUMN atrium.users.updated_at IS 'When the row last changed.';
ALTER TABLE atrium.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.users FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.users TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.users IS 'Only atrium_definer (login, signup, profile functions) reads or writes users.';
GRANT SELECT, INSERT, UPDATE ON atrium.users TO atrium_definer;

-- Memberships ---------------------------------------------------------------------------------

CREATE TABLE atrium.memberships (
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memberships_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT memberships_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT memberships_user_fkey FOREIGN KEY (user_id) REFERENCES atrium.users (user_id) ON DELETE CASCADE,
    CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);
CREATE INDEX memberships_user_idx ON atrium.memberships (user_id);
COMMENT ON TABLE atrium.memberships IS 'Who belongs to which tenant, with which role. A tenant always keeps at least one owner.';
COMMENT ON COLUMN atrium.memberships.tenant_id IS 'The tenant.';
COMMENT ON COLUMN atrium.memberships.user_id IS 'The member.';
COMMENT ON COLUMN atrium.memberships.role IS 'owner (everything, incl. deleting the tenant) > admin (members, invitations, API keys, collections) > member (read/write data) > viewer (read only).';
COMMENT ON COLUMN atrium.memberships.created_at IS 'When the user joined the tenant.';
COMMENT ON COLUMN atrium.memberships.updated_at IS 'When the role last changed.';
ALTER TABLE atrium.memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.memberships
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.memberships TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.memberships IS 'Rows are visible and writable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.memberships IS 'atrium_definer lists a user''s tenants across tenants (login, switch).';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.memberships TO atrium_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.memberships TO atrium_definer;

-- The last owner can be neither demoted nor removed. Checked in the database too, so psql and
-- every code path obey it; the tenant row is locked so two concurrent demotions cannot both
-- pass. Deleting the tenant itself (which cascades here) is of course allowed.
CREATE FUNCTION atrium.keep_an_owner() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF pg_catalog.pg_trigger_depth() > 1 OR OLD.role <> 'owner' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.role = 'owner' THEN
        RETURN NEW;
    END IF;
    PERFORM 1 FROM atrium.tenants t WHERE t.tenant_id = OLD.tenant_id FOR UPDATE;
    IF NOT EXISTS (
        SELECT 1 FROM atrium.memberships m
        WHERE m.tenant_id = OLD.tenant_id AND m.role = 'owner' AND m.user_id <> OLD.user_id
    ) THEN
        RAISE EXCEPTION 'the last owner of a tenant can be neither demoted nor removed'
            USING ERRCODE = 'AT001', HINT = 'make another member an owner first';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION atrium.keep_an_owner() IS 'Trigger: refuses to demote or remove a tenant''s last owner (SQLSTATE AT001).';
CREATE TRIGGER memberships_keep_an_owner
    BEFORE UPDATE OF role OR DELETE ON atrium.memberships
    FOR EACH ROW EXECUTE FUNCTION atrium.keep_an_owner();

-- Sessions ------------------------------------------------------------------------------------

CREATE TABLE atrium.sessions (
    tenant_id         uuid        NOT NULL,
    session_id        uuid        NOT NULL,
    user_id           uuid        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    last_refreshed_at timestamptz,
    revoked_at        timestamptz,
    revoked_reason    text,
    client_address    text,
    user_agent        text,
    CONSTRAINT sessions_pkey PRIMARY KEY (tenant_id, session_id),
    CONSTRAINT sessions_member_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES atrium.memberships (tenant_id, user_id) ON DELETE CASCADE,
    CONSTRAINT sessions_revocation_check CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CONSTRAINT sessions_user_agent_length CHECK (char_length(user_agent) <= 512)
);
CREATE UNIQUE INDEX sessions_session_id_key ON atrium.sessions (session_id);
CREATE INDEX sessions_user_idx ON atrium.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE atrium.sessions IS 'Signed-in sessions: one per sign-in (or tenant switch), carrying a family of rotating refresh tokens. Access tokens name their session; revoking it ends them on every server.';
COMMENT ON COLUMN atrium.sessions.tenant_id IS 'The tenant the session acts in.';
COMMENT ON COLUMN atrium.sessions.session_id IS 'Session id (random UUID), the sid claim of its access tokens.';
COMMENT ON COLUMN atrium.sessions.user_id IS 'The signed-in user.';
COMMENT ON COLUMN atrium.sessions.created_at IS 'When the session began.';
COMMENT ON COLUMN atrium.sessions.expires_at IS 'Absolute end of the session: refresh tokens stop working then.';
COMMENT ON COLUMN atrium.sessions.last_refreshed_at IS 'When a refresh token of the session was last rotated.';
COMMENT ON COLUMN atrium.sessions.revoked_at IS 'When the session was ended early; NULL while it is live.';
COMMENT ON COLUMN atrium.sessions.revoked_reason IS 'Why: logout, logout_all, password_changed, role_changed, user_disabled, refresh_token_reused, admin.';
COMMENT ON COLUMN atrium.sessions.client_address IS 'Client address at sign-in.';
COMMENT ON COLUMN atrium.sessions.user_agent IS 'User-Agent at sign-in (first 512 characters).';
ALTER TABLE atrium.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.sessions
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.sessions TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.sessions IS 'Rows are visible and writable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.sessions IS 'atrium_definer revokes a user''s sessions across tenants and rotates refresh tokens.';
GRANT SELECT, INSERT, UPDATE ON atrium.sessions TO atrium_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.sessions TO atrium_definer;

CREATE TABLE atrium.refresh_tokens (
    tenant_id     uuid        NOT NULL,
    token_hash    text        NOT NULL,
    session_id    uuid        NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (tenant_id, token_hash),
    CONSTRAINT refresh_tokens_session_fkey FOREIGN KEY (tenant_id, session_id)
        REFERENCES atrium.sessions (tenant_id, session_id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON atrium.refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_idx ON atrium.refresh_tokens (tenant_id, session_id);
COMMENT ON TABLE atrium.refresh_tokens IS 'Every refresh token a session was given, by hash; exactly one per session is current (superseded_at NULL). Presenting an older one revokes the session.';
COMMENT ON COLUMN atrium.refresh_tokens.tenant_id IS 'The session''s tenant.';
COMMENT ON COLUMN atrium.refresh_tokens.token_hash IS 'Hex SHA-256 of the token; the token itself is never stored.';
COMMENT ON COLUMN atrium.refresh_tokens.session_id IS 'The session (token family) it belongs to.';
COMMENT ON COLUMN atrium.refresh_tokens.issued_at IS 'When it was issued.';
COMMENT ON COLUMN atrium.refresh_tokens.superseded_at IS 'When it was exchanged for the next one; NULL for the current token.';
ALTER TABLE atrium.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.refresh_tokens
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.refresh_tokens TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.refresh_tokens IS 'Rows are visible and writable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.refresh_tokens IS 'atrium_definer finds a refresh token by its hash before the tenant is known.';
GRANT SELECT, INSERT ON atrium.refresh_tokens TO atrium_app;
GRANT SELECT, INSERT, UPDATE ON atrium.refresh_tokens TO atrium_definer;

-- Revoked sessions are remembered (even when the session row is gone, e.g. its tenant was
-- deleted) for an hour, longer than any access token lives, so a restarting server can load
-- them. Filled only by the trigger below.
CREATE TABLE atrium.revoked_sessions (
    tenant_id  uuid        NOT NULL,
    session_id uuid        NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    keep_until timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    reason     text        NOT NULL,
    CONSTRAINT revoked_sessions_pkey PRIMARY KEY (tenant_id, session_id)
);
CREATE INDEX revoked_sessions_keep_until_idx ON atrium.revoked_sessions (keep_until);
COMMENT ON TABLE atrium.revoked_sessions IS 'Recently ended sessions whose access tokens may still be unexpired; servers load these at start and learn new ones through NOTIFY atrium_revocations.';
COMMENT ON COLUMN atrium.revoked_sessions.tenant_id IS 'The session''s tenant.';
COMMENT ON COLUMN atrium.revoked_sessions.session_id IS 'The ended session.';
COMMENT ON COLUMN atrium.revoked_sessions.revoked_at IS 'When it ended.';
COMMENT ON COLUMN atrium.revoked_sessions.keep_until IS 'After this no access token of the session can still be valid, so the row can go.';
COMMENT ON COLUMN atrium.revoked_sessions.reason IS 'Why it ended (see sessions.revoked_reason).';
ALTER TABLE atrium.revoked_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.revoked_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.revoked_sessions TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.revoked_sessions IS 'Written by the revocation trigger and read by atrium.auth_revoked_sessions(), both atrium_definer.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.revoked_sessions TO atrium_definer;

-- Every way a session ends (revoked, or deleted while live: member removed, tenant deleted)
-- is recorded and announced to every server in the same transaction.
CREATE FUNCTION atrium.announce_revocation() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ended atrium.sessions;
    why text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        ended := OLD;
        why := coalesce(OLD.revoked_reason, 'deleted');
    ELSE
        ended := NEW;
        why := NEW.revoked_reason;
    END IF;
    INSERT INTO atrium.revoked_sessions (tenant_id, session_id, reason)
    VALUES (ended.tenant_id, ended.session_id, why)
    ON CONFLICT (tenant_id, session_id) DO NOTHING;
    PERFORM pg_notify('atrium_revocations', ended.session_id::text);
    RETURN NULL;
END
$$;
ALTER FUNCTION atrium.announce_revocation() OWNER TO atrium_definer;
REVOKE ALL ON FUNCTION atrium.announce_revocation() FROM PUBLIC;
COMMENT ON FUNCTION atrium.announce_revocation() IS 'Trigger: records an ended session in revoked_sessions and NOTIFYs atrium_revocations with its id.';
CREATE TRIGGER sessions_announce_revocation
    AFTER UPDATE OF revoked_at ON atrium.sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION atrium.announce_revocation();
CREATE TRIGGER sessions_announce_deletion
    AFTER DELETE ON atrium.sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL)
    EXECUTE FUNCTION atrium.announce_revocation();

-- A role change ends the member's sessions in that tenant (their tokens carry the old role);
-- disabling a user ends all of theirs.
CREATE FUNCTION atrium.end_sessions_on_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'memberships' THEN
        UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'role_changed'
        WHERE s.tenant_id = NEW.tenant_id AND s.user_id = NEW.user_id AND s.revoked_at IS NULL;
    ELSE
        UPDATE atrium.sessions s SET revoked_at = now(), revoked_reason = 'user_disabled'
        WHERE s.user_id = NEW.user_id AND s.revoked_at IS NULL;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION atrium.end_sessions_on_change() OWNER TO atrium_definer;
REVOKE ALL ON FUNCTION atrium.end_sessions_on_change() FROM PUBLIC;
COMMENT ON FUNCTION atrium.end_sessions_on_change() IS 'Trigger: ends sessions whose role changed (memberships) or whose user was disabled (users).';
CREATE TRIGGER memberships_role_change_ends_sessions
    AFTER UPDATE OF role ON atrium.memberships
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION atrium.end_sessions_on_change();
CREATE TRIGGER users_disable_ends_sessions
    AFTER UPDATE OF disabled_at ON atrium.users
    FOR EACH ROW WHEN (OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL)
    EXECUTE FUNCTION atrium.end_sessions_on_change();

-- API keys ------------------------------------------------------------------------------------

CREATE TABLE atrium.api_keys (
    tenant_id    uuid        NOT NULL,
    key_id       uuid        NOT NULL,
    name         text        NOT NULL,
    role         text        NOT NULL,
    key_hash     text        NOT NULL,
    key_prefix   text        NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_keys_pkey PRIMARY KEY (tenant_id, key_id),
    CONSTRAINT api_keys_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'member', 'viewer')),
    CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_keys_hash_format CHECK (key_hash ~ '^[0-9a-f]{64}$')
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON atrium.api_keys (key_hash);
COMMENT ON TABLE atrium.api_keys IS 'Server-to-server credentials of a tenant, limited to a role (never owner). The secret is shown once and stored only as a hash.';
COMMENT ON COLUMN atrium.api_keys.tenant_id IS 'The tenant the key acts in.';
COMMENT ON COLUMN atrium.api_keys.key_id IS 'Key id (random UUID).';
COMMENT ON COLUMN atrium.api_keys.name IS 'What the key is for, 1 to 100 characters.';
COMMENT ON COLUMN atrium.api_keys.role IS 'The role the key acts with: admin, member or viewer.';
COMMENT ON COLUMN atrium.api_keys.key_hash IS 'Hex SHA-256 of the secret.';
COMMENT ON COLUMN atrium.api_keys.key_prefix IS 'The first characters of the secret, to recognise it in lists.';
COMMENT ON COLUMN atrium.api_keys.created_by IS 'User who created it.';
COMMENT ON COLUMN atrium.api_keys.created_at IS 'When it was created.';
COMMENT ON COLUMN atrium.api_keys.expires_at IS 'When it stops working by itself; NULL for never.';
COMMENT ON COLUMN atrium.api_keys.revoked_at IS 'When it was revoked; NULL while usable.';
COMMENT ON COLUMN atrium.api_keys.last_used_at IS 'Last authentication with it (kept to the minute).';
ALTER TABLE atrium.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.api_keys
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.api_keys TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.api_keys IS 'Rows are visible and writable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.api_keys IS 'atrium_definer finds a key by its hash before the tenant is known.';
GRANT SELECT, INSERT, UPDATE ON atrium.api_keys TO atrium_app;
GRANT SELECT, UPDATE ON atrium.api_keys TO atrium_definer;

-- Invitations ---------------------------------------------------------------------------------

CREATE TABLE atrium.invitations (
    tenant_id        uuid        NOT NULL,
    invitation_id    uuid        NOT NULL,
    email            text        NOT NULL,
    email_normalized text        GENERATED ALWAYS AS (lower(email)) STORED,
    role             text        NOT NULL,
    token_hash       text        NOT NULL,
    invited_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    accepted_by      uuid,
    revoked_at       timestamptz,
    CONSTRAINT invitations_pkey PRIMARY KEY (tenant_id, invitation_id),
    CONSTRAINT invitations_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES atrium.tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT invitations_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    CONSTRAINT invitations_email_format CHECK (char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT invitations_hash_format CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE UNIQUE INDEX invitations_token_hash_key ON atrium.invitations (token_hash);
CREATE UNIQUE INDEX invitations_pending_email_key ON atrium.invitations (tenant_id, email_normalized)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
COMMENT ON TABLE atrium.invitations IS 'Invitations to join a tenant with a role. The token is shown once to the inviter and stored only as a hash; one pending invitation per email and tenant.';
COMMENT ON COLUMN atrium.invitations.tenant_id IS 'The inviting tenant.';
COMMENT ON COLUMN atrium.invitations.invitation_id IS 'Invitation id (random UUID).';
COMMENT ON COLUMN atrium.invitations.email IS 'Whom it is for; accepting joins the user with this email (or creates them).';
COMMENT ON COLUMN atrium.invitations.email_normalized IS 'Lower-cased email.';
COMMENT ON COLUMN atrium.invitations.role IS 'The role the invitee gets.';
COMMENT ON COLUMN atrium.invitations.token_hash IS 'Hex SHA-256 of the token.';
COMMENT ON COLUMN atrium.invitations.invited_by IS 'User who invited; NULL when an administrator did it from psql.';
COMMENT ON COLUMN atrium.invitations.created_at IS 'When it was made.';
COMMENT ON COLUMN atrium.invitations.expires_at IS 'It cannot be accepted after this.';
COMMENT ON COLUMN atrium.invitations.accepted_at IS 'When it was accepted; NULL while pending.';
COMMENT ON COLUMN atrium.invitations.accepted_by IS 'User who accepted it.';
COMMENT ON COLUMN atrium.invitations.revoked_at IS 'When it was withdrawn; NULL otherwise.';
ALTER TABLE atrium.invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.invitations
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.invitations TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.invitations IS 'Rows are visible and writable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.invitations IS 'atrium_definer finds an invitation by its token hash before the tenant is known, and creates owner invitations for administrators.';
GRANT SELECT, INSERT, UPDATE ON atrium.invitations TO atrium_app;
GRANT SELECT, INSERT ON atrium.invitations TO atrium_definer;

-- Auth events (append-only audit) -------------------------------------------------------------

CREATE TABLE atrium.auth_events (
    tenant_id      uuid        NOT NULL,
    event_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind           text        NOT NULL,
    user_id        uuid,
    api_key_id     uuid,
    subject_id     uuid,
    client_address text,
    request_id     text,
    detail         jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT auth_events_pkey PRIMARY KEY (tenant_id, event_id),
    CONSTRAINT auth_events_kind_check CHECK (kind IN (
        'signup', 'login_succeeded', 'login_failed', 'login_throttled', 'logout', 'logout_all',
        'password_changed', 'tenant_switched', 'refresh_token_reused', 'role_changed', 'member_removed',
        'api_key_created', 'api_key_revoked', 'invitation_created', 'invitation_revoked',
        'invitation_accepted', 'tenant_created', 'tenant_deleted', 'user_disabled', 'user_enabled',
        'sessions_revoked'
    ))
);
CREATE INDEX auth_events_time_idx ON atrium.auth_events (tenant_id, occurred_at);
COMMENT ON TABLE atrium.auth_events IS 'Append-only audit of authentication and access events. Events about an account outside any tenant (a failed login) use the nil tenant 00000000-0000-0000-0000-000000000000. atrium_app may only INSERT and SELECT.';
COMMENT ON COLUMN atrium.auth_events.tenant_id IS 'Tenant the event belongs to, or the nil UUID for account-level events.';
COMMENT ON COLUMN atrium.auth_events.event_id IS 'Event id.';
COMMENT ON COLUMN atrium.auth_events.occurred_at IS 'When it happened.';
COMMENT ON COLUMN atrium.auth_events.kind IS 'What happened (see the check constraint for the list).';
COMMENT ON COLUMN atrium.auth_events.user_id IS 'Acting user, if any.';
COMMENT ON COLUMN atrium.auth_events.api_key_id IS 'Acting API key, if any.';
COMMENT ON COLUMN atrium.auth_events.subject_id IS 'What the action was done to (a member, key or invitation), if anything.';
COMMENT ON COLUMN atrium.auth_events.client_address IS 'Client address of the request.';
COMMENT ON COLUMN atrium.auth_events.request_id IS 'X-Request-ID of the request, to match the server log.';
COMMENT ON COLUMN atrium.auth_events.detail IS 'Further facts (never secrets): e.g. old and new role, hashed account for failed logins.';
ALTER TABLE atrium.auth_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.auth_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON atrium.auth_events
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
CREATE POLICY definer_access ON atrium.auth_events TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY tenant_isolation ON atrium.auth_events IS 'Rows are visible and insertable only within their own tenant scope.';
COMMENT ON POLICY definer_access ON atrium.auth_events IS 'atrium_definer records account-level events and administrators'' actions.';
GRANT SELECT, INSERT ON atrium.auth_events TO atrium_app;
GRANT SELECT, INSERT ON atrium.auth_events TO atrium_definer;

-- Login throttling ----------------------------------------------------------------------------

CREATE TABLE atrium.login_failures (
    account        text        NOT NULL,
    client_address text        NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    recognized     boolean     NOT NULL
);
CREATE INDEX login_failures_account_idx ON atrium.login_failures (account, failed_at);
CREATE INDEX login_failures_address_idx ON atrium.login_failures (client_address, failed_at);
COMMENT ON TABLE atrium.login_failures IS 'Failed sign-in attempts of the last hour, shared by every server; see atrium.auth_login_throttle for the policy.';
COMMENT ON COLUMN atrium.login_failures.account IS 'Hex SHA-256 of the lower-cased email tried (whether or not such a user exists).';
COMMENT ON COLUMN atrium.login_failures.client_address IS 'Address the attempt came from.';
COMMENT ON COLUMN atrium.login_failures.failed_at IS 'When it failed.';
COMMENT ON COLUMN atrium.login_failures.recognized IS 'The address had signed in to this account in the last 30 days (it draws on the reserved budget).';
-- Kept for the whole hour even after a success: the hourly cap counts every failure.
ALTER TABLE atrium.login_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.login_failures FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.login_failures TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.login_failures IS 'Only the throttling functions (atrium_definer) touch it.';
GRANT SELECT, INSERT, DELETE ON atrium.login_failures TO atrium_definer;

CREATE TABLE atrium.login_addresses (
    account         text        NOT NULL,
    client_address  text        NOT NULL,
    last_success_at timestamptz NOT NULL,
    CONSTRAINT login_addresses_pkey PRIMARY KEY (account, client_address)
);
COMMENT ON TABLE atrium.login_addresses IS 'Addresses that signed in successfully to an account, so an attack from elsewhere cannot use up their share of attempts.';
COMMENT ON COLUMN atrium.login_addresses.account IS 'Hex SHA-256 of the lower-cased email.';
COMMENT ON COLUMN atrium.login_addresses.client_address IS 'The address.';
COMMENT ON COLUMN atrium.login_addresses.last_success_at IS 'Its latest successful sign-in.';
ALTER TABLE atrium.login_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.login_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.login_addresses TO atrium_definer USING (true) WITH CHECK (true);
COMMENT ON POLICY definer_access ON atrium.login_addresses IS 'Only the throttling functions (atrium_definer) touch it.';
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.login_addresses TO atrium_definer;
