import AtriumTestSupport
import PostgresPool
import Testing

/// What the migrations promise about the schema, checked in PostgreSQL's own catalog so a new
/// table cannot quietly skip the rules.
@Suite struct CatalogTests {
    @Test func everyTenantTableHasForcedRowLevelSecurityAndAPolicy() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let rows = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)::int8
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                ORDER BY 1
                """)
        }
        #expect(!rows.isEmpty)
        for row in rows {
            let (table, enabled, forced, policies) = try row.decode((String, Bool, Bool, Int).self)
            #expect(enabled, "\(table) has row-level security disabled")
            #expect(forced, "\(table) does not force row-level security")
            #expect(policies >= 1, "\(table) has no policy")
        }
    }

    @Test func tenantIdLeadsThePrimaryKeyOfEveryTenantTable() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let rows = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT c.oid::regclass::text, a.attname::text
                FROM pg_index i
                JOIN pg_class c ON c.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
                WHERE i.indisprimary AND n.nspname = 'atrium'
                  AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id')
                """)
        }
        #expect(!rows.isEmpty)
        for row in rows {
            let (table, first) = try row.decode((String, String).self)
            #expect(first == "tenant_id", "\(table)'s primary key starts with \(first)")
        }
    }

    /// Who may execute each function besides its owner. A new function must be added here on
    /// purpose: anything unexpected — PUBLIC above all — fails the test.
    static let functionGrants: [String: Set<String>] = {
        var grants: [String: Set<String>] = [:]
        for trigger in [
            "announce_collection_change()", "announce_revocation()", "end_member_sessions_on_role_change()", "end_user_sessions_on_disable()",
            "keep_an_owner()", "revoke_keys_of_former_member()",
        ] {
            grants["atrium." + trigger] = []
        }
        for function in [
            "auth_api_key(p_key_hash text)", "auth_create_user(p_user uuid, p_email text, p_password_hash text)",
            "auth_find_login(p_email text)", "auth_invitation(p_token_hash text)", "auth_login_begin(p_account text, p_address text, p_attempt uuid)",
            "auth_login_succeeded(p_account text, p_address text, p_attempt uuid)", "auth_login_throttle(p_account text, p_address text)",
            "auth_record_account_event(p_kind text, p_user uuid, p_address text, p_request_id text, p_detail jsonb)",
            "auth_record_login(p_account text, p_address text, p_succeeded boolean)",
            "auth_refresh(p_token_hash text, p_new_hash text, p_grace_seconds integer)",
            "auth_revoke_user_sessions(p_user uuid, p_reason text, p_except uuid)", "auth_revoked_sessions()",
            "auth_set_password_hash(p_user uuid, p_password_hash text)", "auth_tenant_members()", "auth_user(p_user uuid)",
            "auth_user_tenants(p_user uuid)", "claim_unique_values(p_tenant uuid, p_collection uuid, p_field text, p_rows jsonb)",
            "collection_lock_key(p_collection uuid)", "current_tenant()", "lock_collection_definition(p_collection uuid)",
            "record_referrers(p_collection_name text, p_record uuid)",
            "require_collection_version(p_collection uuid, p_version bigint)", "require_records(p_collection uuid, p_ids uuid[])",
            "require_record_version(p_collection uuid, p_record uuid, p_version bigint)",
            "set_tenant(tenant uuid)",
            "change_feed(p_after bigint, p_through bigint, p_writers text[], p_limit integer)",
            "change_horizon(OUT through bigint, OUT writers text[])", "change_pruned_through()",
            "prune_changes(p_retention interval, p_batch integer)", "prune_event_tickets()", "redeem_event_ticket(p_ticket_hash text)",
            "webhooks_enabled()", "webhook_fanout(p_through bigint, p_writers text[], p_limit integer)",
            "claim_webhook_deliveries(p_lease interval, p_limit integer, p_per_endpoint integer, p_per_tenant integer, p_busy_webhooks uuid[], p_busy_webhook_counts integer[], p_busy_tenants uuid[], p_busy_tenant_counts integer[])",
            "prune_webhook_deliveries(p_retention interval, p_batch integer)", "complete_webhook_deliveries(p_outcomes jsonb)",
            "mail_enqueue(p_mail uuid, p_tenant uuid, p_kind text, p_recipient text, p_subject text, p_text text, p_html text)",
            "mail_claim(p_lease interval, p_limit integer)", "mail_complete(p_outcomes jsonb)", "mail_prune(p_age interval, p_batch integer)",
            "server_heartbeat(p_server uuid, p_expiry interval)", "server_leave(p_server uuid)",
            "tenant_create(p_tenant uuid, p_name text, p_slug text)",
            "tenant_delete(p_user uuid, p_api_key uuid, p_address text, p_request_id text)",
            "auth_issue_account_token(p_user uuid, p_purpose text, p_email text, p_token_hash text, p_code_hash text, p_lifetime interval, p_spacing interval, p_per_hour integer)",
            "auth_find_account_token(p_purpose text, p_token_hash text, p_email text, p_code text)",
            "auth_verify_email(p_token_hash text, p_address text, p_request_id text)",
            "auth_reset_password(p_token_hash text, p_password_hash text, p_address text, p_request_id text)",
            "auth_change_email(p_token_hash text, p_address text, p_request_id text)", "auth_change_password(p_user uuid, p_password_hash text)",
            "auth_mail_profile(p_user uuid)", "auth_email_taken(p_email text)", "auth_user_verification(p_user uuid)",
            "auth_record_flow_event(p_kind text, p_tenant uuid, p_user uuid, p_address text, p_request_id text, p_detail jsonb)",
            "auth_require_verified_email(p_user uuid, p_tenant uuid)",
            "auth_mfa_state(p_user uuid)", "auth_mfa_begin(p_user uuid, p_sealed_secret text, p_key_id text)",
            "auth_mfa_accept_step(p_user uuid, p_step bigint)",
            "auth_mfa_confirm(p_user uuid, p_step bigint, p_recovery_hashes text[], p_address text, p_request_id text)",
            "auth_mfa_use_recovery_code(p_user uuid, p_code_hash text)", "auth_mfa_disable(p_user uuid, p_kind text, p_address text, p_request_id text)",
            "auth_mfa_challenge(p_user uuid, p_tenant uuid, p_challenge_hash text, p_lifetime interval, p_address text, p_request_id text)",
            "auth_mfa_find_challenge(p_challenge_hash text)", "auth_mfa_complete_challenge(p_challenge_hash text)",
            "auth_mfa_failed(p_user uuid, p_address text, p_request_id text)", "auth_mfa_recovery_used(p_user uuid, p_address text, p_request_id text)",
            "auth_mfa_reseal(p_user uuid, p_old_key_id text, p_sealed_secret text, p_key_id text)",
        ] {
            grants["atrium." + function] = ["atrium_app"]
        }
        // Called only by the flow functions, never directly.
        grants["atrium.auth_account_event(p_kind text, p_tenant uuid, p_user uuid, p_address text, p_request_id text, p_detail jsonb)"] = []
        grants["atrium.auth_use_account_token(p_purpose text, p_token_hash text)"] = []
        for function in [
            "create_tenant(p_name text, p_slug text, p_owner_email text, p_valid_for interval)", "disable_user(p_email text)",
            "enable_user(p_email text)", "revoke_tenant_sessions(p_tenant text)", "reset_mfa(p_email text)",
            // What each view reads, as its owner (migration 017).
            "mail_queue_rows()", "recent_changes_rows()", "servers_rows()", "tenant_overview_rows()", "user_overview_rows()",
            "webhook_backlog_rows()",
        ] {
            grants["atrium_admin." + function] = ["atrium_admin"]
        }
        return grants
    }()

    @Test func everyFunctionIsExecutableByExactlyTheRolesMeantForIt() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let rows = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                       p.proowner::regrole::text, p.prosecdef, coalesce(array_to_string(p.proconfig, ','), ''),
                       coalesce((SELECT string_agg(g.name, ',' ORDER BY g.name) FROM (
                           SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS name
                           FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                           WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) g), '')
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname IN ('atrium', 'atrium_admin')
                ORDER BY 1
                """)
        }
        var seen: Set<String> = []
        for row in rows {
            let (function, owner, definer, settings, grantees) = try row.decode((String, String, Bool, String, String).self)
            seen.insert(function)
            let granted = Set(grantees.split(separator: ",").map(String.init))
            #expect(!granted.contains("PUBLIC"), "PUBLIC may execute \(function)")
            guard let expected = Self.functionGrants[function] else {
                Issue.record("\(function) is not in the list of functions and their grants")
                continue
            }
            #expect(granted == expected, "\(function) is executable by \(granted.sorted()), expected \(expected.sorted())")
            if definer {
                // Crossing tenants on purpose: owned by the narrow role, with a pinned search path.
                #expect(owner == "atrium_definer", "\(function) is SECURITY DEFINER but owned by \(owner)")
                #expect(settings.contains("search_path=pg_catalog, pg_temp"), "\(function) does not pin its search_path")
            }
        }
        #expect(seen == Set(Self.functionGrants.keys), "listed but missing: \(Set(Self.functionGrants.keys).subtracting(seen).sorted())")
    }

    @Test func functionsCreatedLaterAreNotExecutableByPublic() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let grantees = try await database.withSuperuser { connection in
            try await connection.simpleQuery("""
                BEGIN;
                SET LOCAL ROLE atrium_owner;
                CREATE FUNCTION atrium.probe_owner() RETURNS int LANGUAGE sql AS 'SELECT 1';
                SET LOCAL ROLE atrium_definer;
                CREATE FUNCTION atrium.probe_definer() RETURNS int LANGUAGE sql AS 'SELECT 1';
                """)
            let rows = try await connection.query("""
                SELECT count(*)::int8 FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE p.proname IN ('probe_owner', 'probe_definer') AND a.grantee = 0
                """)
            try await connection.simpleQuery("ROLLBACK")
            return try rows[0].decode(Int.self, column: 0)
        }
        #expect(grantees == 0)
    }

    @Test func theServiceRoleIsUnprivilegedAndOwnsNothing() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let role = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin
                FROM pg_roles WHERE rolname = 'atrium_app'
                """)
        }
        let (superuser, bypass, createRole, createDatabase, login) = try #require(role.single).decode((Bool, Bool, Bool, Bool, Bool).self)
        #expect(!superuser)
        #expect(!bypass)
        #expect(!createRole)
        #expect(!createDatabase)
        #expect(login)
        let owned = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT (SELECT count(*) FROM pg_class WHERE relowner = 'atrium_app'::regrole)
                     + (SELECT count(*) FROM pg_namespace WHERE nspowner = 'atrium_app'::regrole)
                     + (SELECT count(*) FROM pg_proc WHERE proowner = 'atrium_app'::regrole)
                     + (SELECT count(*) FROM pg_type WHERE typowner = 'atrium_app'::regrole)
                     + (SELECT count(*) FROM pg_database WHERE datdba = 'atrium_app'::regrole)
                """)
        }
        #expect(try owned[0].decode(Int.self, column: 0) == 0)
        // Not even a member of the owner role, so it cannot SET ROLE its way past the policies.
        let member = try await database.withSuperuser { connection in
            try await connection.query("SELECT pg_has_role('atrium_app', 'atrium_owner', 'MEMBER')")
        }
        #expect(try member[0].decode(Bool.self, column: 0) == false)
    }

    @Test func atriumObjectsBelongToTheOwnerRoleAndAreDocumented() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let tables = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT c.oid::regclass::text, pg_get_userbyid(c.relowner)::text, obj_description(c.oid, 'pg_class')
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'atrium' AND c.relkind IN ('r', 'p', 'v', 'm')
                """)
        }
        #expect(!tables.isEmpty)
        for row in tables {
            let (table, owner, comment) = try row.decode((String, String, String?).self)
            #expect(owner == "atrium_owner", "\(table) is owned by \(owner)")
            #expect(comment?.isEmpty == false, "\(table) has no COMMENT")
        }
        let columns = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT c.oid::regclass::text || '.' || a.attname
                FROM pg_attribute a
                JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'atrium' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                  AND col_description(c.oid, a.attnum) IS NULL
                """)
        }
        let undocumented = try columns.map { try $0.decode(String.self, column: 0) }
        #expect(undocumented.isEmpty, "columns without COMMENT: \(undocumented)")
    }

    @Test func securityDefinerFunctionsArePinnedAndNotPublic() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let rows = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT p.oid::regprocedure::text,
                       coalesce(array_to_string(p.proconfig, ','), ''),
                       has_function_privilege('public', p.oid, 'EXECUTE') OR EXISTS (
                           SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0),
                       pg_get_userbyid(p.proowner)::text
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname IN ('atrium', 'atrium_admin') AND p.prosecdef
                """)
        }
        #expect(rows.count >= 15)
        for row in rows {
            let (function, config, publicExecute, owner) = try row.decode((String, String, Bool, String).self)
            #expect(config.contains("search_path=pg_catalog"), "\(function) does not pin its search_path")
            #expect(!publicExecute, "\(function) is executable by PUBLIC")
            #expect(owner == "atrium_definer", "\(function) is owned by \(owner)")
        }
    }

    @Test func theServiceRoleReachesGlobalTablesOnlyThroughFunctions() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let rows = try await database.withSuperuser { connection in
            try await connection.query("""
                SELECT c.relname::text,
                       has_table_privilege('atrium_app', c.oid, 'SELECT,INSERT,UPDATE,DELETE'),
                       c.relrowsecurity AND c.relforcerowsecurity
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'atrium' AND c.relkind = 'r'
                """)
        }
        var tables: [String: (privileged: Bool, forced: Bool)] = [:]
        for row in rows {
            let (name, privileged, forced) = try row.decode((String, Bool, Bool).self)
            tables[name] = (privileged, forced)
            #expect(forced, "\(name) does not have row-level security enabled and forced")
        }
        for global in ["users", "login_failures", "login_addresses", "revoked_sessions", "change_log_state"] {
            #expect(tables[global]?.privileged == false, "atrium_app can touch atrium.\(global) directly")
        }
        // The audit trail and the change log are append-only for the service: what was
        // recorded or announced is never rewritten (only retention, as the definer, deletes
        // changes).
        for table in ["atrium.auth_events", "atrium.record_changes"] {
            let privileges = try await database.withSuperuser { connection in
                try await connection.query("""
                    SELECT has_table_privilege('atrium_app', \(table), 'INSERT'), has_table_privilege('atrium_app', \(table), 'SELECT'),
                           has_table_privilege('atrium_app', \(table), 'UPDATE'), has_table_privilege('atrium_app', \(table), 'DELETE'),
                           has_table_privilege('atrium_app', \(table), 'TRUNCATE')
                    """)
            }
            #expect(try privileges[0].decode((Bool, Bool, Bool, Bool, Bool).self) == (true, true, false, false, false), "\(table)")
        }
    }
}
