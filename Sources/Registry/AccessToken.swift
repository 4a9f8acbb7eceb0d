import Foundation
import PackageFormat
import Storage

/// API tokens: 256 random bits behind a recognisable `epr_` prefix, stored only as SHA-256
/// hashes, so a leaked database reveals no usable token.
public enum AccessToken {
    public static let prefix = "epr_"

    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        // 43 characters from 62 carry more than 256 bits.
        return prefix + String((0..<43).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// A token's public identifier: `tok_` and 20 random characters.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "tok_" + String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    public static func hash(_ token: some StringProtocol) -> String {
        SHA256Digest(of: Array(token.utf8)).hex
    }
}

extension RegistryService {
    public enum AdminBootstrap: Sendable, Equatable {
        /// Users existed already.
        case existing
        /// The admin was created with the token the operator supplied.
        case created
        /// The admin was created with this generated token, for the caller to hand to the operator.
        case generated(String)
    }

    /// On first start, creates the `admin` user and a token with every scope: `token` when
    /// given, else a generated one, which `persist` must store durably (it runs before the
    /// credential exists, so a failure there never leaves an admin whose token nobody has).
    public func bootstrapAdmin(token: String?, persist: (String) throws -> Void) async throws -> AdminBootstrap {
        guard try await !accounts.hasUsers() else { return .existing }
        if let token, !token.hasPrefix(AccessToken.prefix) || token.count < 36 || token.contains(where: \.isWhitespace) {
            throw RegistryError.invalidToken("EPR_ADMIN_TOKEN must start with \(AccessToken.prefix) and have at least 32 more characters, without spaces")
        }
        let value = token ?? AccessToken.generate()
        if token == nil { try persist(value) }
        let now = Date()
        let record = TokenRecord(id: AccessToken.newID(), user: "admin", name: "bootstrap", scopes: Principal.Scope.allCases.map(\.rawValue),
                                 createdAt: now)
        // The user and its token appear together or not at all.
        guard try await accounts.bootstrap(UserRecord(name: "admin", role: Principal.Role.admin.rawValue, createdAt: now), token: record,
                                           hash: AccessToken.hash(value)) else { return .existing }
        await audit("user.create", nil, target: "admin", detail: "first start")
        await audit(AuditRecord(at: now, actor: "admin", tokenID: record.id, address: nil, action: "token.create", target: record.id,
                                detail: "for admin: every scope, first start"))
        return token == nil ? .generated(value) : .created
    }
}
