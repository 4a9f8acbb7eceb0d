// libFuzzer entry point for the package archive reader: any input must be read or refused
// with an ArchiveError, never crash, hang or write anything.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArchive(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = ArchiveLimits()
    limits.maxEntries = 256
    limits.maxExpandedSize = 16 << 20
    limits.ratioGrace = 1 << 20
    do throws(ArchiveError) {
        let reader = try ArchiveReader(MemorySource(bytes), limits: limits)
        while let entry = try reader.next() {
            if entry.kind == .file { _ = try reader.readAll(limit: 1 << 20) }
        }
    } catch {
        _ = error.code
    }
    return 0
}
