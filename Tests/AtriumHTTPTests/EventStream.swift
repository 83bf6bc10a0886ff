import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One Server-Sent Event as a client parses it (comments kept, for heartbeats).
struct ServerSentEvent: Sendable, Equatable {
    var id: String?
    var event: String?
    var data: String?
    var comment: String?
    var retry: Int?

    /// `data` as a JSON object; a non-object fails the test through `JSONResponse.object`.
    var json: [String: Any] { JSONResponse.object(of: self.data ?? "") }
}

/// A live `GET /v1/events` stream read as it arrives, parsed per the SSE framing.
final class EventStream: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: String
    private let received = Mutex<(events: [ServerSentEvent], ended: Bool)>(([], false))
    private let reader = Mutex<Task<Void, Never>?>(nil)

    /// Opens a stream (`path` with its query) on a live server. A non-200 answer is kept in
    /// `status` and `body` and the stream is empty.
    ///
    /// Each stream has its own client, so closing it closes its connection.
    static func open(port: Int, path: String = "/v1/events", token: String? = nil, lastEventID: String? = nil) async throws -> EventStream {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(600))
        } catch {
            try? await http.shutdown()
            throw error
        }
        guard response.status == .ok else {
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            try? await http.shutdown()
            let stream = EventStream(status: response.status, headers: response.headers, body: body, http: nil)
            stream.received.withLock { $0.ended = true }
            return stream
        }
        let stream = EventStream(status: response.status, headers: response.headers, body: "", http: http)
        let reader = Task {
            var pending: [UInt8] = []
            do {
                for try await chunk in response.body {
                    pending.append(contentsOf: chunk.readableBytesView)
                    while let end = Self.frameEnd(pending) {
                        let frame = String(decoding: pending[..<end], as: UTF8.self)
                        pending.removeFirst(end + 2)
                        stream.received.withLock { $0.events.append(Self.parse(frame)) }
                    }
                }
            } catch {}
            stream.received.withLock { $0.ended = true }
        }
        stream.reader.withLock { $0 = reader }
        return stream
    }

    private let http: HTTPClient?

    private init(status: HTTPResponseStatus, headers: HTTPHeaders, body: String, http: HTTPClient?) {
        self.http = http
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Whether the server ended the stream (or it never started).
    var hasEnded: Bool {
        self.received.withLock { $0.ended && $0.events.isEmpty }
    }

    /// The next event (heartbeat comments and id-only frames included), or nil when the stream
    /// ended or nothing came within `timeout`.
    func next(timeout: Duration = .seconds(10)) async -> ServerSentEvent? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (event, ended) = self.received.withLock { state -> (ServerSentEvent?, Bool) in
                state.events.isEmpty ? (nil, state.ended) : (state.events.removeFirst(), false)
            }
            if let event { return event }
            if ended || ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until the server ends the stream; false if it is still open after `timeout`.
    func waitForEnd(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if self.received.withLock({ $0.ended }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// The next event that is not a heartbeat comment or a bare id.
    func nextEvent(timeout: Duration = .seconds(10)) async -> ServerSentEvent? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let event = await self.next(timeout: deadline - ContinuousClock.now) else { return nil }
            if event.event != nil || event.data != nil { return event }
        }
        return nil
    }

    /// Events until `count` have come (or `timeout` passes).
    func events(_ count: Int, timeout: Duration = .seconds(15)) async -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        let deadline = ContinuousClock.now + timeout
        while events.count < count, ContinuousClock.now < deadline, let event = await self.nextEvent(timeout: deadline - ContinuousClock.now) {
            events.append(event)
        }
        return events
    }

    /// Closes the connection (in the background).
    func close() {
        Task { await self.closeAndWait() }
    }

    /// Closes the connection and waits until it is closed.
    func closeAndWait() async {
        self.reader.withLock { $0?.cancel() }
        try? await self.http?.shutdown()
    }

    private static func frameEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) where bytes[index] == 10 && bytes[index + 1] == 10 {
            return index
        }
        return nil
    }

    static func parse(_ frame: String) -> ServerSentEvent {
        var event = ServerSentEvent()
        for line in frame.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") {
                event.comment = String(line.dropFirst()).trimmingCharacters(in: .whitespaces)
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            var value = parts.count > 1 ? String(parts[1]) : ""
            if value.hasPrefix(" ") { value.removeFirst() }
            switch name {
            case "id": event.id = value
            case "event": event.event = value
            case "data": event.data = (event.data.map { $0 + "\n" } ?? "") + value
            case "retry": event.retry = Int(value)
            default: break
            }
        }
        return event
    }
}
