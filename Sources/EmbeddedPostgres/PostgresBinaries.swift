import Foundation

/// Where the PostgreSQL server programs (`initdb`, `postgres`) are installed.
public struct PostgresBinaries: Sendable {
    public let directory: String

    public var initdb: String { self.directory + "/initdb" }
    public var postgres: String { self.directory + "/postgres" }
    public var pgbench: String { self.directory + "/pgbench" }
    public var psql: String { self.directory + "/psql" }

    /// Finds the newest installed PostgreSQL: `ATRIUM_POSTGRES_BIN` if set, the Debian/Ubuntu
    /// layout, Homebrew, then `PATH`.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresBinaries {
        var candidates: [String] = []
        if let explicit = environment["ATRIUM_POSTGRES_BIN"], !explicit.isEmpty {
            candidates.append(explicit)
        }
        candidates += Self.versionedDirectories(in: "/usr/lib/postgresql", prefix: "")
        candidates += Self.versionedDirectories(in: "/usr", prefix: "pgsql-")
        candidates += Self.homebrewDirectories()
        candidates += ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"]
        candidates += (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let fileManager = FileManager.default
        for directory in candidates
        where fileManager.isExecutableFile(atPath: directory + "/initdb")
            && fileManager.isExecutableFile(atPath: directory + "/postgres") {
            return PostgresBinaries(directory: directory)
        }
        if let explicit = environment["ATRIUM_POSTGRES_BIN"], !explicit.isEmpty {
            throw EmbeddedPostgresError("ATRIUM_POSTGRES_BIN=\(explicit) does not contain initdb and postgres")
        }
        throw EmbeddedPostgresError(
            "PostgreSQL server programs (initdb, postgres) were not found. Install PostgreSQL "
                + "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) "
                + "or set DATABASE_URL to use an existing server."
        )
    }

    /// Entries of `parent` named `prefix` + version, as `parent/entry/bin`, newest first
    /// (`/usr/lib/postgresql/16/bin`, `/usr/lib/postgresql/15/bin`; `/usr/pgsql-16/bin`).
    private static func versionedDirectories(in parent: String, prefix: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return [] }
        return entries
            .compactMap { entry -> (Double, String)? in
                guard entry.hasPrefix(prefix), let version = Double(entry.dropFirst(prefix.count)) else { return nil }
                return (version, parent + "/" + entry + "/bin")
            }
            .sorted { $0.0 > $1.0 }
            .map(\.1)
    }

    private static func homebrewDirectories() -> [String] {
        ["/opt/homebrew/opt", "/usr/local/opt"].flatMap { root -> [String] in
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
            return entries.filter { $0.hasPrefix("postgresql") }.sorted(by: >).map { root + "/" + $0 + "/bin" }
        }
    }
}
