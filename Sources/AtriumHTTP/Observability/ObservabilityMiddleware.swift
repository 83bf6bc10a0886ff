import AtriumCore
import AtriumText
import Foundation
import Hummingbird
import HTTPTypes
import Logging

/// The outermost handling of every request after its id: one access-log entry and the request
/// metrics, under the route template (`/v1/collections/{name}`), never the concrete path, so
/// ids stay out of metric labels and secrets in paths (invitation tokens) stay out of logs.
struct ObservabilityMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let metrics: AtriumMetrics?
    let accessLog: AccessLog?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Problems are turned into responses further in; what reaches here is a failure to
            // produce any response (the connection is gone).
            self.finish(request, context, status: .internalServerError, start: start)
            throw error
        }
        self.finish(request, context, status: response.status, start: start)
        return response
    }

    private func finish(_ request: Request, _ context: Context, status: HTTPResponse.Status, start: ContinuousClock.Instant) {
        let duration = ContinuousClock.now - start
        // Requests no route took share one label, so scanners cannot mint series.
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        self.metrics?.recordRequest(route: route, method: request.method, status: status, duration: duration)
        guard let accessLog = self.accessLog, context.logger.logLevel <= .info else { return }
        var entry = AccessLog.Entry(
            time: Date(), label: context.logger.label, method: request.method, route: route, status: Int(status.code),
            duration: duration, clientAddress: context.clientAddress, requestID: context.requestID
        )
        if let principal = context.outcome.principal {
            entry.tenant = principal.tenant.tenantID
            switch principal.credential {
            case .session(let userID, _): entry.user = userID
            case .apiKey(let keyID): entry.apiKey = keyID
            }
        }
        accessLog.record(entry)
    }
}
