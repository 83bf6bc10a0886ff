import AtriumCore
import Foundation
public import HTTPTypes
import Hummingbird

/// An RFC 9457 problem document: every error response Atrium sends has this shape.
public struct Problem: Error, Sendable {
    /// Stable identifier of the kind of problem (a URI reference); clients branch on it.
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    /// The request id, so a report can be matched with the server's log.
    public var requestId: String?
    /// Field-level failures for validation problems.
    public var errors: [FieldError]?
    /// A stable machine-readable reason for conflicts and refusals (`email_taken`, `last_owner`, …).
    public var reason: String?
    /// Response headers that belong with the problem (`Retry-After`, `Allow`, …).
    var headers: HTTPFields = [:]
    /// RFC 9457 extension members (e.g. the `challenge` of a sign-in that needs a second factor).
    var extensions: [String: JSONValue] = [:]

    /// One failing field: a JSON pointer into the request body or a parameter name, and why.
    public struct FieldError: Sendable, Hashable {
        public var field: String
        public var reason: String
        public init(field: String, reason: String) {
            self.field = field
            self.reason = reason
        }
    }

    public init(
        _ kind: Kind,
        detail: String? = nil,
        reason: String? = nil,
        errors: [FieldError]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.type = "/problems/\(kind.slug)"
        self.title = kind.title
        self.status = Int(kind.status.code)
        self.detail = detail
        self.reason = reason
        self.errors = errors
        self.headers = headers
    }

    /// The kinds of problem, each with a stable type, title and status.
    public struct Kind: Sendable, Hashable {
        public let slug: String
        public let title: String
        public let status: HTTPResponse.Status

        public static let notFound = Kind(slug: "not-found", title: "Not found", status: .notFound)
        public static let internalError = Kind(slug: "internal-error", title: "Internal server error", status: .internalServerError)
        public static let unavailable = Kind(slug: "service-unavailable", title: "Service unavailable", status: .serviceUnavailable)
        public static let overloaded = Kind(slug: "overloaded", title: "Too busy", status: .serviceUnavailable)
        public static let methodNotAllowed = Kind(slug: "method-not-allowed", title: "Method not allowed", status: .methodNotAllowed)
        public static let badRequest = Kind(slug: "bad-request", title: "Bad request", status: .badRequest)
        public static let malformedRequest = Kind(slug: "malformed-request", title: "Malformed request", status: .badRequest)
        public static let headerFieldsTooLarge = Kind(slug: "header-fields-too-large", title: "Request header fields too large", status: .requestHeaderFieldsTooLarge)
        public static let malformedJSON = Kind(slug: "malformed-json", title: "Malformed JSON", status: .badRequest)
        public static let unsupportedMediaType = Kind(slug: "unsupported-media-type", title: "Unsupported media type", status: .unsupportedMediaType)
        public static let contentTooLarge = Kind(slug: "content-too-large", title: "Content too large", status: .contentTooLarge)
        public static let unauthenticated = Kind(slug: "unauthenticated", title: "Authentication required", status: .unauthorized)
        public static let invalidCredentials = Kind(slug: "invalid-credentials", title: "Invalid credentials", status: .unauthorized)
        public static let forbidden = Kind(slug: "forbidden", title: "Forbidden", status: .forbidden)
        public static let conflict = Kind(slug: "conflict", title: "Conflict", status: .conflict)
        public static let gone = Kind(slug: "gone", title: "Gone", status: .gone)
        public static let preconditionFailed = Kind(slug: "precondition-failed", title: "Precondition failed", status: .preconditionFailed)
        public static let validation = Kind(slug: "validation-failed", title: "Validation failed", status: .unprocessableContent)
        public static let throttled = Kind(slug: "too-many-requests", title: "Too many requests", status: .tooManyRequests)
    }
}

extension Problem: JSONRepresentable {
    /// The response for this problem.
    func response(requestID: String) -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(
            status: HTTPResponse.Status(code: self.status),
            headers: headers,
            body: ResponseBody(byteBuffer: self.body(requestID: requestID))
        )
    }

    /// The JSON document.
    func body(requestID: String) -> ByteBuffer {
        var problem = self
        problem.requestId = requestID
        return ByteBuffer(bytes: JSONSerializer.bytes(problem.json))
    }

    var json: JSONValue {
        let base = JSONValue.fields([
            "detail": self.detail.map { .string($0) },
            "errors": self.errors.map { errors in
                .array(errors.map { .fields(["field": .string($0.field), "reason": .string($0.reason)]) })
            },
            "reason": self.reason.map { .string($0) },
            "requestId": self.requestId.map { .string($0) },
            "status": .integer(self.status),
            "title": .string(self.title),
            "type": .string(self.type),
        ])
        guard !self.extensions.isEmpty, case .object(let object) = base else { return base }
        let extra = self.extensions.sorted { $0.key < $1.key }.filter { object[$0.key] == nil }.map { (key: $0.key, value: $0.value) }
        return .object(JSONObject(object.entries + extra))
    }
}
