import Foundation
import Logging
import Node
import Signing
import TestSupport
import Testing
import X509

/// Which revocation lists a node takes: only newer ones, never one that drops a revocation,
/// never one signed by an authority the kept list revokes, never a second list under a number
/// already seen; and what it took survives a restart.
@Suite struct NodeTrustTests {
    static func list(_ revoked: [RevocationList.Entry], sequence: Int, by authority: TrustRoot.Authority, updated: Date = Date(),
                     lifetime: TimeInterval = Double(RevocationList.lifetimeDays) * 86400) throws -> Data {
        let content = RevocationList.Content(sequence: sequence, updated: updated, expires: updated.addingTimeInterval(lifetime), revoked: revoked)
        return try JSONEncoder().encode(try RevocationList.sign(content, by: authority))
    }

    static func entry(_ certificate: Certificate, reason: String) -> RevocationList.Entry {
        RevocationList.Entry(serial: RevocationList.serial(of: certificate), revoked_at: Date(), reason: reason)
    }

    @Test func takesOnlyListsThatMoveForward() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "node-trust-test")
        logger.logLevel = .critical
        let (root, first) = try TrustRoot.create(name: "nodes")
        let second = try TrustRoot.intermediate(name: "nodes", by: root)
        let file = directory.appendingPathComponent("revocations.json")
        let trust = await NodeTrust(roots: [root.certificate], file: file, logger: logger)
        let base = RevocationList.nextSequence(after: 0)

        // Without a list, trusted mode cannot check revocations.
        await #expect(throws: VerificationRefusal.self) { _ = try await trust.anchors() }
        #expect(await trust.offer(try Self.list([], sequence: base, by: first), from: "test"))
        #expect(await trust.sequence == base)

        // The first authority is compromised: the second revokes it.
        let revocation = try Self.list([Self.entry(first.certificate, reason: "compromised")], sequence: base + 10, by: second)
        #expect(await trust.offer(revocation, from: "test"))
        #expect(await !trust.offer(try Self.list([], sequence: base + 20, by: first), from: "test"),
                "the revoked authority cannot sign itself back in")
        #expect(await !trust.offer(try Self.list([], sequence: base + 20, by: second), from: "test"), "a later list keeps every revocation")
        #expect(await !trust.offer(try Self.list([], sequence: base + 5, by: second), from: "test"), "an older list is a replay")
        let other = try Self.list([Self.entry(first.certificate, reason: "compromised"), Self.entry(second.certificate, reason: "x")],
                                  sequence: base + 10, by: second)
        #expect(await !trust.offer(other, from: "test"), "another list under a number already seen")
        #expect(await trust.offer(revocation, from: "test"), "the same list again is fine")
        #expect(await !trust.offer(try Self.list([Self.entry(first.certificate, reason: "compromised")], sequence: RevocationList.highestSequence(at: Date()) + 10,
                                                  by: second), from: "test"), "a number far ahead of the time would shut out every later list")
        #expect(await !trust.offer(try Self.list([Self.entry(first.certificate, reason: "compromised")], sequence: base + 30, by: second,
                                                  lifetime: 400 * 86400), from: "test"), "a list living longer than lists live")
        #expect(try await trust.anchors().revocations?.revoked.map(\.reason) == ["compromised"])

        // What was taken is kept across a restart.
        let restarted = await NodeTrust(roots: [root.certificate], file: file, logger: logger)
        #expect(await restarted.sequence == base + 10)

        // An expired list counts for nothing.
        let stale = await NodeTrust(roots: [root.certificate], file: directory.appendingPathComponent("stale.json"), logger: logger)
        let old = Date(timeIntervalSinceNow: -40 * 86400)
        #expect(await !stale.offer(try Self.list([], sequence: base, by: second, updated: old), from: "test"))
        do {
            _ = try await stale.anchors()
            Issue.record("no current list, yet anchors")
        } catch {
            #expect(error.link == .revocationsUnavailable)
        }
    }
}
