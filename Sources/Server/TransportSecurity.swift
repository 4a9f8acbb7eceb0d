import HTTPTypes
import Hummingbird
import NIOCore
import NIOSSL

/// HTTPS for `epr serve`: TLS 1.2 and 1.3 only, forward-secret AEAD cipher suites only, and
/// the headers that keep browsers on HTTPS and off content sniffing.
enum TransportSecurity {
    /// TLS 1.2 suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 (TLS 1.3 suites are
    /// all of that kind already).
    static let cipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The server's TLS context from PEM files of the certificate chain and the private key.
    static func context(certificate: String, key: String) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw Invalid(description: "tls_certificate \(certificate): not a readable PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw Invalid(description: "tls_certificate \(certificate) holds no certificate") }
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw Invalid(description: "tls_key \(key): not a readable PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuiteValues = cipherSuites
        configuration.applicationProtocols = ["http/1.1"]
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw Invalid(description: "the certificate and key do not make a TLS context (\(error)); does the key belong to the certificate?")
        }
    }

    /// Fields every answer carries: `nosniff` always; HSTS over HTTPS.
    static func headers(tls: Bool, hstsMaxAge: Int) -> HTTPFields {
        var fields: HTTPFields = [.xContentTypeOptions: "nosniff"]
        if tls, hstsMaxAge > 0 { fields[.strictTransportSecurity] = "max-age=\(hstsMaxAge); includeSubDomains" }
        return fields
    }
}

/// Adds the fixed security fields to every response of the router.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let fields: HTTPFields

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for field in fields where response.headers[field.name] == nil { response.headers.append(field) }
        return response
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let strictTransportSecurity = HTTPField.Name("Strict-Transport-Security")!
}
