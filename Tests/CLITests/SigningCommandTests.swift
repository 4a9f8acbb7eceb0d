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
        let (trusted, trustedOutput) = try epr("verify", archive, "--trusted-root", root)
        #expect(trusted == 0 && trustedOutput.contains("signed by alice"), "\(trustedOutput)")
        let narrow = directory.appendingPathComponent("narrow.pem").path
        #expect(try epr("trust", "certify", pub, "--trust-directory", trust, "--user", "alice", "--package", "xdp-*", "-o", narrow).status == 0)
        #expect(try epr("sign", archive, "--key", key, "--certificate", narrow).status == 0)
        let (refusedTrust, refusedOutput) = try epr("verify", archive, "--trusted-root", root)
        #expect(refusedTrust == 1 && refusedOutput.contains("certified for xdp-*, not for exec-tracker"), "\(refusedOutput)")

        // Revoked: the signed list from epr trust revoke makes trusted mode refuse it.
        #expect(try epr("sign", archive, "--key", key, "--certificate", chain).status == 0)
        #expect(try epr("trust", "revoke", "--trust-directory", trust, "--certificate", chain, "--reason", "laptop stolen").status == 0)
        let (revokedStatus, revokedOutput) = try epr("verify", archive, "--trusted-root", root, "--revocations", trust + "/revocations.json")
        #expect(revokedStatus == 1 && revokedOutput.contains("is revoked: laptop stolen"), "\(revokedOutput)")
    }
}
