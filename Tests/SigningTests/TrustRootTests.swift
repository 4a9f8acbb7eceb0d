import Crypto
import Foundation
import PackageFormat
import TestSupport
import Testing
import X509
@testable import Signing

/// Certified keys: a signature verifies in trusted mode only when the signer's certificate
/// chains to the repository's root, is valid now, and allows the package.
@Suite struct TrustRootTests {
    static func report(_ example: String, into directory: URL) throws -> PackageReport {
        try PackageInspector().inspect(path: try Fixtures.packageArchive(example, into: directory))
    }

    static func failure(_ body: () async throws -> Void) async -> String? {
        do { try await body(); return nil } catch { return "\(error)" }
    }

    @Test func theTamperMatrixOfCertificates() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (root, intermediate) = try TrustRoot.create(name: "test registry")
        let key = P256.Signing.PrivateKey()
        let certificate = try TrustRoot.certify(key.publicKey, user: "alice", packages: ["xdp-*"], days: 30, by: intermediate)
        let report = try Self.report("xdp-port-filter", into: directory)
        let signature = try PackageSignature.sign(report, with: key, certificates: [certificate, intermediate.certificate])

        // Genuine.
        let (statement, signer) = try await signature.verify(report, trustedRoots: [root.certificate])
        #expect(signer == "alice" && statement.predicate.package == "xdp-port-filter")

        // Uncertified: no certificate at all, or one from another root.
        var bare = signature
        bare.certificates = nil
        #expect(await Self.failure { _ = try await bare.verify(report, trustedRoots: [root.certificate]) }?.contains("carries no certificate") == true)
        let (_, stranger) = try TrustRoot.create(name: "someone else")
        let foreign = try TrustRoot.certify(key.publicKey, user: "alice", packages: ["xdp-*"], days: 30, by: stranger)
        var forged = signature
        forged.certificates = try [foreign, stranger.certificate].map { try $0.serializeAsPEM().pemString }
        #expect(await Self.failure { _ = try await forged.verify(report, trustedRoots: [root.certificate]) }?.contains("does not chain") == true)

