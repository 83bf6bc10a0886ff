import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/collections/{name}/records` and `/v1/audit`: tenant data.
struct RecordRoutes {
    let records: RecordService

    func register(on router: RouteRecorder) {
        let base = "v1/collections/:name/records"
        router.get(RouterPath(base)) { request, context in
            let principal = try context.authenticated()
            let query = try RecordQuery.parse(try QueryString.pairs(request.uri.query))
            let page = try await self.records.list(principal, collection: try context.parameters.require("name"), query: query)
            var body = JSONObject()
            body["data"] = .array(page.records.map { $0.json(fields: page.fields) })
            body["nextCursor"] = page.nextCursor.map(JSONValue.string) ?? .null
            if let count = page.count { body["count"] = .number(JSONNumber(Int64(count))) }
            return Response.json(value: .object(body))
        }
        router.post(RouterPath(base)) { request, context in
            try await self.create(request, context, self.records.create)
        }
        router.post(RouterPath(base + "/batch")) { request, context in
            try await self.create(request, context, self.records.createBatch)
        }
        router.get(RouterPath(base + "/:id")) { request, context in
            let principal = try context.authenticated()
            let record = try await self.records.get(principal, collection: try context.parameters.require("name"), id: try context.uuidParameter("id", naming: "record"))
            if let condition = request.headers[.ifNoneMatch], ETagMatching.weakMatch(condition, record.etag) {
                return Response(status: .notModified, headers: [.eTag: record.etag])
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .eTag: record.etag],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: record.json))
            )
        }
        router.put(RouterPath(base + "/:id")) { request, context in
            try await self.update(request, context, mode: .replace, mediaTypes: ["application/json"])
        }
        router.patch(RouterPath(base + "/:id")) { request, context in
            try await self.update(request, context, mode: .mergePatch, mediaTypes: ["application/merge-patch+json", "application/json"])
        }
        router.delete(RouterPath(base + "/:id")) { request, context in
            let principal = try context.authenticated()
            try await self.records.delete(
                principal, collection: try context.parameters.require("name"), id: try context.uuidParameter("id", naming: "record"),
                ifMatch: request.headers[.ifMatch], origin: context.origin
            )
            return Response.noContent
        }

        router.get("v1/audit") { request, context in
            let principal = try context.require(.admin)
            let query = try AuditQuery.parse(try QueryString.pairs(request.uri.query))
            let (entries, next) = try await self.records.audit(principal, query: query)
            return Response.json(value: .object(JSONObject([
                ("data", .array(entries.map(\.json))), ("nextCursor", next.map(JSONValue.string) ?? .null),
            ])))
        }
    }

    /// A create (one record or a batch): the body, the Idempotency-Key, the stored response.
    private func create(
        _ request: Request, _ context: AtriumRequestContext,
        _ operation: (Principal, String, JSONValue, IdempotencyRequest?, RequestOrigin) async throws -> WriteResponse
    ) async throws -> Response {
        let principal = try context.authenticated()
        let name = try context.parameters.require("name")
        let body = try await JSONBody.value(from: request, context: context).value
        let response = try await operation(principal, name, body, try Self.idempotency(request, body: body), context.origin)
        return Self.response(response)
    }

    private func update(_ request: Request, _ context: AtriumRequestContext, mode: RecordService.UpdateMode, mediaTypes: Set<String>) async throws -> Response {
        let principal = try context.authenticated()
        let body = try await JSONBody.value(from: request, context: context, mediaTypes: mediaTypes).value
        let record = try await self.records.update(
            principal, collection: try context.parameters.require("name"), id: try context.uuidParameter("id", naming: "record"),
            body: body, mode: mode, ifMatch: request.headers[.ifMatch], origin: context.origin
        )
        return Response.json(value: record.json(), headers: [.eTag: record.etag])
    }

    static func idempotency(_ request: Request, body: JSONValue) throws -> IdempotencyRequest? {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard let idempotency = IdempotencyRequest(key: key, method: request.method.rawValue, path: request.uri.path, body: body) else {
            throw AtriumError(.badRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters", fields: [.init(field: "Idempotency-Key", reason: "is malformed")])
        }
        return idempotency
    }

    static func response(_ write: WriteResponse) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in write.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        if write.replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return Response(
            status: HTTPResponse.Status(code: write.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: write.body))
        )
    }
}

/// Query strings as ordered name/value pairs, percent-decoded (and `+` as a space).
enum QueryString {
    /// The pairs of `query`; 400 for a name or value holding a NUL character, which no
    /// parameter takes and PostgreSQL text cannot hold.
    static func pairs(_ query: String?) throws -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return try query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) throws -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                let decoded = spaced.removingPercentEncoding ?? spaced
                guard !decoded.utf8.contains(0) else {
                    throw AtriumError(.badRequest, "the query is invalid", fields: [.init(field: String(parts[0]), reason: "must not contain NUL characters")])
                }
                return decoded
            }
            return (try decode(parts[0]), parts.count > 1 ? try decode(parts[1]) : "")
        }
    }
}
