import HTTPTypes
import Hummingbird
import NIOCore
import Registry

/// The context of every request: Hummingbird's core context plus the client's address, which
/// the audit log records.
public struct RegistryRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var clientAddress: String? { remoteAddress?.ipAddress }
}

/// Reads the bearer token of a request, if any, and asks the registry who it stands for.
struct Authenticator: Sendable {
    let registry: RegistryService
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed.
    let trustedProxies: Set<String>

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        guard let header = request.headers[.authorization] else { return nil }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { throw RegistryError.unauthenticated }
        return try await registry.principal(forToken: header.dropFirst(7).trimmingCharacters(in: .whitespaces),
                                            address: Self.clientAddress(peer: context.clientAddress, forwardedFor: request.headers[values: .xForwardedFor],
                                                                        trusted: trustedProxies))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    /// address in `X-Forwarded-For` that is not a trusted proxy itself (each proxy appends the
    /// address it received the request from, so entries further left are the client's claims).
    static func clientAddress(peer: String?, forwardedFor: [String], trusted: Set<String>) -> String? {
        guard let peer, trusted.contains(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var address = peer
        for hop in hops.reversed() {
            address = hop
            guard trusted.contains(hop) else { break }
        }
        return address
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
