/// Inspects a BPF ELF object in pure Swift: programs, maps, license, BTF, helper and kfunc calls.
///
/// The object is never loaded or executed; every structure is validated against the file's
/// bounds, so hostile input is refused with a ``BPFObjectError`` rather than trusted.
public struct BPFObjectInspector: Sendable {
    public var limits: InspectionLimits

    public init(limits: InspectionLimits = InspectionLimits()) {
        self.limits = limits
    }

    public func inspect(_ bytes: [UInt8]) throws(BPFObjectError) -> ObjectReport {
        let elf = try ELFFile(bytes: bytes, limits: limits)
        let license = try elf.section(named: "license").map { section throws(BPFObjectError) in
            let data = try elf.data(of: section)
            return String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
        }
        var kernelVersion: UInt32?
        if let section = elf.section(named: "version") {
            guard section.size == 4 else { throw .badSection(section: "version", reason: "size \(section.size), expected 4") }
            kernelVersion = try elf.reader.u32(section.offset, "version")
        }
        var btf: BTF?
        if let section = elf.section(named: ".BTF") {
            btf = try BTF(try elf.data(of: section), littleEndian: elf.littleEndian, limits: limits)
        }
        var btfExt: BTFExt?
        if let section = elf.section(named: ".BTF.ext") {
            guard let btf else { throw .badBTFExt("present without a .BTF section") }
            btfExt = try BTFExt(try elf.data(of: section), littleEndian: elf.littleEndian, btf: btf, limits: limits)
        }
        let maps = try MapCollector(elf: elf, btf: btf).collect()
        let code = try CodeAnalysis(elf: elf, btfExt: btfExt, mapNames: Set(maps.map(\.name)))
        return ObjectReport(
            byteOrder: elf.littleEndian ? "little" : "big",
            license: license,
            gplCompatible: KernelLicense.isGPLCompatible(license),
            kernelVersion: kernelVersion,
            hasBTF: btf != nil,
            hasBTFExt: btfExt != nil,
            coreRelocations: btfExt?.coreRelocations.count ?? 0,
            programs: code.programs,
            subprograms: code.subprograms,
            maps: maps,
            kfuncs: Array(Set(code.programs.flatMap(\.kfuncs))).sorted()
        )
    }
}
