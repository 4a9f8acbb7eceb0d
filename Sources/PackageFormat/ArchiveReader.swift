/// Reads a package archive (gzip-compressed tar) as a stream, refusing anything unsafe.
///
/// Refused: absolute paths, `..`, entries outside the single top-level directory, links that
/// escape it or are traversed, devices and FIFOs, duplicates, and archives beyond the entry
/// count, size or compression-ratio limits, as well as truncated or corrupt streams. Memory
/// use does not depend on the archive's size: content is read through ``read(into:)``.
public final class ArchiveReader<Source: ByteSource> {
    public let limits: ArchiveLimits
    /// The top-level directory: the expected one, or the one the first entry established.
    public private(set) var topLevel: String?

    private let gzip: GzipReader<Source>
    private let expectedTopLevel: String?
    private var block = UnsafeMutableRawBufferPointer.allocate(byteCount: TarHeader.blockSize, alignment: 16)
    private var current: ArchiveEntry?
    private var remaining: UInt64 = 0
    private var padding: UInt64 = 0
    private var entryCount = 0
    private var kinds: [String: ArchiveEntry.Kind] = [:]
    /// Symbolic links by path, with their targets, checked again once every entry is known.
    private var symlinks: [String: String] = [:]
    private var ended = false
    /// Directories known only as parents of other entries: an explicit entry for one is not a duplicate.
    private var implicit: Set<String> = []

    /// - Parameter expectedTopLevel: the directory every entry must be under (the artifact name
    ///   up to its first dot); nil accepts whatever single directory the archive uses.
    public init(_ source: Source, limits: ArchiveLimits = ArchiveLimits(), expectedTopLevel: String? = nil) throws(ArchiveError) {
        self.limits = limits
        self.expectedTopLevel = expectedTopLevel
        topLevel = expectedTopLevel
        gzip = try GzipReader(source)
    }

    deinit { block.deallocate() }

