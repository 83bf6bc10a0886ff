-- PATCH and PUT read the record they change without a lock and write it in one round trip,
-- first checking, in the writing transaction, that the record is still at the version they
-- read. Before, they locked it (SELECT … FOR UPDATE) in a transaction of their own, worked out
-- the new data in the service while holding the lock and the connection, and wrote it in a
-- second round trip: two wake-ups of the backend per write, and a pooled connection held across
-- the service's work. A write that finds the record changed (AT004) reads it again and decides
-- again; one that keeps losing falls back to locking first.
--
-- FOR UPDATE, as the lock it replaces, but NOWAIT: a record locked by another transaction fails
-- the check at once (55P03) instead of waiting. The write is one of several a pooled connection
-- runs in a round, for any tenants; waiting for a lock there would hold up the others behind
-- it. The service then retries, and at last locks the record first, in a transaction that has
-- its connection to itself. The tenant is read into a variable first, so that on Citus the lock
-- is routed to the tenant's shard (see migration 017).
CREATE FUNCTION atrium.require_record_version(p_collection uuid, p_record uuid, p_version bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
BEGIN
    PERFORM 1 FROM atrium.records r
    WHERE r.tenant_id = v_tenant AND r.collection_id = p_collection AND r.record_id = p_record AND r.version = p_version
    FOR UPDATE NOWAIT;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the record changed or was deleted' USING ERRCODE = 'AT004';
    END IF;
END
$$;
COMMENT ON FUNCTION atrium.require_record_version(uuid, uuid, bigint) IS 'Inside a record update: fails (AT004) unless the record (of the current tenant) is still at the version the update was worked out from, and locks it until commit; fails at once (55P03) while another transaction holds it locked.';

GRANT EXECUTE ON FUNCTION atrium.require_record_version(uuid, uuid, bigint) TO atrium_app;
