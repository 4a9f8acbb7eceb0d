#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Looks through a file's bytes, chunk by chunk, for secrets that must never ship in a
/// package: private keys (PEM and OpenSSH), and API tokens with a recognisable shape (epr,
/// GitHub, AWS access keys, Slack). A match that straddles two chunks is found too.
struct SecretScanner {
    /// What was found, once per kind.
    private(set) var found: [String] = []
    private var tail: [UInt8] = []

    /// Longest window a pattern needs.
    static let window = 96

    static let privateKeyMarkers: [(marker: [UInt8], kind: String)] = [
        (Array("PRIVATE KEY-----".utf8), "a private key (PEM)"),
        (Array("PRIVATE KEY BLOCK-----".utf8), "a private key (OpenPGP)"),
    ]

    /// Token prefixes and how many token characters (letters, digits, `_`, `-`) must follow.
    static let tokenShapes: [(prefix: [UInt8], minimum: Int, kind: String, upperOnly: Bool)] = [
        (Array("epr_".utf8), 40, "an epr API token", false),
        (Array("ghp_".utf8), 36, "a GitHub token", false),
        (Array("github_pat_".utf8), 60, "a GitHub token", false),
        (Array("AKIA".utf8), 16, "an AWS access key", true),
        (Array("xoxb-".utf8), 20, "a Slack token", false),
    ]

    mutating func scan(_ chunk: UnsafeRawBufferPointer) {
        let bytes = tail + Array(chunk)
        search(bytes)
        tail = Array(bytes.suffix(Self.window))
    }

    private mutating func note(_ kind: String) {
        if !found.contains(kind) { found.append(kind) }
    }

    private mutating func search(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        for (marker, kind) in Self.privateKeyMarkers where Self.contains(bytes, marker) && Self.contains(bytes, Array("-----BEGIN ".utf8)) {
            note(kind)
        }
        for shape in Self.tokenShapes {
            var start = 0
            while let index = Self.index(of: shape.prefix, in: bytes, from: start) {
                // A token starts a word: not glued to letters or digits before it.
                let before = index == 0 ? UInt8(ascii: " ") : bytes[index - 1]
                var count = 0, position = index + shape.prefix.count
                while position < bytes.count, Self.isTokenCharacter(bytes[position], upperOnly: shape.upperOnly) {
                    count += 1
                    position += 1
                }
                if !Self.isTokenCharacter(before, upperOnly: false), count >= shape.minimum { note(shape.kind) }
                start = index + 1
            }
        }
    }

    static func isTokenCharacter(_ byte: UInt8, upperOnly: Bool) -> Bool {
        if upperOnly { return (0x41...0x5A).contains(byte) || (0x30...0x39).contains(byte) }
        return (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x5F || byte == 0x2D
    }

    static func contains(_ bytes: [UInt8], _ pattern: [UInt8]) -> Bool { index(of: pattern, in: bytes, from: 0) != nil }

    /// Skips with the C library's `memchr` to each byte that could start the pattern, then
    /// compares: a gigabyte of package data is searched in well under a second.
    static func index(of pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard !pattern.isEmpty, bytes.count >= pattern.count, start <= bytes.count - pattern.count else { return nil }
        return bytes.withUnsafeBytes { haystack in
            pattern.withUnsafeBytes { needle in
                guard let base = haystack.baseAddress, let first = needle.baseAddress else { return nil }
                let last = haystack.count - needle.count
                var position = start
                while position <= last {
                    guard let hit = memchr(base + position, Int32(pattern[0]), last - position + 1) else { return nil }
                    let index = UnsafeRawPointer(hit) - base
                    if memcmp(base + index, first, needle.count) == 0 { return index }
                    position = index + 1
                }
                return nil
            }
        }
    }
}
