import AsyncHTTPClient
import Foundation
import PackageFormat
import TestSupport
import Testing

/// The review workflow on the real server binary, driven with the CLI: nothing reaches the
/// L3AFD path before a reviewer approves it, checks run in the real kernel verifier and in a
/// real external scanner, a kill during checks leaves each job completed once, and `epr check`
/// finds what the server finds.
@Suite(.serialized) struct ReviewEndToEndTests {
    struct Registry {
        let server: ServerProcess
        let directory: URL

        func epr(_ token: String, _ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)", "EPR_TOKEN=\(token)",
                                             Fixtures.eprBinary] + arguments)
        }

        /// A user of `role` and a token of it with every right of the role.
        func user(_ name: String, role: String) throws -> String {
            #expect(try epr(ServerProcess.token, "user", "create", name, "--role", role).status == 0)
            let scopes = role == "reviewer" ? ["publish-new", "publish-update", "review"] : ["publish-new", "publish-update"]
            let (status, output) = try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)",
                                                                     "EPR_TOKEN=\(ServerProcess.token)", Fixtures.eprBinary, "token", "create",
                                                                     "\(name)-token", "--user", name] + scopes.flatMap { ["--scope", $0] })
            try #require(status == 0, "\(output)")
            let token = try #require(output.split(separator: "\n").map(String.init).first { $0.hasPrefix("epr_") })
            Fixtures.recordSecret(token)
            return token
        }

        /// Submits with the CLI (waiting for the checks) and returns the submission's id and state.
        func submit(_ token: String, _ archive: String) throws -> (id: String, state: String) {
            let (status, output) = try epr(token, "publish", "--json", archive)
            try #require(status == 0, "\(output)")
            struct Detail: Decodable { struct Summary: Decodable { var id: String; var state: String }; var submission: Summary }
            let detail = try JSONDecoder().decode(Detail.self, from: Data(output.utf8))
            return (detail.submission.id, detail.submission.state)
        }

        func l3afd(_ version: String) async throws -> Int {
            try await server.get("/xdp-proto-counter/\(version)/bookworm/xdp_proto_counter.tar.gz").status
        }
    }

    static func withRegistry(environment: [String: String] = [:], arguments: [String] = [],
                             _ body: (Registry) async throws -> Void) async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // No one auto-publishes here: every upload waits for a reviewer.
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: ["EPR_AUTO_PUBLISH": "", "EPR_VERIFIER": "machine"].merging(environment) { $1 },
                                       arguments: arguments)
        defer { server.stop() }
        try await body(Registry(server: server, directory: directory))
    }

    @Test func onlyWhatAReviewerApprovedIsServed() async throws {
        try await Self.withRegistry { registry in
            let alice = try registry.user("alice", role: "publisher"), rev = try registry.user("rev", role: "reviewer")
            let first = try registry.submit(alice, try Fixtures.packageArchive("xdp-proto-counter", version: "1.0.0", into: registry.directory))
            #expect(first.state == "awaiting-review", "the checks passed and it waits for a reviewer")
            let before = (try await registry.l3afd("latest"), try await registry.l3afd("1.0.0"))
            #expect(before == (404, 404), "nothing is served before approval")
            #expect(try registry.epr(alice, "search", "proto").output.contains("xdp-proto-counter") == false, "nor listed")

            // The reviewer reads it: the kernel verifier's figures are in the report.
            let (showStatus, shown) = try registry.epr(rev, "review", "show", first.id)
            #expect(showStatus == 0 && shown.contains("check verifier: passed") && shown.contains("processed_insns="), "\(shown)")
            #expect(shown.contains("changes since nothing (the first version)"))
            let (selfStatus, selfApproval) = try registry.epr(alice, "review", "approve", first.id)
            #expect(selfStatus == 1 && selfApproval.contains("[forbidden]"), "a publisher does not approve: \(selfApproval)")
            let (approveStatus, approved) = try registry.epr(rev, "review", "approve", first.id)
            #expect(approveStatus == 0 && approved.contains("is published"), "\(approved)")
            let after = (try await registry.l3afd("latest"), try await registry.l3afd("1.0.0"))
            #expect(after == (200, 200))

            // A rejected submission is never served; latest stays where it was.
            let second = try registry.submit(alice, try Fixtures.packageArchive("xdp-proto-counter", version: "1.1.0", into: registry.directory))
            let (rejectStatus, _) = try registry.epr(rev, "review", "reject", second.id, "--reason", "not needed")
            #expect(rejectStatus == 0)
            #expect(try await registry.l3afd("1.1.0") == 404)
            let latest = try await registry.server.get("/xdp-proto-counter/latest/bookworm/xdp_proto_counter.tar.gz")
            #expect(latest.body == Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("xdp-proto-counter", version: "1.0.0",
                                                                                                                into: registry.directory)))))
            let (approveRejected, refused) = try registry.epr(rev, "review", "approve", second.id)
            #expect(approveRejected == 1 && refused.contains("[submission-state]"), "\(refused)")

            // A withdrawn one neither, and its version number is free again.
            let archive = try Fixtures.packageArchive("xdp-proto-counter", version: "1.2.0", into: registry.directory)
            let third = try registry.submit(alice, archive)
            #expect(try registry.epr(alice, "submissions", "withdraw", third.id).status == 0)
            #expect(try await registry.l3afd("1.2.0") == 404)
            let (_, listing) = try registry.epr(rev, "submissions", "--state", "withdrawn")
            #expect(listing.contains(third.id))
            let again = try registry.submit(alice, archive)
            #expect(again.id != third.id && again.state == "awaiting-review")
        }
    }

    @Test func aKillDuringChecksLeavesEachJobCompletedOnce() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The scanner sees this directory of signals, never one that holds the data directory.
        let signals = directory.appendingPathComponent("signals")
        try FileManager.default.createDirectory(at: signals, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let runs = signals.appendingPathComponent("runs"), release = signals.appendingPathComponent("release")
        let scanner = directory.appendingPathComponent("slow-scanner.sh")
        // The scanner holds on until the test lets it go, so the kill surely comes while it runs.
        // It sees the signals read-only (its `paths`), in the check worker's sandbox: it tells
        // of each start through a pipe the test reads.
        try """
            #!/bin/sh
            echo start > '\(runs.path)'
            while [ ! -e '\(release.path)' ]; do sleep 0.05; done
            echo '{"findings": [{"severity": "info", "check": "slept", "message": "scanned"}]}'
            """.write(to: scanner, atomically: true, encoding: .utf8)
        guard mkfifo(runs.path, 0o600) == 0, chmod(runs.path, 0o666) == 0 else { throw POSIXError(.EIO) }
        let reader = open(runs.path, O_RDONLY | O_NONBLOCK)
        guard reader >= 0 else { throw POSIXError(.EIO) }
        defer { close(reader) }
        var started = ""
        func readRuns() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(reader, &buffer, buffer.count)
                guard n > 0 else { break }
                started += String(decoding: buffer[0..<n], as: UTF8.self)
            }
            return started
        }
        let config = directory.appendingPathComponent("epr.toml")
        try "[server]\nauto_publish = [\"admin\"]\n\n[scanner.slow]\ncommand = [\"sh\", \"\(scanner.path)\"]\npaths = [\"\(signals.path)\"]\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: ["EPR_VERIFIER": "machine"],
                                       arguments: ["--config", config.path])
        defer { server.stop() }

        var request = HTTPClientRequest(url: server.baseURL + "/api/v1/packages")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(ServerProcess.token)")
        request.headers.add(name: "Content-Type", value: "application/gzip")
        request.body = .bytes(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("xdp-proto-counter", into: directory))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        #expect(response.status.code == 201)
        let location = try #require(response.headers.first(name: "Location"))
        _ = try await response.body.collect(upTo: 1 << 20)

        // Kill the server while the scanner runs.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, readRuns().isEmpty {
            try await Task.sleep(for: .milliseconds(50))
        }
        server.kill(signal: SIGKILL)
        #expect(readRuns() == "start\n", "killed during the first run")
        FileManager.default.createFile(atPath: release.path, contents: nil)

        try server.start()
        try await server.waitForChecks()
        struct Detail: Decodable {
            struct Summary: Decodable { var state: String }
            struct Check: Decodable { var check: String; var state: String; var attempts: Int; var outcome: String?; var findings: [Finding] }
            struct Event: Decodable { var kind: String; var actor: String }
            var submission: Summary
            var checks: [Check]
            var events: [Event]
        }
        let answer = try await server.get(location, token: ServerProcess.token)
        let detail = try JSONDecoder().decode(Detail.self, from: Data(answer.body))
        #expect(detail.submission.state == "published")
        #expect(detail.checks.map(\.check) == ["inspection", "verifier", "sources", "scanner.slow"])
        let slow = try #require(detail.checks.last)
        #expect(slow.state == "done" && slow.attempts == 2 && slow.outcome == "passed", "taken again after the restart: \(slow)")
        #expect(slow.findings == [Finding(.info, "scanner.slow.slept", "scanned")], "its result recorded once")
        #expect(detail.checks.allSatisfy { $0.state == "done" })
        #expect(detail.events.filter { $0.kind == "state" && $0.actor == "epr" }.count == 1, "the submission moved on once")
        #expect(readRuns() == "start\nstart\n", "\(started)")
        let versions = try await server.get("/api/v1/packages/xdp-proto-counter/versions")
        #expect(String(decoding: versions.body, as: UTF8.self).components(separatedBy: "\"version\":\"1.0.0\"").count == 2, "published once")
    }

    @Test func checkingLocallyFindsWhatTheServerFinds() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("epr.toml")
        let scanner = Fixtures.root.appendingPathComponent("scanners/cppcheck-scanner.py").path
        try "[server]\n\n[scanner.cppcheck]\ncommand = [\"python3\", \"\(scanner)\"]\n".write(to: config, atomically: true, encoding: .utf8)
        try await Self.withRegistry(arguments: ["--config", config.path]) { registry in
            let alice = try registry.user("alice", role: "publisher")
            let archive = try Fixtures.unverifiablePackage(into: directory)
            let (localStatus, local) = try Fixtures.run(Fixtures.eprBinary, ["check", "--json", "--config", config.path, archive])
            #expect(localStatus == 1, "the verifier's refusal is an error")

            let submitted = try registry.submit(alice, archive)
            #expect(submitted.state == "changes-requested", "errors send it back to its author")
            #expect(try await registry.l3afd("1.0.0") == 404)
            let (_, shown) = try registry.epr(alice, "review", "show", "--json", submitted.id)

            struct Check: Decodable { var check: String; var outcome: String?; var findings: [Finding] }
            struct Shown: Decodable { struct Detail: Decodable { var checks: [Check] }; var submission: Detail }
            let server = try JSONDecoder().decode(Shown.self, from: Data(shown.utf8)).submission.checks
            let mine = try JSONDecoder().decode([Check].self, from: Data(local.utf8))
            #expect(server.map(\.check) == mine.map(\.check) && server.map(\.check) == ["inspection", "verifier", "sources", "scanner.cppcheck"])
            for (theirs, ours) in zip(server, mine) {
                #expect(theirs.outcome == ours.outcome, "\(theirs.check)")
                #expect(Set(theirs.findings) == Set(ours.findings), "\(theirs.check): \(theirs.findings) vs \(ours.findings)")
            }
            let refusal = try #require(server.first { $0.check == "verifier" }?.findings.first { $0.check == "verifier.rejected" })
            #expect(refusal.message.contains("invalid access to packet"), "the kernel's own words: \(refusal.message)")
        }
    }
}
