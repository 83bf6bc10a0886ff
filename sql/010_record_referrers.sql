-- Deleting a record asks which records point at it. The first version was one SQL function
-- joining the tenant's reference fields with record_values: a SQL function with a SET clause is
-- planned afresh on every call, and the planner, not knowing how few reference fields there
-- are, read the tenant's whole text-value index (0.5-0.9 ms of PostgreSQL per DELETE in
-- atrium-bench, growing with the tenant). Here PL/pgSQL keeps its plans for the session; the
-- reference fields that can point at the collection are found first, and each is looked up by
-- its full index prefix (tenant, collection, field, value): nothing else is read when no field
-- points there.
CREATE OR REPLACE FUNCTION atrium.record_referrers(p_collection_name text, p_record uuid)
    RETURNS TABLE (collection text, record_id uuid)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant constant uuid := NULLIF(current_setting('atrium.tenant_id', true), '')::uuid;
    v_field record;
    v_found bigint := 0;
    v_rows bigint;
BEGIN
    FOR v_field IN
        SELECT c.collection_id, c.name, f.key
        FROM atrium.collections c
        CROSS JOIN LATERAL jsonb_each(c.definition->'fields') f
        WHERE c.tenant_id = v_tenant
          AND f.value->>'type' = 'reference' AND f.value->>'collection' = p_collection_name
    LOOP
        RETURN QUERY
            SELECT v_field.name, v.record_id FROM atrium.record_values v
            WHERE v.tenant_id = v_tenant AND v.collection_id = v_field.collection_id AND v.field = v_field.key
              AND v.text_value = p_record::text
            LIMIT 10 - v_found;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_found := v_found + v_rows;
        EXIT WHEN v_found >= 10;
    END LOOP;
END
$$;
