#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a package archive deterministically: entries sorted by path, directories made
/// explicit, owners zeroed, modes normalised to 0755/0644, one fixed modification time, and a
/// gzip header without name or time. The same inputs always give the same bytes.
public struct ArchiveWriter {
    public struct File: Sendable {
        /// The path inside the top-level directory.
        public var path: String
        /// Where to read the content from.
        public var source: String
        public var executable: Bool

        public init(path: String, source: String, executable: Bool) {
            self.path = path
            self.source = source
            self.executable = executable
        }
    }

    public var topLevel: String
    /// Seconds since the epoch for every entry (SOURCE_DATE_EPOCH when set).
    public var modificationTime: UInt64

    public init(topLevel: String, modificationTime: UInt64) {
        self.topLevel = topLevel
        self.modificationTime = modificationTime
    }

    /// Writes the archive to `output` atomically (a temporary file renamed into place) and
    /// returns its digest.
    public func write(_ files: [File], to output: String) throws -> SHA256Digest {
        let temporary = output + ".partial-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError.io("\(temporary): \(String(cString: strerror(errno)))") }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temporary)
        }
        var hasher = StreamingSHA256()
        let gzip = try GzipWriter { bytes in
            hasher.update(bytes)
            try Self.writeAll(fd, bytes, path: temporary)
        }
        try writeTar(files, into: gzip)
        try gzip.finish()
        guard fsync(fd) == 0 else { throw ArchiveError.io("\(temporary): \(String(cString: strerror(errno)))") }
        close(fd)
        closed = true
        guard rename(temporary, output) == 0 else { throw ArchiveError.io("\(output): \(String(cString: strerror(errno)))") }
        return hasher.finalize()
    }

    private func writeTar(_ files: [File], into gzip: GzipWriter) throws {
        var directories: Set<String> = [""]
        for file in files {
            guard RelativePath.isSafe(file.path) else { throw ArchiveError.unsafePath(entry: file.path, reason: RelativePath.problem(file.path)!) }
            var parts = file.path.split(separator: "/").dropLast()
            while !parts.isEmpty {
                directories.insert(parts.joined(separator: "/"))
                parts = parts.dropLast()
            }
        }
        enum Item { case directory(String), file(File) }
        var items = directories.map { Item.directory($0) } + files.map { Item.file($0) }
        func key(_ item: Item) -> [UInt8] {
            switch item {
            case let .directory(path): Array((path.isEmpty ? topLevel : topLevel + "/" + path).utf8)
            case let .file(file): Array((topLevel + "/" + file.path).utf8)
            }
        }
        items.sort { key($0).lexicographicallyPrecedes(key($1)) }
        var seen = Set<String>()
        for item in items {
            let name = String(decoding: key(item), as: UTF8.self)
            guard seen.insert(name).inserted else { throw ArchiveError.duplicateEntry(entry: name) }
            switch item {
            case .directory:
                try header(name + "/", mode: 0o755, size: 0, type: UInt8(ascii: "5"), into: gzip)
            case let .file(file):
                try copy(file, as: name, into: gzip)
            }
        }
        try write([UInt8](repeating: 0, count: 2 * TarHeader.blockSize), into: gzip)
    }

    private func header(_ name: String, mode: UInt32, size: UInt64, type: UInt8, into gzip: GzipWriter) throws {
        var record: [UInt8] = []
        if TarHeader.needsPax(name) { record += TarHeader.paxRecord("path", name) }
        // ustar's octal fields hold up to 8 GiB and times up to the year 10889.
        if size >= 1 << 33 { record += TarHeader.paxRecord("size", String(size)) }
        if modificationTime >= 1 << 33 { record += TarHeader.paxRecord("mtime", String(modificationTime)) }
        if !record.isEmpty {
            let pax = TarHeader(name: "PaxHeaders/" + String(name.split(separator: "/").last ?? ""), mode: 0o644,
                                size: UInt64(record.count), mtime: min(modificationTime, (1 << 33) - 1), typeflag: UInt8(ascii: "x"), linkName: "")
            try write(pax.encode(), into: gzip)
            try write(record + Self.padding(record.count), into: gzip)
        }
        let block = TarHeader(name: name, mode: mode, size: min(size, (1 << 33) - 1),
                              mtime: min(modificationTime, (1 << 33) - 1), typeflag: type, linkName: "")
        try write(block.encode(), into: gzip)
    }

    private func copy(_ file: File, as name: String, into gzip: GzipWriter) throws {
        let fd = open(file.source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("\(file.source): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw ArchiveError.io("\(file.source) is not a regular file")
        }
        let size = UInt64(info.st_size)
        try header(name, mode: file.executable ? 0o755 : 0o644, size: size, type: UInt8(ascii: "0"), into: gzip)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var copied: UInt64 = 0
        while copied < size {
            let n = read(fd, buffer.baseAddress, min(buffer.count, Int(size - copied)))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError.io("\(file.source) changed while it was being packaged") }
            try gzip.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            copied += UInt64(n)
        }
        try write(Self.padding(Int(size % 512)), into: gzip)
    }

    private static func padding(_ count: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: (512 - count % 512) % 512)
    }

    private func write(_ bytes: [UInt8], into gzip: GzipWriter) throws {
        try bytes.withUnsafeBytes { try gzip.write($0) }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError.io("\(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }
}
