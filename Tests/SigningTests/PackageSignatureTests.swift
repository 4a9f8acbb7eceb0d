import Crypto
import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Signing

/// Signing keys and package signatures, checked against OpenSSL as an independent party: it
/// reads our keys and verifies our signatures, and we read and verify its own.
@Suite struct PackageSignatureTests {
    static let passphrase = "correct horse battery staple"

    static func openssl(_ arguments: [String], input: String? = nil) throws -> String {
        let tool = try #require(Fixtures.tool("openssl"), "openssl is not installed")
        let (status, output) = try Fixtures.run(tool, arguments, input: input)
        try #require(status == 0, "openssl \(arguments.joined(separator: " ")) failed: \(output)")
        return output
    }

    @Test func encryptedKeysOpenWithTheirPassphraseOnlyAndOpenSSLReadsThem() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (key, pem) = try SigningKeys.generate(passphrase: Self.passphrase, rounds: 10_000)
        #expect(pem.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        #expect(try SigningKeys.privateKey(pem: pem, passphrase: Self.passphrase).rawRepresentation == key.rawRepresentation)
        #expect(throws: EncryptedPrivateKey.Failure.wrongPassphrase) { try SigningKeys.privateKey(pem: pem, passphrase: "not the passphrase") }
        #expect(throws: SigningKeys.Failure.self) { try SigningKeys.privateKey(pem: pem, passphrase: nil) }

        // OpenSSL opens it with the passphrase and finds the same public key.
        let file = directory.appendingPathComponent("key.pem")
        try pem.write(to: file, atomically: true, encoding: .utf8)
        let exported = try Self.openssl(["pkey", "-in", file.path, "-passin", "pass:\(Self.passphrase)", "-pubout"])
        #expect(try SigningKeys.publicKey(pem: exported).rawRepresentation == key.publicKey.rawRepresentation)

        // And we open OpenSSL's own encrypted key.
        let theirs = directory.appendingPathComponent("theirs.pem")
        _ = try Self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc",
                              "-pass", "pass:\(Self.passphrase)", "-out", theirs.path])
        let opened = try SigningKeys.privateKey(pem: try String(contentsOf: theirs, encoding: .utf8), passphrase: Self.passphrase)
        let theirPublic = try Self.openssl(["pkey", "-in", theirs.path, "-passin", "pass:\(Self.passphrase)", "-pubout"])
        #expect(try SigningKeys.publicKey(pem: theirPublic).rawRepresentation == opened.publicKey.rawRepresentation)
    }

    static func report(_ path: String) throws -> PackageReport { try PackageInspector().inspect(path: path) }

    @Test func aGenuinePackageVerifiesAndEveryChangeIsNamed() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = P256.Signing.PrivateKey(), other = P256.Signing.PrivateKey()
        let archive = try Fixtures.packageArchive("xdp-port-filter", into: directory)
        let signature = try PackageSignature.sign(try Self.report(archive), with: key)
        let statement = try signature.verify(try Self.report(archive), key: key.publicKey)
        #expect(statement.predicate.package == "xdp-port-filter" && statement.subject.first?.name == "xdp_port_filter.tar.gz")
        #expect(statement.subject.contains { $0.name == "xdp_port_filter.tar.gz/port_filter.bpf.o" }, "the bytecode is signed on its own")

        #expect(throws: PackageSignature.Failure.noSignatureByKey(SigningKeys.keyID(other.publicKey))) {
            try signature.verify(try Self.report(archive), key: other.publicKey)
        }
        // A statement changed after signing.
        var altered = signature
        var payload = try JSONDecoder().decode(PackageSignature.Statement.self, from: Data(base64Encoded: signature.payload)!)
        payload.predicate.version = "9.9.9"
        altered.payload = try JSONEncoder().encode(payload).base64EncodedString()
        #expect(throws: PackageSignature.Failure.badSignature) { try altered.verify(try Self.report(archive), key: key.publicKey) }

        // The bytecode changed and re-packed into a well-formed archive.
        let copy = directory.appendingPathComponent("changed")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-port-filter"), to: copy)
        let object = copy.appendingPathComponent("port_filter.bpf.o")
        // Bytes after the section headers: every ELF reader still takes it, the digest differs.
        try (Data(contentsOf: object) + Data(repeating: 0, count: 16)).write(to: object)
        let out = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let repacked = try PackageBuilder().build(directory: copy, output: out, modificationTime: 0).path
        #expect(throws: PackageSignature.Failure.digestMismatch("xdp_port_filter.tar.gz/port_filter.bpf.o")) {
            try signature.verify(try Self.report(repacked), key: key.publicKey)
        }
        // Another package's genuine signature, replayed.
        let otherArchive = try Fixtures.packageArchive("xdp-proto-counter", into: directory)
        let otherSignature = try PackageSignature.sign(try Self.report(otherArchive), with: key)
        do {
            _ = try otherSignature.verify(try Self.report(archive), key: key.publicKey)
            Issue.record("another package's signature verified")
        } catch let PackageSignature.Failure.fileNotSigned(name) {
            #expect(name.hasPrefix("xdp_port_filter.tar.gz/"))
        }
    }

    @Test func openSSLChecksOurSignaturesAndWeCheckItsOwn() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.packageArchive("tc-egress-marker", into: directory)
        let report = try Self.report(archive)
        let (key, pem) = try SigningKeys.generate(passphrase: Self.passphrase, rounds: 10_000)
        let signature = try PackageSignature.sign(report, with: key)
        let pae = PackageSignature.pae(type: signature.payloadType, payload: Array(Data(base64Encoded: signature.payload)!))
        let paeFile = directory.appendingPathComponent("pae.bin"), sigFile = directory.appendingPathComponent("sig.der")
        let publicFile = directory.appendingPathComponent("key.pub"), keyFile = directory.appendingPathComponent("key.pem")
        try Data(pae).write(to: paeFile)
        try Data(base64Encoded: signature.signatures[0].sig)!.write(to: sigFile)
        try key.publicKey.pemRepresentation.write(to: publicFile, atomically: true, encoding: .utf8)
        #expect(try Self.openssl(["dgst", "-sha256", "-verify", publicFile.path, "-signature", sigFile.path, paeFile.path])
            .contains("Verified OK"))

        // OpenSSL signs the same statement with the same (certified-to-be) key; we verify it.
        try pem.write(to: keyFile, atomically: true, encoding: .utf8)
        let theirs = directory.appendingPathComponent("theirs.der")
        _ = try Self.openssl(["dgst", "-sha256", "-sign", keyFile.path, "-passin", "pass:\(Self.passphrase)", "-out", theirs.path, paeFile.path])
        var envelope = signature
        envelope.signatures = [.init(keyid: SigningKeys.keyID(key.publicKey), sig: try Data(contentsOf: theirs).base64EncodedString())]
        #expect(try envelope.verify(report, key: key.publicKey).predicate.package == "tc-egress-marker")
    }
}

extension PackageSignatureTests {
    @Test func aKeyOfAnotherKindIsNamedSo() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("ed25519.pem")
        _ = try Self.openssl(["genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:\(Self.passphrase)", "-out", file.path])
        do {
            _ = try SigningKeys.privateKey(pem: try String(contentsOf: file, encoding: .utf8), passphrase: Self.passphrase)
            Issue.record("an Ed25519 key was taken for P-256")
        } catch {
            #expect("\(error)".contains("not ECDSA P-256"), "\(error)")
        }
    }
}
