extension Manifest {
    /// The regular files of this package's archive (held in memory) whose paths inside the
    /// package are in `paths`, each at most `limit` bytes.
    public func regularFiles(_ paths: Set<String>, inArchive archive: [UInt8], limit: Int = 512 << 20) throws(ArchiveError) -> [String: [UInt8]] {
        let reader = try ArchiveReader(MemorySource(archive), expectedTopLevel: artifactBase)
        var found: [String: [UInt8]] = [:]
        while let entry = try reader.next() {
            guard entry.kind == .file, paths.contains(entry.relativePath) else { continue }
            found[entry.relativePath] = try reader.readAll(limit: limit)
        }
        return found
    }
}
