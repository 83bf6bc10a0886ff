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
}
