import Foundation
import TestSupport
import Testing

/// `epr key generate`, `epr sign` and `epr verify` as a contributor and a node operator use them.
@Suite struct SigningCommandTests {
    @Test func keySignAndVerify() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func epr(_ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=a long enough passphrase", Fixtures.eprBinary] + arguments)
        }
        let (generated, keyOutput) = try epr("key", "generate", "-o", directory.path, "--name", "alice", "--json")
        try #require(generated == 0, "\(keyOutput)")
        let key = directory.appendingPathComponent("alice.key").path, pub = directory.appendingPathComponent("alice.pub").path
        #expect(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int == 0o600)
        #expect(try String(contentsOfFile: key, encoding: .utf8).hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        #expect(try epr("key", "generate", "-o", directory.path, "--name", "alice").status != 0, "an existing key is never overwritten")
        let (weak, weakOutput) = try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=short", Fixtures.eprBinary, "key", "generate", "-o",
                                                                  directory.path, "--name", "weak"])
        #expect(weak != 0 && weakOutput.contains("at least 10 characters"))

        let archive = try Fixtures.packageArchive("exec-tracker", into: directory)
        let (signed, signOutput) = try epr("sign", archive, "--key", key)
        #expect(signed == 0 && FileManager.default.fileExists(atPath: archive + ".sig"), "\(signOutput)")
        let (verified, verifyOutput) = try epr("verify", archive, "--key", pub)
        #expect(verified == 0 && verifyOutput.contains("verified: exec-tracker 1.0.0"), "\(verifyOutput)")

        // The user-space program changed inside a re-packed archive: refused, and named.
        let copy = directory.appendingPathComponent("tampered")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("exec-tracker"), to: copy)
        let program = copy.appendingPathComponent("exec_tracker")
        try (Data(contentsOf: program) + Data([0])).write(to: program)
        let out = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let (packaged, _) = try epr("package", copy.path, "-o", out.path)
        try #require(packaged == 0)
        let tampered = out.appendingPathComponent("exec_tracker.tar.gz").path
        let (refused, refusal) = try epr("verify", tampered, "--signature", archive + ".sig", "--key", pub)
        #expect(refused == 1 && refusal.contains("exec_tracker.tar.gz/exec_tracker differs from what was signed"), "\(refusal)")
        let (wrong, wrongOutput) = try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=not the passphrase at all", Fixtures.eprBinary,
                                                                    "sign", archive, "--key", key])
        #expect(wrong != 0 && wrongOutput.contains("passphrase does not open this key"), "\(wrongOutput)")

        // Certified by the repository's authority: trusted mode checks the chain and the grant.
        let trust = directory.appendingPathComponent("trust").path
        let (initialised, initOutput) = try epr("trust", "init", "-o", trust, "--name", "test registry")
        try #require(initialised == 0, "\(initOutput)")
        let root = trust + "/root.crt", chain = directory.appendingPathComponent("alice.chain.pem").path
        #expect(try epr("trust", "certify", pub, "--trust-directory", trust, "--user", "alice", "--package", "exec-*", "-o", chain).status == 0)
        #expect(try epr("sign", archive, "--key", key, "--certificate", chain).status == 0)
        let (trusted, trustedOutput) = try epr("verify", archive, "--trusted-root", root, "--signature-only")
        #expect(trusted == 0 && trustedOutput.contains("signed by alice"), "\(trustedOutput)")
        let (unattested, unattestedOutput) = try epr("verify", archive, "--trusted-root", root)
        #expect(unattested == 1 && unattestedOutput.contains("never approved"), "trusted mode needs the repository's attestation: \(unattestedOutput)")
        let narrow = directory.appendingPathComponent("narrow.pem").path
        #expect(try epr("trust", "certify", pub, "--trust-directory", trust, "--user", "alice", "--package", "xdp-*", "-o", narrow).status == 0)
        #expect(try epr("sign", archive, "--key", key, "--certificate", narrow).status == 0)
        let (refusedTrust, refusedOutput) = try epr("verify", archive, "--trusted-root", root, "--signature-only")
        #expect(refusedTrust == 1 && refusedOutput.contains("certified for xdp-*, not for exec-tracker"), "\(refusedOutput)")

        // Revoked: the signed list from epr trust revoke makes trusted mode refuse it.
        #expect(try epr("sign", archive, "--key", key, "--certificate", chain).status == 0)
        #expect(try epr("trust", "revoke", "--trust-directory", trust, "--certificate", chain, "--reason", "laptop stolen").status == 0)
        let (revokedStatus, revokedOutput) = try epr("verify", archive, "--trusted-root", root, "--revocations", trust + "/revocations.json",
                                                     "--signature-only")
        #expect(revokedStatus == 1 && revokedOutput.contains("is revoked: laptop stolen"), "\(revokedOutput)")
    }
}

