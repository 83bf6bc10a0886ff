-- Deleting a record asks which records point at it. The first version joined the tenant's
-- reference fields with record_values in one query, and the planner, not knowing how few
-- reference fields there are, read the tenant's whole text-value index (about 0.5 ms a
-- delete at 10,000 records, growing with the tenant). Here the reference fields that can
-- point at the collection are found first, and each is looked up by its full index prefix
-- (tenant, collection, field, value): nothing at all is read when no field points there.
CREATE OR REPLACE FUNCTION atrium.record_referrers(p_collection_name text, p_record uuid)
    RETURNS TABLE (collection text, record_id uuid)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH referring AS MATERIALIZED (
        SELECT c.tenant_id, c.collection_id, c.name, f.key AS field
        FROM atrium.collections c
        CROSS JOIN LATERAL jsonb_each(c.definition->'fields') f
        WHERE c.tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid
          AND f.value->>'type' = 'reference' AND f.value->>'collection' = p_collection_name
    )
    SELECT r.name, v.record_id
    FROM referring r
    CROSS JOIN LATERAL (
        SELECT v.record_id FROM atrium.record_values v
        WHERE v.tenant_id = r.tenant_id AND v.collection_id = r.collection_id AND v.field = r.field
          AND v.text_value = p_record::text
        LIMIT 10
    ) v
    LIMIT 10
$$;
