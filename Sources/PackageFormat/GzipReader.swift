import CZlib

/// Streams the decompressed bytes of a single-member gzip file, with its CRC and length checked
/// by zlib, and refuses trailing data. Memory use is two fixed buffers whatever the input size.
public final class GzipReader<Source: ByteSource> {
    private var source: Source
    private var stream = z_stream()
    private var input: UnsafeMutableRawBufferPointer
    private var finished = false
    private var sourceDrained = false
    private var started = false

    /// Compressed bytes read from the source so far.
    public private(set) var compressedBytes: UInt64 = 0
    /// Decompressed bytes produced so far.
    public private(set) var expandedBytes: UInt64 = 0

    public init(_ source: Source, bufferSize: Int = 64 * 1024) throws(ArchiveError) {
        self.source = source
        input = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        // 15 + 16: a 32 KiB window, and only the gzip wrapper is accepted.
        let status = inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            throw .corruptCompression("zlib could not start (\(status))")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Fills `buffer` with decompressed bytes; returns 0 only at the end of the gzip stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(clamping: buffer.count)
        let requested = Int(stream.avail_out)
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !sourceDrained {
                let n = try source.read(into: input)
                if n == 0 { sourceDrained = true } else {
                    if !started {
                        started = true
                        guard n < 2 || (input[0] == 0x1F && input[1] == 0x8B) else { throw .notGzip }
                    }
                    compressedBytes += UInt64(n)
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = UInt32(n)
                }
            }
            let before = stream.avail_out
            let status = inflate(&stream, Z_NO_FLUSH)
            expandedBytes += UInt64(before - stream.avail_out)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                // Without input left and without progress, the stream ended early.
                if stream.avail_in == 0 && sourceDrained && stream.avail_out == before {
                    guard started else { throw .notGzip }
                    throw .truncated(entry: nil)
                }
                continue
            case Z_STREAM_END:
                finished = true
                try checkTrailer()
                return requested - Int(stream.avail_out)
            case Z_DATA_ERROR:
                throw .corruptCompression(stream.msg.map { String(cString: $0) } ?? "invalid data")
            case Z_MEM_ERROR:
                throw .corruptCompression("out of memory")
            default:
                throw .corruptCompression("zlib status \(status)")
            }
        }
        return requested
    }

    /// After the gzip member only zero padding may follow.
    private func checkTrailer() throws(ArchiveError) {
        var pending = UnsafeRawBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
        while true {
            guard pending.allSatisfy({ $0 == 0 }) else { throw .trailingData }
            if sourceDrained { return }
            let n = try source.read(into: input)
            if n == 0 { return }
            compressedBytes += UInt64(n)
            pending = UnsafeRawBufferPointer(start: input.baseAddress, count: n)
        }
    }
}

/// Compresses to a single-member gzip stream with fixed header fields (no name, mtime 0), so
/// the same input always gives the same bytes.
public final class GzipWriter {
    private var stream = z_stream()
    private let output: (UnsafeRawBufferPointer) throws -> Void
    private var buffer: UnsafeMutableRawBufferPointer

    public init(level: Int32 = 9, output: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.output = output
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        let status = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            buffer.deallocate()
            throw ArchiveError.io("zlib could not start compressing (\(status))")
        }
    }

    deinit {
        deflateEnd(&stream)
        buffer.deallocate()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(bytes.count)
        try pump(Z_NO_FLUSH)
    }

    public func finish() throws {
        stream.next_in = nil
        stream.avail_in = 0
        try pump(Z_FINISH)
    }

    private func pump(_ flush: Int32) throws {
        repeat {
            stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = UInt32(buffer.count)
            let status = deflate(&stream, flush)
            guard status != Z_STREAM_ERROR else { throw ArchiveError.io("zlib failed while compressing") }
            let produced = buffer.count - Int(stream.avail_out)
            if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[0..<produced])) }
            if flush == Z_FINISH && status == Z_STREAM_END { return }
        } while stream.avail_out == 0 || (flush == Z_FINISH)
    }
}
