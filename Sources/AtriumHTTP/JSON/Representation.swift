import AtriumCore
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A response body. Every representation Atrium sends (identity, collections, records, audit,
/// export lines, problems) is a `JSONValue` built beside its route and written by
/// `JSONSerializer`: one writer, one escaping rule (`<`, `>`, `&` as `\u` escapes), keys in the
/// order the representation lists them.
protocol JSONRepresentable {
    var json: JSONValue { get }
}

extension JSONValue: JSONRepresentable {
    var json: JSONValue { self }
}

extension JSONValue {
    /// An object of `entries` in order; a nil value leaves its key out.
    static func fields(_ entries: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(JSONObject(entries.compactMap { entry in entry.value.map { (key: entry.key, value: $0) } }))
    }

    /// `{"data": [...]}`: lists are wrapped so fields (a cursor) can be added without breaking clients.
    static func list(_ items: [some JSONRepresentable]) -> JSONValue {
        .fields(["data": .array(items.map(\.json))])
    }

    static func id(_ id: UUID) -> JSONValue { .string(id.lowercasedString) }

    static func date(_ date: Date) -> JSONValue { .string(RFC3339.string(date)) }

    static func integer(_ integer: Int) -> JSONValue { .number(JSONNumber(Int64(integer))) }
}

extension Response {
    /// A JSON response.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONSerializer.bytes(value))))
    }

    /// A JSON response from a representation.
    static func json(_ value: some JSONRepresentable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        self.json(value.json, status: status, headers: headers)
    }

    /// 204 No Content.
    static var noContent: Response { Response(status: .noContent) }
}
