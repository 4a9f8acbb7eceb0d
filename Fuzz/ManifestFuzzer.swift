// libFuzzer entry point for the manifest parser (TOML and validation): any input must parse or
// be refused with a ManifestError, never crash or recurse without bound.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? Manifest.parse(text)
    return 0
}
