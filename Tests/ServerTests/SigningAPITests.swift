import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import PackageFormat
@testable import Registry
import RegistryAPI
import Server
import Signing
import TestSupport
import Testing
import X509

/// The signing authority through the API: grants, certificates for keys held by contributors,
/// signatures checked on upload, attestations on publication, revocation.
@Suite struct SigningAPITests {
    /// A trust directory as `epr trust init` writes it (the intermediate key unencrypted here).
    static func trustDirectory(in directory: URL) throws -> (url: URL, root: TrustRoot.Authority) {
        let url = directory.appendingPathComponent("trust")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let (root, intermediate) = try TrustRoot.create(name: "test registry")
        try TrustRoot.pem([root.certificate]).write(to: url.appendingPathComponent("root.crt"), atomically: true, encoding: .utf8)
        try TrustRoot.pem([intermediate.certificate]).write(to: url.appendingPathComponent("intermediate.crt"), atomically: true, encoding: .utf8)
        try intermediate.key.pemRepresentation.write(to: url.appendingPathComponent("intermediate.key"), atomically: true, encoding: .utf8)
        return (url, root)
    }

    static func user(_ registry: TestRegistry, _ name: String, _ role: Principal.Role) async throws -> String {
        let admin = Principal(name: "admin", role: .admin)
        _ = try await registry.server.registry.createUser(name: name, role: role, by: admin)
        return try await registry.server.registry.createToken(for: name, name: "t", scopes: role.scopes.map(\.rawValue), packages: [],
                                                              expiresIn: nil, by: admin).secret
    }

    static func certifyRequest(_ key: P256.Signing.PrivateKey, user: String, packages: [String]?, proofUser: String? = nil) throws -> String {
        let id = SigningKeys.keyID(key.publicKey)
        let proof = try key.signature(for: Data(SigningKeyRequest.proofMessage(user: proofUser ?? user, keyID: id).utf8))
        return String(decoding: try JSONEncoder().encode(SigningKeyRequest(public_key: key.publicKey.pemRepresentation,
                                                                            proof: proof.derRepresentation.base64EncodedString(),
                                                                            packages: packages)), as: UTF8.self)
    }

