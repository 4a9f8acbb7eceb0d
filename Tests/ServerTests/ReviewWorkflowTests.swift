import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Registry
import RegistryAPI
import Server
import Storage
import TestSupport
import PackageFormat
import Testing

/// Submissions through the API: who sees them, what a decision needs (reviewers other than the
/// publisher, acknowledged warnings, enough approvals), comments, diffs, and auto-publishing.
@Suite struct ReviewWorkflowTests {
    struct People {
        var tokens: [String: String] = [:]
    }

    static func people(_ registry: TestRegistry) async throws -> People {
        let service = registry.server.registry
        let admin = Principal(name: "admin", role: .admin)
        var people = People()
        for (name, role) in [("alice", Principal.Role.publisher), ("mallory", .publisher), ("rev1", .reviewer), ("rev2", .reviewer)] {
            _ = try await service.createUser(name: name, role: role, by: admin)
            people.tokens[name] = try await service.createToken(for: name, name: "t", scopes: role.scopes.map(\.rawValue), packages: [],
                                                                expiresIn: nil, by: admin).secret
        }
        people.tokens["admin"] = TestRegistry.token
        return people
    }

    @Test func reviewersDecideAndOthersDoNotSee() async throws {
        let registry = try await TestRegistry.make { $0.approvalsRequired = 2 }
        let people = try await Self.people(registry)
        let first = try registry.archive("exec-tracker", version: "1.0.0"), second = try registry.archive("exec-tracker", version: "1.1.0")
        let portFilter = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            func call(_ user: String, _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil) async throws -> TestResponse {
                try await client.send(method, uri, json: json, headers: [.authorization: "Bearer \(people.tokens[user] ?? "")"])
            }
            let created = try await client.publish(first, token: people.tokens["alice"])
            #expect(created.status == .created)
            let submission = try created.json(SubmissionDetail.self)
            let id = submission.submission.id
            #expect(submission.submission.state == "awaiting-review" && submission.submission.approvals_required == 2)
            #expect(submission.needs_acknowledgement == ["security.sensitive-helper"], "exec-tracker reads kernel memory")
            #expect(try await client.get("/api/v1/packages/exec-tracker").status == .notFound, "unpublished: not there for anyone")
            #expect(try await client.get("/exec-tracker/latest/bookworm/exec_tracker.tar.gz").status == .notFound)

            // Visibility: the publisher and reviewers, not another publisher, not anonymous callers.
            #expect(try await call("mallory", .get, "/api/v1/submissions/\(id)").problemCode == "submission-not-found")
            #expect(try await client.get("/api/v1/submissions/\(id)").status == .unauthorized)
            #expect(try await call("mallory", .get, "/api/v1/submissions").json(SubmissionPage.self).total == 0)
            #expect(try await call("rev1", .get, "/api/v1/submissions?state=awaiting-review").json(SubmissionPage.self).items.map(\.id) == [id])
            let archive = try await call("rev1", .get, "/api/v1/submissions/\(id)/archive")
            #expect(archive.status == .ok && Data(buffer: archive.body) == Data(buffer: first))
            #expect(try await call("mallory", .get, "/api/v1/submissions/\(id)/archive").status == .notFound)
            #expect(try await client.get("/api/v1/blobs/\(submission.submission.sha256)").problemCode == "blob-not-found",
                    "nor by its digest, before it is published")

