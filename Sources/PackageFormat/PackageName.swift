/// A package name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter, at most
/// 64 characters.
///
/// Two names that differ only in case or in `-` versus `_` are the same name: ``canonical``
/// is the form used for comparisons, so `xdp-filter` and `xdp_filter` cannot both exist.
public struct PackageName: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let value: String

    public struct InvalidName: Error, Equatable, CustomStringConvertible {
        public let input: String
        public let reason: String
        public var description: String { "\"\(input)\" is not a valid package name: \(reason)" }
    }

    public init(_ value: String) throws(InvalidName) {
        guard !value.isEmpty else { throw InvalidName(input: value, reason: "it is empty") }
        guard value.utf8.count <= 64 else { throw InvalidName(input: value, reason: "it is longer than 64 characters") }
        guard let first = value.utf8.first, (0x61...0x7A).contains(first) else {
            throw InvalidName(input: value, reason: "it must start with a lowercase letter")
        }
        for byte in value.utf8 where !((0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                                       || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")) {
            throw InvalidName(input: value, reason: "only lowercase letters, digits, '-' and '_' are allowed")
        }
        self.value = value
    }

    /// The form two names are compared in: lowercase, with `_` written as `-`.
    public var canonical: String { Self.canonicalForm(value) }

    /// Whether a name pattern (`*` for any run of characters) covers a package name, both
    /// compared in canonical form: `l3af-*` covers `L3AF_xdp`.
    public static func pattern(_ pattern: String, covers name: String) -> Bool {
        let p = Array(canonicalForm(pattern).utf8), t = Array(canonicalForm(name).utf8)
        var i = 0, j = 0, star = -1, mark = 0
        while j < t.count {
            if i < p.count, p[i] == t[j] {
                i += 1; j += 1
            } else if i < p.count, p[i] == UInt8(ascii: "*") {
                star = i; mark = j; i += 1
            } else if star >= 0 {
                i = star + 1; mark += 1; j = mark
            } else {
                return false
            }
        }
        while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }

    /// The canonical form of any string, valid name or not, for look-ups by what a user typed.
    public static func canonicalForm(_ text: String) -> String {
        String(text.lowercased().map { $0 == "_" ? "-" : $0 })
    }

    public var description: String { value }

    public static func == (a: Self, b: Self) -> Bool { a.canonical == b.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }
    public static func < (a: Self, b: Self) -> Bool { a.canonical < b.canonical }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
