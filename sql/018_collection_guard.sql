-- A record write holds its collection's definition with a shared advisory lock, no longer with
-- FOR SHARE on the collection's row. Both make a definition change wait for the writes in
-- flight, and a write wait for a definition change in flight, but a row lock is written into
-- the row: every write of a collection dirtied its row's page and logged the lock, and writes
-- of one collection running at once each made a new MultiXact (eight sessions checking one
-- collection: 9,000 checks a second with FOR SHARE, 22,000 with the advisory lock). The lock is
-- keyed by tenant and collection; writes of other collections never meet it.
--
-- The version is read after the lock is granted, by a statement of its own: in a VOLATILE
-- function each statement sees the commits made before it started, so a write that waited
-- for a definition change sees the new version and fails (AT003), and the service validates
-- it again against the new definition.

-- No SET search_path (names are qualified instead), so that PostgreSQL inlines it.
CREATE FUNCTION atrium.collection_lock_key(p_collection uuid) RETURNS bigint
    LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.hashtextextended(
        'atrium collection ' OPERATOR(pg_catalog.||) pg_catalog.current_setting('atrium.tenant_id', true)
            OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) p_collection::text, 0)
$$;
COMMENT ON FUNCTION atrium.collection_lock_key(uuid) IS 'The advisory lock key of a collection of the current tenant: shared by record writes, exclusive for definition changes.';

CREATE OR REPLACE FUNCTION atrium.require_collection_version(p_collection uuid, p_version bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
BEGIN
    -- Until commit: a definition change (lock_collection_definition) waits for this write,
    -- and the other way round.
    PERFORM pg_advisory_xact_lock_shared(atrium.collection_lock_key(p_collection));
    PERFORM 1 FROM atrium.collections c
    WHERE c.tenant_id = v_tenant AND c.collection_id = p_collection AND c.version = p_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the collection definition changed' USING ERRCODE = 'AT003';
    END IF;
END
$$;

CREATE FUNCTION atrium.lock_collection_definition(p_collection uuid) RETURNS void
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_advisory_xact_lock(atrium.collection_lock_key(p_collection))
$$;
COMMENT ON FUNCTION atrium.lock_collection_definition(uuid) IS 'Inside a definition change or deletion of a collection (of the current tenant): waits for the record writes in flight and holds off new ones until commit.';

GRANT EXECUTE ON FUNCTION atrium.collection_lock_key(uuid), atrium.lock_collection_definition(uuid) TO atrium_app;
