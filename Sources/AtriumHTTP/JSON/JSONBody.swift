import AtriumCore
import AtriumCrypto
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PostgresPool

/// The keys a request body may have; a nested `Fields` describes an object-valued key.
public indirect enum Fields: Sendable {
    case object([String: Fields?])
}

/// A request body type that declares its fields, so unknown ones are refused (a typo must not
/// be silently ignored).
protocol StrictDecodable: Decodable {
    static var fields: Fields { get }
}

enum JSONBody {
    /// Reads a JSON request body strictly: 415 unless it is JSON, 413 above the size limit or
    /// beyond the parser's limits on keys and values, 400 saying where it broke (also for
    /// duplicate keys, NUL, unpaired surrogates, depth).
    static func value(from request: Request, context: AtriumRequestContext, mediaTypes: Set<String> = ["application/json"]) async throws -> (value: JSONValue, bytes: [UInt8]) {
        let contentType = request.headers[.contentType].map(Self.mediaType)
        guard let contentType, mediaTypes.contains(contentType) else {
            throw Problem(.unsupportedMediaType, detail: "send the body as \(mediaTypes.sorted().joined(separator: " or "))")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await Self.collect(request, context: context)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, detail: "the body is larger than the limit of \(context.maximumBodySize) bytes", headers: [.connection: "close"])
        }
        let bytes = Array(buffer.readableBytesView)
        let parsed: Result<JSONValue, JSONParser.Failure>
        if bytes.count <= Self.inlineParseLimit {
            parsed = Result { () throws(JSONParser.Failure) in try JSONParser.parse(bytes) }
        } else {
            parsed = try await Self.parseElsewhere(bytes)
        }
        switch parsed {
        case .success(let value):
            return (value, bytes)
        case .failure(let error) where error.kind == .limit:
            throw Problem(.contentTooLarge, detail: "the body is larger than the server accepts: \(error.reason)", reason: "too_complex")
        case .failure(let error):
            throw Problem(.malformedJSON, detail: "the body is not valid JSON: \(error.description)", errors: [
                .init(field: "/", reason: "\(error.reason) (line \(error.line), column \(error.column), byte \(error.offset))"),
            ])
        }
    }

    /// The whole body, by the request's deadline: a client trickling its body (a byte every few
    /// seconds keeps the idle timeout from firing) is answered 503 when the deadline passes and
    /// its connection closed; it cannot hold a connection and a handler for longer.
    static func collect(_ request: Request, context: AtriumRequestContext) async throws -> ByteBuffer {
        guard let deadline = QueryDeadline.current else {
            return try await request.body.collect(upTo: context.maximumBodySize)
        }
        let channel = context.channel
        let requestID = context.requestID
        let buffer = try await deadline.guarding(giveUp: { Self.stopReading(channel, requestID: requestID) }) {
            try await request.body.collect(upTo: context.maximumBodySize)
        }
        // Closing can let the read end early with part of the body; never act on that part.
        guard !deadline.hasFired else { throw CancellationError() }
        return buffer
    }

    /// Has the connection's guard answer 503 and close the connection, which ends the read
    /// waiting for body bytes. Without the guard in the pipeline, the connection is closed.
    private static func stopReading(_ channel: any Channel, requestID: String) {
        channel.pipeline.fireUserInboundEventTriggered(ConnectionGuardHandler.BodyTimedOut(requestID: requestID))
        channel.pipeline.handler(type: ConnectionGuardHandler.self).whenFailure { _ in channel.close(promise: nil) }
    }

    /// Bodies up to this size are parsed on the request's own thread (a few hundred microseconds
    /// at most); larger ones on `parsing`'s threads.
    static let inlineParseLimit = 16 * 1024

    /// Threads of their own for parsing large bodies, one per core: a client sending many large
    /// bodies at once takes these, while the threads every other request runs on stay free.
    /// Bodies wait their turn (they are in memory already, so waiting costs no more of it);
    /// beyond 256 waiting, more large bodies get 503.
    static let parsing = BoundedExecutor(
        label: "atrium.json-parsing",
        permits: ProcessInfo.processInfo.activeProcessorCount,
        queueLimit: 256
    )

    private static func parseElsewhere(_ bytes: [UInt8]) async throws -> Result<JSONValue, JSONParser.Failure> {
        do {
            return try await Self.parsing.run {
                Result { () throws(JSONParser.Failure) in try JSONParser.parse(bytes) }
            }
        } catch is BoundedExecutor.Overloaded {
            throw Problem(.overloaded, detail: "too many large request bodies at once; retry shortly", headers: [.retryAfter: "1"])
        }
    }

    /// Reads and decodes a JSON request body into `T`: the checks of `value(from:)`, then 422
    /// for unknown, missing or mistyped fields.
    static func decode<T: StrictDecodable>(_ type: T.Type, from request: Request, context: AtriumRequestContext) async throws -> T {
        let (value, bytes) = try await Self.value(from: request, context: context)
        var failures: [AtriumError.FieldFailure] = []
        Self.check(value, against: T.fields, at: "", into: &failures)
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        do {
            return try JSONCoding.decoder.decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw AtriumError.invalid([Self.failure(error)])
        }
    }

    private static func check(_ value: JSONValue, against fields: Fields, at path: String, into failures: inout [AtriumError.FieldFailure]) {
        guard case .object(let allowed) = fields else { return }
        guard case .object(let object) = value else {
            failures.append(.init(field: path.isEmpty ? "/" : path, reason: "must be a JSON object"))
            return
        }
        for (key, nested) in object {
            let pointer = path + "/" + JSONPointer.escape(key)
            guard let entry = allowed[key] else {
                failures.append(.init(field: pointer, reason: "is not a known field"))
                continue
            }
            if let entry, nested != .null {
                Self.check(nested, against: entry, at: pointer, into: &failures)
            }
        }
    }

    /// The media type of a `Content-Type` value, without parameters, trimmed and in lower case
    /// (`Application/JSON; charset=utf-8` is `application/json`).
    static func mediaType(_ header: String) -> String {
        var bytes = Array(header.utf8.prefix { $0 != UInt8(ascii: ";") })
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        let start = bytes.firstIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") } ?? bytes.endIndex
        return String(decoding: bytes[start...].map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    private static func failure(_ error: DecodingError) -> AtriumError.FieldFailure {
        func pointer(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "/" : path.map { "/" + ($0.intValue.map(String.init) ?? JSONPointer.escape($0.stringValue)) }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .init(field: pointer(context.codingPath + [key]), reason: "is required")
        case .valueNotFound(_, let context):
            return .init(field: pointer(context.codingPath), reason: "must not be null")
        case .typeMismatch(let type, let context):
            return .init(field: pointer(context.codingPath), reason: "must be \(Self.name(of: type))")
        case .dataCorrupted(let context):
            return .init(field: pointer(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return .init(field: "/", reason: "is not valid")
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default: "of the right type"
        }
    }

}

/// The JSON decoder of request bodies: RFC 3339 dates.
enum JSONCoding {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            // The grammar of `datetime` fields and query parameters: one for every date read.
            if let date = RFC3339.dateTime(text) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be an RFC 3339 date-time such as 2030-01-02T03:04:05Z")
        }
        return decoder
    }()
}
