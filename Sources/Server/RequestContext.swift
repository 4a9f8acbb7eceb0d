import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry
import Storage

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

/// Finds who a request comes from: a bearer token, or else a session cookie (whose unsafe
/// requests must echo the session's CSRF token and, when they say where they come from, come
/// from this origin).
struct Authenticator: Sendable {
    let registry: RegistryService
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed.
    let trustedProxies: Set<String>
    var cookies = SessionCookies(secure: true, lifetime: 7 * 86_400)

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        if request.headers[.authorization] != nil { return try await tokenPrincipal(request, context) }
        return try await session(request, context)?.0
    }

    func tokenPrincipal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        guard let header = request.headers[.authorization] else { return nil }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { throw RegistryError.unauthenticated }
        return try await registry.principal(forToken: header.dropFirst(7).trimmingCharacters(in: .whitespaces), address: address(request, context))
    }

    /// The session of the request's cookie, checked against cross-site use on unsafe methods.
    func session(_ request: Request, _ context: RegistryRequestContext) async throws -> (Principal, SessionRecord)? {
        guard let secret = cookies.value(in: request.headers[values: .cookie]) else { return nil }
        let (principal, session) = try await registry.principal(forSession: secret, address: address(request, context))
        if ![.get, .head, .options].contains(request.method) {
            guard ConstantTime.equal(request.headers[.xCSRFToken] ?? "", session.csrf) else {
                throw Problem(.forbidden, "csrf-failed", "a request signed in by cookie must carry the session's CSRF token in X-CSRF-Token")
            }
            if let origin = request.headers[.origin], let host = request.head.authority, Self.authority(of: origin) != host {
                throw Problem(.forbidden, "csrf-failed", "the request comes from another site (\(origin))")
            }
        }
        return (principal, session)
    }

    /// `host[:port]` of an origin (`https://epr.example:8443`); nil for `null` and the like.
    static func authority(of origin: String) -> String? {
        guard let url = URL(string: origin), let host = url.host else { return nil }
        let shown = host.contains(":") ? "[\(host)]" : host
        return url.port.map { "\(shown):\($0)" } ?? shown
    }

    func address(_ request: Request, _ context: RegistryRequestContext) -> String? {
        Self.clientAddress(peer: context.clientAddress, forwardedFor: request.headers[values: .xForwardedFor], trusted: trustedProxies)
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

/// The session cookie: `__Host-epr_session` when Secure (bound to this host, every path),
/// `epr_session` when the server is configured for plain HTTP; always HttpOnly and SameSite=Strict.
struct SessionCookies: Sendable {
    var secure: Bool
    var lifetime: TimeInterval

    var name: String { secure ? "__Host-epr_session" : "epr_session" }

    func value(in headers: [String]) -> String? { Self.value(of: name, in: headers) }

    /// The value of the cookie `name` in `Cookie` header fields.
    static func value(of name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    func setting(_ secret: String) -> String {
        "\(name)=\(secret); Path=/; Max-Age=\(Int(lifetime)); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    var clearing: String { "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "") }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xCSRFToken = HTTPField.Name("X-CSRF-Token")!
}
