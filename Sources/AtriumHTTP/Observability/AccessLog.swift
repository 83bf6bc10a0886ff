import AtriumCore
import AtriumText
import Foundation
import HTTPTypes
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The access log: one line per request, off the request's path. A request only appends a
/// small entry to a bounded queue (no formatting, no I/O, no Foundation); a dedicated thread
/// formats batches into a reused buffer and writes them. When the writer falls behind (a slow
/// pipe, a stalled disk) entries beyond the queue's capacity are dropped and counted, never
/// queued without bound and never waited for.
public final class AccessLog: Sendable {
    public enum Format: Sendable {
        /// As swift-log's `StreamLogHandler` writes a record: time, level, label, sorted
        /// `key=value` metadata, `[AtriumHTTP] request`.
        case text
        /// One JSON object per line with sorted keys, as `ATRIUM_LOG_FORMAT=json` writes every record.
        case json
    }

    /// Where formatted lines go.
    public enum Sink: Sendable {
        case standardError
        /// Each batch of whole lines (tests).
        case handler(@Sendable ([UInt8]) -> Void)
    }

    struct Entry: Sendable {
        var time: Date
        var label: String
        var method: HTTPRequest.Method
        var route: String
        var status: Int
        var duration: Duration
        var clientAddress: String
        var requestID: String
        var tenant: UUID? = nil
        var user: UUID? = nil
        var apiKey: UUID? = nil
    }

    private struct Queue {
        var entries: [Entry] = []
        var dropped = 0
        var written = 0
    }

    let format: Format
    let capacity: Int
    private let sink: Sink
    private let queue: Mutex<Queue>
    /// Held while a batch is formatted and written, so the final flush and the thread take turns.
    private let writing = Mutex<[UInt8]>([])
    private let stopped = Atomic<Bool>(false)

    public init(format: Format = .text, capacity: Int = 16_384, sink: Sink = .standardError) {
        self.format = format
        self.capacity = capacity
        self.sink = sink
        var queue = Queue()
        queue.entries.reserveCapacity(min(capacity, 1024))
        self.queue = Mutex(queue)
        let reference = WeakReference(self)
        let thread = Thread { Self.writerLoop(reference) }
        thread.name = "atrium-access-log"
        thread.start()
    }

    /// Lines dropped because the writer had fallen behind, since start.
    public var dropped: Int { self.queue.withLock { $0.dropped } }

    /// Lines handed to the sink, since start.
    public var written: Int { self.queue.withLock { $0.written } }

    /// Called on the request's path: appends, or counts a drop. Never blocks on I/O.
    func record(_ entry: Entry) {
        self.queue.withLock { queue in
            if queue.entries.count < self.capacity {
                queue.entries.append(entry)
            } else {
                queue.dropped += 1
            }
        }
    }

    /// Writes what is queued; false when there was nothing.
    @discardableResult
    func flush() -> Bool {
        self.writing.withLock { buffer in
            let batch = self.queue.withLock { queue in
                var taken: [Entry] = []
                taken.reserveCapacity(min(self.capacity, 1024))
                swap(&taken, &queue.entries)
                return taken
            }
            guard !batch.isEmpty else { return false }
            buffer.removeAll(keepingCapacity: true)
            for entry in batch {
                self.write(entry, into: &buffer)
            }
            self.deliver(buffer)
            self.queue.withLock { $0.written += batch.count }
            return true
        }
    }

