import Crypto

/// SHA-256 digests in the `sha256:<hex>` form used throughout epr.
public struct SHA256Digest: Sendable, Hashable, Codable, CustomStringConvertible {
    public let hex: String

    public init(hex: String) { self.hex = hex }

    public init(of bytes: some Sequence<UInt8>) {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        self.init(hasher.finalize())
    }

    init(_ digest: SHA256.Digest) {
        hex = digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    public var description: String { "sha256:\(hex)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Passes bytes through from another source while hashing and counting them. A class, so the
/// caller keeps a handle on the digest while a reader consumes the bytes.
public final class HashingSource<Base: ByteSource>: ByteSource {
    private var base: Base
    private var hasher = SHA256()
    public private(set) var count: UInt64 = 0

    public init(_ base: Base) { self.base = base }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let n = try base.read(into: buffer)
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        count += UInt64(n)
        return n
    }

    public var digest: SHA256Digest { SHA256Digest(hasher.finalize()) }
}

/// Incremental SHA-256 for contents that arrive in pieces.
public struct StreamingSHA256: Sendable {
    private var hasher = SHA256()
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    public func finalize() -> SHA256Digest { SHA256Digest(hasher.finalize()) }
}
