import PackageFormat

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

    public static func hash(_ token: some StringProtocol) -> String {
        SHA256Digest(of: Array(token.utf8)).hex
    }
}

extension RegistryService {
    public enum AdminBootstrap: Sendable, Equatable {
        /// An admin existed already.
        case existing
        /// The admin was created with the token the operator supplied.
        case created
        /// The admin was created with this generated token, for the caller to hand to the operator.
        case generated(String)
    }

    /// On first start, creates the admin credential: `token` when given, else a generated one,
    /// which `persist` must store durably (it runs before the credential exists, so a failure
    /// there never leaves an admin whose token nobody has).
    public func bootstrapAdmin(token: String?, persist: (String) throws -> Void) async throws -> AdminBootstrap {
        guard try await !metadata.hasTokens() else { return .existing }
        let value = token ?? AccessToken.generate()
        if token == nil { try persist(value) }
        _ = try await metadata.insertToken(hash: AccessToken.hash(value), owner: "admin", role: Principal.Role.admin.rawValue)
        return token == nil ? .generated(value) : .created
    }

    /// The principal a bearer token stands for; throws for unknown tokens.
    public func principal(forToken token: some StringProtocol) async throws -> Principal {
        guard let (owner, role) = try await metadata.token(hash: AccessToken.hash(token)) else { throw RegistryError.unauthenticated }
        return Principal(name: owner, role: Principal.Role(rawValue: role) ?? .user)
    }
}
