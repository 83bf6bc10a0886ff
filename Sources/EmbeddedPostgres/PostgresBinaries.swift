import Foundation

/// Where the PostgreSQL server programs (`initdb`, `postgres`) are installed.
public struct PostgresBinaries: Sendable {
    public let directory: String

    public var initdb: String { self.directory + "/initdb" }
    public var postgres: String { self.directory + "/postgres" }
    public var pgbench: String { self.directory + "/pgbench" }
    public var psql: String { self.directory + "/psql" }

    /// Finds the server programs: in `ATRIUM_POSTGRES_BIN` when it is set (and only there), else
    /// the newest installed PostgreSQL in the Debian/Ubuntu and Red Hat layouts, Homebrew, then `PATH`.
    public static func locate(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        standardLocations: [String]? = nil
    ) throws -> PostgresBinaries {
        if let explicit = environment["ATRIUM_POSTGRES_BIN"], !explicit.isEmpty {
            guard Self.holdsServerPrograms(explicit) else {
                throw EmbeddedPostgresError("ATRIUM_POSTGRES_BIN=\(explicit) does not contain initdb and postgres")
            }
            return PostgresBinaries(directory: explicit)
        }
        let candidates = (standardLocations ?? Self.standardLocations)
            + (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        if let directory = candidates.first(where: Self.holdsServerPrograms) {
            return PostgresBinaries(directory: directory)
        }
        throw EmbeddedPostgresError(
            "PostgreSQL server programs (initdb, postgres) were not found. Install PostgreSQL "
                + "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) "
                + "or set DATABASE_URL to use an existing server."
        )
    }

    private static var standardLocations: [String] {
        Self.versionedDirectories(in: "/usr/lib/postgresql", prefix: "")
            + Self.versionedDirectories(in: "/usr", prefix: "pgsql-")
            + Self.homebrewDirectories()
            + ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"]
    }

    private static func holdsServerPrograms(_ directory: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: directory + "/initdb")
            && FileManager.default.isExecutableFile(atPath: directory + "/postgres")
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
