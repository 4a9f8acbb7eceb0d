import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOSSL

/// HTTPS clients that speak TLS 1.2 or later and verify servers against the system's
/// authorities or a given bundle (a private registry's own CA), one per bundle for the life of
/// the process. Certificates and host names are always verified; only the roots change.
public enum HTTPClients {
    private static let clients = NIOLockedValueBox<[String: HTTPClient]>([:])

    public static func trusting(bundle path: String?) throws -> HTTPClient {
        let key = path ?? ""
        if let client = clients.withLockedValue({ $0[key] }) { return client }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let path {
            let roots = try NIOSSLCertificate.fromPEMFile(path)
            guard !roots.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
            tls.trustRoots = .certificates(roots)
        }
        tls.minimumTLSVersion = .tlsv12
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        return clients.withLockedValue { clients in
            if let existing = clients[key] {
                try? client.syncShutdown()
                return existing
            }
            clients[key] = client
            return client
        }
    }
}
