/// Why a file could not be read as a BPF object.
///
/// Every case has a stable ``code`` that machines can rely on and a description that names
/// the offending part of the file.
public enum BPFObjectError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(what: String, offset: Int, length: Int, fileSize: Int)
    case notELF
    case notELF64(elfClass: UInt8)
    case badByteOrder(UInt8)
    case wrongMachine(UInt16)
    case notRelocatable(elfType: UInt16)
    case badHeader(String)
    case tooManySections(count: Int, limit: Int)
    case sectionOutOfBounds(section: String, offset: UInt64, size: UInt64, fileSize: Int)
    case badSection(section: String, reason: String)
    case badSymbolTable(String)
    case badBTF(String)
    case badBTFExt(String)

    /// A stable identifier for this kind of error.
    public var code: String {
        switch self {
        case .truncated: "elf-truncated"
        case .notELF: "not-elf"
        case .notELF64: "not-elf64"
        case .badByteOrder: "elf-bad-byte-order"
        case .wrongMachine: "not-bpf-machine"
        case .notRelocatable: "not-relocatable"
        case .badHeader: "elf-bad-header"
        case .tooManySections: "elf-too-many-sections"
        case .sectionOutOfBounds: "elf-section-out-of-bounds"
        case .badSection: "elf-bad-section"
        case .badSymbolTable: "elf-bad-symbol-table"
        case .badBTF: "btf-invalid"
        case .badBTFExt: "btf-ext-invalid"
        }
    }

    public var description: String {
        switch self {
        case let .truncated(what, offset, length, fileSize):
            "\(what) at offset \(offset) (\(length) bytes) runs past the end of the file (\(fileSize) bytes)"
        case .notELF:
            "not an ELF file (bad magic number)"
        case let .notELF64(elfClass):
            "not a 64-bit ELF file (class \(elfClass)); BPF objects are ELF64"
        case let .badByteOrder(value):
            "unknown ELF byte order \(value)"
        case let .wrongMachine(machine):
            "ELF machine is \(machine), not EM_BPF (247): this is not a BPF object"
        case let .notRelocatable(elfType):
            "ELF type is \(elfType), not a relocatable object (ET_REL): BPF objects are compiled with -c"
        case let .badHeader(reason):
            "invalid ELF header: \(reason)"
        case let .tooManySections(count, limit):
            "the object declares \(count) sections, more than the limit of \(limit)"
        case let .sectionOutOfBounds(section, offset, size, fileSize):
            "section \(section) (offset \(offset), size \(size)) lies outside the file (\(fileSize) bytes)"
        case let .badSection(section, reason):
            "section \(section): \(reason)"
        case let .badSymbolTable(reason):
            "invalid symbol table: \(reason)"
        case let .badBTF(reason):
            "invalid BTF: \(reason)"
        case let .badBTFExt(reason):
            "invalid BTF.ext: \(reason)"
        }
    }
}