extension SigningCommandTests {
    /// OpenSSL checks what `epr sign` made with the key `epr key public` exports; `epr verify`
    /// checks, in trusted mode, a signature OpenSSL made with a key the authority certified.
    @Test func openSSLAndTheCommandLineCheckEachOther() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = "a long enough passphrase"
        func epr(_ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=\(passphrase)", Fixtures.eprBinary] + arguments)
        }
        let openssl = try #require(Fixtures.tool("openssl"), "openssl is not installed")
        let trust = directory.appendingPathComponent("trust")
        try #require(try epr("trust", "init", "-o", trust.path).status == 0)
        try #require(try epr("key", "generate", "-o", directory.path, "--name", "alice").status == 0)
        let key = directory.appendingPathComponent("alice.key").path
        let exported = try epr("key", "public", key)
        try #require(exported.status == 0)
        let publicKey = directory.appendingPathComponent("exported.pub")
        // The PEM block of what it printed (the key's id goes to standard error).
        let begin = try #require(exported.output.range(of: "-----BEGIN PUBLIC KEY-----"))
        let end = try #require(exported.output.range(of: "-----END PUBLIC KEY-----"))
        try (String(exported.output[begin.lowerBound..<end.upperBound]) + "\n").write(to: publicKey, atomically: true, encoding: .utf8)
        let chain = directory.appendingPathComponent("alice.chain.pem").path
        try #require(try epr("trust", "certify", directory.appendingPathComponent("alice.pub").path, "--trust-directory", trust.path,
                             "--user", "alice", "--package", "tc-*", "-o", chain).status == 0)
        let archive = try Fixtures.packageArchive("tc-egress-marker", into: directory)
        try #require(try epr("sign", archive, "--key", key, "--certificate", chain).status == 0)

        // OpenSSL: the DSSE pre-authentication encoding of the payload, and the DER signature.
        struct Envelope: Codable {
            struct Signature: Codable { var keyid: String; var sig: String }
            var payloadType: String; var payload: String; var signatures: [Signature]; var certificates: [String]?
        }
        var envelope = try JSONDecoder().decode(Envelope.self, from: Data(contentsOf: URL(fileURLWithPath: archive + ".sig")))
        let payload = try #require(Data(base64Encoded: envelope.payload))
        let pae = Data("DSSEv1 \(envelope.payloadType.utf8.count) \(envelope.payloadType) \(payload.count) ".utf8) + payload
        let paeFile = directory.appendingPathComponent("pae.bin"), ours = directory.appendingPathComponent("ours.der")
        try pae.write(to: paeFile)
        try #require(Data(base64Encoded: envelope.signatures[0].sig)).write(to: ours)
        let checked = try Fixtures.run(openssl, ["dgst", "-sha256", "-verify", publicKey.path, "-signature", ours.path, paeFile.path])
        #expect(checked.status == 0 && checked.output.contains("Verified OK"), "\(checked.output)")

        // OpenSSL signs with the certified key (it reads epr's encrypted PKCS#8); epr verify takes it.
        let theirs = directory.appendingPathComponent("theirs.der")
        let signed = try Fixtures.run(openssl, ["dgst", "-sha256", "-sign", key, "-passin", "pass:\(passphrase)", "-out", theirs.path, paeFile.path])
        try #require(signed.status == 0, "\(signed.output)")
        envelope.signatures = [.init(keyid: envelope.signatures[0].keyid, sig: try Data(contentsOf: theirs).base64EncodedString())]
        let theirSignature = directory.appendingPathComponent("openssl.sig")
        try JSONEncoder().encode(envelope).write(to: theirSignature)
        let verified = try epr("verify", archive, "--signature", theirSignature.path, "--trusted-root", trust.appendingPathComponent("root.crt").path,
                           "--signature-only")
        #expect(verified.status == 0 && verified.output.contains("signed by alice"), "\(verified.output)")
        // And a signature OpenSSL made over something else is refused.
        try Data("something else".utf8).write(to: paeFile)
        _ = try Fixtures.run(openssl, ["dgst", "-sha256", "-sign", key, "-passin", "pass:\(passphrase)", "-out", theirs.path, paeFile.path])
        envelope.signatures = [.init(keyid: envelope.signatures[0].keyid, sig: try Data(contentsOf: theirs).base64EncodedString())]
        try JSONEncoder().encode(envelope).write(to: theirSignature)
        let refused = try epr("verify", archive, "--signature", theirSignature.path, "--trusted-root", trust.appendingPathComponent("root.crt").path,
                           "--signature-only")
        #expect(refused.status == 1 && refused.output.contains("does not verify"), "\(refused.output)")
    }
}