            // Comments: on the submission, or on a line of a file it has.
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/comments", #"{"message": "why read task memory?", "file": "src/exec_tracker.bpf.c", "line": 40}"#).status == .created)
            #expect(try await call("alice", .post, "/api/v1/submissions/\(id)/comments", #"{"message": "for the command line"}"#).status == .created)
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/comments", #"{"message": "x", "file": "nope.c", "line": 1}"#)
                .problemCode == "invalid-request")
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/comments", #"{"message": "x", "line": 3}"#).problemCode == "invalid-request")
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/comments", #"{"message": "  "}"#).problemCode == "invalid-request")

            // Decisions: not by the publisher, not without acknowledging the warning, one
            // approval per reviewer, published at the second.
            #expect(try await call("alice", .post, "/api/v1/submissions/\(id)/approve").status == .forbidden)
            let unacknowledged = try await call("rev1", .post, "/api/v1/submissions/\(id)/approve")
            #expect(unacknowledged.status == .unprocessableContent && unacknowledged.problemCode == "acknowledgement-required")
            let ack = #"{"acknowledge": ["security.sensitive-helper"]}"#
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/approve", ack).json(SubmissionDetail.self).submission.state == "awaiting-review")
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(id)/approve", ack).json(SubmissionDetail.self).approvals == ["rev1"])
            #expect(try await client.get("/exec-tracker/latest/bookworm/exec_tracker.tar.gz").status == .notFound, "one approval of two")
            let published = try await call("rev2", .post, "/api/v1/submissions/\(id)/approve", ack).json(SubmissionDetail.self)
            #expect(published.submission.state == "published" && published.approvals == ["rev1", "rev2"])
            #expect(try await client.get("/exec-tracker/latest/bookworm/exec_tracker.tar.gz").status == .ok)
            let events = published.events.map(\.kind)
            #expect(events.filter { $0 == "comment" }.count == 2 && events.filter { $0 == "approve" }.count == 3 && events.first == "state")
            #expect(published.events.first { $0.kind == "comment" && $0.file != nil }?.line == 40)

            // Changes requested: the same version may be submitted again, and the diff shows what changed.
            let next = try await client.publish(second, token: people.tokens["alice"]).json(SubmissionDetail.self).submission
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(next.id)/request-changes").problemCode == "invalid-request",
                    "a reason is required")
            let sentBack = try await call("rev1", .post, "/api/v1/submissions/\(next.id)/request-changes", #"{"reason": "bump the map size"}"#)
            #expect(try sentBack.json(SubmissionDetail.self).submission.state == "changes-requested")
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(next.id)/approve", ack).problemCode == "submission-state")
            let resubmitted = try await client.publish(second, token: people.tokens["alice"])
            #expect(resubmitted.status == .created, "the version number is free again")
            let again = try resubmitted.json(SubmissionDetail.self).submission
            let diff = try await call("rev2", .get, "/api/v1/submissions/\(again.id)/diff").json(SubmissionDiff.self)
            #expect(diff.base == "1.0.0" && diff.manifest.map(\.field) == [] && diff.files_changed == ["epr.toml"] && diff.programs_added.isEmpty,
                    "only the version differs: \(diff)")
            #expect(try await client.publish(second, token: people.tokens["alice"]).problemCode == "version-exists", "one open submission per version")
            #expect(try await call("mallory", .post, "/api/v1/submissions/\(again.id)/withdraw").problemCode == "submission-not-found")
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(again.id)/withdraw").status == .forbidden, "only its publisher withdraws")
            #expect(try await call("alice", .post, "/api/v1/submissions/\(again.id)/withdraw").json(SubmissionDetail.self).submission.state == "withdrawn")

            // A reviewer's own submission waits for another reviewer.
            let own = try await client.publish(portFilter, token: people.tokens["rev1"]).json(SubmissionDetail.self).submission
            #expect(try await call("rev1", .post, "/api/v1/submissions/\(own.id)/approve").status == .forbidden)
            #expect(try await call("rev2", .post, "/api/v1/submissions/\(own.id)/reject", #"{"reason": "duplicate"}"#)
                .json(SubmissionDetail.self).submission.state == "rejected")
            #expect(try await client.get("/api/v1/packages/xdp-port-filter").status == .notFound)
        }
    }

    @Test func theDiffNamesWhatChanged() async throws {
        let registry = try await TestRegistry.make { $0.autoPublish = ["admin"] }
        let directory = registry.directory
        // 1.1.0 of xdp-port-filter gets another description, keyword and README.
        let copy = directory.appendingPathComponent("changed")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-port-filter"), to: copy)
        let manifest = copy.appendingPathComponent("epr.toml")
        var text = try String(contentsOf: manifest, encoding: .utf8)
        text = text.replacingOccurrences(of: "version = \"1.0.0\"", with: "version = \"1.1.0\"")
        text = text.replacingOccurrences(of: "keywords = [", with: "keywords = [\"changed\", ")
        try text.write(to: manifest, atomically: true, encoding: .utf8)
        try "A changed README.\n".write(to: copy.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("changed-out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let changed = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: try PackageBuilder().build(directory: copy, output: out, modificationTime: 0).path)))
        let people = try await Self.people(registry)
        let original = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            #expect(try await client.publish(original).json(SubmissionDetail.self).submission.state == "published")
            let next = try await client.publish(changed, token: people.tokens["alice"])
            #expect(next.status == .forbidden, "alice does not own it")
            let mine = try await client.publish(changed).json(SubmissionDetail.self).submission
            let diff = try await client.send(.get, "/api/v1/submissions/\(mine.id)/diff", headers: [.authorization: "Bearer \(TestRegistry.token)"])
                .json(SubmissionDiff.self)
            #expect(diff.base == "1.0.0")
            #expect(diff.manifest.map(\.field) == ["keywords"] && diff.manifest[0].after?.contains("changed") == true)
            #expect(diff.files_changed == ["README.md", "epr.toml"] && diff.files_added.isEmpty && diff.sources_changed.isEmpty)
        }
    }

    @Test func adminsNameWhoAutoPublishes() async throws {
        let registry = try await TestRegistry.make()
        let people = try await Self.people(registry)
        let archive = try registry.archive("xdp-port-filter")
        let accounts = registry.server.registry.accounts
        try await registry.run { client in
            let auth: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)"]
            #expect(try await client.send(.put, "/api/v1/auto-publishers/alice", headers: [.authorization: "Bearer \(people.tokens["alice"]!)"])
                .status == .forbidden)
            #expect(try await client.send(.put, "/api/v1/auto-publishers/alice", headers: auth).status == .noContent)
            #expect(try await client.send(.put, "/api/v1/auto-publishers/nobody", headers: auth).problemCode == "user-not-found")
            #expect(try await client.send(.get, "/api/v1/auto-publishers", headers: auth).json([String].self) == ["admin", "alice"])
            let submission = try await client.publish(archive, token: people.tokens["alice"]).json(SubmissionDetail.self)
            #expect(submission.submission.state == "published" && submission.submission.reason?.contains("without review") == true)
            #expect(try await client.get("/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz").status == .ok)
            #expect(try await client.send(.delete, "/api/v1/auto-publishers/alice", headers: auth).status == .noContent)
            let audit = try await accounts.audit(actor: "admin", action: "user.auto-publish", offset: 0, limit: 10)
            #expect(audit.items.map(\.detail) == ["off", "on"])
        }
    }
}
