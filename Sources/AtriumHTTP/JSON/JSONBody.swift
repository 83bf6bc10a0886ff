import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

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
    static let maximumSize = 1 << 20

    /// Reads and decodes a JSON request body: 415 unless it is JSON, 413 above the limit,
    /// 400 with the place it broke for malformed JSON, 422 for unknown or mistyped fields.
    static func decode<T: StrictDecodable>(_ type: T.Type, from request: Request, context: AtriumRequestContext) async throws -> T {
        let contentType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/json" || contentType?.hasSuffix("+json") == true else {
            throw Problem(.unsupportedMediaType, detail: "send the body as application/json")
        }
        let buffer = try await request.body.collect(upTo: Self.maximumSize)
        let data = Data(buffer.readableBytesView)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw Problem(.malformedJSON, detail: "the body is not valid JSON: \(Self.describe(error))")
        }
        var failures: [AtriumError.FieldFailure] = []
        Self.check(object, against: T.fields, at: "", into: &failures)
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        do {
            return try JSONCoding.decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw AtriumError.invalid([Self.failure(error)])
        }
    }

    private static func check(_ value: Any, against fields: Fields, at path: String, into failures: inout [AtriumError.FieldFailure]) {
        guard case .object(let allowed) = fields else { return }
        guard let object = value as? [String: Any] else {
            failures.append(.init(field: path.isEmpty ? "/" : path, reason: "must be a JSON object"))
            return
        }
        for (key, nested) in object.sorted(by: { $0.key < $1.key }) {
            let pointer = path + "/" + Self.escape(key)
            guard let entry = allowed[key] else {
                failures.append(.init(field: pointer, reason: "is not a known field"))
                continue
            }
            if let entry, !(nested is NSNull) {
                Self.check(nested, against: entry, at: pointer, into: &failures)
            }
        }
    }

    /// JSON pointer escaping (RFC 6901).
    static func escape(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    private static func failure(_ error: DecodingError) -> AtriumError.FieldFailure {
        func pointer(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "/" : path.map { "/" + ($0.intValue.map(String.init) ?? Self.escape($0.stringValue)) }.joined()
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

    private static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        return (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
    }
}

/// Shared JSON coders: ISO 8601 dates with fractional seconds.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: .iso8601) { return date }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be an RFC 3339 date-time such as 2030-01-02T03:04:05Z")
        }
        return decoder
    }()
}

extension Response {
    /// A JSON response.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = try JSONCoding.encoder.encode(value)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// 204 No Content.
    static var noContent: Response { Response(status: .noContent) }
}
