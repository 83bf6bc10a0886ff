import AtriumCore
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/collections`: collection definitions.
struct CollectionRoutes {
    let collections: CollectionService

    static func json(_ collection: StoredCollection) -> JSONValue {
        guard case .object(var object) = collection.definition.json else { return .null }
        object["id"] = .string(collection.id.lowercasedString)
        object["version"] = .number(JSONNumber(collection.version))
        object["createdAt"] = .string(RFC3339.string(collection.createdAt))
        object["updatedAt"] = .string(RFC3339.string(collection.updatedAt))
        return .object(object)
    }

    func register(on router: RouteRecorder) {
        router.get("v1/collections") { _, context in
            let list = try await self.collections.list(try context.authenticated())
            return Response.json(.list(list.map(Self.json)))
        }
        router.post("v1/collections") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.value(from: request, context: context).value
            let created = try await self.collections.create(principal, body: body)
            return Response.json(Self.json(created), status: .created, headers: [.location: "/v1/collections/\(created.name)"])
        }
        router.get("v1/collections/:name") { _, context in
            let collection = try await self.collections.get(try context.authenticated(), name: try context.parameters.require("name"))
            return Response.json(Self.json(collection))
        }
        router.patch("v1/collections/:name") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.value(from: request, context: context, mediaTypes: ["application/json", "application/merge-patch+json"]).value
            let updated = try await self.collections.update(principal, name: try context.parameters.require("name"), patch: body, origin: context.origin)
            return Response.json(Self.json(updated))
        }
        router.delete("v1/collections/:name") { request, context in
            let principal = try context.authenticated()
            let force: Bool
            switch request.uri.queryParameters.get("force") {
            case nil, "false": force = false
            case "true": force = true
            default: throw AtriumError(.badRequest, "force must be true or false", fields: [.init(field: "force", reason: "must be true or false")])
            }
            try await self.collections.delete(principal, name: try context.parameters.require("name"), force: force)
            return Response.noContent
        }
    }
}
