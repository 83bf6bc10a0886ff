import ArgumentParser

/// Options every command that touches the database shares. Each falls back to an environment
/// variable, then to a default; `Settings` resolves them in one place.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL for the service role (env DATABASE_URL). Without it, an embedded cluster under --data-dir is used.")
    var databaseURL: String?

    @Option(help: "PostgreSQL URL for migrations, a role that can become atrium_owner (env ATRIUM_MIGRATION_DATABASE_URL; default: --database-url).")
    var migrationDatabaseURL: String?

    @Option(help: "Directory of the embedded cluster and generated keys (env ATRIUM_DATA_DIR; default .atrium).")
    var dataDir: String?

    @Option(help: "Most database connections (env ATRIUM_DB_MAX_CONNECTIONS; default 8).")
    var dbMaxConnections: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env ATRIUM_LOG_LEVEL; default info).")
    var logLevel: String?

    @Option(help: "Log format: text or json (env ATRIUM_LOG_FORMAT; default text).")
    var logFormat: String?
}
