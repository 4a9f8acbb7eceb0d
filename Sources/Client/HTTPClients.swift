import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOSSL

/// HTTP clients that verify servers against a given set of authorities (a private registry's
/// own CA), one per bundle for the life of the process. Certificates and host names are always
/// verified; only the roots change.
public enum HTTPClients {
    private static let clients = NIOLockedValueBox<[String: HTTPClient]>([:])

    public static func trusting(bundle path: String) throws -> HTTPClient {
        if let client = clients.withLockedValue({ $0[path] }) { return client }
        let roots = try NIOSSLCertificate.fromPEMFile(path)
        guard !roots.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        tls.minimumTLSVersion = .tlsv12
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        return clients.withLockedValue { clients in
            if let existing = clients[path] {
                try? client.syncShutdown()
                return existing
            }
            clients[path] = client
            return client
        }
    }
}