        // Certified, but not for this package.
        let narrow = try TrustRoot.certify(key.publicKey, user: "alice", packages: ["tc-*"], days: 30, by: intermediate)
        let elsewhere = try PackageSignature.sign(report, with: key, certificates: [narrow, intermediate.certificate])
        #expect(await Self.failure { _ = try await elsewhere.verify(report, trustedRoots: [root.certificate]) }
            == "alice's key is certified for tc-*, not for xdp-port-filter")

        // Expired.
        let old = try TrustRoot.certify(key.publicKey, user: "alice", packages: ["xdp-*"], days: 1, by: intermediate,
                                        now: Date().addingTimeInterval(-10 * 86400))
        let stale = try PackageSignature.sign(report, with: key, certificates: [old, intermediate.certificate])
        #expect(await Self.failure { _ = try await stale.verify(report, trustedRoots: [root.certificate]) }?.contains("is not valid at") == true)

        // A certificate for another key than the one that signed.
        let other = P256.Signing.PrivateKey()
        #expect(throws: PackageSignature.Failure.self) { _ = try PackageSignature.sign(report, with: other, certificates: [certificate]) }
        var swapped = try PackageSignature.sign(report, with: other)
        swapped.certificates = signature.certificates
        #expect(await Self.failure { _ = try await swapped.verify(report, trustedRoots: [root.certificate]) }?.contains("no signature by the key") == true)

        // Revoked: the authority's signed list names the certificate; a list signed by anyone
        // else counts for nothing.
        let month = Date().addingTimeInterval(30 * 86400)
        let list = try RevocationList.sign(.init(sequence: 2, updated: Date(), expires: month,
                                                 revoked: [.init(serial: RevocationList.serial(of: certificate), revoked_at: Date(), reason: "key lost")]),
                                           by: intermediate)
        #expect(await Self.failure { _ = try await signature.verify(report, trustedRoots: [root.certificate], revocations: list) }
            == "the signing certificate \(RevocationList.serial(of: certificate)) is revoked: key lost")
        // Revoking a key revokes every certificate for it.
        let byKey = try RevocationList.sign(.init(sequence: 3, updated: Date(), expires: month,
                                                  revoked: [.init(serial: "00", key_id: SigningKeys.keyID(key.publicKey), revoked_at: Date(), reason: "stolen")]),
                                            by: intermediate)
        #expect(await Self.failure { _ = try await signature.verify(report, trustedRoots: [root.certificate], revocations: byKey) }?.contains("is revoked: stolen") == true)
        let empty = try RevocationList.sign(.init(sequence: 1, updated: Date(), expires: month, revoked: []), by: intermediate)
        #expect(try await signature.verify(report, trustedRoots: [root.certificate], revocations: empty).signer == "alice")
        let bogus = try RevocationList.sign(.init(sequence: 9, updated: Date(), expires: month, revoked: []), by: stranger)
        #expect(await Self.failure { _ = try await signature.verify(report, trustedRoots: [root.certificate], revocations: bogus) }?
            .contains("not signed by an authority of the trusted root") == true)
        let leafSigned = try RevocationList.sign(.init(sequence: 9, updated: Date(), expires: month, revoked: []),
                                                 by: .init(certificate: certificate, key: key))
        #expect(await Self.failure { _ = try await signature.verify(report, trustedRoots: [root.certificate], revocations: leafSigned) }?
            .contains("not signed by an authority of the trusted root") == true, "a contributor cannot sign a list")
        let expired = try RevocationList.sign(.init(sequence: 1, updated: Date().addingTimeInterval(-40 * 86400),
                                                    expires: Date().addingTimeInterval(-86400), revoked: []), by: intermediate)
        #expect(await Self.failure { _ = try await signature.verify(report, trustedRoots: [root.certificate], revocations: expired) }?
            .contains("expired") == true, "an old list cannot be handed out for ever")

        // The package itself changed after signing.
        let otherReport = try Self.report("xdp-proto-counter", into: directory)
        #expect(await Self.failure { _ = try await signature.verify(otherReport, trustedRoots: [root.certificate]) } != nil)
    }

    @Test func openSSLAcceptsTheChain() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (root, intermediate) = try TrustRoot.create(name: "test registry")
        let key = P256.Signing.PrivateKey()
        let leaf = try TrustRoot.certify(key.publicKey, user: "alice", packages: ["xdp-*", "l3af-*"], days: 30, by: intermediate)
        for (name, certificate) in [("root.crt", root.certificate), ("intermediate.crt", intermediate.certificate), ("leaf.crt", leaf)] {
            try TrustRoot.pem([certificate]).write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let openssl = try #require(Fixtures.tool("openssl"))
        let (status, output) = try Fixtures.run(openssl, ["verify", "-x509_strict", "-CAfile", directory.appendingPathComponent("root.crt").path,
                                                          "-untrusted", directory.appendingPathComponent("intermediate.crt").path,
                                                          directory.appendingPathComponent("leaf.crt").path])
        #expect(status == 0 && output.contains("OK"), "\(output)")
        let (_, extensions) = try Fixtures.run(openssl, ["x509", "-noout", "-in", directory.appendingPathComponent("leaf.crt").path, "-ext",
                                                         "extendedKeyUsage,subjectAltName,basicConstraints"])
        #expect(extensions.contains("Code Signing") && extensions.contains("URI:epr-package:l3af-*") && extensions.contains("CA:FALSE"),
                "\(extensions)")
        #expect(TrustRoot.grant(of: leaf).signer == "alice" && TrustRoot.grant(of: leaf).packages == ["xdp-*", "l3af-*"])
        #expect(PackageName.pattern("xdp-*", covers: "XDP_port_filter") && !PackageName.pattern("xdp-*", covers: "tc-marker"))
        #expect(PackageName.pattern("exact", covers: "exact") && PackageName.pattern("*-filter", covers: "xdp-port-filter"))
    }
}
