import AtriumCrypto

/// The numbered SQL files from `sql/`, compiled into the binary by the EmbedMigrations plugin.
public enum Migrations {
    /// One migration file as it was embedded.
    public struct File: Sendable {
        public let name: String
        public let sql: String

        public init(name: String, sql: String) {
            self.name = name
            self.sql = sql
        }
    }

    /// A migration ready to apply: its version, name, SQL and checksum.
    public struct Migration: Sendable, Hashable {
        /// The leading number of the file name.
        public let version: Int
        /// The file name, e.g. `003_tenants.sql`.
        public let name: String
        public let sql: String
        /// Hex SHA-256 of the SQL; an applied migration whose file no longer matches is refused.
        public let checksum: String
        /// Runs as the connecting user instead of `atrium_owner` (the roles migration).
        public let runsAsSessionUser: Bool
    }

    /// The embedded migrations in version order.
    public static func all() throws -> [Migration] {
        try self.load(self.embedded)
    }

    /// `sql/citus/roles.sql`: run before the migrations on a Citus coordinator.
    static var citusRoles: File { self.citusFile("roles.sql") }
    /// `sql/citus/distribute.sql`: run after them there.
    static var citusDistribution: File { self.citusFile("distribute.sql") }

    private static func citusFile(_ name: String) -> File {
        guard let file = self.embeddedCitus.first(where: { $0.name == name }) else {
            preconditionFailure("sql/citus/\(name) was not embedded")
        }
        return file
    }

    /// Validates and orders migration files: names must be `NNN_name.sql`, versions unique.
    public static func load(_ files: [File]) throws -> [Migration] {
        var seen: [Int: String] = [:]
        var migrations: [Migration] = []
        for file in files {
            let digits = file.name.prefix { $0.isNumber }
            guard let version = Int(digits), file.name.dropFirst(digits.count).hasPrefix("_"), file.name.hasSuffix(".sql") else {
                throw MigrationError("migration file \(file.name) is not named NNN_description.sql")
            }
            if let other = seen[version] {
                throw MigrationError("migrations \(other) and \(file.name) share version \(version)")
            }
            seen[version] = file.name
            let firstLine = file.sql.prefix { $0 != "\n" }
            migrations.append(Migration(
                version: version,
                name: file.name,
                sql: file.sql,
                checksum: Hex.encode(SHA256.hash(file.sql)),
                runsAsSessionUser: firstLine.contains("atrium:run-as session-user")
            ))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// Why migrating failed or was refused.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
