import AtriumTestSupport
import EmbeddedPostgres
import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    static func canConnect(_ cluster: EmbeddedPostgres) async -> Bool {
        let result = try? await EmbeddedPostgres.runProgram([
            cluster.binaries.psql, "-h", cluster.socketDirectory, "-p", "\(cluster.port)", "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1",
        ])
        return result?.status == 0
    }

    @Test func aKilledServerIsReapedAndRestartedByItsSupervisor() async throws {
        let cluster = try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("supervised"))
        let supervision = Task { try await cluster.supervise(policy: .init(delays: [.milliseconds(100), .milliseconds(300)])) }
        do {
            let first = try #require(cluster.postmasterPID)
            kill(first, SIGKILL)
            // Back by itself, a new postmaster, the old one reaped (no zombie holds its pid).
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if cluster.status == .init(phase: .running, restarts: 1), await Self.canConnect(cluster) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(cluster.status == .init(phase: .running, restarts: 1))
            #expect(await Self.canConnect(cluster))
            #expect(cluster.postmasterPID != first)
            #expect(kill(first, 0) != 0, "the killed postmaster must not linger as a zombie")
        } catch {
            supervision.cancel()
            await cluster.stop()
            throw error
        }
        // Stopping on purpose is not a crash: supervision ends quietly, the status stays running.
        await cluster.stop()
        try await supervision.value
        #expect(cluster.status.restarts == 1)
    }

    @Test func aServerThatCannotBeRestartedMakesSupervisionGiveUp() async throws {
        let cluster = try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("doomed"))
        let supervision = Task { try await cluster.supervise(policy: .init(delays: [.milliseconds(50), .milliseconds(50)])) }
        // Its data directory becomes unusable, then it dies: every restart fails.
        let data = cluster.dataDirectory
        chmod(data, 0)
        defer { chmod(data, 0o700) }
        kill(try #require(cluster.postmasterPID), SIGKILL)
        await #expect(throws: EmbeddedPostgresError.self) { try await supervision.value }
        #expect(cluster.status.phase == .failed)
        chmod(data, 0o700)
        await cluster.stop()
    }
}
