-- The servers of a deployment: each `atrium serve` beats a heartbeat here, so every server knows
-- how many are live and can take its share of limits that hold for the whole deployment (the
-- per-tenant and per-address rate limits: with N live servers behind a balancer each allows
-- 1/N of the rate). Global, reached by the service only through the functions below.

CREATE TABLE atrium.servers (
    server_id  uuid        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT servers_pkey PRIMARY KEY (server_id)
);
COMMENT ON TABLE atrium.servers IS 'Live Atrium servers: one row per process, refreshed by its heartbeat, removed when it stops or when it has not been seen for long.';
COMMENT ON COLUMN atrium.servers.server_id IS 'Random id the process chose at start.';
COMMENT ON COLUMN atrium.servers.started_at IS 'When the process first beat.';
COMMENT ON COLUMN atrium.servers.seen_at IS 'Its last heartbeat.';
ALTER TABLE atrium.servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE atrium.servers FORCE ROW LEVEL SECURITY;
CREATE POLICY definer_access ON atrium.servers TO atrium_definer USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON atrium.servers TO atrium_definer;

-- Records this server's heartbeat, forgets servers silent for more than p_expiry, and returns
-- how many servers are live (this one included).
CREATE FUNCTION atrium.server_heartbeat(p_server uuid, p_expiry interval) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    live integer;
BEGIN
    INSERT INTO atrium.servers AS s (server_id) VALUES (p_server)
        ON CONFLICT (server_id) DO UPDATE SET seen_at = now();
    DELETE FROM atrium.servers s WHERE s.seen_at < now() - p_expiry;
    SELECT count(*) INTO live FROM atrium.servers;
    RETURN live;
END
$$;
COMMENT ON FUNCTION atrium.server_heartbeat(uuid, interval) IS 'Refreshes this server''s row, removes servers not seen for p_expiry, returns the number of live servers.';

CREATE FUNCTION atrium.server_leave(p_server uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM atrium.servers WHERE server_id = p_server;
$$;
COMMENT ON FUNCTION atrium.server_leave(uuid) IS 'Removes a stopping server at once, so the others take its share of the limits without waiting for its row to expire.';

CREATE VIEW atrium_admin.servers AS
    SELECT s.server_id, s.started_at, s.seen_at, now() - s.seen_at AS silent_for FROM atrium.servers s;
COMMENT ON VIEW atrium_admin.servers IS 'The servers of the deployment as their heartbeats show them.';
COMMENT ON COLUMN atrium_admin.servers.server_id IS 'The server process.';
COMMENT ON COLUMN atrium_admin.servers.started_at IS 'When it started beating.';
COMMENT ON COLUMN atrium_admin.servers.seen_at IS 'Its last heartbeat.';
COMMENT ON COLUMN atrium_admin.servers.silent_for IS 'Time since its last heartbeat.';
ALTER VIEW atrium_admin.servers OWNER TO atrium_definer;
GRANT SELECT ON atrium_admin.servers TO atrium_admin;

DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY['atrium.server_heartbeat(uuid, interval)', 'atrium.server_leave(uuid)'] LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO atrium_definer', signature);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', signature);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO atrium_app', signature);
    END LOOP;
END
$$;
