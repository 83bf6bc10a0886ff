@testable import AtriumHTTP
import AtriumText
import Foundation
import Synchronization
import Testing

/// Collects what an access log writes, line by line.
final class CapturedAccessLog: Sendable {
    private let bytes = Mutex<[UInt8]>([])

    var sink: AccessLog.Sink {
        .handler { batch in self.bytes.withLock { $0.append(contentsOf: batch) } }
    }

    var lines: [String] {
        let text = self.bytes.withLock { String(decoding: $0, as: UTF8.self) }
        return text.split(separator: "\n").map(String.init)
    }
}

/// The access log's two line formats, byte for byte, and its behaviour when the writer cannot keep up.
@Suite struct AccessLogFormatTests {
    static let entry = AccessLog.Entry(
        time: Date(timeIntervalSince1970: 1_796_475_728.123), label: "atrium", method: .get,
        route: "/v1/collections/{name}/records/{id}", status: 200, duration: .nanoseconds(12_345_678),
        clientAddress: "192.0.2.1", requestID: "trace-me-42",
        tenant: UUID(canonical: "01234567-89ab-cdef-fedc-ba9876543210"), user: UUID(canonical: "11111111-2222-3333-4444-555555555555")
    )

    static func fields(of line: String) throws -> [String: String] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        return try object.mapValues { try #require($0 as? String, "every value is a string") }
    }

    @Test func textLinesReadLikeEveryOtherLogLine() {
        var output: [UInt8] = []
        AccessLog.text(Self.entry, into: &output)
        #expect(String(decoding: output, as: UTF8.self) == """
            2026-12-05T13:02:08+0000 info atrium: client.address=192.0.2.1 duration_ms=12.346 hb.request.id=trace-me-42 \
            http.method=GET http.route=/v1/collections/{name}/records/{id} http.status=200 \
            tenant.id=01234567-89ab-cdef-fedc-ba9876543210 user.id=11111111-2222-3333-4444-555555555555 [AtriumHTTP] request

            """)
    }

    @Test func jsonLinesHaveSortedKeysAndStringValues() throws {
        var entry = Self.entry
        entry.user = nil
        entry.apiKey = UUID(canonical: "11111111-2222-3333-4444-555555555555")
        entry.clientAddress = "<script>\"\n"
        var output: [UInt8] = []
        AccessLog.json(entry, into: &output)
        let line = String(decoding: output, as: UTF8.self)
        #expect(line == #"{"apikey.id":"11111111-2222-3333-4444-555555555555","client.address":"\u003cscript\u003e\"\n","duration_ms":"12.346","hb.request.id":"trace-me-42","http.method":"GET","http.route":"/v1/collections/{name}/records/{id}","http.status":"200","level":"info","logger":"atrium","message":"request","tenant.id":"01234567-89ab-cdef-fedc-ba9876543210","time":"2026-12-05T13:02:08.123Z"}"# + "\n")
        let parsed = try Self.fields(of: line)
        #expect(parsed["client.address"] == "<script>\"\n")
    }

    @Test func aControlCharacterCannotForgeATextLine() {
        var entry = Self.entry
        entry.clientAddress = "1.2.3.4\n2026-01-01T00:00:00+0000 info forged"
        var output: [UInt8] = []
        AccessLog.text(entry, into: &output)
        #expect(output.filter { $0 == UInt8(ascii: "\n") }.count == 1)
    }

    @Test(arguments: [(0, "0.000"), (499, "0.000"), (500, "0.001"), (1_000_000, "1.000"), (61_000_123_456, "61000.123")] as [(Int64, String)])
    func durations(nanoseconds: Int64, text: String) throws {
        var entry = Self.entry
        entry.duration = .nanoseconds(nanoseconds)
        var output: [UInt8] = []
        AccessLog.json(entry, into: &output)
        #expect(try Self.fields(of: String(decoding: output, as: UTF8.self))["duration_ms"] == text)
    }

    /// A writer that cannot write (a stalled pipe) holds at most what the queue holds; every
    /// other line is dropped and counted, and recording never waits.
    @Test func aStalledWriterDropsAndCountsInsteadOfQueueing() async throws {
        let gate = Mutex(false)
        let delivered = Mutex(0)
        let log = AccessLog(format: .text, capacity: 4, sink: .handler { batch in
            while !gate.withLock({ $0 }) { usleep(1_000) }
            delivered.withLock { $0 += batch.filter { $0 == UInt8(ascii: "\n") }.count }
        })
        let recorded = 1_000
        for _ in 0..<recorded { log.record(Self.entry) }
        // At most one batch is in the stalled sink and one queue's worth waits behind it.
        #expect(log.dropped >= recorded - 2 * 4)
        gate.withLock { $0 = true }
        log.stop()
        #expect(log.written + log.dropped == recorded)
        #expect(delivered.withLock { $0 } == log.written)
    }
}