extension SigningCommandTests {
    /// Rotating the signing authority and the root: old certificates keep verifying until
    /// revoked; a new root travels with the old in roots.pem; the root's key has its own passphrase.
    @Test func rotationOfTheAuthorityAndTheRoot() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyPassphrase = "the intermediate's passphrase", rootPassphrase = "the root's own passphrase"
        func epr(_ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=\(keyPassphrase)", "EPR_ROOT_PASSPHRASE=\(rootPassphrase)", Fixtures.eprBinary] + arguments)
        }
        let trust = directory.appendingPathComponent("trust").path, root = trust + "/root.crt", list = trust + "/revocations.json"
        try #require(try epr("trust", "init", "-o", trust, "--name", "rotating").status == 0)
        let openssl = try #require(Fixtures.tool("openssl"))
        // The root's key is kept beside the trust directory, never in it.
        #expect(!FileManager.default.fileExists(atPath: trust + "/root.key"))
        #expect(try Fixtures.run(openssl, ["pkey", "-in", trust + "-root.key", "-passin", "pass:\(keyPassphrase)", "-noout"]).status != 0,
                "the intermediate's passphrase does not open the root")
        #expect(try Fixtures.run(openssl, ["pkey", "-in", trust + "-root.key", "-passin", "pass:\(rootPassphrase)", "-noout"]).status == 0)

        let archive = try Fixtures.packageArchive("exec-tracker", into: directory)
        func signed(by name: String) throws -> String {
            #expect(try epr("key", "generate", "-o", directory.path, "--name", name).status == 0)
            let chain = directory.appendingPathComponent("\(name).chain.pem").path
            #expect(try epr("trust", "certify", directory.appendingPathComponent("\(name).pub").path, "--trust-directory", trust, "--user", name,
                            "--package", "exec-*", "-o", chain).status == 0)
            let signature = directory.appendingPathComponent("\(name).sig").path
            #expect(try epr("sign", archive, "--key", directory.appendingPathComponent("\(name).key").path, "--certificate", chain, "-o", signature).status == 0)
            return signature
        }
        func verify(_ signature: String, root: String) throws -> (status: Int32, output: String) {
            try epr("verify", archive, "--signature", signature, "--trusted-root", root, "--revocations", list, "--signature-only")
        }
        let alice = try signed(by: "alice")
        let firstIntermediate = try String(contentsOfFile: trust + "/intermediate.crt", encoding: .utf8)

        // A planned rotation: the old authority retires, what it certified still verifies.
        let rotated = try epr("trust", "rotate-intermediate", "--trust-directory", trust)
        try #require(rotated.status == 0, "\(rotated.output)")
        #expect(try String(contentsOfFile: trust + "/intermediate.crt", encoding: .utf8) != firstIntermediate)
        #expect(try FileManager.default.contentsOfDirectory(atPath: trust + "/retired").count == 2)
        #expect(try verify(alice, root: root).status == 0)
        let bob = try signed(by: "bob")
        #expect(try verify(bob, root: root).status == 0)

        // A compromised authority: revoked with the rotation, everything it certified refused.
        #expect(try epr("trust", "rotate-intermediate", "--trust-directory", trust, "--revoke-old", "--reason", "key leaked").status == 0)
        let refused = try verify(bob, root: root)
        #expect(refused.status == 1 && refused.output.contains("key leaked"), "\(refused.output)")
        #expect(try verify(alice, root: root).status == 0, "the first authority was only retired")

        // A new root: both roots in roots.pem while nodes change over; the new root alone refuses the old.
        let rootKeyBefore = try String(contentsOfFile: trust + "-root.key", encoding: .utf8)
        let rootRotated = try epr("trust", "rotate-root", "--trust-directory", trust)
        try #require(rootRotated.status == 0, "\(rootRotated.output)")
        #expect(try String(contentsOfFile: trust + "-root.key", encoding: .utf8) != rootKeyBefore, "the new root's key takes the old one's place")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).contains { $0.hasPrefix("trust-root.key.retired-") },
                "the old root's key is kept beside it")
        let retired = try FileManager.default.contentsOfDirectory(atPath: trust + "/retired")
        #expect(!FileManager.default.fileExists(atPath: trust + "/root.key") && !retired.contains { $0.hasPrefix("root-") && $0.hasSuffix(".key") },
                "no root key in the trust directory: \(retired)")
        let bundle = trust + "/roots.pem"
        #expect(try verify(alice, root: bundle).status == 0)
        let alone = try verify(alice, root: root)
        #expect(alone.status == 1 && alone.output.contains("does not chain"), "\(alone.output)")
        let carol = try signed(by: "carol")
        #expect(try verify(carol, root: root).status == 0)
        #expect(try String(contentsOfFile: root, encoding: .utf8).contains("BEGIN CERTIFICATE"))
        let subject = try Fixtures.run(openssl, ["x509", "-in", root, "-noout", "-subject"])
        #expect(subject.output.contains("rotating"), "the new root keeps the repository's name: \(subject.output)")
    }
}
