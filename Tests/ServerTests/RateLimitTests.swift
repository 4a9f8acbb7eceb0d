import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOConcurrencyHelpers
@testable import Registry
@testable import Server
import Testing

/// Token buckets and lockouts, on a clock the test moves.
@Suite struct RateLimiterTests {
    final class Clock: Sendable {
        private let instant = NIOLockedValueBox(ContinuousClock.now)
        var now: ContinuousClock.Instant { instant.withLockedValue { $0 } }
        func advance(_ duration: Duration) { instant.withLockedValue { $0 += duration } }
    }

    @Test func burstThenSteadyRate() {
        let clock = Clock()
        let limiter = RateLimiter(burst: 3, perSecond: 0.5, now: { clock.now })
        for _ in 0..<3 { #expect(limiter.take("alice") == nil) }
        #expect(limiter.take("alice") == 2, "one more comes back in two seconds")
        #expect(limiter.take("bob") == nil, "keys are separate")
        clock.advance(.seconds(2))
        #expect(limiter.take("alice") == nil)
        #expect(limiter.take("alice") != nil)
        clock.advance(.seconds(60))
        for _ in 0..<3 { #expect(limiter.take("alice") == nil) }
        #expect(limiter.take("alice") != nil, "idle time refills up to the burst, no further")
    }

    @Test func lockoutsGrowAndExpire() {
        let clock = Clock()
        let lockout = Lockout(threshold: 3, window: .seconds(600), firstLockout: .seconds(60), longestLockout: .seconds(200), now: { clock.now })
        #expect(lockout.failed("10.0.0.1") == nil)
        #expect(lockout.failed("10.0.0.1") == nil)
        #expect(lockout.lockedOut("10.0.0.1") == nil)
        #expect(lockout.failed("10.0.0.1") == 60)
        #expect(lockout.lockedOut("10.0.0.1") != nil)
        #expect(lockout.lockedOut("10.0.0.2") == nil, "addresses are separate")
        clock.advance(.seconds(61))
        #expect(lockout.lockedOut("10.0.0.1") == nil)
        for _ in 0..<2 { lockout.failed("10.0.0.1") }
        #expect(lockout.failed("10.0.0.1") == 120, "the second lockout lasts twice as long")
        clock.advance(.seconds(121))
        for _ in 0..<2 { lockout.failed("10.0.0.1") }
        #expect(lockout.failed("10.0.0.1") == 200, "up to the longest")
        // Failures spread wider than the window do not add up.
        clock.advance(.seconds(201))
        lockout.failed("10.0.0.3")
        clock.advance(.seconds(601))
        lockout.failed("10.0.0.3")
        #expect(lockout.failed("10.0.0.3") == nil)
    }
}

extension RateLimiterTests {
    /// A flood of new keys does not wipe out the failures counted against a key: when the
    /// table is full, only entries a fresh one would equal are forgotten, and new keys share one.
    @Test func aFloodOfKeysForgetsNoLiveFailure() {
        let clock = Clock()
        let lockout = Lockout(threshold: 3, window: .seconds(600), firstLockout: .seconds(60), longestLockout: .seconds(200), maxKeys: 10,
                              now: { clock.now })
        lockout.failed("victim")
        lockout.failed("victim")
        for index in 0..<50 { lockout.failed("junk-\(index)") }
        #expect(lockout.failed("victim") == 60, "the victim's two failures were kept through the flood")
        // Keys beyond the table's room share one entry: together they are locked out.
        #expect(lockout.lockedOut("junk-49") != nil && lockout.lockedOut("someone-new") != nil)
        #expect(lockout.lockedOut("junk-0") == nil, "a key with room of its own has one failure")
        // Once the failures are old, their entries make room again.
        clock.advance(.seconds(601))
        #expect(lockout.lockedOut("someone-new") == nil)
        #expect(lockout.failed("someone-new") == nil)
        #expect(lockout.failed("someone-new") == nil)
        #expect(lockout.failed("someone-new") == 60, "a key of its own again")
        #expect(lockout.lockedOut("junk-1") == nil)
    }
}

/// The limits through the API: 429 with Retry-After and a problem document.
@Suite struct RateLimitAPITests {
    @Test func publishesPerUser() async throws {
        let registry = try await TestRegistry.make { $0.publishesPerHour = 6 } // a burst of one
        let first = try registry.archive("exec-tracker", version: "1.0.0")
        let second = try registry.archive("exec-tracker", version: "1.0.1")
        try await registry.run { client in
            #expect(try await client.publish(first).status == .created)
            let limited = try await client.publish(second)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.problemCode == "rate-limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(try await client.get("/api/v1/packages/exec-tracker/versions/1.0.1").status == .notFound, "nothing was stored")
        }
    }

    @Test func requestsPerUserWhicheverToken() async throws {
        let registry = try await TestRegistry.make { $0.tokenRequestsPerMinute = 3 }
        try await registry.run { client in
            let headers: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)"]
            for _ in 0..<2 { #expect(try await client.get("/api/v1/me", headers: headers).status == .ok) }
            // A fresh token of the same user shares the allowance.
            let created = try await client.execute(uri: "/api/v1/tokens", method: .post, headers: headers,
                                                   body: ByteBuffer(string: #"{"name": "more", "scopes": []}"#))
            struct Body: Decodable { var token: String }
            let fresh = try JSONDecoder().decode(Body.self, from: Data(buffer: created.body)).token
            let limited = try await client.get("/api/v1/me", headers: [.authorization: "Bearer \(fresh)"])
            #expect(limited.status == .tooManyRequests && limited.problemCode == "rate-limited")
            #expect(try await client.get("/api/v1/packages").status == .ok, "anonymous reads are not limited by a token's allowance")
        }
    }

    @Test func failedAuthenticationsLockTheAddressOut() async throws {
        let registry = try await TestRegistry.make { $0.authFailuresBeforeLockout = 3 }
        let accounts = registry.server.registry.accounts
        try await registry.run(.live) { client in
            let wrong: HTTPFields = [.authorization: "Bearer epr_wrongwrongwrongwrongwrongwrongwrongwrongwro"]
            for _ in 0..<3 { #expect(try await client.get("/api/v1/me", headers: wrong).status == .unauthorized) }
            let locked = try await client.get("/api/v1/me", headers: wrong)
            #expect(locked.status == .tooManyRequests && locked.problemCode == "rate-limited")
            #expect(Int(locked.headers[.retryAfter] ?? "") ?? 0 >= 1)
            let valid = try await client.get("/api/v1/me", headers: [.authorization: "Bearer \(TestRegistry.token)"])
            #expect(valid.status == .ok, "a valid token is never locked out by others' failures")
            #expect(try await client.get("/api/v1/me", headers: wrong).status == .tooManyRequests, "and does not lift the lockout")
            let audit = try await accounts.audit(actor: nil, action: "auth", offset: 0, limit: 10)
            #expect(audit.items.contains { $0.detail?.contains("locked out") == true && $0.address == "127.0.0.1" })
        }
    }
}

/// Behind a trusted reverse proxy, clients are known by the address it forwards.
@Suite struct ClientAddressTests {
    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() {
        let trusted: Set<String> = ["10.0.0.2", "10.0.0.3"]
        #expect(Authenticator.clientAddress(peer: "192.0.2.1", forwardedFor: ["203.0.113.9"], trusted: trusted) == "192.0.2.1")
        #expect(Authenticator.clientAddress(peer: "10.0.0.2", forwardedFor: ["203.0.113.9"], trusted: trusted) == "203.0.113.9")
        // A client's own claims sit further left; the nearest untrusted hop is the client.
        #expect(Authenticator.clientAddress(peer: "10.0.0.2", forwardedFor: ["1.1.1.1, 203.0.113.9", "10.0.0.3"], trusted: trusted)
                == "203.0.113.9")
        #expect(Authenticator.clientAddress(peer: "10.0.0.2", forwardedFor: [], trusted: trusted) == "10.0.0.2")
        #expect(Authenticator.clientAddress(peer: nil, forwardedFor: ["203.0.113.9"], trusted: trusted) == nil)
    }

    @Test func eachClientBehindTheProxyHasItsOwnLockout() async throws {
        let registry = try await TestRegistry.make {
            $0.authFailuresBeforeLockout = 2
            $0.trustedProxies = ["127.0.0.1"]
        }
        let accounts = registry.server.registry.accounts
        try await registry.run(.live) { client in
            func wrong(from address: String) async throws -> Int {
                try await client.get("/api/v1/me", headers: [.authorization: "Bearer epr_wrongwrongwrongwrongwrongwrongwrongwrongwro",
                                                             HTTPField.Name("X-Forwarded-For")!: address]).status.code
            }
            #expect(try await wrong(from: "203.0.113.9") == 401)
            #expect(try await wrong(from: "203.0.113.9") == 401)
            #expect(try await wrong(from: "203.0.113.9") == 429)
            #expect(try await wrong(from: "198.51.100.7") == 401, "another client behind the same proxy is not locked out")
            let audit = try await accounts.audit(actor: nil, action: "auth", offset: 0, limit: 10).items
            #expect(Set(audit.compactMap(\.address)) == ["203.0.113.9", "198.51.100.7"])
        }
    }
}
