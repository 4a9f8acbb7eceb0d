import Foundation
import NIOCore
import NIOPosix
import PackageFormat

/// Blobs as files under `<root>/blobs/sha256/<2 hex>/<hex>`, written through a temporary file,
/// fsynced and renamed into place, so a crash never leaves half a blob under its digest.
public struct FileBlobStore: BlobStore {
    public let root: URL
    private let threadPool: NIOThreadPool

    public init(root: URL, threadPool: NIOThreadPool = .singleton) throws {
        self.root = root
        self.threadPool = threadPool
        try FileManager.default.createDirectory(at: blobsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    var blobsDirectory: URL { root.appendingPathComponent("blobs/sha256") }
    var temporaryDirectory: URL { root.appendingPathComponent("tmp") }

    func path(_ digest: SHA256Digest) -> URL {
        blobsDirectory.appendingPathComponent(String(digest.hex.prefix(2))).appendingPathComponent(digest.hex)
    }

    public func temporaryFile() throws -> URL {
        temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)")
    }

    public func store(_ file: URL, digest: SHA256Digest) async throws {
        let destination = path(digest)
        try await threadPool.runIfActive {
            let prefix = destination.deletingLastPathComponent()
            if !FileManager.default.fileExists(atPath: prefix.path) {
                try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
                // A new directory survives power loss only once its parent is synced too.
                try Self.fsync(path: prefix.deletingLastPathComponent().path)
            }
            try Self.fsync(path: file.path)
            if FileManager.default.fileExists(atPath: destination.path) {
                try? FileManager.default.removeItem(at: file)
                return
            }
            guard rename(file.path, destination.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: destination.path])
            }
            try Self.fsync(path: destination.deletingLastPathComponent().path)
        }
    }

    public func size(of digest: SHA256Digest) async throws -> Int64? {
        var info = stat()
        guard stat(path(digest).path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    public func localPath(of digest: SHA256Digest) -> String? { path(digest).path }

    public func read(_ digest: SHA256Digest, range: ClosedRange<Int64>?) async throws -> AsyncThrowingStream<ByteBuffer, any Error> {
        let path = path(digest).path
        let pool = threadPool
        let fd = try await pool.runIfActive { () throws -> Int32 in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
            return fd
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let size = Int64(info.st_size)
        let start = range?.lowerBound ?? 0
        let end = range.map { min($0.upperBound, size - 1) } ?? size - 1
        return AsyncThrowingStream { continuation in
            let task = Task {
                defer { close(fd) }
                var offset = start
                do {
                    while offset <= end, !Task.isCancelled {
                        let length = Int(min(Int64(256 * 1024), end - offset + 1))
                        let from = offset
                        let buffer = try await pool.runIfActive { () throws -> ByteBuffer in
                            var buffer = ByteBufferAllocator().buffer(capacity: length)
                            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { bytes in
                                max(0, pread(fd, bytes.baseAddress, length, off_t(from)))
                            }
                            guard n > 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path]) }
                            return buffer
                        }
                        offset += Int64(buffer.readableBytes)
                        continuation.yield(buffer)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func delete(_ digest: SHA256Digest) async throws {
        try? FileManager.default.removeItem(at: path(digest))
    }

    public func allDigests() async throws -> [SHA256Digest] {
        var result: [SHA256Digest] = []
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: blobsDirectory.path)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: blobsDirectory.appendingPathComponent(prefix).path)) ?? []
            where name.count == 64 && name.hasPrefix(prefix) {
                result.append(SHA256Digest(hex: name))
            }
        }
        return result
    }

    public func sweepTemporaryFiles() async throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory.path)) ?? []
        for name in names { try? FileManager.default.removeItem(at: temporaryDirectory.appendingPathComponent(name)) }
        return names.count
    }

    static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        _ = Glibc.fsync(fd)
    }
}
