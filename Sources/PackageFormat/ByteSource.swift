#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Something bytes are read from in order: a file, or memory.
public protocol ByteSource {
    /// Reads up to `count` bytes into `buffer` at `offset`; returns 0 at the end.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int
}

/// Bytes held in memory.
public struct MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let count = min(buffer.count, bytes.count - position)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + position, byteCount: count)
        }
        position += count
        return count
    }
}

/// A file opened for reading, closed when the last copy is released.
public final class FileSource: ByteSource {
    private let descriptor: Int32
    public let path: String

    public init(path: String) throws(ArchiveError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io("\(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(descriptor) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        while true {
            #if canImport(Darwin)
            let n = Darwin.read(descriptor, buffer.baseAddress, buffer.count)
            #else
            let n = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            #endif
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw .io("\(path): \(String(cString: strerror(errno)))")
        }
    }
}
