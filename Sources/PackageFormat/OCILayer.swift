import Foundation

/// Image layers as OCI tools use them: a gzip-compressed tar whose files sit at its root.
public enum OCILayer {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
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

    /// The regular files of a gzip-compressed tar layer, by path without a leading `./`.
    /// Directories are skipped; links, devices, unsafe paths, a file over `fileLimit` bytes or
    /// more than `entryLimit` entries are refused.
    public static func regularFiles(tarGzip bytes: [UInt8], fileLimit: Int = 64 << 20, entryLimit: Int = 1024) throws -> [(name: String, bytes: [UInt8])] {
        do {
            let gzip = try GzipReader(MemorySource(bytes))
            var block = [UInt8](repeating: 0, count: TarHeader.blockSize)
            func fill(_ count: Int) throws -> [UInt8] {
                var out = [UInt8](repeating: 0, count: count), filled = 0
                while filled < count {
                    let n = try out.withUnsafeMutableBytes { try gzip.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
                    guard n > 0 else { throw Failure(description: "the layer's tar ends in the middle of an entry") }
                    filled += n
                }
                return out
            }
            var files: [(name: String, bytes: [UInt8])] = [], entries = 0, longName: String?
            while true {
                block = try fill(TarHeader.blockSize)
                if block.allSatisfy({ $0 == 0 }) { return files }
                entries += 1
                guard entries <= entryLimit else { throw Failure(description: "the layer has more than \(entryLimit) entries") }
                var header = try block.withUnsafeBytes { try TarHeader.decode($0) }
                let padded = Int((header.size + 511) / 512 * 512)
                guard header.size <= UInt64(fileLimit) else { throw Failure(description: "\(header.name) is larger than \(fileLimit) bytes") }
                switch header.typeflag {
                case UInt8(ascii: "L"):
                    longName = String(decoding: try fill(padded).prefix(Int(header.size)).prefix { $0 != 0 }, as: UTF8.self)
                    continue
                case UInt8(ascii: "x"), UInt8(ascii: "g"):
                    _ = try fill(padded)
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
                    let content = try fill(padded)
                    files.append((name, Array(content.prefix(Int(header.size)))))
                case UInt8(ascii: "5"):
                    _ = try fill(padded)
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
