/// A Semantic Versioning 2.0.0 version, validated at construction.
///
/// Ordering follows the specification's precedence rules; build metadata is kept but ignored
/// for precedence (and for equality, since `1.0.0+a` and `1.0.0+b` are the same version).
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let major: UInt64
    public let minor: UInt64
    public let patch: UInt64
    public let prerelease: [String]
    public let build: [String]

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let input: String
        public let reason: String
        public init(input: String, reason: String) {
            self.input = input
            self.reason = reason
        }
        public var description: String { "\"\(input)\" is not a semantic version (MAJOR.MINOR.PATCH): \(reason)" }
    }

    public init(major: UInt64, minor: UInt64, patch: UInt64, prerelease: [String] = [], build: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
        self.build = build
    }

    public init(_ text: String) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(input: text, reason: reason) }
        guard text.utf8.count <= 256 else { throw fail("longer than 256 characters") }
        var rest = Substring(text)
        var build: [String] = []
        if let plus = rest.firstIndex(of: "+") {
            build = rest[rest.index(after: plus)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            rest = rest[..<plus]
            for identifier in build where !Self.isIdentifier(identifier) {
                throw fail("build metadata identifier \"\(identifier)\" must be non-empty [0-9A-Za-z-]")
            }
        }
        var prerelease: [String] = []
        if let dash = rest.firstIndex(of: "-") {
            prerelease = rest[rest.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            rest = rest[..<dash]
            for identifier in prerelease {
                guard Self.isIdentifier(identifier) else {
                    throw fail("pre-release identifier \"\(identifier)\" must be non-empty [0-9A-Za-z-]")
                }
                if identifier.allSatisfy(\.isASCIIDigit), identifier.count > 1, identifier.first == "0" {
                    throw fail("numeric pre-release identifier \"\(identifier)\" has a leading zero")
                }
            }
        }
        let core = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3 else { throw fail("expected three numbers separated by dots") }
        var numbers: [UInt64] = []
        for part in core {
            guard !part.isEmpty, part.allSatisfy(\.isASCIIDigit) else { throw fail("\"\(part)\" is not a number") }
            guard part.count == 1 || part.first != "0" else { throw fail("\"\(part)\" has a leading zero") }
            guard let value = UInt64(part) else { throw fail("\"\(part)\" is too large") }
            numbers.append(value)
        }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2], prerelease: prerelease, build: build)
    }

    private static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") }
    }

    public var isPrerelease: Bool { !prerelease.isEmpty }

    public var description: String {
        var text = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty { text += "-" + prerelease.joined(separator: ".") }
        if !build.isEmpty { text += "+" + build.joined(separator: ".") }
        return text
    }

    public static func == (a: Self, b: Self) -> Bool {
        (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch) && a.prerelease == b.prerelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major); hasher.combine(minor); hasher.combine(patch); hasher.combine(prerelease)
    }

    public static func < (a: Self, b: Self) -> Bool {
        if (a.major, a.minor, a.patch) != (b.major, b.minor, b.patch) {
            return (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
        }
        // A pre-release sorts before its release.
        switch (a.prerelease.isEmpty, b.prerelease.isEmpty) {
        case (true, true), (true, false): return false
        case (false, true): return true
        case (false, false): break
        }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            let xNumeric = x.utf8.allSatisfy { (0x30...0x39).contains($0) }
            let yNumeric = y.utf8.allSatisfy { (0x30...0x39).contains($0) }
            switch (xNumeric, yNumeric) {
            // Numeric identifiers have no leading zeros, so the shorter is the smaller.
            case (true, true): return x.utf8.count != y.utf8.count ? x.utf8.count < y.utf8.count : x < y
            case (true, false): return true  // numeric identifiers sort before alphanumeric ones
            case (false, true): return false
            case (false, false): return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8)) // ASCII order
            }
        }
        return a.prerelease.count < b.prerelease.count
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}
