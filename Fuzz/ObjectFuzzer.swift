// libFuzzer entry point for the BPF object inspector: any input must be inspected or refused
// with a BPFObjectError, never crash, hang or read out of bounds.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzObject(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = InspectionLimits()
    limits.maxSections = 512
    limits.maxBTFTypes = 4096
    _ = try? BPFObjectInspector(limits: limits).inspect(bytes)
    return 0
}
