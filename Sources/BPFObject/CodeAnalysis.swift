/// Walks the instructions of every executable section: finds programs and subprograms, and
/// what each calls (helpers, kfuncs, other functions) and which maps it refers to.
struct CodeAnalysis {
    private struct Function {
        let name: String
        let section: Int
        let start: Int // instruction index within the section
        let end: Int
        let isProgram: Bool
        var helpers = Set<Int32>()
        var kfuncs = Set<String>()
        var tailCalls = 0
        var tailCallMaps = Set<String>()
        var maps = Set<String>()
        var callees = Set<Int>()
        var coreRelocations = 0
    }

    private(set) var programs: [ProgramReport] = []
    private(set) var subprograms: [SubprogramReport] = []
    private var functions: [Function] = []
    /// Per section: function indices sorted by start instruction.
    private var bySection: [Int: [Int]] = [:]

    init(elf: ELFFile, btfExt: BTFExt?, mapNames: Set<String>) throws(BPFObjectError) {
        try collectFunctions(elf)
        for (section, indices) in bySection {
            try analyse(section: elf.sections[section], functions: indices, elf: elf, mapNames: mapNames)
        }
        if let btfExt { attribute(btfExt.coreRelocations, elf: elf) }
        report(elf)
    }

    private mutating func collectFunctions(_ elf: ELFFile) throws(BPFObjectError) {
        for section in elf.sections where section.isExecutable && section.size > 0 {
            guard section.size % Instruction.size == 0 else {
                throw .badSection(section: section.name, reason: "code size \(section.size) is not a multiple of 8")
            }
            let count = section.size / Instruction.size
            let isText = section.name == ".text"
            var found = false
            for symbol in elf.symbols where symbol.isFunction && symbol.sectionIndex == section.index {
                let start = symbol.value / 8, length = symbol.size / 8
                guard symbol.value % 8 == 0, start <= UInt64(count), length <= UInt64(count) - start else {
                    throw .badSection(section: section.name, reason: "function \(symbol.name) lies outside the section")
                }
                found = true
                functions.append(Function(name: symbol.name, section: section.index, start: Int(start),
                                          end: Int(start + max(length, 1)), isProgram: !isText && symbol.isGlobal))
            }
            if !found && !isText {
                // An old-style object: the whole section is one program named after it.
                functions.append(Function(name: section.name, section: section.index, start: 0, end: count, isProgram: true))
            }
        }
        for (index, function) in functions.enumerated() { bySection[function.section, default: []].append(index) }
        for key in bySection.keys { bySection[key]!.sort { functions[$0].start < functions[$1].start } }
    }

    /// The function containing instruction `index` of `section`.
    private func function(in section: Int, at index: Int) -> Int? {
        guard let list = bySection[section] else { return nil }
        var low = 0, high = list.count - 1, result: Int?
        while low <= high {
            let mid = (low + high) / 2
            if functions[list[mid]].start <= index { result = list[mid]; low = mid + 1 } else { high = mid - 1 }
        }
        guard let result, index < functions[result].end else { return nil }
        return result
    }

    private mutating func analyse(section: ELFFile.Section, functions indices: [Int], elf: ELFFile,
                                  mapNames: Set<String>) throws(BPFObjectError) {
        let r = elf.reader
        try r.check(section.offset, section.size, "section \(section.name)")
        var relocationAt: [Int: ELFFile.Relocation] = [:]
        for relocation in elf.relocations[section.index] ?? [] where relocation.offset % 8 == 0 {
            relocationAt[Int(clamping: relocation.offset / 8)] = relocation
        }
        let count = section.size / Instruction.size
        // The last map loaded into each register, for attributing tail calls to their program array.
        var registerMap = [String?](repeating: nil, count: 16)
        var current: Int?
        var index = 0
        while index < count {
            if current == nil || index >= functions[current!].end || index < functions[current!].start {
                current = function(in: section.index, at: index)
                registerMap = [String?](repeating: nil, count: 16)
            }
            let insn = Instruction(r, at: section.offset + index * Instruction.size)
            guard let owner = current else { index += 1; continue }
            switch insn.opcode {
            case Instruction.loadImmediate64:
                var mapName: String?
                if let relocation = relocationAt[index] {
                    let symbol = elf.symbols[relocation.symbol]
                    let target = symbol.sectionIndex < elf.sections.count ? elf.sections[symbol.sectionIndex].name : ""
                    if mapNames.contains(symbol.name), target == ".maps" || target == "maps" {
                        mapName = symbol.name
                    } else if MapCollector.isGlobalDataSection(target), mapNames.contains(target) {
                        mapName = target
                    }
                }
                if let mapName { functions[owner].maps.insert(mapName) }
                registerMap[Int(insn.destination)] = mapName
                index += 2
                continue
            case Instruction.call:
                try recordCall(insn, at: index, in: section, owner: owner, relocation: relocationAt[index],
                               elf: elf, tailCallMap: registerMap[2])
                for register in 0...5 { registerMap[register] = nil }
            default:
                // Any other write to a register forgets what map it held.
                if insn.opcode & 0x07 == 0x04 || insn.opcode & 0x07 == 0x07 || insn.opcode & 0x07 == 0x01 {
                    registerMap[Int(insn.destination)] = nil
                }
            }
            index += 1
        }
    }

