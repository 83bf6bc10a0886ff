import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /openapi.json`.
struct OpenAPIRoutes {
    static let body = ByteBuffer(string: OpenAPIDocument.text)

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
