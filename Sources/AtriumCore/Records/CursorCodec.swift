import AtriumCrypto
import AtriumText
package import Foundation
import PostgresPool

/// Opaque, signed list cursors. A cursor carries the sort key values and id of the last record
/// of a page, and is bound (by its MAC) to the tenant, the collection, the sort and the filters
/// it was made for: tampered or foreign cursors are refused (`badRequest`).
package struct CursorCodec: Sendable {
    let key: [UInt8]

    package init(key: [UInt8]) {
        self.key = key
    }

    package struct Position: Sendable, Equatable {
        package var values: [String?]
        package var id: UUID

        package init(values: [String?], id: UUID) {
            self.values = values
            self.id = id
        }
    }

    /// `context` names everything the cursor is only valid for.
    package func encode(_ position: Position, context: String) -> String {
        let payload = JSONValue.object(JSONObject([
            ("k", .array(position.values.map { $0.map(JSONValue.string) ?? .null })),
            ("i", .string(position.id.lowercasedString)),
        ]))
        let body = Base64.encode(JSONSerializer.bytes(payload))
        return body + "." + Base64.encode(self.mac(body, context: context))
    }

    package func decode(_ cursor: String, context: String, keys: Int) throws -> Position {
        let invalid = AtriumError(.badRequest, "the cursor is not valid for this list", fields: [.init(field: "cursor", reason: "was tampered with or belongs to another list")])
        let parts = cursor.split(separator: ".", omittingEmptySubsequences: false)
        guard cursor.utf8.count < 4096, parts.count == 2, let mac = Base64.decode(parts[1]),
              constantTimeEquals(mac, self.mac(String(parts[0]), context: context)),
              let bytes = Base64.decode(parts[0]), case .object(let object) = try? JSONParser.parse(bytes),
              case .array(let values) = object["k"], values.count == keys,
              let id = object["i"]?.stringValue.flatMap({ UUID(canonical: $0) })
        else { throw invalid }
        return Position(values: values.map(\.stringValue), id: id)
    }

    private func mac(_ body: String, context: String) -> [UInt8] {
        HMACSHA256.authenticationCode(for: Array((context + "\n" + body).utf8), key: self.key)
    }
}