    private mutating func recordCall(_ insn: Instruction, at index: Int, in section: ELFFile.Section, owner: Int,
                                     relocation: ELFFile.Relocation?, elf: ELFFile, tailCallMap: String?) throws(BPFObjectError) {
        if let relocation {
            let symbol = elf.symbols[relocation.symbol]
            if symbol.isUndefined {
                functions[owner].kfuncs.insert(symbol.name)
                return
            }
            guard symbol.sectionIndex < elf.sections.count else { return }
            let target = Int(symbol.value / 8) + Int(insn.immediate) + 1
            if let callee = function(in: symbol.sectionIndex, at: target) { functions[owner].callees.insert(callee) }
            return
        }
        switch insn.source {
        case Instruction.pseudoCall:
            if let callee = function(in: section.index, at: index + Int(insn.immediate) + 1) {
                functions[owner].callees.insert(callee)
            }
        case Instruction.pseudoKfuncCall:
            functions[owner].kfuncs.insert("btf_id:\(insn.immediate)")
        default:
            functions[owner].helpers.insert(insn.immediate)
            if insn.immediate == Instruction.tailCallHelper {
                functions[owner].tailCalls += 1
                if let tailCallMap { functions[owner].tailCallMaps.insert(tailCallMap) }
            }
        }
    }

    private mutating func attribute(_ relocations: [BTFExt.CORERelocation], elf: ELFFile) {
        let sectionIndex = Dictionary(elf.sections.map { ($0.name, $0.index) }, uniquingKeysWith: { first, _ in first })
        for relocation in relocations {
            guard let section = sectionIndex[relocation.section],
                  let owner = function(in: section, at: Int(relocation.instructionOffset / 8)) else { continue }
            functions[owner].coreRelocations += 1
        }
    }

    private func reachable(from root: Int) -> [Int] {
        var seen: Set<Int> = [root], stack = [root], order: [Int] = []
        while let next = stack.popLast() {
            order.append(next)
            for callee in functions[next].callees where seen.insert(callee).inserted { stack.append(callee) }
        }
        return order
    }

    private mutating func report(_ elf: ELFFile) {
        for (index, function) in functions.enumerated() {
            let sectionName = elf.sections[function.section].name
            guard function.isProgram else {
                subprograms.append(SubprogramReport(name: function.name, section: sectionName,
                                                    instructions: function.end - function.start))
                continue
            }
            let closure = reachable(from: index).map { functions[$0] }
            let convention = SectionConvention(sectionName: sectionName)
            let helpers = Set(closure.flatMap(\.helpers)).sorted().map { id in
                let helper = HelperFunction.helper(id: id)
                return HelperCall(id: id, name: helper?.name ?? "unknown", gplOnly: helper?.gplOnly ?? false,
                                  securitySensitive: helper?.securitySensitive ?? false)
            }
            programs.append(ProgramReport(
                name: function.name, section: sectionName,
                type: convention?.programType ?? "unknown", kind: convention?.kind ?? "unknown",
                attachTarget: convention?.attachTarget, instructions: function.end - function.start,
                helpers: helpers, kfuncs: Set(closure.flatMap(\.kfuncs)).sorted(),
                tailCalls: closure.reduce(0) { $0 + $1.tailCalls },
                tailCallMaps: Set(closure.flatMap(\.tailCallMaps)).sorted(),
                maps: Set(closure.flatMap(\.maps)).sorted(),
                subprograms: closure.dropFirst().map(\.name).sorted(),
                coreRelocations: closure.reduce(0) { $0 + $1.coreRelocations }))
        }
        programs.sort { ($0.section, $0.name) < ($1.section, $1.name) }
        subprograms.sort { ($0.section, $0.name) < ($1.section, $1.name) }
    }
}
