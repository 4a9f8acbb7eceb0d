/// What a user-space ELF file of a package is, read while the archive streams by: its type,
/// machine and byte order, its interpreter, and the shared libraries it needs (`DT_NEEDED`).
/// Only the first MiB and the dynamic segment are kept, whatever the file's size.
public struct UserSpaceELF: Sendable, Equatable {
    public enum FileType: String, Sendable { case executable, sharedObject = "shared object", relocatable, core, other }

    public var type: FileType
    /// e_machine, and the manifest's name for it when it has one.
    public var machine: UInt16
    public var architecture: String?
    public var is64Bit: Bool
    public var littleEndian: Bool
    public var interpreter: String?
    /// Nil when the dynamic section could not be read; empty for a static program.
    public var needed: [String]?
    public var isDynamic: Bool

    /// e_machine numbers of the architectures a manifest may declare.
    public static func architecture(machine: UInt16, littleEndian: Bool) -> String? {
        switch machine {
        case 62: "x86_64"
        case 183: "arm64"
        case 40: "arm"
        case 243: "riscv64"
        case 21: littleEndian ? "ppc64le" : "ppc64"
        case 22: "s390x"
        case 258: "loongarch64"
        case 8: "mips64"
        default: nil
        }
    }

    /// Feeds the file's bytes in order; `finish()` gives the summary, or nil for a file that is
    /// not a user-space ELF file (BPF objects are not).
    public struct Reader {
        static let headLimit = 1 << 20
        static let dynamicLimit = 1 << 20
        private var head: [UInt8] = []
        private var offset = 0
        private var dynamic: (offset: Int, size: Int)?
        private var dynamicBytes: [UInt8] = []
        private var parsedHeaders = false
        private var loads: [(vaddr: UInt64, offset: UInt64, size: UInt64)] = []
        private var interpreterRange: (offset: Int, size: Int)?
        private var header: (type: UInt16, machine: UInt16, is64: Bool, little: Bool)?

        public init() {}

        public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
            let start = offset
            offset += chunk.count
            if head.count < Self.headLimit {
                head.append(contentsOf: chunk.prefix(Self.headLimit - head.count))
            }
            if !parsedHeaders { parseHeaders(final: head.count >= Self.headLimit) }
            if let dynamic, dynamicBytes.count < min(dynamic.size, Self.dynamicLimit) {
                // The next bytes of the dynamic segment, if this chunk holds them.
                let wantedStart = dynamic.offset + dynamicBytes.count, wantedEnd = dynamic.offset + min(dynamic.size, Self.dynamicLimit)
                let lower = max(wantedStart, start), upper = min(wantedEnd, offset)
                if lower < upper, lower == wantedStart {
                    dynamicBytes.append(contentsOf: chunk[(lower - start)..<(upper - start)])
                }
            }
        }

        func integer(_ bytes: [UInt8], _ at: Int, _ size: Int, little: Bool) -> UInt64? {
            guard at >= 0, at + size <= bytes.count else { return nil }
            var value: UInt64 = 0
            for i in 0..<size {
                let byte = UInt64(bytes[at + (little ? size - 1 - i : i)])
                value = value << 8 | byte
            }
            return value
        }

