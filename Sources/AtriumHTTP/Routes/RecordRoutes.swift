import AtriumCore
import AtriumText
import AtriumWire
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
            let query = try RecordQuery(parameters: try QueryString.pairs(request.uri.query))
            let page = try await self.records.list(principal, collection: try context.parameters.require("name"), query: query)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: RecordJSON.page(page)))
            )
        }
        router.post(RouterPath(base)) { request, context in
            try await self.create(request, context) { principal, name, body, idempotency, origin in
                try await self.records.create(principal, collection: name, body: body, idempotency: idempotency, origin: origin) { collection, record in
                    StoredResponse(
                        status: 201,
                        headers: [("Location", "/v1/collections/\(collection.name)/records/\(record.id.lowercasedString)"), ("ETag", record.etag)],
                        body: String(decoding: RecordJSON.bytes(record), as: UTF8.self)
                    )
                }
            }
        }
        router.post(RouterPath(base + "/batch")) { request, context in
            try await self.create(request, context) { principal, name, body, idempotency, origin in
                try await self.records.createBatch(principal, collection: name, body: body, idempotency: idempotency, origin: origin) { _, records in
                    StoredResponse(status: 201, headers: [], body: JSONSerializer.text(.object(JSONObject([("data", .array(records.map { RecordJSON.record($0) }))]))))
                }
            }
        }
        router.get(RouterPath(base + "/:id")) { request, context in
            let principal = try context.authenticated()
            let record = try await self.records.get(principal, collection: try context.parameters.require("name"), id: try context.uuidParameter("id", naming: "record"))
            if let condition = request.headers[.ifNoneMatch], EntityTag.matches(ifNoneMatch: condition, version: record.version) {
                return Response(status: .notModified, headers: [.eTag: record.etag])
            }
            return Self.response(record)
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
                condition: request.headers[.ifMatch].map(EntityTag.condition(ifMatch:)), origin: context.origin
            )
            return Response.noContent
        }

        router.get("v1/audit") { request, context in
            let principal = try context.authenticated()
            let query = try AuditQuery(parameters: try QueryString.pairs(request.uri.query))
            let (entries, next) = try await self.records.audit(principal, query: query)
            return Response.json(.object(JSONObject([
                ("data", .array(entries.map(RecordJSON.audit))), ("nextCursor", next.map(JSONValue.string) ?? .null),
            ])))
        }
    }

    /// A create (one record or a batch): the body, the Idempotency-Key, the stored response.
    private func create(
        _ request: Request, _ context: AtriumRequestContext,
        _ operation: (Principal, String, JSONValue, IdempotencyRequest?, RequestOrigin) async throws -> StoredResponse
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
            body: body, mode: mode, condition: request.headers[.ifMatch].map(EntityTag.condition(ifMatch:)), origin: context.origin
        )
        return Self.response(record)
    }

    /// A record as PostgreSQL printed it, with its ETag.
    static func response(_ record: RecordText) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .eTag: record.etag],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: RecordJSON.bytes(record)))
        )
    }

    static func idempotency(_ request: Request, body: JSONValue) throws -> IdempotencyRequest? {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard let idempotency = IdempotencyRequest(key: key, named: "Idempotency-Key", target: request.method.rawValue + " " + request.uri.path, body: body) else {
            throw AtriumError(.badRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters", fields: [.init(field: "Idempotency-Key", reason: "is malformed")])
        }
        return idempotency
    }

    static func response(_ write: StoredResponse) -> Response {
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

extension StoredRecord {
    /// The strong ETag of this version.
    var etag: String { EntityTag.of(version: self.version) }
}

extension RecordText {
    /// The strong ETag of this version.
    var etag: String { EntityTag.of(version: self.version) }
}
