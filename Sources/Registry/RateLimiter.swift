import Foundation
import NIOConcurrencyHelpers

/// Token buckets by key: each key may spend up to `burst` at once, refilled at `perSecond`.
/// Buckets that have refilled completely are forgotten, so memory follows active keys only.
public final class RateLimiter: Sendable {
    public struct Bucket: Sendable, Equatable {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    public let burst: Double
    public let perSecond: Double
    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])
    private let now: @Sendable () -> ContinuousClock.Instant
    private let maxKeys: Int

    public init(burst: Int, perSecond: Double, maxKeys: Int = 100_000, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.burst = Double(max(1, burst))
        self.perSecond = perSecond
        self.maxKeys = maxKeys
        self.now = now
    }

    /// Takes one from `key`'s bucket; when it is empty, the seconds until one is back.
    public func take(_ key: String) -> Int? {
        let now = self.now()
        return buckets.withLockedValue { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double((now - bucket.updated).components.seconds) + Double((now - bucket.updated).components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
            }
            bucket.tokens -= 1
            if buckets.count >= maxKeys, buckets[key] == nil { Self.forgetFull(&buckets, now: now, burst: burst, perSecond: perSecond) }
            buckets[key] = bucket
            return nil
        }
    }

    private static func forgetFull(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant, burst: Double, perSecond: Double) {
        buckets = buckets.filter { _, bucket in
            let elapsed = Double((now - bucket.updated).components.seconds)
            return bucket.tokens + elapsed * perSecond < burst
        }
    }
}

/// Repeated failures from one address lock it out for a while, twice as long each time. It
/// tracks at most `maxKeys` keys: when full, it forgets only what it would have forgotten anyway
/// (no failure within the window or the longest lockout, no lockout running), and while every
/// key it holds is live, new keys share one entry: a flood of new keys cannot wipe out the
/// failures counted against the keys it holds.
public final class Lockout: Sendable {
    private struct Entry {
        var failures: [ContinuousClock.Instant] = []
        var lockedUntil: ContinuousClock.Instant?
        var lockouts = 0
        var lastFailure: ContinuousClock.Instant?
    }

    public let threshold: Int
    public let window: Duration
    public let firstLockout: Duration
    public let longestLockout: Duration
    public let maxKeys: Int
    /// The entry new keys share while the table is full of live ones.
    static let overflowKey = "\u{0}overflow"
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// When the full table was last swept: at most once a second, not at every failure.
    private let swept = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(threshold: Int, window: Duration = .seconds(600), firstLockout: Duration = .seconds(60),
                longestLockout: Duration = .seconds(3600), maxKeys: Int = 100_000,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.threshold = threshold
        self.maxKeys = max(1, maxKeys)
        self.window = window
        self.firstLockout = firstLockout
        self.longestLockout = longestLockout
        self.now = now
    }

    /// Seconds `key` stays locked out, or nil when it may try.
    public func lockedOut(_ key: String) -> Int? {
        let now = self.now()
        return entries.withLockedValue { entries in
            let key = entries[key] == nil && entries.count >= maxKeys ? Self.overflowKey : key
            guard let until = entries[key]?.lockedUntil, until > now else { return nil }
            return max(1, Int((until - now).components.seconds) + 1)
        }
    }

    /// The key an address is counted under: itself, or for IPv6 its /64 network (what one client
    /// is usually given, and could otherwise spend on as many addresses as it likes).
    public static func addressKey(_ address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        return bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Whether an entry still says something a fresh one would not: a lockout running, or a
    /// failure recent enough to count or to lengthen the next lockout.
    private func isLive(_ entry: Entry, now: ContinuousClock.Instant) -> Bool {
        if let until = entry.lockedUntil, until > now { return true }
        guard let last = entry.lastFailure else { return false }
        return now - last < max(window, longestLockout)
    }

    /// Records a failure; returns the lockout it starts, in seconds, if any.
    @discardableResult
    public func failed(_ key: String) -> Int? {
        guard threshold > 0 else { return nil }
        let now = self.now()
        return entries.withLockedValue { entries in
            var key = key
            if entries[key] == nil, entries.count >= maxKeys {
                let due = swept.withLockedValue { last in
                    guard last.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
                    last = now
                    return true
                }
                if due { entries = entries.filter { isLive($0.value, now: now) } }
                if entries.count >= maxKeys { key = Self.overflowKey }
            }
            var entry = entries[key] ?? Entry()
            // Lockouts are forgotten after a quiet spell as long as the longest lockout.
            if let last = entry.lastFailure, now - last > longestLockout { entry.lockouts = 0 }
            entry.lastFailure = now
            entry.failures = entry.failures.filter { now - $0 < window } + [now]
            var started: Int?
            if entry.failures.count >= threshold {
                let length = min(longestLockout, firstLockout * (1 << min(entry.lockouts, 16)))
                entry.lockedUntil = now + length
                entry.lockouts += 1
                entry.failures = []
                started = Int(length.components.seconds)
            }
            entries[key] = entry
            return started
        }
    }

}

/// The limits a registry applies: requests per user (whatever token it uses), publishes per
/// user, and a lockout of addresses that keep failing to authenticate.
public struct RateLimits: Sendable {
    public var tokenRequests: RateLimiter?
    public var publishes: RateLimiter?
    public var authFailures: Lockout?

    public init(tokenRequests: RateLimiter? = nil, publishes: RateLimiter? = nil, authFailures: Lockout? = nil) {
        self.tokenRequests = tokenRequests
        self.publishes = publishes
        self.authFailures = authFailures
    }

    /// Refuses an address locked out after failed authentications, before any more work.
    public func checkAddress(_ address: String) throws(RegistryError) {
        if let seconds = authFailures?.lockedOut(Lockout.addressKey(address)) {
            throw .rateLimited(retryAfter: seconds, reason: "too many failed authentications from this address")
        }
    }

    /// Requests per user per minute (the burst too), publishes per user per hour (a sixth of
    /// them at once), failed authentications per address in ten minutes before a lockout;
    /// 0 turns a limit off.
    public init(tokenRequestsPerMinute: Int, publishesPerHour: Int, authFailuresBeforeLockout: Int) {
        self.init(
            tokenRequests: tokenRequestsPerMinute > 0 ? RateLimiter(burst: tokenRequestsPerMinute, perSecond: Double(tokenRequestsPerMinute) / 60) : nil,
            publishes: publishesPerHour > 0 ? RateLimiter(burst: max(1, publishesPerHour / 6), perSecond: Double(publishesPerHour) / 3600) : nil,
            authFailures: authFailuresBeforeLockout > 0 ? Lockout(threshold: authFailuresBeforeLockout) : nil)
    }
}
