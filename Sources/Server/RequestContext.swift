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

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        guard let header = request.headers[.authorization] else { return nil }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { throw RegistryError.unauthenticated }
        return try await registry.principal(forToken: header.dropFirst(7).trimmingCharacters(in: .whitespaces), address: context.clientAddress)
    }
}