    /// The next entry, or nil after the end-of-archive marker.
    public func next() throws(ArchiveError) -> ArchiveEntry? {
        guard !ended else { return nil }
        try skip(remaining + padding)
        remaining = 0
        padding = 0
        current = nil
        var pax: [String: String] = [:]
        var longName: String?, longLink: String?
        while true {
            try readBlock(entry: nil)
            if block.allSatisfy({ $0 == 0 }) {
                try readBlock(entry: nil)
                guard block.allSatisfy({ $0 == 0 }) else {
                    throw .badHeader(entry: nil, reason: "a lone zero block inside the archive")
                }
                try drainEnd()
                guard entryCount > 0 else { throw .empty }
                try checkSymlinks()
                ended = true
                return nil
            }
            var header = try TarHeader.decode(UnsafeRawBufferPointer(block))
            switch header.typeflag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try readMeta(header, limit: 64 * 1024)
                if header.typeflag == UInt8(ascii: "x") { pax = try Self.parsePax(records, entry: header.name) }
                continue
            case UInt8(ascii: "L"):
                longName = String(decoding: try readMeta(header, limit: 4096).prefix { $0 != 0 }, as: UTF8.self)
                continue
            case UInt8(ascii: "K"):
                longLink = String(decoding: try readMeta(header, limit: 4096).prefix { $0 != 0 }, as: UTF8.self)
                continue
            default:
                break
            }
            if let path = pax["path"] ?? longName { header.name = path }
            if let link = pax["linkpath"] ?? longLink { header.linkName = link }
            if let size = pax["size"] {
                guard let value = UInt64(size) else { throw .badHeader(entry: header.name, reason: "pax size \"\(size)\" is not a number") }
                header.size = value
            }
            let entry = try admit(header)
            current = entry
            remaining = entry.kind == .file ? entry.size : 0
            padding = entry.kind == .file ? (512 - entry.size % 512) % 512 : 0
            return entry
        }
    }

    /// Reads content of the current entry; returns 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard remaining > 0, buffer.count > 0 else { return 0 }
        let wanted = Int(min(UInt64(buffer.count), remaining))
        let n = try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), entry: current?.path)
        remaining -= UInt64(n)
        return n
    }

    /// The whole content of the current entry, refusing entries larger than `limit`.
    public func readAll(limit: Int) throws(ArchiveError) -> [UInt8] {
        guard let current else { return [] }
        guard remaining <= UInt64(limit) else {
            throw .entryTooLarge(entry: current.path, size: current.size, limit: UInt64(limit))
        }
        var bytes = [UInt8](repeating: 0, count: Int(remaining))
        var offset = 0
        while offset < bytes.count {
            let start = offset
            let n = try Self.withBuffer(&bytes) { buffer throws(ArchiveError) in
                try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
            }
            guard n > 0 else { throw .truncated(entry: current.path) }
            offset += n
        }
        return bytes
    }

    // MARK: Safety rules

    private func admit(_ header: TarHeader) throws(ArchiveError) -> ArchiveEntry {
        let raw = header.name
        guard entryCount < limits.maxEntries else { throw .tooManyEntries(limit: limits.maxEntries) }
        entryCount += 1
        guard !raw.hasPrefix("/") else { throw .absolutePath(entry: raw) }
        var path = Substring(raw)
        while path.hasPrefix("./") { path = path.dropFirst(2) }
        let isDirectoryName = path.hasSuffix("/")
        while path.hasSuffix("/") { path = path.dropLast() }
        let normalised = String(path)
        if normalised.split(separator: "/", omittingEmptySubsequences: false).contains("..") { throw .pathTraversal(entry: raw) }
        if let problem = RelativePath.problem(normalised) { throw .unsafePath(entry: raw, reason: problem) }

        let kind: ArchiveEntry.Kind
        switch header.typeflag {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = isDirectoryName ? .directory : .file
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "2"): kind = .symlink
        case UInt8(ascii: "1"): kind = .hardlink
        case UInt8(ascii: "3"): throw .unsupportedType(entry: raw, type: "character device")
        case UInt8(ascii: "4"): throw .unsupportedType(entry: raw, type: "block device")
        case UInt8(ascii: "6"): throw .unsupportedType(entry: raw, type: "FIFO")
        default: throw .unsupportedType(entry: raw, type: "tar entry of type '\(Character(Unicode.Scalar(header.typeflag)))'")
        }
        if kind != .file, header.size != 0 { throw .badHeader(entry: raw, reason: "a \(kind.rawValue) must not have content") }
        if kind == .file {
            guard header.size <= limits.maxEntrySize else {
                throw .entryTooLarge(entry: raw, size: header.size, limit: limits.maxEntrySize)
            }
        }

        let components = normalised.split(separator: "/").map(String.init)
        let top = components[0]
        if let expectedTopLevel, top != expectedTopLevel { throw .wrongTopLevel(entry: raw, expected: expectedTopLevel) }
        if let topLevel, top != topLevel { throw .outsideTopLevel(entry: raw, topLevel: topLevel) }
        topLevel = top
        if components.count == 1, kind != .directory { throw .outsideTopLevel(entry: raw, topLevel: top) }

        // No entry may live under a link or a file that an earlier entry created; parents that
        // exist only implicitly become directories, so no later entry can turn them into files.
        var parents: [String] = []
        for depth in 1..<components.count {
            let parent = components[0..<depth].joined(separator: "/")
            switch kinds[parent] {
            case .symlink?: throw .throughLink(entry: raw, link: parent)
            case .file?, .hardlink?: throw .unsafePath(entry: raw, reason: "\(parent) is a file, not a directory")
            case .directory?: break
            case nil: parents.append(parent)
            }
        }
        let isImplicitDirectory = kind == .directory && kinds[normalised] == .directory && implicit.contains(normalised)
        guard kinds[normalised] == nil || isImplicitDirectory else { throw .duplicateEntry(entry: raw) }

        var target: String?
        if kind == .symlink || kind == .hardlink {
            let link = header.linkName
            guard !link.isEmpty else { throw .badHeader(entry: raw, reason: "a link without a target") }
            guard !link.hasPrefix("/") else { throw .linkEscapes(entry: raw, target: link) }
            // Symlinks resolve from the link's directory; hard links name a path in the archive.
            let base = kind == .symlink ? Array(components.dropLast()) : []
            guard let resolved = Self.resolve(base, link), resolved.count > 1, resolved[0] == top else {
                throw .linkEscapes(entry: raw, target: link)
            }
            if kind == .hardlink {
                guard kinds[resolved.joined(separator: "/")] == .file else {
                    throw .linkEscapes(entry: raw, target: link + " (not an earlier file of the archive)")
                }
            }
            target = link
        }
        for parent in parents {
            kinds[parent] = .directory
            implicit.insert(parent)
        }
        implicit.remove(normalised)
        kinds[normalised] = kind
        if kind == .symlink { symlinks[normalised] = header.linkName }
        return ArchiveEntry(path: normalised, relativePath: components.dropFirst().joined(separator: "/"), kind: kind,
                            size: kind == .file ? header.size : 0, mode: header.mode & 0o7777, linkTarget: target)
    }

    /// Resolves every symbolic link as a file system would, following links through links, so
    /// that no chain of links leaves the top-level directory whatever order they came in.
    ///
    /// Each link is resolved once and its result kept (a link resolves the same way from
    /// wherever it is reached), so a link named many times along a chain costs one lookup, and
    /// the whole resolution is bounded by a budget of steps proportional to the links' text: a
    /// chain of links whose targets name earlier links several times costs linear, not
    /// exponential, work.
    private func checkSymlinks() throws(ArchiveError) {
        var resolution = LinkResolution(symlinks: symlinks, topLevel: topLevel,
                                        budget: 1 << 16 + symlinks.reduce(0) { $0 + 64 * ($1.key.utf8.count + $1.value.utf8.count) })
        for (path, target) in symlinks.sorted(by: { $0.key < $1.key }) {
            guard let resolved = resolution.resolve(link: path), let top = topLevel, resolved.parts.first == top else {
                throw .linkEscapes(entry: path, target: target)
            }
        }
    }

    /// Applies `link` to the directory `base`, or nil if it climbs above the archive root.
    private static func resolve(_ base: [String], _ link: String) -> [String]? {
        var parts = base
        for component in link.split(separator: "/") {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(String(component))
            }
        }
        return parts
    }

    private static func parsePax(_ data: [UInt8], entry: String) throws(ArchiveError) -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[index..<space], as: UTF8.self)),
                  length > space - index, length <= data.count - index, data[index + length - 1] == UInt8(ascii: "\n"),
                  let equals = data[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "=")) else {
                throw .badHeader(entry: entry, reason: "malformed pax record")
            }
            records[String(decoding: data[(space + 1)..<equals], as: UTF8.self)] =
                String(decoding: data[(equals + 1)..<(index + length - 1)], as: UTF8.self)
            index += length
        }
        return records
    }

    // MARK: Stream plumbing

    private func readMeta(_ header: TarHeader, limit: Int) throws(ArchiveError) -> [UInt8] {
        guard header.size <= UInt64(limit) else {
            throw .badHeader(entry: header.name, reason: "extended header of \(header.size) bytes is larger than \(limit)")
        }
        var data = [UInt8](repeating: 0, count: Int(header.size))
        let n = try Self.withBuffer(&data) { buffer throws(ArchiveError) in try fill(buffer, entry: header.name) }
        guard n == data.count else { throw .truncated(entry: header.name) }
        try skip((512 - header.size % 512) % 512)
        return data
    }

    /// `withUnsafeMutableBytes` with the typed error kept.
    private static func withBuffer(_ bytes: inout [UInt8],
                                   _ body: (UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int) throws(ArchiveError) -> Int {
        var result: Result<Int, ArchiveError> = .success(0)
        bytes.withUnsafeMutableBytes { buffer in
            do throws(ArchiveError) { result = .success(try body(buffer)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    private func readBlock(entry: String?) throws(ArchiveError) {
        let n = try fill(block, entry: entry)
        guard n == TarHeader.blockSize else {
            throw n == 0 && entryCount > 0 ? .truncated(entry: "end-of-archive marker") : .truncated(entry: entry)
        }
    }

    /// Reads until `buffer` is full or the stream ends, enforcing the size and ratio limits.
    private func fill(_ buffer: UnsafeMutableRawBufferPointer, entry: String?) throws(ArchiveError) -> Int {
        var total = 0
        while total < buffer.count {
            let n = try gzip.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
            try checkExpansion(entry: entry)
        }
        return total
    }

    private func checkExpansion(entry: String?) throws(ArchiveError) {
        let expanded = gzip.expandedBytes
        guard expanded <= limits.maxExpandedSize else { throw .expandedSizeExceeded(limit: limits.maxExpandedSize) }
        if expanded > limits.ratioGrace, expanded / max(gzip.compressedBytes, 1) > UInt64(limits.maxCompressionRatio) {
            throw .compressionRatioExceeded(entry: entry, limit: limits.maxCompressionRatio)
        }
    }

    private func skip(_ count: UInt64) throws(ArchiveError) {
        var left = count
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { scratch.deallocate() }
        while left > 0 {
            let chunk = Int(min(left, UInt64(scratch.count)))
            let n = try fill(UnsafeMutableRawBufferPointer(rebasing: scratch[0..<chunk]), entry: current?.path)
            guard n == chunk else { throw .truncated(entry: current?.path) }
            left -= UInt64(n)
        }
    }

    /// After the end-of-archive marker only zero padding may follow, up to the end of the gzip stream.
    private func drainEnd() throws(ArchiveError) {
        while true {
            let n = try fill(block, entry: nil)
            guard UnsafeRawBufferPointer(rebasing: block[0..<n]).allSatisfy({ $0 == 0 }) else { throw .trailingData }
            if n < block.count { return }
        }
    }
}
