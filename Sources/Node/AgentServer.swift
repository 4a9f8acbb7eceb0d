import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The node agent's HTTP face: L3AFD's download paths on a local address (its
/// `ebpf_package_repo_url` points here), and `/healthz`.
public enum AgentServer {
    public static func application(agent: NodeAgent, host: String, port: Int, logger: Logger,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.get("healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        let files = FileIO()
        @Sendable func answer(_ request: Request, _ context: BasicRequestContext, head: Bool) async throws -> Response {
            let name = try context.parameters.require("name"), version = try context.parameters.require("version")
            let platform = try context.parameters.require("platform"), artifact = try context.parameters.require("artifact")
            let served: NodeAgent.Served
            do { served = try await agent.fetch(name: name, version: version, platform: platform, artifact: artifact) } catch {
                let body = try JSONSerialization.data(withJSONObject: ["status": error.status, "code": error.code, "detail": error.reason], options: [.sortedKeys])
                return Response(status: .init(code: error.status), headers: [.contentType: "application/problem+json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
            var headers: HTTPFields = [.contentType: "application/gzip", .contentLength: String(served.size), .eTag: "\"\(served.digest)\""]
            headers[HTTPField.Name("Epr-Version")!] = served.version
            headers[HTTPField.Name("Epr-Trust")!] = served.warning == nil ? "verified" : "unverified"
            if let warning = served.warning { headers[HTTPField.Name("Epr-Warning")!] = warning }
            if head { return Response(status: .ok, headers: headers) }
            return Response(status: .ok, headers: headers, body: try await files.loadFile(path: served.file.path, context: context))
        }
        router.get(":name/:version/:platform/:artifact") { request, context in try await answer(request, context, head: false) }
        router.head(":name/:version/:platform/:artifact") { request, context in try await answer(request, context, head: true) }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "epr-agent"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
