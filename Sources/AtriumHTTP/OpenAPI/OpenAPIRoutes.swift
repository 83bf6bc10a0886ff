import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /openapi.json`: the OpenAPI 3.1 description of every route, kept by hand in
/// `openapi.json` next to this file. `OpenAPICoverageTests` fails when a route exists that the
/// document lacks or the reverse; CI validates it and runs schemathesis against a live server.
struct OpenAPIRoutes {
    static let body = ByteBuffer(bytes: PackageResources.openapi_json)

    func register(on router: RouteRecorder) {
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: Self.body)
            )
        }
    }
}
