import Crypto
import Foundation
import HummingbirdBcrypt
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Password hashing with bcrypt, an adaptive hash whose cost doubles the work per step.
/// Passwords are first reduced with SHA-256 (Base64, 44 characters) so that every byte of a
/// long passphrase counts (bcrypt reads 72 bytes) and no NUL byte reaches it. Hashes carry
/// their scheme (`bcrypt-sha256$`) and cost, so both can change without breaking old ones.
public struct PasswordHasher: Sendable {
    public static let scheme = "bcrypt-sha256$"
    /// The bcrypt cost, 4 to 31; 12 takes a few hundred milliseconds on one core.
    public var cost: Int

    public init(cost: Int = 12) { self.cost = min(31, max(4, cost)) }

    static func reduce(_ password: String) -> String {
        Data(SHA256.hash(data: Array(password.utf8))).base64EncodedString()
    }

    /// Hashes on a pool of its own (never on an event loop, nor on the pool file reads use):
    /// bcrypt is slow on purpose.
    public func hash(_ password: String) async throws -> String {
        let cost = UInt8(self.cost)
        return try await HashingPool.run { Self.scheme + Bcrypt.hash(Self.reduce(password), cost: cost) }
    }

    /// Whether `password` matches `stored`. A nil or unknown hash is still checked against a
    /// dummy, so an unknown user takes as long as a wrong password.
    public func verify(_ password: String, against stored: String?) async throws -> Bool {
        let cost = self.cost
        return try await HashingPool.run {
            guard let stored, stored.hasPrefix(Self.scheme) else {
                _ = Bcrypt.verify(Self.reduce(password), hash: Self.dummy(cost: cost))
                return false
            }
            return Bcrypt.verify(Self.reduce(password), hash: String(stored.dropFirst(Self.scheme.count)))
        }
    }

    /// Whether a stored hash was made with a lower cost than the current one (and should be
    /// replaced the next time its password is given).
    public func needsRehash(_ stored: String) -> Bool {
        guard stored.hasPrefix(Self.scheme) else { return true }
        let parts = stored.dropFirst(Self.scheme.count).split(separator: "$")
        guard parts.count >= 2, let stored = Int(parts[1]) else { return true }
        return stored < cost
    }

    private static let dummies = DummyHashes()

    static func dummy(cost: Int) -> String { dummies.hash(cost: cost) }

    /// The rules a new password must meet: 10 to 1,024 characters, not the user's name.
    public static func check(_ password: String, user: String) throws(RegistryError) {
        guard password.count >= 10 else { throw .invalidPassword("a password needs at least 10 characters") }
        guard password.utf8.count <= 1024 else { throw .invalidPassword("a password has at most 1024 bytes") }
        guard password.lowercased() != user.lowercased() else { throw .invalidPassword("the password must not be the user name") }
        guard Set(password).count >= 4 else { throw .invalidPassword("the password repeats too few different characters") }
    }
}

/// The threads that hash passwords: one per core, with a bounded queue, so a flood of sign-ins
/// is answered 429 instead of delaying everything else.
enum HashingPool {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount))
        pool.start()
        return pool
    }()
    /// Hashes waiting or running.
    static let pending = NIOLockedValueBox(0)
    static let capacity = 64

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let admitted = pending.withLockedValue { count in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard admitted else { throw RegistryError.rateLimited(retryAfter: 1, reason: "the server is busy checking passwords") }
        defer { pending.withLockedValue { $0 -= 1 } }
        return try await pool.runIfActive(body)
    }
}

/// One bcrypt hash of a random password per cost, made on first use, to spend the same time
/// on unknown users as on known ones.
final class DummyHashes: Sendable {
    private let hashes = NIOLockedValueBox<[Int: String]>([:])

    func hash(cost: Int) -> String {
        if let known = hashes.withLockedValue({ $0[cost] }) { return known }
        let made = Bcrypt.hash(AccessToken.generate(), cost: UInt8(cost))
        return hashes.withLockedValue { hashes in
            if let known = hashes[cost] { return known }
            hashes[cost] = made
            return made
        }
    }
}
