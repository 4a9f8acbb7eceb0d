import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import Node
import PackageFormat
import Signing
import TestSupport
import Testing
import X509

/// Trust from end to end with the real binaries: a repository with a signing authority, keys
/// certified through it, signed packages published and attested, a mirror tree, and nodes in
/// trusted and normal mode facing every way a package can be tampered with.
@Suite(.serialized) struct TrustedModeEndToEndTests {
    static let passphrase = "a passphrase for the end-to-end test"

    /// The repository, its trust directory and a contributor's certified key.
    struct World {
        let directory: URL
        let server: ServerProcess
        var trust: URL { directory.appendingPathComponent("trust") }
        var root: URL { trust.appendingPathComponent("root.crt") }

        func epr(_ arguments: [String], token: String? = ServerProcess.token) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)", "EPR_TOKEN=\(token ?? "")",
                                             "EPR_KEY_PASSPHRASE=\(passphrase)", Fixtures.eprBinary] + arguments)
        }

        /// A new key, certified by the repository for `packages`: its key file and chain file.
        func certifiedKey(_ name: String, packages: [String]) throws -> (key: String, chain: String) {
            let keys = directory.appendingPathComponent("keys")
            try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
            let generated = try epr(["key", "generate", "-o", keys.path, "--name", name])
            try #require(generated.status == 0, "\(generated.output)")
            let certified = try epr(["key", "certify", keys.appendingPathComponent("\(name).key").path] + packages.flatMap { ["--package", $0] })
            try #require(certified.status == 0, "\(certified.output)")
            return (keys.appendingPathComponent("\(name).key").path, keys.appendingPathComponent("\(name).chain.pem").path)
        }

        /// Builds, signs and publishes an example as `version`; returns the archive's path.
        @discardableResult
        func publishSigned(_ example: String, version: String, key: (key: String, chain: String)) throws -> String {
            let out = directory.appendingPathComponent("build-\(example)-\(version)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let archive = try Fixtures.packageArchive(example, version: version, into: out)
            let signed = try epr(["sign", archive, "--key", key.key, "--certificate", key.chain])
            try #require(signed.status == 0, "\(signed.output)")
            let published = try epr(["publish", "--json", archive])
            try #require(published.status == 0, "\(published.output)")
            #expect(published.output.contains("\"published\""), "\(published.output)")
            return archive
        }
    }

    static func world(_ directory: URL) throws -> World {
        let initialised = try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=\(passphrase)", Fixtures.eprBinary, "trust", "init", "-o",
                                                           directory.appendingPathComponent("trust").path, "--name", "e2e"])
        try #require(initialised.status == 0, "\(initialised.output)")
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: [
            "EPR_TRUST_DIRECTORY": directory.appendingPathComponent("trust").path, "EPR_TRUST_PASSPHRASE": passphrase,
            "EPR_VERIFIER": "false", "EPR_SOURCES_CHECK": "false", "EPR_REQUIRE_SIGNATURES": "true",
        ])
        return World(directory: directory, server: server)
    }

    static func copyTree(_ tree: URL, to destination: URL) throws -> PackageTree {
        try? FileManager.default.removeItem(at: destination)
        try FileManager.default.copyItem(at: tree, to: destination)
        return PackageTree(root: destination)
    }

    static func agent(_ tree: PackageTree, mode: TrustMode, roots: [Certificate], cache: URL) async throws -> NodeAgent {
        var logger = Logger(label: "agent-test")
        logger.logLevel = .critical
        let trust = mode == .trusted ? await NodeTrust(roots: roots, file: cache.appendingPathComponent(".epr/revocations.json"), logger: logger) : nil
        return try NodeAgent(upstream: .tree(tree), cache: cache, mode: mode, trust: trust, logger: logger)
    }

    @Test func tamperMatrixThroughMirrorAndAgent() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let world = try Self.world(directory)
        defer { world.server.stop() }
        // The server's own keys are kept encrypted with the signing authority's passphrase.
        for file in ["attestation.key", "oci-signing.key"] {
            let text = try String(contentsOf: world.server.data.appendingPathComponent(file), encoding: .utf8)
            #expect(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "\(file)")
        }
        #expect(try world.epr(["signing", "grant", "admin", "xdp-*", "tc-*"]).status == 0)
        let key = try world.certifiedKey("alice", packages: ["xdp-*"])
        let tcKey = try world.certifiedKey("tc-only", packages: ["tc-*"])
        let doomed = try world.certifiedKey("doomed", packages: ["xdp-*"])

        // Unsigned uploads are refused (require_signatures), before anything is stored.
        let unsigned = try Fixtures.packageArchive("xdp-port-filter", version: "0.9.0", into: directory)
        let refused = try world.epr(["publish", unsigned])
        #expect(refused.status != 0 && refused.output.contains("signature-required"), "\(refused.output)")

        let genuine = try world.publishSigned("xdp-port-filter", version: "1.0.0", key: key)
        try world.publishSigned("xdp-port-filter", version: "1.1.0", key: key)
        try world.publishSigned("xdp-proto-counter", version: "1.0.0", key: key)
        try world.publishSigned("xdp-port-filter", version: "1.2.0-rc.1", key: doomed)

        // A mirror, verified as it is written, and verified again whole.
        let tree = directory.appendingPathComponent("tree")
        let mirrored = try world.epr(["mirror", "--to", tree.path, "--platform", "jammy", "--trusted-root", world.root.path])
        try #require(mirrored.status == 0, "\(mirrored.output)")
        #expect(mirrored.output.contains("latest xdp-port-filter/jammy -> 1.1.0"), "\(mirrored.output)")
        let verifiedTree = try world.epr(["verify-tree", tree.path, "--trusted-root", world.root.path])
        #expect(verifiedTree.status == 0 && verifiedTree.output.contains("4 of 4 verified"), "\(verifiedTree.output)")

        // The doomed key is revoked at the repository; the mirror brings the new list along.
        let doomedID = SigningKeys.keyID(try SigningKeys.privateKey(pem: String(contentsOfFile: doomed.key, encoding: .utf8), passphrase: Self.passphrase).publicKey)
        #expect(try world.epr(["key", "revoke", doomedID, "--reason", "laptop stolen"]).status == 0)
        #expect(try world.epr(["mirror", "--to", tree.path, "--platform", "jammy", "--package", "xdp-port-filter"]).status == 0)

        let roots = try TrustRoot.certificates(pem: String(contentsOf: world.root, encoding: .utf8))
        let target = PackageTree.Entry(name: "xdp-port-filter", version: "1.0.0", platform: "jammy", artifact: "xdp_port_filter.tar.gz")
        let genuineReport = try PackageInspector().inspect(path: genuine)
        func signature(_ report: PackageReport, _ signer: P256.Signing.PrivateKey, _ chain: [Certificate]?) throws -> Data {
            try JSONEncoder().encode(try PackageSignature.sign(report, with: signer, certificates: chain))
        }

        /// Each case: how the tree is changed, the check trusted mode names, and words of its reason.
        struct Case {
            var name: String
            var version = "1.0.0"
            var link: String
            var words: String
            var change: (PackageTree) throws -> Void
        }
        let cases: [Case] = [
            Case(name: "modified archive byte", link: "tampered", words: "differs from what was signed") { tree in
                var bytes = try Data(contentsOf: tree.archive(target))
                bytes[bytes.count / 2] ^= 0x01
                try bytes.write(to: tree.archive(target))
            },
            Case(name: "modified object re-packed", link: "tampered", words: "xdp_port_filter.tar.gz/port_filter.bpf.o differs from what was signed") { tree in
                let source = directory.appendingPathComponent("repack")
                try? FileManager.default.removeItem(at: source)
                try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-port-filter"), to: source)
                let object = try FileHandle(forWritingTo: source.appendingPathComponent("port_filter.bpf.o"))
                try object.seekToEnd()
                try object.write(contentsOf: Data([0, 0, 0, 0]))
                try object.close()
                let out = directory.appendingPathComponent("repack-out")
                try? FileManager.default.removeItem(at: out)
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
                let rebuilt = try PackageBuilder().build(directory: source, output: out, modificationTime: 0)
                try FileManager.default.removeItem(at: tree.archive(target))
                try FileManager.default.copyItem(atPath: rebuilt.path, toPath: tree.archive(target).path)
            },
            Case(name: "uncertified key", link: "uncertified", words: "not certified") { tree in
                try signature(genuineReport, P256.Signing.PrivateKey(), nil).write(to: tree.signature(target))
            },
            Case(name: "key certified for other packages", link: "not-allowed", words: "certified for tc-*, not for xdp-port-filter") { tree in
                let tcSigner = try SigningKeys.privateKey(pem: String(contentsOfFile: tcKey.key, encoding: .utf8), passphrase: Self.passphrase)
                let chain = try TrustRoot.certificates(pem: String(contentsOfFile: tcKey.chain, encoding: .utf8))
                try signature(genuineReport, tcSigner, chain).write(to: tree.signature(target))
            },
            Case(name: "revoked certificate", version: "1.2.0-rc.1", link: "revoked", words: "laptop stolen") { _ in },
            Case(name: "expired certificate", link: "untrusted", words: "is not valid at") { tree in
                // Certified long ago for a day, and attested by the repository's own key after that day.
                let authority = TrustRoot.Authority(
                    certificate: try Certificate(pemEncoded: String(contentsOf: world.trust.appendingPathComponent("intermediate.crt"), encoding: .utf8)),
                    key: try SigningKeys.privateKey(pem: String(contentsOf: world.trust.appendingPathComponent("intermediate.key"), encoding: .utf8),
                                                    passphrase: Self.passphrase))
                let old = P256.Signing.PrivateKey()
                let certificate = try TrustRoot.certify(old.publicKey, user: "alice", packages: ["xdp-*"], days: 1, by: authority,
                                                        now: Date(timeIntervalSinceNow: -10 * 86400))
                try signature(genuineReport, old, [certificate, authority.certificate]).write(to: tree.signature(target))
                // Kept encrypted with the intermediate's passphrase.
                let attestationKey = try SigningKeys.privateKey(pem: String(
                    contentsOf: world.server.data.appendingPathComponent("attestation.key"), encoding: .utf8), passphrase: Self.passphrase)
                let chain = try TrustRoot.certificates(pem: String(contentsOf: world.server.data.appendingPathComponent("attestation.crt"), encoding: .utf8))
                let existing = try JSONDecoder().decode(RepositoryAttestation.self, from: try #require(tree.documents(target).attestation))
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                var statement = try decoder.decode(RepositoryAttestation.Statement.self, from: Data(base64Encoded: existing.payload) ?? Data())
                statement.predicate.signer_key_id = SigningKeys.keyID(old.publicKey)
                statement.predicate.signature_checked_at = Date()
                let attestation = try RepositoryAttestation.sign(statement.predicate, artifact: target.artifact, digest: genuineReport.sha256,
                                                                 key: attestationKey, chain: chain + [authority.certificate])
                try JSONEncoder().encode(attestation).write(to: tree.attestation(target))
            },
            Case(name: "another package's signature replayed", link: "other-package", words: "the signature is for xdp-proto-counter 1.0.0") { tree in
                let otherEntry = PackageTree.Entry(name: "xdp-proto-counter", version: "1.0.0", platform: "jammy", artifact: "xdp_proto_counter.tar.gz")
                try FileManager.default.removeItem(at: tree.signature(target))
                try FileManager.default.copyItem(at: tree.signature(otherEntry), to: tree.signature(target))
            },
            Case(name: "malformed signature", link: "signature-malformed", words: "not a DSSE envelope") { tree in
                try Data("{\"not\": \"an envelope\"}".utf8).write(to: tree.signature(target))
            },
            Case(name: "attestation signed by a contributor's key", link: "attestation-untrusted", words: "not a repository's") { tree in
                // Alice's certified key, not the repository's, signs a statement in the attestation's form.
                let alice = try SigningKeys.privateKey(pem: String(contentsOfFile: key.key, encoding: .utf8), passphrase: Self.passphrase)
                let chain = try TrustRoot.certificates(pem: String(contentsOfFile: key.chain, encoding: .utf8))
                let existing = try #require(tree.documents(target).attestation)
                let decoded = try JSONDecoder().decode(RepositoryAttestation.self, from: existing)
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let statement = try decoder.decode(RepositoryAttestation.Statement.self, from: Data(base64Encoded: decoded.payload) ?? Data())
                let forged = try RepositoryAttestation.sign(statement.predicate, artifact: target.artifact, digest: genuineReport.sha256, key: alice, chain: chain)
                try JSONEncoder().encode(forged).write(to: tree.attestation(target))
            },
            Case(name: "another version's attestation", link: "attestation-mismatch", words: "attested another archive") { tree in
                let newer = PackageTree.Entry(name: target.name, version: "1.1.0", platform: "jammy", artifact: target.artifact)
                try FileManager.default.removeItem(at: tree.attestation(target))
                try FileManager.default.copyItem(at: tree.attestation(newer), to: tree.attestation(target))
            },
            Case(name: "missing repository attestation", link: "attestation-missing", words: "never approved") { tree in
                try FileManager.default.removeItem(at: tree.attestation(target))
            },
            Case(name: "unsigned package", link: "unsigned", words: "not signed") { tree in
                try FileManager.default.removeItem(at: tree.signature(target))
            },
        ]

        for (index, test) in cases.enumerated() {
            let copy = try Self.copyTree(tree, to: directory.appendingPathComponent("case-\(index)"))
            try test.change(copy)
            let entry = PackageTree.Entry(name: target.name, version: test.version, platform: "jammy", artifact: target.artifact)

            // verify-tree names the case's check.
            let checked = try world.epr(["verify-tree", copy.root.path, "--trusted-root", world.root.path, "--json"])
            #expect(checked.status != 0, "\(test.name): verify-tree passed")
            struct Outcome: Decodable { var path: String; var verified: String; var check: String?; var reason: String? }
            // Warnings go to standard error, which the output here holds too: the JSON is from the first "[".
            let json = checked.output.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("[") }.joined(separator: "\n")
            let outcomes = try JSONDecoder().decode([Outcome].self, from: Data(json.utf8))
            let outcome = outcomes.first { $0.path == "\(entry.name)/\(entry.version)/jammy/\(entry.artifact)" }
            #expect(outcome?.check == test.link && outcome?.reason?.contains(test.words) == true, "\(test.name): \(String(describing: outcome))")

            // The agent in trusted mode refuses it with that reason; in normal mode serves it, warning.
            let trusted = try await Self.agent(copy, mode: .trusted, roots: roots, cache: directory.appendingPathComponent("cache-t-\(index)"))
            do {
                let served = try await trusted.fetch(name: entry.name, version: entry.version, platform: "jammy", artifact: entry.artifact)
                Issue.record("\(test.name): trusted mode served \(served.version)")
            } catch {
                #expect(error.status == 403 && error.code == "untrusted-\(test.link)" && error.reason.contains(test.words), "\(test.name): \(error)")
            }
            let normal = try await Self.agent(copy, mode: .normal, roots: roots, cache: directory.appendingPathComponent("cache-n-\(index)"))
            let served = try await normal.fetch(name: entry.name, version: entry.version, platform: "jammy", artifact: entry.artifact)
            #expect(served.warning?.contains("without verification") == true, "\(test.name)")
            #expect(try Data(contentsOf: served.file) == Data(contentsOf: copy.archive(entry)), "\(test.name): normal mode serves what it got")
        }

        // The genuine package passes both modes.
        let genuineTree = PackageTree(root: tree)
        let trusted = try await Self.agent(genuineTree, mode: .trusted, roots: roots, cache: directory.appendingPathComponent("cache-genuine"))
        let good = try await trusted.fetch(name: "xdp-port-filter", version: "1.0.0", platform: "jammy", artifact: "xdp_port_filter.tar.gz")
        #expect(good.warning == nil && good.digest == genuineReport.sha256)
        let normal = try await Self.agent(genuineTree, mode: .normal, roots: roots, cache: directory.appendingPathComponent("cache-genuine-n"))
        #expect(try await normal.fetch(name: "xdp-port-filter", version: "1.0.0", platform: "jammy", artifact: "xdp_port_filter.tar.gz").warning != nil)

        // Rollback: once 1.1.0 was served for latest, latest going back to 1.0.0 is refused in
        // trusted mode, and served with a warning in normal mode.
        let rollbackTree = try Self.copyTree(tree, to: directory.appendingPathComponent("rollback"))
        let trustedAgent = try await Self.agent(rollbackTree, mode: .trusted, roots: roots, cache: directory.appendingPathComponent("cache-rollback-t"))
        let normalAgent = try await Self.agent(rollbackTree, mode: .normal, roots: roots, cache: directory.appendingPathComponent("cache-rollback-n"))
        #expect(try await trustedAgent.fetch(name: "xdp-port-filter", version: "latest", platform: "jammy", artifact: "xdp_port_filter.tar.gz").version == "1.1.0")
        #expect(try await normalAgent.fetch(name: "xdp-port-filter", version: "latest", platform: "jammy", artifact: "xdp_port_filter.tar.gz").version == "1.1.0")
        try rollbackTree.setLatest(of: "xdp-port-filter", platform: "jammy", to: "1.0.0")
        do {
            let served = try await trustedAgent.fetch(name: "xdp-port-filter", version: "latest", platform: "jammy", artifact: "xdp_port_filter.tar.gz")
            Issue.record("rollback served \(served.version)")
        } catch {
            #expect(error.status == 403 && error.code == "rollback" && error.reason.contains("1.1.0 was served before"), "\(error)")
        }
        let rolledBack = try await normalAgent.fetch(name: "xdp-port-filter", version: "latest", platform: "jammy", artifact: "xdp_port_filter.tar.gz")
        #expect(rolledBack.version == "1.0.0" && rolledBack.warning?.contains("rollback") == true)
        // A restarted agent remembers what it served.
        let restarted = try await Self.agent(rollbackTree, mode: .trusted, roots: roots, cache: directory.appendingPathComponent("cache-rollback-t"))
        do {
            let served = try await restarted.fetch(name: "xdp-port-filter", version: "latest", platform: "jammy", artifact: "xdp_port_filter.tar.gz")
            Issue.record("a restarted agent served \(served.version) for latest")
        } catch {
            #expect(error.code == "rollback", "\(error)")
        }
    }

    /// The `epr agent` binary, as L3AFD's repository: the same URL scheme, archive and
    /// extraction, in both modes, and the cache served while the repository is down.
    @Test func agentServesL3AFDInBothModesAndOutlivesTheRepository() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let world = try Self.world(directory)
        var serverStopped = false
        defer { if !serverStopped { world.server.stop() } }
        #expect(try world.epr(["signing", "grant", "admin", "xdp-*"]).status == 0)
        let key = try world.certifiedKey("alice", packages: ["xdp-*"])
        let archive = try world.publishSigned("xdp-port-filter", version: "1.0.0", key: key)

        // epr download --verify: kept with its documents when it verifies.
        let downloads = directory.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: downloads, withIntermediateDirectories: true)
        let verified = try world.epr(["download", "xdp-port-filter", "--verify", "--trusted-root", world.root.path, "-o", downloads.path])
        #expect(verified.status == 0 && verified.output.contains("verified: signed by admin"), "\(verified.output)")
        #expect(FileManager.default.fileExists(atPath: downloads.appendingPathComponent("xdp_port_filter.tar.gz.attestation").path))
        let plain = try world.epr(["download", "xdp-port-filter", "-o", downloads.path])
        #expect(plain.status == 0 && plain.output.contains("was not verified (normal mode)"), "\(plain.output)")
        let otherRoot = directory.appendingPathComponent("other-root")
        #expect(try Fixtures.run("/usr/bin/env", ["EPR_KEY_PASSPHRASE=\(Self.passphrase)", Fixtures.eprBinary, "trust", "init", "-o", otherRoot.path]).status == 0)
        let foreign = try world.epr(["download", "xdp-port-filter", "--verify", "--trusted-root", otherRoot.appendingPathComponent("root.crt").path,
                                     "-o", directory.path])
        #expect(foreign.status != 0 && foreign.output.contains("refused in trusted mode"), "\(foreign.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("xdp_port_filter.tar.gz").path), "a refused download is removed")

        let trusted = try AgentProcess(arguments: ["--upstream", world.server.baseURL, "--cache", directory.appendingPathComponent("cache-t").path,
                                                   "--mode", "trusted", "--trusted-root", world.root.path], log: directory.appendingPathComponent("agent-t.log"))
        defer { trusted.stop() }
        let normal = try AgentProcess(arguments: ["--upstream", world.server.baseURL, "--cache", directory.appendingPathComponent("cache-n").path,
                                                  "--mode", "normal"], log: directory.appendingPathComponent("agent-n.log"))
        defer { normal.stop() }
        #expect(normal.logText.contains("normal mode: packages are served without verification"))
        for agent in [trusted, normal] {
            // L3AFD: url.JoinPath(repo, name, version, platform, artifact), extract, load <artifact base>/<object_file>.
            let answer = try await agent.get("/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz")
            #expect(answer.status == 200)
            #expect(answer.body == Array(try Data(contentsOf: URL(fileURLWithPath: archive))))
            #expect(answer.headers["epr-trust"] == (agent === trusted ? "verified" : "unverified"))
            let fetched = directory.appendingPathComponent("fetched-\(agent.port).tar.gz")
            try Data(answer.body).write(to: fetched)
            let extracted = directory.appendingPathComponent("bpf-\(agent.port)/xdp-port-filter/latest")
            try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
            #expect(try Fixtures.run("/bin/tar", ["-xzf", fetched.path, "-C", extracted.path]).status == 0)
            #expect(FileManager.default.fileExists(atPath: extracted.appendingPathComponent("xdp_port_filter/port_filter.bpf.o").path))
        }
        #expect(try await trusted.get("/xdp-port-filter/latest/jammy/other.tar.gz").status == 404)
        #expect(try await trusted.get("/..%2f..%2fetc/latest/jammy/xdp_port_filter.tar.gz").status == 400)

        // The repository goes away: verified packages keep being served from the cache.
        world.server.stop()
        serverStopped = true
        let offline = try await trusted.get("/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz")
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: archive)))
        #expect(offline.status == 200 && offline.body == original)
        #expect(try await trusted.get("/xdp-port-filter/1.0.0/jammy/xdp_port_filter.tar.gz").status == 200)
        let missing = try await trusted.get("/xdp-proto-counter/latest/jammy/xdp_proto_counter.tar.gz")
        #expect(missing.status == 503, "nothing cached and no repository")
        #expect(trusted.logText.contains("upstream unreachable"))
    }
}

/// The real `epr agent` binary on a free loopback port.
final class AgentProcess: @unchecked Sendable { // the Process is only touched by the test that owns it
    let process = Process()
    let log: URL
    private(set) var port = 0

    init(arguments: [String], log: URL) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: Fixtures.eprBinary)
        process.arguments = ["agent", "--port", "0"] + arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard process.isRunning else { throw Fixtures.FixtureError(description: "epr agent exited: \(logText)") }
            for line in logText.split(separator: "\n") where line.contains("agent listening") {
                if let range = line.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    port = Int(line[range].split(separator: ":").last ?? "") ?? 0
                    if port > 0 { return }
                }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Fixtures.FixtureError(description: "epr agent did not start: \(logText)")
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
        Fixtures.keepLog(log, name: "epr-agent")
    }

    func get(_ path: String) async throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)" + path)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return (Int(response.status.code), Array(body.readableBytesView), headers)
    }
}
