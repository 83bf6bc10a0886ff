import AtriumCore
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/webhooks`: endpoints that receive the tenant's record changes, and their deliveries
/// (admin or above).
struct WebhookRoutes {
    let webhooks: WebhookService
    let dispatcher: WebhookDispatcher

    func register(on router: RouteRecorder) {
        router.post("v1/webhooks") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.value(from: request, context: context).value
            let created = try await self.webhooks.create(principal, body: body, origin: context.origin)
            self.dispatcher.endpointsChanged()
            return Response.json(WebhookJSON(created.webhook, secret: created.secret), status: .created,
                                 headers: [.location: "/v1/webhooks/\(created.webhook.id.lowercasedString)"])
        }
        router.get("v1/webhooks") { _, context in
            let list = try await self.webhooks.list(try context.authenticated())
            return Response.json(.list(list.map { WebhookJSON($0) }))
        }
        router.get("v1/webhooks/:id") { _, context in
            let webhook = try await self.webhooks.get(try context.authenticated(), id: try context.uuidParameter("id", naming: "webhook"))
            return Response.json(WebhookJSON(webhook))
        }
        router.patch("v1/webhooks/:id") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.value(from: request, context: context, mediaTypes: ["application/json", "application/merge-patch+json"]).value
            let updated = try await self.webhooks.update(principal, id: try context.uuidParameter("id", naming: "webhook"), body: body, origin: context.origin)
            self.dispatcher.endpointsChanged()
            return Response.json(WebhookJSON(updated))
        }
        router.delete("v1/webhooks/:id") { _, context in
            let principal = try context.authenticated()
            try await self.webhooks.delete(principal, id: try context.uuidParameter("id", naming: "webhook"), origin: context.origin)
            return Response.noContent
        }
        router.post("v1/webhooks/:id/rotate-secret") { request, context in
            let principal = try context.authenticated()
            var overlap: Duration?
            if request.headers[.contentLength] != "0", request.headers[.contentType] != nil {
                let body = try await JSONBody.value(from: request, context: context).value
                guard case .object(let object) = body else {
                    throw AtriumError.invalid([.init(field: "", reason: "must be a JSON object")])
                }
                for (key, value) in object.entries {
                    switch (key, value) {
                    case ("overlapSeconds", .number(let number)) where number.double >= 0 && number.double == number.double.rounded() && number.double <= 1e9:
                        overlap = .seconds(Int64(number.double))
                    case ("overlapSeconds", _):
                        throw AtriumError.invalid([.init(field: "/overlapSeconds", reason: "must be a whole number of seconds")])
                    default:
                        throw AtriumError.invalid([.init(field: "/\(key)", reason: "is not a known field")])
                    }
                }
            }
            let rotated = try await self.webhooks.rotateSecret(
                principal, id: try context.uuidParameter("id", naming: "webhook"), overlap: overlap, origin: context.origin
            )
            return Response.json(WebhookJSON(rotated.webhook, secret: rotated.secret))
        }
        router.get("v1/webhooks/:id/deliveries") { request, context in
            let principal = try context.authenticated()
            let query = request.uri.queryParameters
            var status: WebhookDelivery.Status?
            if let text = query.get("status") {
                guard let parsed = WebhookDelivery.Status(rawValue: text) else {
                    throw AtriumError(.badRequest, "status must be pending, delivering, succeeded or failed",
                                      fields: [.init(field: "status", reason: "must be pending, delivering, succeeded or failed")])
                }
                status = parsed
            }
            var limit = 50
            if let text = query.get("limit") {
                guard let parsed = Int(text), (1...200).contains(parsed) else {
                    throw AtriumError(.badRequest, "limit must be 1 to 200", fields: [.init(field: "limit", reason: "must be 1 to 200")])
                }
                limit = parsed
            }
            var before: UUID?
            if let text = query.get("before") {
                guard let parsed = UUID(canonical: text) else {
                    throw AtriumError(.badRequest, "before must be a delivery id", fields: [.init(field: "before", reason: "must be a delivery id")])
                }
                before = parsed
            }
            let deliveries = try await self.webhooks.deliveries(
                principal, webhook: try context.uuidParameter("id", naming: "webhook"), status: status, before: before, limit: limit
            )
            return Response.json(.list(deliveries.map(DeliveryJSON.init)))
        }
        router.post("v1/webhooks/:id/deliveries/:deliveryId/retry") { _, context in
            let delivery = try await self.webhooks.retry(
                try context.authenticated(), webhook: try context.uuidParameter("id", naming: "webhook"),
                delivery: try context.uuidParameter("deliveryId", naming: "delivery")
            )
            self.dispatcher.wake()
            return Response.json(DeliveryJSON(delivery), status: .accepted)
        }
        router.post("v1/webhooks/:id/test") { _, context in
            let delivery = try await self.webhooks.sendTest(try context.authenticated(), webhook: try context.uuidParameter("id", naming: "webhook"))
            self.dispatcher.wake()
            return Response.json(DeliveryJSON(delivery), status: .accepted)
        }
    }
}

struct WebhookJSON: JSONRepresentable {
    let webhook: Webhook
    /// Only when the secret is made (creation, rotation).
    let secret: String?

    init(_ webhook: Webhook, secret: String? = nil) {
        self.webhook = webhook
        self.secret = secret
    }

    var json: JSONValue {
        .fields([
            "collections": self.webhook.collections.map { .array($0.map(JSONValue.string)) } ?? .null,
            "createdAt": .date(self.webhook.createdAt),
            "description": .string(self.webhook.description),
            "disabledReason": self.webhook.disabledReason.map(JSONValue.string),
            "enabled": .bool(self.webhook.enabled),
            "events": .array(self.webhook.events.map(JSONValue.string)),
            "id": .id(self.webhook.id),
            "ordered": .bool(self.webhook.ordered),
            "previousSecretExpiresAt": self.webhook.previousSecretUntil.map { .date($0) },
            "secret": self.secret.map(JSONValue.string),
            "updatedAt": .date(self.webhook.updatedAt),
            "url": .string(self.webhook.url),
        ])
    }
}

struct DeliveryJSON: JSONRepresentable {
    let delivery: WebhookDelivery

    init(_ delivery: WebhookDelivery) {
        self.delivery = delivery
    }

    var json: JSONValue {
        .fields([
            "attempts": .integer(self.delivery.attempts),
            "completedAt": self.delivery.completedAt.map { .date($0) },
            "createdAt": .date(self.delivery.createdAt),
            "durationMs": self.delivery.durationMilliseconds.map { .integer($0) },
            "error": self.delivery.error.map(JSONValue.string),
            "event": .string(self.delivery.eventType),
            "id": .id(self.delivery.id),
            "lastAttemptAt": self.delivery.lastAttemptAt.map { .date($0) },
            "messageId": .string(self.delivery.messageID),
            "nextAttemptAt": self.delivery.nextAttemptAt.map { .date($0) },
            "responseBody": self.delivery.responseBody.map(JSONValue.string),
            "responseStatus": self.delivery.responseStatus.map { .integer($0) },
            "status": .string(self.delivery.status.rawValue),
            "webhookId": .id(self.delivery.webhookID),
        ])
    }
}