    /// Stops the writer thread after a last flush.
    func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.flush()
    }

    private final class WeakReference: Sendable {
        weak let log: AccessLog?
        init(_ log: AccessLog) { self.log = log }
    }

    /// Drains every few milliseconds while there is work, and ends with the log.
    private static func writerLoop(_ reference: WeakReference) {
        while true {
            let wrote: Bool? = {
                guard let log = reference.log, !log.stopped.load(ordering: .acquiring) else { return nil }
                return log.flush()
            }()
            guard let wrote else { return }
            if !wrote { usleep(5_000) }
        }
    }

    private func deliver(_ bytes: [UInt8]) {
        switch self.sink {
        case .handler(let handler): handler(bytes)
        case .standardError:
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let count = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                    if count < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += count
                }
            }
        }
    }

    // MARK: Formatting

    func write(_ entry: Entry, into output: inout [UInt8]) {
        switch self.format {
        case .text: Self.text(entry, into: &output)
        case .json: Self.json(entry, into: &output)
        }
    }

    /// `2026-12-05T15:39:26+0000 info atrium: client.address=… duration_ms=… … [AtriumHTTP] request`
    static func text(_ entry: Entry, into output: inout [UInt8]) {
        var time: [UInt8] = []
        RFC3339.write(entry.time, into: &time)
        output.append(contentsOf: time.prefix(19))
        output.append(contentsOf: "+0000 info ".utf8)
        Self.plain(entry.label, into: &output)
        output.append(UInt8(ascii: ":"))
        Self.fields(of: entry, withRecordFields: false) { key, value in
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            output.append(UInt8(ascii: "="))
            Self.write(value, into: &output)
        }
        output.append(contentsOf: " [AtriumHTTP] request\n".utf8)
    }

    /// `{"client.address":…,"duration_ms":"…",…,"level":"info","logger":…,"message":"request",…,"time":…}`:
    /// keys in sorted order and every value a string, as `JSONLogHandler` writes a record.
    static func json(_ entry: Entry, into output: inout [UInt8]) {
        var first = true
        output.append(UInt8(ascii: "{"))
        func field(_ key: StaticString, _ value: Value) {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            output.append(UInt8(ascii: "\""))
            output.append(contentsOf: UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            output.append(contentsOf: "\":".utf8)
            if case .text(let text) = value {
                JSONSerializer.write(text, into: &output)
            } else {
                output.append(UInt8(ascii: "\""))
                Self.write(value, into: &output)
                output.append(UInt8(ascii: "\""))
            }
        }
        Self.fields(of: entry, withRecordFields: true, field)
        output.append(contentsOf: "}\n".utf8)
    }

    enum Value {
        case text(String)
        case time(Date)
        case id(UUID)
        case integer(Int)
        case milliseconds(Duration)
    }

    /// A value as text: as it is (no control characters), or formatted.
    private static func write(_ value: Value, into output: inout [UInt8]) {
        switch value {
        case .text(let text): Self.plain(text, into: &output)
        case .time(let time): RFC3339.write(time, into: &output)
        case .id(let id): id.appendLowercased(to: &output)
        case .integer(let integer): Self.decimal(integer, into: &output)
        case .milliseconds(let duration): Self.milliseconds(duration, into: &output)
        }
    }

    /// The request's fields in sorted order of their keys; with `withRecordFields`, also the
    /// record's own (level, logger, message, time) in their places, as a JSON line has them.
    private static func fields(of entry: Entry, withRecordFields: Bool, _ body: (StaticString, Value) -> Void) {
        if let apiKey = entry.apiKey { body("apikey.id", .id(apiKey)) }
        body("client.address", .text(entry.clientAddress))
        body("duration_ms", .milliseconds(entry.duration))
        body("hb.request.id", .text(entry.requestID))
        body("http.method", .text(entry.method.rawValue))
        body("http.route", .text(entry.route))
        body("http.status", .integer(entry.status))
        if withRecordFields {
            body("level", .text("info"))
            body("logger", .text(entry.label))
            body("message", .text("request"))
        }
        if let tenant = entry.tenant { body("tenant.id", .id(tenant)) }
        if withRecordFields { body("time", .time(entry.time)) }
        if let user = entry.user { body("user.id", .id(user)) }
    }

    /// Text as it is, but no control character can start a forged line.
    private static func plain(_ text: String, into output: inout [UInt8]) {
        for byte in text.utf8 {
            output.append(byte < 0x20 || byte == 0x7F ? UInt8(ascii: "?") : byte)
        }
    }

    private static func decimal(_ value: Int, into output: inout [UInt8]) {
        if value < 0 {
            output.append(UInt8(ascii: "-"))
            Self.decimal(UInt64(-value), minimumDigits: 1, into: &output)
        } else {
            Self.decimal(UInt64(value), minimumDigits: 1, into: &output)
        }
    }

    private static func decimal(_ value: UInt64, minimumDigits: Int, into output: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0 || count < minimumDigits
            for index in stride(from: count - 1, through: 0, by: -1) { output.append(buffer[index]) }
        }
    }

    /// Milliseconds with three decimals (`12.345`), rounded to the microsecond.
    private static func milliseconds(_ duration: Duration, into output: inout [UInt8]) {
        let (seconds, attoseconds) = duration.components
        let micros = max(0, seconds * 1_000_000 + (attoseconds + 500_000_000_000) / 1_000_000_000_000)
        Self.decimal(UInt64(micros / 1000), minimumDigits: 1, into: &output)
        output.append(UInt8(ascii: "."))
        Self.decimal(UInt64(micros % 1000), minimumDigits: 3, into: &output)
    }
}

extension AccessLog: Service {
    /// Runs with the application: at shutdown, what is queued is written before the process ends.
    public func run() async throws {
        try? await gracefulShutdown()
        self.stop()
    }
}
