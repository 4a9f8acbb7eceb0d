import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry

/// Health, readiness, metrics and the API description.
struct OperationsRoutes: Sendable {
    let registry: RegistryService
    let metrics: ServerMetrics

    func add(to router: Router<RegistryRequestContext>) {
        router.get("healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("readyz") { _, context in
            do {
                try await registry.metadata.ping()
                return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            } catch {
                context.logger.warning("not ready", metadata: ["error": "\(error)"])
                throw Problem(.serviceUnavailable, "not-ready", "the metadata store does not answer")
            }
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        for path in ["openapi.json", "api/v1/openapi.json"] {
            router.get(RouterPath(stringLiteral: path)) { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"],
                         body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
            }
        }
    }
}
