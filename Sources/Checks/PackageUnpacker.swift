import Foundation
import PackageFormat
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks a package archive into a directory for checks that need files on disk (the
/// verifier, external scanners). The archive reader has already refused unsafe paths and links
/// that leave the package; files are written without set-ID bits, links as links inside the
/// package.
public enum PackageUnpacker {
    /// Unpacks `archive` into a new directory below `parent` and returns the package's own
    /// directory (what the archive's top-level directory holds).
    public static func unpack(archive: String, into parent: URL, limits: ArchiveLimits = ArchiveLimits()) throws -> URL {
        let root = parent.appendingPathComponent("package")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let reader = try ArchiveReader(try FileSource(path: archive), limits: limits)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while let entry = try reader.next() {
            guard !entry.relativePath.isEmpty else { continue }
            let path = root.appendingPathComponent(entry.relativePath).path
            switch entry.kind {
            case .directory:
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            case .symlink:
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard symlink(entry.linkTarget ?? "", path) == 0 else { throw CocoaError(.fileWriteUnknown) }
            case .hardlink:
                // The target as the archive reader resolved it: an earlier regular file entry,
                // whose own path passes through no link; never the raw text, whose `..` the
                // kernel would resolve through symbolic links.
                guard let target = Self.normalised(entry.linkTarget ?? "") else { throw CocoaError(.fileWriteUnknown) }
                guard link(root.appendingPathComponent(target).path, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
            case .file:
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(entry.mode & 0o755 | 0o600))
                guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
                defer { close(fd) }
                while true {
                    let n = try reader.read(into: buffer)
                    guard n > 0 else { break }
                    var offset = 0
                    while offset < n {
                        let written = write(fd, buffer.baseAddress! + offset, n - offset)
                        if written < 0, errno == EINTR { continue }
                        guard written > 0 else { throw CocoaError(.fileWriteOutOfSpace) }
                        offset += written
                    }
                }
            }
        }
        return root
    }

    /// A hard link's target (a path in the archive, from its top-level directory) resolved
    /// lexically and made relative to the top-level directory; nil when it leaves it.
    static func normalised(_ target: String) -> String? {
        var parts: [Substring] = []
        for part in target.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(part)
            }
        }
        guard parts.count >= 2 else { return nil }
        return parts.dropFirst().joined(separator: "/")
    }
}
