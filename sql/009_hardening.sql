-- Hardening after an attack review: API keys bound to their creator, sign-in attempts reserved
-- before the password is hashed, and no function left executable by PUBLIC.

-- Functions -----------------------------------------------------------------------------------

-- PostgreSQL grants EXECUTE to PUBLIC on every new function, and a per-schema default
-- (002_schema.sql) cannot take that back. Revoke it from what exists and, for whatever the two
-- owning roles create from now on, in their global defaults. Grants to atrium_app and
-- atrium_admin stay as each migration made them.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA atrium FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA atrium_admin FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_definer REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- API keys ------------------------------------------------------------------------------------

-- A key acts with at most its creator's current role, and only while its creator is a member
-- and not disabled: demoting, removing or disabling the creator takes effect on the next
-- request on every server, because every request with a key reads it here.
CREATE OR REPLACE FUNCTION atrium.auth_api_key(p_key_hash text)
    RETURNS TABLE (tenant_id uuid, key_id uuid, role text, name text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ranks constant text[] := ARRAY['viewer', 'member', 'admin', 'owner'];
BEGIN
    -- last_used_at is kept to the minute: at most one write a minute per key.
    UPDATE atrium.api_keys k SET last_used_at = now()
    WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
      AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
    RETURN QUERY
        SELECT k.tenant_id, k.key_id,
               CASE WHEN array_position(ranks, m.role) < array_position(ranks, k.role) THEN m.role ELSE k.role END,
               k.name
        FROM atrium.api_keys k
        JOIN atrium.memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
        JOIN atrium.users u ON u.user_id = k.created_by AND u.disabled_at IS NULL
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());
END
$$;
COMMENT ON FUNCTION atrium.auth_api_key(text) IS
    'Authenticates an API key by the hash of its secret: its tenant, id and role while it is neither revoked nor expired and its creator is a member who is not disabled. The role is the lower of the key''s and the creator''s current one.';

-- A member who leaves (or is removed) takes their keys along for good: coming back later must
-- not bring old keys back to life.
CREATE FUNCTION atrium.revoke_keys_of_former_member() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE atrium.api_keys k SET revoked_at = now()
    WHERE k.tenant_id = OLD.tenant_id AND k.created_by = OLD.user_id AND k.revoked_at IS NULL;
    RETURN NULL;
END
$$;
ALTER FUNCTION atrium.revoke_keys_of_former_member() OWNER TO atrium_definer;
REVOKE ALL ON FUNCTION atrium.revoke_keys_of_former_member() FROM PUBLIC;
COMMENT ON FUNCTION atrium.revoke_keys_of_former_member() IS 'Trigger: revokes the API keys a member created when the membership ends.';
CREATE TRIGGER memberships_removal_revokes_keys
    AFTER DELETE ON atrium.memberships
    FOR EACH ROW EXECUTE FUNCTION atrium.revoke_keys_of_former_member();

-- Keys were once able to create keys; those have no creator to be bound to. Revoke them (the
-- service no longer lets a key create one). The tenant policy hides every row from the owner
-- role, so this runs as atrium_definer, whose policy sees all tenants.
SET LOCAL ROLE atrium_definer;
UPDATE atrium.api_keys SET revoked_at = now() WHERE created_by IS NULL AND revoked_at IS NULL;
SET LOCAL ROLE atrium_owner;

COMMENT ON COLUMN atrium.api_keys.created_by IS 'User who created it; the key acts with at most this user''s current role, and only while they are a member and not disabled.';

-- Sign-in throttling --------------------------------------------------------------------------

-- The throttle was checked in one transaction and a failure recorded in another, with the
-- password hash in between: concurrent wrong passwords all passed the check. Now an attempt is
-- reserved as a failure in the same step as the check, and a success deletes its reservation.
ALTER TABLE atrium.login_failures ADD COLUMN attempt_id uuid;
COMMENT ON COLUMN atrium.login_failures.attempt_id IS 'The sign-in attempt that reserved this row before hashing; the row is deleted if the attempt succeeds.';
CREATE INDEX login_failures_attempt_idx ON atrium.login_failures (attempt_id) WHERE attempt_id IS NOT NULL;

CREATE FUNCTION atrium.auth_login_begin(p_account text, p_address text, p_attempt uuid)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wait integer;
BEGIN
    -- Attempts on one account, and from one address, take turns until their transaction
    -- commits (always in this order, so two attempts cannot wait for each other): each sees
    -- the reservations made before it.
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium login account ' || p_account, 0));
    PERFORM pg_advisory_xact_lock(hashtextextended('atrium login address ' || p_address, 0));
    wait := atrium.auth_login_throttle(p_account, p_address);
    IF wait = 0 THEN
        INSERT INTO atrium.login_failures (account, client_address, recognized, attempt_id)
        VALUES (p_account, p_address, EXISTS (
            SELECT 1 FROM atrium.login_addresses a
            WHERE a.account = p_account AND a.client_address = p_address AND a.last_success_at > now() - interval '30 days'),
            p_attempt);
    END IF;
    RETURN wait;
END
$$;
COMMENT ON FUNCTION atrium.auth_login_begin(text, text, uuid) IS
    'Before a password is checked: the seconds the attempt must wait (see auth_login_throttle), or 0 after reserving it as a failure of account from address. atrium.auth_login_succeeded takes the reservation back.';

CREATE FUNCTION atrium.auth_login_succeeded(p_account text, p_address text, p_attempt uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM atrium.login_failures f WHERE f.attempt_id = p_attempt AND f.account = p_account;
    PERFORM atrium.auth_record_login(p_account, p_address, true);
END
$$;
COMMENT ON FUNCTION atrium.auth_login_succeeded(text, text, uuid) IS 'The reserved attempt succeeded: it no longer counts as a failure, and the address is recognised for the account.';

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY['atrium.auth_login_begin(text, text, uuid)', 'atrium.auth_login_succeeded(text, text, uuid)'] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
