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
        return body + "." + Base64.encode(self.mac(body.utf8, context: context))
    }

    package func decode(_ cursor: String, context: String, keys: Int) throws -> Position {
        // Byte by byte: the cursor is read on every page after the first.
        var cursor = cursor
        guard let position = cursor.withUTF8({ self.position(in: $0, context: context, keys: keys) }) else {
            throw AtriumError(.badRequest, "the cursor is not valid for this list", fields: [.init(field: "cursor", reason: "was tampered with or belongs to another list")])
        }
        return position
    }

    /// `body.mac`, where only the MAC's checking out makes the body worth reading (a second `.`
    /// is not in the MAC's alphabet, so it fails to decode).
    private func position(in cursor: UnsafeBufferPointer<UInt8>, context: String, keys: Int) -> Position? {
        guard cursor.count < 4096, let dot = cursor.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let body = cursor[..<dot]
        guard let mac = Base64.decode(utf8: cursor[(dot + 1)...]), constantTimeEquals(mac, self.mac(body, context: context)),
              let bytes = Base64.decode(utf8: body), case .object(let object) = try? JSONParser.parse(bytes),
              case .array(let values) = object["k"], values.count == keys,
              let id = object["i"]?.stringValue.flatMap({ UUID(canonical: $0) })
        else { return nil }
        return Position(values: values.map(\.stringValue), id: id)
    }

    private func mac(_ body: some Collection<UInt8>, context: String) -> [UInt8] {
        var message: [UInt8] = []
        message.reserveCapacity(context.utf8.count + 1 + body.count)
        message.append(contentsOf: context.utf8)
        message.append(UInt8(ascii: "\n"))
        message.append(contentsOf: body)
        return HMACSHA256.authenticationCode(for: message, key: self.key)
    }
}
