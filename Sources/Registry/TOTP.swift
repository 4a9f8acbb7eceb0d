import Crypto
import Foundation

/// Time-based one-time passwords (RFC 6238): HMAC-SHA-1 over the count of 30-second steps
/// since the Unix epoch, truncated to six digits (RFC 4226), with secrets shown in Base32.
public struct TOTP: Sendable, Equatable {
    public let secret: [UInt8]
    public var digits = 6
    public var period: TimeInterval = 30

    public init(secret: [UInt8]) { self.secret = secret }

    public init?(base32 text: String) {
        guard let bytes = Base32.decode(text), bytes.count >= 10 else { return nil }
        self.secret = bytes
    }

    /// A new 160-bit secret, the size RFC 4226 recommends.
    public static func generate() -> TOTP {
        var generator = SystemRandomNumberGenerator()
        return TOTP(secret: (0..<20).map { _ in generator.next() })
    }

    public var base32: String { Base32.encode(secret) }

    public func step(at date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / period).rounded(.down)) }

    public func code(step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let value = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let number = String(value % modulus)
        return String(repeating: "0", count: max(0, digits - number.count)) + number
    }

    /// The time step whose code this is, allowing one step of clock drift either way; nil
    /// when the code matches none. Compared in constant time.
    public func match(_ code: String, at date: Date) -> Int64? {
        let given = Array(code.filter { !$0.isWhitespace }.utf8)
        let now = step(at: date)
        var found: Int64?
        for candidate in [now - 1, now, now + 1] where ConstantTime.equal(Array(self.code(step: candidate).utf8), given) {
            found = candidate
        }
        return found
    }

    /// The `otpauth://` address authenticator apps read (usually from a QR code).
    public func provisioningURI(account: String, issuer: String) -> String {
        var components = URLComponents()
        components.scheme = "otpauth"
        components.host = "totp"
        components.path = "/\(issuer):\(account)"
        components.queryItems = [URLQueryItem(name: "secret", value: base32), URLQueryItem(name: "issuer", value: issuer),
                                 URLQueryItem(name: "algorithm", value: "SHA1"), URLQueryItem(name: "digits", value: "\(digits)"),
                                 URLQueryItem(name: "period", value: "\(Int(period))")]
        return components.string ?? ""
    }
}

/// RFC 4648 Base32, upper case, without padding when encoding; decoding ignores case, spaces
/// and padding.
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = [], buffer: UInt32 = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = [], buffer: UInt32 = 0, bits = 0
        for character in text.uppercased().utf8 where character != UInt8(ascii: " ") && character != UInt8(ascii: "=") {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return output
    }
}

/// Comparisons of secrets whose time does not depend on where they differ.
public enum ConstantTime {
    public static func equal(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool { equal(Array(a.utf8), Array(b.utf8)) }

    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
