import Foundation

/// Image layers as OCI tools use them: a gzip-compressed tar whose files sit at its root.
public enum OCILayer {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// A layer holding `files` at its root, written deterministically (sorted, mode 0644, the
    /// given modification time, no owner names), and the digest of its uncompressed tar (the
    /// image config's `diff_id`).
    public static func tarGzip(_ files: [(name: String, bytes: [UInt8])], modificationTime: UInt64 = 0) throws -> (archive: [UInt8], diffID: SHA256Digest) {
        var output: [UInt8] = []
        var tar = StreamingSHA256()
        let gzip = try GzipWriter { output.append(contentsOf: $0) }
        func write(_ bytes: [UInt8]) throws {
            bytes.withUnsafeBytes { tar.update($0) }
            try bytes.withUnsafeBytes { try gzip.write($0) }
        }
        for file in files.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            guard RelativePath.isSafe(file.name), !file.name.contains("/"), file.name.utf8.count < 100 else {
                throw Failure(description: "\(file.name) cannot be a file at a layer's root")
            }
            let header = TarHeader(name: file.name, mode: 0o644, size: UInt64(file.bytes.count), mtime: modificationTime,
                                   typeflag: UInt8(ascii: "0"), linkName: "")
            try write(header.encode())
            try write(file.bytes + [UInt8](repeating: 0, count: (512 - file.bytes.count % 512) % 512))
        }
        try write([UInt8](repeating: 0, count: 2 * TarHeader.blockSize))
        try gzip.finish()
        return (output, tar.finalize())
    }

    /// How much of a layer is read, and how much of it kept in memory.
    public struct Limits: Sendable {
        /// The most bytes one kept file may have.
        public var fileBytes = 64 << 20
        /// The most bytes of all kept files together.
        public var keptBytes = 256 << 20
        public var entries = 1024
        /// The most bytes the layer may expand to, and per compressed byte (checked past
        /// `ratioGrace` expanded bytes), as for package archives.
        public var expandedBytes: UInt64 = 2 << 30
        public var compressionRatio: UInt64 = 200
        public var ratioGrace: UInt64 = 8 << 20
        public init() {}
    }

    /// The regular files of a gzip-compressed tar layer held in memory, by path without a
    /// leading `./`. Directories are skipped; links, devices, unsafe paths, a file over
    /// `fileLimit` bytes or more than `entryLimit` entries are refused.
    public static func regularFiles(tarGzip bytes: [UInt8], fileLimit: Int = 64 << 20, entryLimit: Int = 1024) throws -> [(name: String, bytes: [UInt8])] {
        var limits = Limits()
        limits.fileBytes = fileLimit
        limits.entries = entryLimit
        return try regularFiles(tarGzip: MemorySource(bytes), limits: limits) { _ in true }
    }

    /// The regular files of a gzip-compressed tar layer read as a stream, of which only those
    /// whose first bytes (up to 64) `keep` accepts are held in memory; the rest are read past.
    /// The whole read is bounded by `limits`: entries, expanded size and compression ratio,
    /// each kept file's size and all kept files' size together.
    public static func regularFiles<Source: ByteSource>(tarGzip source: Source, limits: Limits,
                                                        keep: ([UInt8]) -> Bool) throws -> [(name: String, bytes: [UInt8])] {
        do {
            let gzip = try GzipReader(source)
            var scratch = [UInt8](repeating: 0, count: 64 << 10)
            func bounded() throws {
                let expanded = gzip.expandedBytes
                guard expanded <= limits.expandedBytes else { throw Failure(description: "the layer expands to more than \(limits.expandedBytes) bytes") }
                if expanded > limits.ratioGrace, expanded / max(gzip.compressedBytes, 1) > limits.compressionRatio {
                    throw Failure(description: "the layer expands more than \(limits.compressionRatio) times its compressed size")
                }
            }
            /// Reads exactly `count` bytes, into `into` when given.
            func consume(_ count: Int, into: inout [UInt8]?) throws {
                var left = count
                while left > 0 {
                    let n = try scratch.withUnsafeMutableBytes { try gzip.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<min(left, $0.count)])) }
                    guard n > 0 else { throw Failure(description: "the layer's tar ends in the middle of an entry") }
                    into?.append(contentsOf: scratch[0..<n])
                    left -= n
                    try bounded()
                }
            }
            func fill(_ count: Int) throws -> [UInt8] {
                var out: [UInt8]? = []
                out!.reserveCapacity(min(count, 1 << 20))
                try consume(count, into: &out)
                return out!
            }
            var files: [(name: String, bytes: [UInt8])] = [], entries = 0, kept = 0, longName: String?
            var none: [UInt8]? = nil
            while true {
                let block = try fill(TarHeader.blockSize)
                if block.allSatisfy({ $0 == 0 }) { return files }
                entries += 1
                guard entries <= limits.entries else { throw Failure(description: "the layer has more than \(limits.entries) entries") }
                var header = try block.withUnsafeBytes { try TarHeader.decode($0) }
                guard header.size <= UInt64(limits.expandedBytes) else { throw Failure(description: "\(header.name) is larger than the layer may be") }
                let size = Int(header.size), padded = (size + 511) / 512 * 512
                switch header.typeflag {
                case UInt8(ascii: "L"):
                    guard size <= 4096 else { throw Failure(description: "a long name of more than 4096 bytes") }
                    longName = String(decoding: try fill(padded).prefix(size).prefix { $0 != 0 }, as: UTF8.self)
                    continue
                case UInt8(ascii: "x"), UInt8(ascii: "g"):
                    try consume(padded, into: &none)
                    continue
                default: break
                }
                if let name = longName { header.name = name }
                longName = nil
                var name = header.name
                while name.hasPrefix("./") { name.removeFirst(2) }
                switch header.typeflag {
                case UInt8(ascii: "0"), 0:
                    guard RelativePath.isSafe(name) else { throw Failure(description: "\(header.name) is not a safe path") }
                    let head = try fill(min(size, 64))
                    guard keep(head) else {
                        try consume(padded - head.count, into: &none)
                        continue
                    }
                    guard size <= limits.fileBytes else { throw Failure(description: "\(header.name) is larger than \(limits.fileBytes) bytes") }
                    kept += size
                    guard kept <= limits.keptBytes else { throw Failure(description: "the layer's files are larger than \(limits.keptBytes) bytes together") }
                    var content: [UInt8]? = head
                    // Grown as the bytes arrive: a file the limits stop costs no more than was read.
                    content!.reserveCapacity(min(size, 1 << 20))
                    try consume(size - head.count, into: &content)
                    try consume(padded - size, into: &none)
                    files.append((name, content!))
                case UInt8(ascii: "5"):
                    try consume(padded, into: &none)
                default:
                    throw Failure(description: "\(header.name) is not a regular file or a directory")
                }
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(description: "the layer is not a readable gzip-compressed tar: \(error)")
        }
    }
}
