import Foundation
import Registry
import Signing
import TestSupport
import Testing

/// The signer process with the real binaries: the server holds no key, the signer signs what
/// trusted mode checks and nothing for other users, and a trust directory with the root's key
/// is refused by both.
@Suite(.serialized) struct SignerProcessTests {
    /// The signer process holds the keys: started as a user of its own, it signs for the server
    /// (as another user, holding no key) what the trusted mode checks, answers no other user,
    /// logs each signature, keeps its keys encrypted, and refuses a trust directory with root.key.
    @Test func aSignerProcessHoldsTheKeys() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let trust = directory.appendingPathComponent("trust"), keys = directory.appendingPathComponent("signer-keys")
        let socket = directory.appendingPathComponent("run/signer.sock").path
        let initialised = try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=\(TrustedModeEndToEndTests.passphrase)", Fixtures.eprBinary, "trust", "init", "-o", trust.path, "--name", "signer"])
        try #require(initialised.status == 0, "\(initialised.output)")
        // As root, the signer runs as daemon and answers nobody (the server's user) alone.
        let users = Fixtures.serverUser == nil ? [] : ["--user", "daemon", "--client-user", "nobody"]
        func startSigner(log: URL) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Fixtures.eprBinary)
            process.arguments = ["signer", "--trust-directory", trust.path, "--keys", keys.path, "--socket", socket] + users
            process.environment = ["EPR_TRUST_PASSPHRASE": TrustedModeEndToEndTests.passphrase, "PATH": "/usr/bin:/bin"]
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return process
        }
        let signerLog = directory.appendingPathComponent("signer.log")
        let signer = try startSigner(log: signerLog)
        defer { signer.terminate(); signer.waitUntilExit() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !((try? String(contentsOf: signerLog, encoding: .utf8)) ?? "").contains("signer listening") {
            try await Task.sleep(for: .milliseconds(50))
        }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: [
            "EPR_SIGNER": socket, "EPR_VERIFIER": "false", "EPR_SOURCES_CHECK": "false", "EPR_REQUIRE_SIGNATURES": "true",
        ])
        defer { server.stop() }
        let world = TrustedModeEndToEndTests.World(directory: directory, server: server)

        #expect(try world.epr(["signing", "grant", "admin", "xdp-*"]).status == 0)
        let key = try world.certifiedKey("alice", packages: ["xdp-*"])
        let doomed = try world.certifiedKey("doomed", packages: ["xdp-*"])
        try world.publishSigned("xdp-port-filter", version: "1.0.0", key: key)
        let doomedID = SigningKeys.keyID(try SigningKeys.privateKey(pem: String(contentsOfFile: doomed.key, encoding: .utf8), passphrase: TrustedModeEndToEndTests.passphrase).publicKey)
        #expect(try world.epr(["key", "revoke", doomedID, "--reason", "lost"]).status == 0)
        // What the signer signed verifies to the root a node holds.
        let tree = directory.appendingPathComponent("tree")
        let mirrored = try world.epr(["mirror", "--to", tree.path, "--platform", "jammy", "--trusted-root", world.root.path])
        #expect(mirrored.status == 0, "\(mirrored.output)")
        let verified = try world.epr(["verify-tree", tree.path, "--trusted-root", world.root.path])
        #expect(verified.status == 0 && verified.output.contains("1 of 1 verified"), "\(verified.output)")

        // The server holds no key; the signer's are encrypted and its own; each signature is logged.
        let data = directory.appendingPathComponent("data")
        for file in ["attestation.key", "oci-signing.key", "intermediate.key"] {
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent(file).path), "\(file) in the data directory")
        }
        for file in ["attestation.key", "oci-signing.key"] {
            let text = try String(contentsOf: keys.appendingPathComponent(file), encoding: .utf8)
            #expect(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "\(file) is encrypted at rest")
            if Fixtures.serverUser != nil {
                let attributes = try FileManager.default.attributesOfItem(atPath: keys.appendingPathComponent(file).path)
                #expect(attributes[.ownerAccountName] as? String == "daemon" && (attributes[.posixPermissions] as? Int) == 0o600)
            }
        }
        let log = try String(contentsOf: signerLog, encoding: .utf8)
        for operation in ["\"op\":\"certify\"", "\"op\":\"attest\"", "\"op\":\"revocations\"", "\"op\":\"oci-sign\""] {
            #expect(log.contains(operation), "\(operation) logged: \(log)")
        }
        let ociKey = try await server.get("/api/v1/oci/public-key")
        #expect(String(decoding: ociKey.body, as: UTF8.self).contains("BEGIN PUBLIC KEY"))

        if Fixtures.serverUser != nil {
            // This test runs as root: neither the server's user nor the signer's. No answer.
            #expect(throws: (any Error).self) { try SignerClient(path: socket).describe() }
            let afterward = try String(contentsOf: signerLog, encoding: .utf8)
            #expect(afterward.contains("refused a connection from another user"))
        }

        // A trust directory holding the root's key is refused, by the signer and by the server.
        signer.terminate()
        signer.waitUntilExit()
        try FileManager.default.copyItem(atPath: trust.path + "-root.key", toPath: trust.appendingPathComponent("root.key").path)
        let refusedLog = directory.appendingPathComponent("refused.log")
        let refused = try startSigner(log: refusedLog)
        refused.waitUntilExit()
        #expect(refused.terminationStatus != 0)
        let refusal = try String(contentsOf: refusedLog, encoding: .utf8)
        #expect(refusal.contains("stays offline"), "\(refusal)")
        let other = directory.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let serve = try Fixtures.run("/usr/bin/env", ["EPR_TRUST_DIRECTORY=\(trust.path)", "EPR_TRUST_PASSPHRASE=\(TrustedModeEndToEndTests.passphrase)", "EPR_ALLOW_ROOT=true",
                                                     Fixtures.eprBinary, "serve", "--data", other.path, "--port", "0"])
        #expect(serve.status != 0, "\(serve.output)")
        #expect(serve.output.contains("stays offline"), "\(serve.output)")
    }
}
