import Foundation
import TestSupport
import Testing

/// `epr serve` over HTTPS with a certificate from a test CA: curl and the CLI verify it, old
/// protocols are refused, and every answer carries HSTS.
@Suite struct TLSTests {
    /// A test CA and a server certificate for 127.0.0.1 and localhost, made with openssl.
    static func makeCertificates(in directory: URL) throws {
        let script = """
        set -e
        cd '\(directory.path)'
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 30 -sha256 \
          -subj "/CN=epr test CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
        printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 -sha256 -extfile server.ext
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other.key -out other.crt -days 30 -subj "/CN=other CA"
        """
        let (status, output) = try Fixtures.run("/bin/bash", ["-c", script])
        guard status == 0 else { throw Fixtures.FixtureError(description: "openssl: \(output)") }
    }

    @Test func httpsWithATestCertificateAuthority() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.makeCertificates(in: directory)
        let ca = directory.appendingPathComponent("ca.crt").path
        let server = try ServerProcess(data: directory.appendingPathComponent("data"),
                                       arguments: ["--tls-certificate", directory.appendingPathComponent("server.crt").path,
                                                   "--tls-key", directory.appendingPathComponent("server.key").path])
        defer { server.stop() }
        #expect(server.baseURL.hasPrefix("https://"))
        let curl = try #require(Fixtures.tool("curl"))

        let (okStatus, headers) = try Fixtures.run(curl, ["-sS", "-D", "-", "-o", "/dev/null", "--cacert", ca, server.baseURL + "/api/v1/packages"])
        #expect(okStatus == 0, "\(headers)")
        #expect(headers.hasPrefix("HTTP/1.1 200"))
        #expect(headers.lowercased().contains("strict-transport-security: max-age=31536000; includesubdomains"), "\(headers)")
        #expect(headers.lowercased().contains("x-content-type-options: nosniff"))
        // Unknown authority, and protocols older than TLS 1.2, are refused.
        #expect(try Fixtures.run(curl, ["-sS", "-o", "/dev/null", server.baseURL + "/healthz"]).status == 60)
        #expect(try Fixtures.run(curl, ["-sS", "-o", "/dev/null", "--cacert", ca, "--tlsv1.1", "--tls-max", "1.1", server.baseURL + "/healthz"]).status == 35)
        let (tls13, version) = try Fixtures.run(curl, ["-sS", "-o", "/dev/null", "-w", "%{http_version}", "--cacert", ca, "--tlsv1.3", server.baseURL + "/healthz"])
        #expect(tls13 == 0 && version == "1.1")
        let (tls12, _) = try Fixtures.run(curl, ["-sS", "-o", "/dev/null", "--cacert", ca, "--tlsv1.2", "--tls-max", "1.2", server.baseURL + "/healthz"])
        #expect(tls12 == 0)
        // Plain HTTP to the HTTPS port gets no answer.
        let plain = try Fixtures.run(curl, ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port)/healthz"])
        #expect(plain.status != 0 || plain.output == "000" || plain.output.hasPrefix("400"), "\(plain.output)")

        // The CLI verifies the certificate, with the registry's CA bundle given.
        func epr(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)", "EPR_TOKEN=\(ServerProcess.token)",
                                             Fixtures.eprBinary] + arguments)
        }
        let (refused, refusal) = try epr(["search", "xdp"])
        #expect(refused != 0 && refusal.contains("CERTIFICATE_VERIFY_FAILED"), "\(refusal)")
        let (wrongCA, _) = try epr(["search", "xdp", "--ca-bundle", directory.appendingPathComponent("other.crt").path])
        #expect(wrongCA != 0)
        let archive = try Fixtures.packageArchive("xdp-port-filter", into: directory)
        let (published, publishOutput) = try epr(["publish", archive, "--ca-bundle", ca])
        #expect(published == 0, "\(publishOutput)")
        // Downloads over TLS go through memory, not sendfile; twice, so the second may come from the cache.
        let expected = try Fixtures.run("/usr/bin/sha256sum", [archive]).output.prefix(64)
        for round in 0..<2 {
            let out = directory.appendingPathComponent("download-\(round)").path
            let (downloaded, downloadOutput) = try Fixtures.run(curl, ["-sS", "-f", "--cacert", ca, "-o", out,
                                                                       server.baseURL + "/xdp-port-filter/latest/bookworm/xdp_port_filter.tar.gz"])
            #expect(downloaded == 0, "\(downloadOutput)")
            #expect(try Fixtures.run("/usr/bin/sha256sum", [out]).output.prefix(64) == expected)
        }
        let (searched, search) = try epr(["search", "xdp", "--ca-bundle", ca])
        #expect(searched == 0 && search.contains("xdp-port-filter"), "\(search)")
    }

    @Test func aMismatchedKeyIsAConfigurationError() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.makeCertificates(in: directory)
        let (status, output) = try Fixtures.run(Fixtures.eprBinary, ["serve", "--data", directory.appendingPathComponent("data").path, "--port", "0",
                                                                     "--tls-certificate", directory.appendingPathComponent("server.crt").path,
                                                                     "--tls-key", directory.appendingPathComponent("other.key").path,
                                                                     "--user", "nobody"])
        #expect(status != 0 && output.contains("does the key belong to the certificate"), "\(output)")
        let (halfStatus, half) = try Fixtures.run(Fixtures.eprBinary, ["serve", "--data", directory.appendingPathComponent("data").path,
                                                                       "--tls-certificate", directory.appendingPathComponent("server.crt").path,
                                                                       "--user", "nobody"])
        #expect(halfStatus != 0 && half.contains("tls_certificate and tls_key go together"), "\(half)")
    }
}