    static func signature(_ archive: ByteBuffer, key: P256.Signing.PrivateKey, chain: [Certificate]?) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sign-\(UUID().uuidString).tar.gz")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(buffer: archive).write(to: file)
        let report = try PackageInspector().inspect(path: file.path)
        return try JSONEncoder().encode(try PackageSignature.sign(report, with: key, certificates: chain)).base64EncodedString()
    }

    @Test func signedUploadsAreCheckedAttestedAndRevoked() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trust, root) = try Self.trustDirectory(in: scratch)
        let registry = try await TestRegistry.make { $0.trustDirectory = trust.path }
        let alice = try await Self.user(registry, "alice", .publisher), reviewer = try await Self.user(registry, "rev1", .reviewer)
        let archive = try registry.archive("xdp-port-filter"), other = try registry.archive("exec-tracker")
        let laterVersion = try registry.archive("xdp-port-filter", version: "9.9.9")
        try await registry.run { client in
            func call(_ token: String, _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
                var fields = headers
                fields[.authorization] = "Bearer \(token)"
                return try await client.send(method, uri, json: json, headers: fields)
            }
            func upload(_ archive: ByteBuffer, signature: String?) async throws -> TestResponse {
                var headers: HTTPFields = [.contentType: "application/gzip", .authorization: "Bearer \(alice)"]
                if let signature { headers[HTTPField.Name("Epr-Signature")!] = signature }
                return try await client.execute(uri: "/api/v1/packages", method: .post, headers: headers, body: archive)
            }
            let info = try await client.get("/api/v1/trust").json(TrustInfo.self)
            let rootPEM = try TrustRoot.pem([root.certificate])
            #expect(info.configured && info.repository == "epr" && info.root_certificates == rootPEM)

            // Certificates: only under a grant, only for a key the caller holds.
            let key = P256.Signing.PrivateKey()
            let ungranted = try await call(alice, .post, "/api/v1/signing-keys", try Self.certifyRequest(key, user: "alice", packages: nil))
            #expect(ungranted.status == .forbidden && ungranted.problemCode == "signing-not-granted")
            #expect(try await call(alice, .post, "/api/v1/signing-grants", #"{"user": "alice", "packages": ["xdp-*"]}"#).status == .forbidden,
                    "a publisher cannot grant itself")
            #expect(try await call(TestRegistry.token, .post, "/api/v1/signing-grants", #"{"user": "alice", "packages": ["xdp-*"]}"#).status == .created)
            let forged = try await call(alice, .post, "/api/v1/signing-keys", try Self.certifyRequest(key, user: "alice", packages: nil, proofUser: "bob"))
            #expect(forged.status == .badRequest, "a proof made for another user")
            let wider = try await call(alice, .post, "/api/v1/signing-keys", try Self.certifyRequest(key, user: "alice", packages: ["*"]))
            #expect(wider.problemCode == "signing-not-granted", "a pattern wider than the grant")
            let issued = try await call(alice, .post, "/api/v1/signing-keys", try Self.certifyRequest(key, user: "alice", packages: nil))
            #expect(issued.status == .created)
            let certificate = try issued.json(SigningCertificateBody.self)
            #expect(certificate.packages == ["xdp-*"] && certificate.status == "active" && certificate.key_id == SigningKeys.keyID(key.publicKey))
            let chain = try TrustRoot.certificates(pem: certificate.chain)
            let verified = try await TrustRoot.verify(chain: chain, roots: [root.certificate], package: "xdp-port-filter")
            #expect(verified.signer == "alice")

            // Uploads: refused unless the signature checks out, before anything is stored.
            let uncertified = try await upload(archive, signature: try Self.signature(archive, key: P256.Signing.PrivateKey(), chain: nil))
            #expect(uncertified.status == .unprocessableContent && uncertified.problemCode == "signature-uncertified")
            let notAllowed = try await upload(other, signature: try Self.signature(other, key: key, chain: chain))
            #expect(notAllowed.problemCode == "signature-not-allowed")
            let replayed = try await upload(archive, signature: try Self.signature(laterVersion, key: key, chain: chain))
            #expect(replayed.problemCode == "signature-other-package")
            #expect(try await upload(archive, signature: "not base64!").problemCode == "invalid-signature-header")
            #expect(try await call(TestRegistry.token, .get, "/api/v1/submissions").json(SubmissionPage.self).total == 0, "nothing stored")

            let signature = try Self.signature(archive, key: key, chain: chain)
            let submitted = try await upload(archive, signature: signature)
            #expect(submitted.status == .created)
            let id = try submitted.json(SubmissionDetail.self).submission.id
            #expect(try await client.get("/api/v1/packages/xdp-port-filter/versions/1.0.0/attestation").status == .notFound)
            _ = try await call(reviewer, .post, "/api/v1/submissions/\(id)/approve", "{}")
            let summary = try await client.get("/api/v1/packages/xdp-port-filter/versions/1.0.0").json(VersionSummary.self)
            #expect(summary.signer == "alice" && summary.attested == true && summary.signature_key_id == certificate.key_id)

            // A node's whole check passes with what the repository serves.
            let file = scratch.appendingPathComponent("xdp_port_filter.tar.gz")
            try Data(buffer: archive).write(to: file)
            let served = try await client.get("/api/v1/packages/xdp-port-filter/versions/1.0.0/signature")
            #expect(Data(buffer: served.body) == Data(base64Encoded: signature), "served as uploaded")
            let envelope = try JSONDecoder().decode(PackageSignature.self, from: Data(buffer: served.body))
            let attestation = try JSONDecoder().decode(RepositoryAttestation.self,
                                                       from: Data(buffer: try await client.get("/api/v1/packages/xdp-port-filter/versions/1.0.0/attestation").body))
            func anchors() async throws -> TrustAnchors {
                let list = try JSONDecoder().decode(RevocationList.self, from: Data(buffer: try await client.get("/api/v1/trust/revocations").body))
                return TrustAnchors(roots: [root.certificate], revocations: try await list.verifiedContent(roots: [root.certificate]))
            }
            let good = try await TrustedVerification.verify(archive: file, expected: ("xdp-port-filter", "1.0.0"), signature: envelope,
                                                            attestation: attestation, anchors: try await anchors())
            #expect(good.signer == "alice" && good.attestation?.reviewers == ["rev1"] && good.attestation?.publisher == "alice")
            #expect(good.attestation?.checks.map(\.id).contains("inspection") == true)

            // Revoking the key: listed at once in a newer list, and nodes refuse the package.
            let before = try JSONDecoder().decode(RevocationList.self, from: Data(buffer: try await client.get("/api/v1/trust/revocations").body))
            #expect(try await call(reviewer, .post, "/api/v1/signing-keys/\(certificate.key_id)/revoke", #"{"reason": "lost"}"#).status == .forbidden)
            #expect(try await call(alice, .post, "/api/v1/signing-keys/\(certificate.key_id)/revoke", #"{"reason": "lost"}"#).status == .ok)
            let after = try await anchors()
            #expect(after.revocations?.revoked.map(\.serial) == [certificate.serial])
            let earlier = try await before.verifiedContent(roots: [root.certificate]).sequence
            #expect((after.revocations?.sequence ?? 0) > earlier)
            do {
                _ = try await TrustedVerification.verify(archive: file, expected: ("xdp-port-filter", "1.0.0"), signature: envelope,
                                                         attestation: attestation, anchors: after)
                Issue.record("a package signed with a revoked key verified")
            } catch let refusal as VerificationRefusal {
                #expect(refusal.link == .revoked && refusal.reason.contains("lost"), "\(refusal)")
            }
            #expect(try await call(alice, .post, "/api/v1/signing-keys", try Self.certifyRequest(key, user: "alice", packages: nil)).problemCode
                    == "signing-key-revoked")
            #expect(try await call(alice, .get, "/api/v1/signing-keys").json([SigningCertificateBody].self).map(\.status) == ["revoked"])
        }
    }

    @Test func unsignedUploadsAreRefusedWhenSignaturesAreRequired() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trust, _) = try Self.trustDirectory(in: scratch)
        let registry = try await TestRegistry.make {
            $0.trustDirectory = trust.path
            $0.requireSignatures = true
        }
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            let refused = try await client.publish(archive)
            #expect(refused.status == .unprocessableContent && refused.problemCode == "signature-required")
        }
    }

    @Test func withoutAnAuthoritySigningIsUnavailable() async throws {
        let registry = try await TestRegistry.make()
        try await registry.run { client in
            let info = try await client.get("/api/v1/trust").json(TrustInfo.self)
            let list = try await client.get("/api/v1/trust/revocations")
            #expect(info.configured == false)
            #expect(list.status == .conflict && list.problemCode == "signing-not-configured")
        }
    }

    /// A new attestation key (renewed, or certified by a new authority) attests again what the
    /// old one attested, so attestations never outlive their certificate.
    @Test func aNewAttestationKeyAttestsEverythingAgain() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trust, root) = try Self.trustDirectory(in: scratch)
        let registry = try await TestRegistry.make { $0.trustDirectory = trust.path }
        let archive = try registry.archive("xdp-port-filter")
        var configuration = ServerConfiguration()
        configuration.dataDirectory = registry.dataDirectory.path
        configuration.port = 0
        configuration.trustDirectory = trust.path
        configuration.verifier = false
        configuration.sourcesCheck = false
        configuration.autoPublish = ["admin"]
        try await registry.server.application.test(.router) { client in
            let published = try await client.publish(archive)
            #expect(published.status == .created)
        }
        let first = try await registry.server.registry.version("xdp-port-filter", "1.0.0").attestation
        try await registry.server.shutdown()
        let before = try JSONDecoder().decode(RepositoryAttestation.self, from: try #require(first))
        _ = try await before.verifiedStatement(roots: [root.certificate], revocations: nil)

        // The key is gone (as when it is renewed): the restarted server certifies a new one and attests again.
        try FileManager.default.removeItem(at: registry.dataDirectory.appendingPathComponent("attestation.key"))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let restarted = try await RegistryServer.build(configuration: configuration, environment: [:], logger: logger)
        defer { try? FileManager.default.removeItem(at: registry.directory) }
        var after: RepositoryAttestation?
        for _ in 0..<100 {
            let record = try await restarted.registry.version("xdp-port-filter", "1.0.0")
            if let data = record.attestation, let decoded = try? JSONDecoder().decode(RepositoryAttestation.self, from: data),
               decoded.signatures.first?.keyid != before.signatures.first?.keyid {
                after = decoded
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await restarted.shutdown()
        let renewed = try #require(after, "attested again with the new key")
        let statement = try await renewed.verifiedStatement(roots: [root.certificate], revocations: nil)
        let original = try await before.verifiedStatement(roots: [root.certificate], revocations: nil)
        #expect(statement.predicate == original.predicate && statement.subject == original.subject, "the same statement, signed anew")
    }

    /// Organisation admins grant within their namespace only; a token limited to packages
    /// certifies for those only.
    @Test func grantsStayInTheirNamespaceAndTokensInTheirPackages() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trust, _) = try Self.trustDirectory(in: scratch)
        let registry = try await TestRegistry.make { $0.trustDirectory = trust.path }
        let service = registry.server.registry, admin = Principal(name: "admin", role: .admin)
        let acmeAdmin = try await Self.user(registry, "ann", .publisher)
        _ = try await Self.user(registry, "bob", .publisher)
        _ = try await service.createOrganisation(name: "acme", description: "", admin: "ann", by: admin)
        _ = try await service.createOrganisation(name: "acme-corp", description: "", admin: "bob", by: admin)
        let limited = try await service.createToken(for: "bob", name: "limited", scopes: ["sign"], packages: ["tc-one"], expiresIn: nil, by: admin).secret
        try await registry.run { client in
            func grant(_ token: String, _ patterns: [String]) async throws -> TestResponse {
                let body = String(decoding: try JSONEncoder().encode(SigningGrantRequest(user: "bob", packages: patterns)), as: UTF8.self)
                return try await client.send(.post, "/api/v1/signing-grants", json: body, headers: [.authorization: "Bearer \(token)"])
            }
            #expect(try await grant(acmeAdmin, ["acme-tools"]).status == .created, "an exact name in acme's namespace")
            #expect(try await grant(acmeAdmin, ["acme-*"]).status == .forbidden, "acme-* would cover acme-corp's namespace")
            #expect(try await grant(acmeAdmin, ["acme-corp-x"]).status == .forbidden, "acme-corp's namespace, not acme's")
            #expect(try await grant(acmeAdmin, ["xdp-*"]).status == .forbidden, "outside any namespace of ann's")
            #expect(try await grant(acmeAdmin, ["acme-ok", "zzz"]).status == .forbidden)
            #expect(try await service.signingGrants(user: "bob", by: admin).map(\.pattern) == ["acme-tools"], "a refused request grants nothing")
            #expect(try await grant(TestRegistry.token, ["tc-*"]).status == .created)

            let key = P256.Signing.PrivateKey()
            let wide = try await client.send(.post, "/api/v1/signing-keys", json: try Self.certifyRequest(key, user: "bob", packages: ["tc-*"]),
                                             headers: [.authorization: "Bearer \(limited)"])
            #expect(wide.status == .forbidden, "the token is limited to tc-one")
            let narrow = try await client.send(.post, "/api/v1/signing-keys", json: try Self.certifyRequest(key, user: "bob", packages: ["tc-one"]),
                                               headers: [.authorization: "Bearer \(limited)"])
            #expect(narrow.status == .created)
        }
    }

    /// A running repository renews its attestation key as the key's certificate nears its end,
    /// and attests again what it attested.
    @Test func theAttestationKeyIsRenewedWhileRunning() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (trust, root) = try Self.trustDirectory(in: scratch)
        let registry = try await TestRegistry.make { $0.trustDirectory = trust.path }
        let archive = try registry.archive("xdp-port-filter")
        let service = registry.server.registry, dataDirectory = registry.dataDirectory
        try await registry.run { client in
            let published = try await client.publish(archive)
            #expect(published.status == .created)
            let before = try #require(service.signing)
            try await service.renewAttestationKeyIfDue()
            #expect(service.signing?.attestationChain.first == before.attestationChain.first, "not due: kept")

            // 340 days on, the certificate has less than 30 days left.
            let later = Date(timeIntervalSinceNow: 340 * 86400)
            try await service.renewAttestationKeyIfDue(now: later)
            let after = try #require(service.signing)
            #expect(after.attestationChain.first != before.attestationChain.first)
            #expect(try await service.attestPending() == 1, "the version is attested again")
            let data = try #require(try await service.version("xdp-port-filter", "1.0.0").attestation)
            let attestation = try JSONDecoder().decode(RepositoryAttestation.self, from: data)
            #expect(attestation.signatures.first?.keyid == after.attestationKeyID)
            _ = try await attestation.verifiedStatement(roots: [root.certificate], revocations: nil, at: later)
            let kept = try String(contentsOf: dataDirectory.appendingPathComponent("attestation.crt"), encoding: .utf8)
            #expect(try TrustRoot.certificates(pem: kept).first == after.attestationChain.first, "the renewed key is kept for restarts")
        }
    }
}
