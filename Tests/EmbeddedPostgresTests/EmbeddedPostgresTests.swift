import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import Testing

@Suite struct EmbeddedPostgresTests {
    @Test func missingServerProgramsGiveOneClearMessage() {
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try PostgresBinaries.locate(environment: ["PATH": "/nonexistent"], standardLocations: [])
        }
        #expect(error?.message.contains("Install PostgreSQL") == true)
        #expect(error?.message.contains("DATABASE_URL") == true)

        let explicit = #expect(throws: EmbeddedPostgresError.self) {
            try PostgresBinaries.locate(environment: ["ATRIUM_POSTGRES_BIN": "/nonexistent/bin"])
        }
        #expect(explicit?.message.contains("ATRIUM_POSTGRES_BIN=/nonexistent/bin") == true)
    }

    @Test func aPersistentClusterKeepsItsDataAndPortAcrossRestartsAndRefusesASecondOwner() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-persist-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await EmbeddedPostgres.start(.persistent(at: directory), logger: TestLogger.make("persist"))
        let status = try await EmbeddedPostgres.runProgram([
            first.binaries.psql, "-h", first.socketDirectory, "-p", "\(first.port)", "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')",
        ])
        #expect(status.status == 0, "\(status.output)")
        // A second process (or cluster object) may not run a server on the same data at once.
        await #expect(throws: EmbeddedPostgresError.self) {
            _ = try await EmbeddedPostgres.start(.persistent(at: directory), logger: TestLogger.make("persist"))
        }
        let port = first.port
        await first.stop()

        let second = try await EmbeddedPostgres.start(.persistent(at: directory), logger: TestLogger.make("persist"))
        #expect(second.port == port)
        let read = try await EmbeddedPostgres.runProgram([
            second.binaries.psql, "-h", second.socketDirectory, "-p", "\(second.port)", "-U", "postgres", "-d", "postgres",
            "-At", "-c", "SELECT value FROM kept",
        ])
        #expect(read.output.trimmingCharacters(in: .whitespacesAndNewlines) == "still here")
        await second.stop()
    }
}
