import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

@Suite struct ConnectionTests {
    @Test func roundTripsTypedValues() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase()
        let connection = try await PostgresConnection.connect(
            configuration: try await TestCluster.shared.superuserConfiguration(database: database),
            logger: TestLogger.make("test")
        )
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let rows = try await connection.query(
            "SELECT \(id)::uuid, \(Int64(42))::int8, \(3.5)::float8, \(true)::bool, \("héllo")::text, \(when)::timestamptz, NULL::text, '{\"a\": 1}'::jsonb"
        )
        let row = try #require(rows.single)
        #expect(try row.decode(UUID.self, column: 0) == id)
        #expect(try row.decode(Int.self, column: 1) == 42)
        #expect(try row.decode(Double.self, column: 2) == 3.5)
        #expect(try row.decode(Bool.self, column: 3) == true)
        #expect(try row.decode(String.self, column: 4) == "héllo")
        let decodedDate = try row.decode(Date.self, column: 5)
        #expect(abs(decodedDate.timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000_001)
        #expect(try row.decode(String?.self, column: 6) == nil)
        #expect(try String(decoding: row.decode(PostgresBytes.self, column: 7).bytes, as: UTF8.self) == "{\"a\": 1}")
        await connection.close()
    }

    @Test func aCellThatDoesNotDecodeNamesItsColumn() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase()
        let connection = try await PostgresConnection.connect(
            configuration: try await TestCluster.shared.superuserConfiguration(database: database),
            logger: TestLogger.make("test")
        )
        let row = try #require(try await connection.query("SELECT 'many'::text AS word, NULL::int8 AS nothing").single)
        let wrongType = try #require(throws: PostgresError.self) { try row.decode(Int.self, column: 0) }
        #expect(wrongType.code == .decoding)
        #expect(wrongType.message.contains("\"word\"") && wrongType.message.contains("Int"), "\(wrongType.message)")
        let null = try #require(throws: PostgresError.self) { try row.decode(Int.self, column: 1) }
        #expect(null.message.contains("\"nothing\"") && null.message.contains("NULL"), "\(null.message)")
        let outside = try #require(throws: PostgresError.self) { try row.decode(String.self, column: 2) }
        #expect(outside.message.contains("column 2 requested but the result has 2"), "\(outside.message)")
        await connection.close()
    }
}

@Suite struct LargeValueTests {
    @Test func largeParametersAndResultsCrossTheSocketInPieces() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase()
        let pool = ConnectionPool(
            configuration: PoolConfiguration(connection: try await TestCluster.shared.superuserConfiguration(database: database), maxConnections: 2),
            logger: TestLogger.make("large")
        )
        // Several MiB each way: far beyond a socket buffer, so writes wait for writability
        // and reads arrive over many events.
        let big = String(repeating: "atrium-", count: 600_000)
        let echoed = try await pool.query("SELECT length(\(big)::text)::int8, md5(\(big)::text)")
        #expect(try echoed[0].decode(Int.self, column: 0) == big.utf8.count)
        let generated = try await pool.query("SELECT repeat('x', 5000000)")
        #expect(try generated[0].decode(String.self, column: 0).utf8.count == 5_000_000)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let rows = try await pool.query("SELECT length(repeat(\(String(index)), 1000000) || \(big)::text)::int8")
                    return try rows[0].decode(Int.self, column: 0)
                }
            }
            for try await length in group {
                #expect(length == 1_000_000 + big.utf8.count)
            }
        }
        await pool.close()
    }
}
