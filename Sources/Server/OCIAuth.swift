import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Registry

/// Who an OCI request comes from, and what its token allows (nil: whatever the principal may do).
struct OCICaller: Sendable {
    var principal: Principal?
    var access: [String: Set<String>]?

    func allows(_ action: String, on repository: String) -> Bool {
        guard let access else { return true }
        let granted = access[repository] ?? []
        return granted.contains(action) || granted.contains("*")
    }
}

/// Bearer tokens of the registry token flow: short-lived, signed with a key of the data
/// directory (HMAC-SHA256), naming the API token that was presented (by its hash, so that a
/// revoked or expired API token stops its bearer tokens too) and the access granted.
struct OCITokens: Sendable {
    static let prefix = "eproci."
    static let lifetime: TimeInterval = 300
    let key: SymmetricKey

    struct Claims: Codable, Sendable {
        /// The user; empty for anonymous pulls.
        var sub: String
        /// The hash of the API token presented.
        var th: String?
        var access: [String: [String]]
        var exp: TimeInterval
        var iat: TimeInterval
    }

    /// Loads the key from `file`, making it on first start (mode 0600).
    static func load(file: URL) throws -> OCITokens {
        if let text = try? String(contentsOf: file, encoding: .utf8), let data = Data(hexString: text.trimmingCharacters(in: .whitespacesAndNewlines)),
           data.count == 32 {
            return OCITokens(key: SymmetricKey(data: data))
        }
        let key = SymmetricKey(size: .bits256)
        let hex = key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
        try SecretFiles.save(hex + "\n", to: file.path)
        return OCITokens(key: key)
    }

    func issue(_ claims: Claims) -> String {
        let payload = Self.base64URL((try? JSONEncoder().encode(claims)) ?? Data())
        let mac = HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: key)
        return Self.prefix + payload + "." + Self.base64URL(Data(mac))
    }

    /// The claims of a token this server issued and that has not expired; nil otherwise.
    func verify(_ token: String, now: Date = Date()) -> Claims? {
        guard token.hasPrefix(Self.prefix) else { return nil }
        let parts = token.dropFirst(Self.prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Self.data(base64URL: String(parts[1])),
              HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(parts[0].utf8), using: key),
              let payload = Self.data(base64URL: String(parts[0])), let claims = try? JSONDecoder().decode(Claims.self, from: payload),
              claims.exp > now.timeIntervalSince1970 else { return nil }
        return claims
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    /// `repository:NAME:ACTIONS` scopes, as the token endpoint's `scope` parameters give them.
    static func parse(scopes: [String]) -> [String: Set<String>] {
        var access: [String: Set<String>] = [:]
        // Several scopes may share a parameter, separated by spaces (`+` in a form-encoded query).
        for scope in scopes.flatMap({ $0.split(whereSeparator: { $0 == " " || $0 == "+" }) }) {
            let parts = scope.split(separator: ":")
            guard parts.count >= 3, parts[0] == "repository" else { continue }
            let name = parts[1..<(parts.count - 1)].joined(separator: ":")
            access[name, default: []].formUnion(parts.last!.split(separator: ",").map(String.init))
        }
        return access
    }
}

extension Data {
    init?(hexString: String) {
        guard hexString.utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hexString.startIndex
        while index < hexString.endIndex {
            let next = hexString.index(index, offsetBy: 2)
            guard let byte = UInt8(hexString[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