        /// Reads the ELF and program headers once the first bytes hold them all (or, `final`,
        /// with what there is).
        private mutating func parseHeaders(final: Bool) {
            guard head.count >= 64 else { return }
            guard head.starts(with: [0x7F, 0x45, 0x4C, 0x46]), head[4] == 1 || head[4] == 2, head[5] == 1 || head[5] == 2 else {
                parsedHeaders = true
                return
            }
            let is64 = head[4] == 2, little = head[5] == 1
            guard let type = integer(head, 16, 2, little: little), let machine = integer(head, 18, 2, little: little) else { return }
            header = (UInt16(type), UInt16(machine), is64, little)
            guard let phoff = integer(head, is64 ? 32 : 28, is64 ? 8 : 4, little: little),
                  let phentsize = integer(head, is64 ? 54 : 42, 2, little: little),
                  let phnum = integer(head, is64 ? 56 : 44, 2, little: little), phnum < 4096, phentsize >= (is64 ? 56 : 32),
                  phoff < UInt64(Self.headLimit) else {
                parsedHeaders = true
                return
            }
            guard final || head.count >= Int(phoff) + Int(phnum) * Int(phentsize) else { return }
            parsedHeaders = true
            for index in 0..<Int(phnum) {
                let base = Int(phoff) + index * Int(phentsize)
                guard let kind = integer(head, base, 4, little: little) else { return }
                let head = self.head
                func field(_ o64: Int, _ o32: Int) -> UInt64? {
                    is64 ? integer(head, base + o64, 8, little: little) : integer(head, base + o32, 4, little: little)
                }
                guard let fileOffset = field(8, 4), let vaddr = field(16, 8), let fileSize = field(32, 16) else { return }
                switch kind {
                case 1: loads.append((vaddr, fileOffset, fileSize))
                case 2: if fileOffset < UInt64(Int.max / 2), fileSize < UInt64(Int.max / 2) { dynamic = (Int(fileOffset), Int(fileSize)) }
                case 3: if fileOffset < UInt64(Self.headLimit), fileSize < 4096 { interpreterRange = (Int(fileOffset), Int(fileSize)) }
                default: break
                }
            }
        }

        public mutating func finish() -> UserSpaceELF? {
            if !parsedHeaders { parseHeaders(final: true) }
            guard let header, header.machine != 247 else { return nil } // 247: EM_BPF
            let type: FileType = switch header.type {
            case 2: .executable
            case 3: .sharedObject
            case 1: .relocatable
            case 4: .core
            default: .other
            }
            var interpreter: String?
            if let range = interpreterRange, range.offset + range.size <= head.count {
                interpreter = String(decoding: head[range.offset..<(range.offset + range.size)].prefix { $0 != 0 }, as: UTF8.self)
            }
            var needed: [String]? = dynamic == nil ? [] : nil
            if let dynamic, dynamicBytes.count == min(dynamic.size, Self.dynamicLimit) {
                let entry = header.is64 ? 16 : 8, word = header.is64 ? 8 : 4
                var names: [UInt64] = [], strtab: UInt64?, strsz: UInt64?
                var at = 0
                while at + entry <= dynamicBytes.count {
                    guard let tag = integer(dynamicBytes, at, word, little: header.little),
                          let value = integer(dynamicBytes, at + word, word, little: header.little) else { break }
                    if tag == 0 { break }
                    if tag == 1 { names.append(value) } else if tag == 5 { strtab = value } else if tag == 10 { strsz = value }
                    at += entry
                }
                // The string table's address, as a file offset through the segment holding it.
                // Every number here comes from the file: no arithmetic may overflow.
                if let strtab, let load = loads.first(where: { strtab >= $0.vaddr && strtab - $0.vaddr < $0.size }) {
                    let (start, overflow) = load.offset.addingReportingOverflow(strtab - load.vaddr)
                    if !overflow, start < UInt64(head.count) {
                        let base = Int(start)
                        let limit = base + Int(min(strsz ?? UInt64(head.count), UInt64(head.count - base)))
                        var list: [String] = []
                        for name in names {
                            guard name < UInt64(limit - base) else { list = []; break }
                            list.append(String(decoding: head[(base + Int(name))..<limit].prefix { $0 != 0 }, as: UTF8.self))
                        }
                        if list.count == names.count { needed = list }
                    }
                }
            }
            return UserSpaceELF(type: type, machine: header.machine,
                                architecture: UserSpaceELF.architecture(machine: header.machine, littleEndian: header.little),
                                is64Bit: header.is64, littleEndian: header.little, interpreter: interpreter, needed: needed,
                                isDynamic: dynamic != nil)
        }
    }
}
