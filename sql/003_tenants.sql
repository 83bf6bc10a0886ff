-- Tenants: the organisations that use an Atrium product. This table sets the pattern every
-- tenant table follows:
--   * tenant_id leads the primary key (and every foreign key that points at tenant data);
--   * row-level security is ENABLED and FORCED, so even the table owner is filtered;
--   * one policy, USING and WITH CHECK, compares tenant_id with the transaction's tenant
--     setting, with no subquery (Citus cannot distribute policies with subqueries);
--   * atrium_app gets exactly the DML it needs, nothing else.

CREATE TABLE atrium.tenants (
    tenant_id  uuid        NOT NULL DEFAULT gen_random_uuid(),
    name       text        NOT NULL,
    slug       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT tenants_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
);

COMMENT ON TABLE atrium.tenants IS 'Organisations using the product; each row is one tenant, visible only inside its own tenant scope.';
COMMENT ON COLUMN atrium.tenants.tenant_id IS 'Tenant id (random UUID); the key every tenant table starts with.';
COMMENT ON COLUMN atrium.tenants.name IS 'Display name, 1 to 200 characters.';
COMMENT ON COLUMN atrium.tenants.slug IS 'Unique URL-safe handle: lower-case letters, digits and inner hyphens, at most 63 characters.';
COMMENT ON COLUMN atrium.tenants.created_at IS 'When the tenant was created.';
COMMENT ON COLUMN atrium.tenants.updated_at IS 'When the tenant was last changed.';

ALTER TABLE atrium.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.tenants FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON atrium.tenants
    USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);

COMMENT ON POLICY tenant_isolation ON atrium.tenants IS 'Rows are visible and writable only within their own tenant scope (atrium.set_tenant).';

GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.tenants TO atrium_app;
