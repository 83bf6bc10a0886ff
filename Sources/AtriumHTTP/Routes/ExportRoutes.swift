import AtriumCore
import AtriumWire
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `GET /v1/tenant/export`: the tenant's collections and records as NDJSON, streamed.
///
/// The export is started — slot taken, snapshot opened, first reads done — before the head
/// is sent, so a busy or unreachable database is a 503, not a 200 that breaks off. The body
/// ends with an `end` line; a response without it is incomplete. An export that fails midway,
/// whose client stops reading, or whose next page does not come, for `streamStallTimeout`, ends
/// without a clean end of the response (the connection, or the HTTP/2 stream, is closed), and
/// the log says why.
struct ExportRoutes {
    let records: RecordService
    let stallTimeout: Duration

    func register(on router: RouteRecorder) {
        router.get("v1/tenant/export") { _, context in
            let principal = try context.authenticated()
            let export = try await self.records.beginExport(principal)
            let stall = StallGuard(timeout: self.stallTimeout, channel: context.channel)
            let logger = context.logger
            return Response(
                status: .ok,
                headers: [.contentType: "application/x-ndjson", .contentDisposition: "attachment; filename=\"export.ndjson\"", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    defer { export.close() }
                    do {
                        try await stall.run {
                            while let item = try await stall.read({ try await export.next() }) {
                                let lines = ByteBuffer(bytes: Self.lines(item))
                                try await stall.write { try await writer.write(lines) }
                            }
                        }
                        try await writer.finish(nil)
                    } catch {
                        logger.error("export ended before it was complete", metadata: [
                            "tenant.id": .string(export.tenant.tenantID.lowercasedString),
                            "export.records": .stringConvertible(export.records),
                            "error": .string(String(describing: error)),
                        ])
                        // Thrown on, the response is cut off rather than finished.
                        throw error
                    }
                }
            )
        }
    }

    /// The NDJSON lines of one export item.
    static func lines(_ item: TenantExport.Item) -> [UInt8] {
        var output: [UInt8] = []
        func line(_ value: JSONValue) {
            JSONSerializer.write(value, into: &output)
            output.append(UInt8(ascii: "\n"))
        }
        switch item {
        case .tenant(let tenant):
            line(.object(JSONObject([
                ("type", .string("tenant")),
                ("tenant", .object(JSONObject([
                    ("id", .string(tenant.id.lowercasedString)), ("name", .string(tenant.name)),
                    ("slug", .string(tenant.slug)), ("createdAt", .string(RFC3339.string(tenant.createdAt))),
                ]))),
            ])))
        case .collection(let collection):
            line(.object(JSONObject([
                ("type", .string("collection")), ("version", .number(JSONNumber(collection.version))), ("collection", collection.definition.json),
            ])))
        case .records(let collection, let records):
            output.reserveCapacity(records.count * 300)
            for record in records {
                line(.object(JSONObject([("type", .string("record")), ("collection", .string(collection)), ("record", RecordJSON.record(record))])))
            }
        case .end(let collections, let records):
            line(.object(JSONObject([
                ("type", .string("end")), ("collections", .number(JSONNumber(Int64(collections)))), ("records", .number(JSONNumber(Int64(records)))),
            ])))
        }
        return output
    }
}
