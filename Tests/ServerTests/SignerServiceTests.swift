import Crypto
import Foundation
import Logging
import PackageFormat
@testable import Registry
import Signing
import TestSupport
import Testing

/// The signer signs only statements it can check: revocation lists never roll back (their
/// numbers grow within what nodes accept, across restarts, and keep every revocation already
/// listed), OCI payloads are the repository's own, certificates stay within their limits, and a
/// trust directory holding the root's key is refused.
@Suite struct SignerServiceTests {
    struct Setup {
        let directory: URL
        let trust: URL
        let state: URL
        let intermediate: TrustRoot.Authority

        func service(referencePrefix: String = "") throws -> SignerService {
            var logger = Logger(label: "signer-test")
            logger.logLevel = .critical
            let keys = try LocalRepositoryKeys.load(directory: trust, passphrase: nil, state: state, repository: "epr", logger: logger)
            return try SignerService(keys: keys, oci: P256.Signing.PrivateKey(), certificateDays: 365, referencePrefix: referencePrefix, state: state,
                                 logger: logger)
        }
    }

    static func setup() throws -> Setup {
        let directory = try Fixtures.temporaryDirectory()
        let trust = directory.appendingPathComponent("trust"), state = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: trust, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let (root, intermediate) = try TrustRoot.create(name: "signer-test")
        try TrustRoot.pem([root.certificate]).write(to: trust.appendingPathComponent("root.crt"), atomically: true, encoding: .utf8)
        try TrustRoot.pem([intermediate.certificate]).write(to: trust.appendingPathComponent("intermediate.crt"), atomically: true, encoding: .utf8)
        try intermediate.key.pemRepresentation.write(to: trust.appendingPathComponent("intermediate.key"), atomically: true, encoding: .utf8)
        return Setup(directory: directory, trust: trust, state: state, intermediate: intermediate)
    }

    static func list(_ sequence: Int, _ serials: [String]) -> SignerRequest {
        var request = SignerRequest(op: "revocations")
        let now = Date()
        request.content = RevocationList.Content(sequence: sequence, updated: now, expires: now.addingTimeInterval(30 * 86400),
                                                 revoked: serials.map { RevocationList.Entry(serial: $0, revoked_at: now, reason: "test") })
        return request
    }

    @Test func revocationListsNeverRollBack() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.directory) }
        let signer = try setup.service()
        let now = Int(Date().timeIntervalSince1970)
        #expect(signer.handle(Self.list(now, ["aa"])).revocations != nil)
        #expect(signer.handle(Self.list(now, ["aa"])).error != nil, "the same number again")
        #expect(signer.handle(Self.list(now - 5, ["aa"])).error != nil, "a lower number")
        #expect(signer.handle(Self.list(now + 3 * 86400, ["aa"])).error != nil, "a number past what nodes accept")
        let dropped = signer.handle(Self.list(now + 1, ["bb"]))
        #expect(dropped.error?.contains("leaves out") == true, "\(dropped)")
        #expect(signer.handle(Self.list(now + 1, ["aa", "bb"])).revocations != nil)
        // Restarted, it remembers the last list it signed.
        let restarted = try setup.service()
        #expect(restarted.handle(Self.list(now + 1, ["aa", "bb"])).error != nil)
        #expect(restarted.handle(Self.list(now + 2, ["aa"])).error != nil)
        #expect(restarted.handle(Self.list(now + 2, ["aa", "bb", "cc"])).revocations != nil)

        // The trust directory's own list (made offline) counts too.
        let offline = RevocationList.Content(sequence: now + 100, updated: Date(), expires: Date().addingTimeInterval(30 * 86400),
                                             revoked: [RevocationList.Entry(serial: "dd", revoked_at: Date(), reason: "offline")])
        try RevocationList.write(offline, by: setup.intermediate, to: setup.trust.appendingPathComponent("revocations.json"))
        #expect(restarted.handle(Self.list(now + 50, ["aa", "bb", "cc", "dd"])).error != nil, "not above the offline list's number")
        #expect(restarted.handle(Self.list(now + 101, ["aa", "bb", "cc"])).error != nil, "the offline revocation left out")
        #expect(restarted.handle(Self.list(now + 101, ["aa", "bb", "cc", "dd"])).revocations != nil)
    }

    @Test func ociPayloadsAreTheRepositorysOwn() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.directory) }
        let signer = try setup.service(referencePrefix: "epr.example/")
        let digest = SHA256Digest(of: Array("manifest".utf8))
        func sign(_ payload: Data) -> SignerResponse {
            var request = SignerRequest(op: "oci-sign")
            request.payload = payload.base64EncodedString()
            return signer.handle(request)
        }
        let own = OCISigner(key: P256.Signing.PrivateKey(), referencePrefix: "epr.example/")
        #expect(sign(own.payload(repository: "xdp-port-filter", manifest: digest)).signature != nil)
        let elsewhere = OCISigner(key: P256.Signing.PrivateKey(), referencePrefix: "docker.io/library/")
        #expect(sign(elsewhere.payload(repository: "nginx", manifest: digest)).error != nil, "another registry's image")
        func payload(_ optional: [String: Any], reference: String = "epr.example/xdp-port-filter") throws -> Data {
            try JSONSerialization.data(withJSONObject: [
                "critical": ["identity": ["docker-reference": reference], "image": ["docker-manifest-digest": digest.description],
                             "type": "cosign container image signature"],
                "optional": optional,
            ] as [String: Any])
        }
        #expect(sign(try payload(["creator": "epr", "approved": true])).error != nil, "claims of its own")
        #expect(sign(try payload(["creator": "epr"], reference: "epr.example/a/b")).error != nil, "not a package's name")
        #expect(sign(try payload(["creator": "epr"])).signature != nil)
    }

    @Test func certificatesStayWithinTheirLimits() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.directory) }
        let signer = try setup.service()
        func certify(user: String, packages: [String], days: Int) -> SignerResponse {
            var request = SignerRequest(op: "certify")
            (request.public_key, request.user, request.packages, request.days) = (P256.Signing.PrivateKey().publicKey.pemRepresentation, user, packages, days)
            return signer.handle(request)
        }
        #expect(certify(user: "alice", packages: ["xdp-*"], days: 30).certificate != nil)
        #expect(certify(user: "alice", packages: ["xdp-*"], days: 366).error != nil)
        #expect(certify(user: "-x", packages: ["xdp-*"], days: 30).error != nil)
        #expect(certify(user: "alice", packages: [], days: 30).error != nil)
        #expect(certify(user: "alice", packages: ["../x"], days: 30).error != nil)
        #expect(signer.handle(SignerRequest(op: "renew")).error != nil, "a key far from its end is not renewed")
        #expect(signer.handle(SignerRequest(op: "sign-anything")).error != nil)
    }

    @Test func aTrustDirectoryWithTheRootKeyIsRefused() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.directory) }
        try "a key".write(to: setup.trust.appendingPathComponent("root.key"), atomically: true, encoding: .utf8)
        #expect(throws: SigningAuthority.LoadError.self) { try setup.service() }
    }
}
