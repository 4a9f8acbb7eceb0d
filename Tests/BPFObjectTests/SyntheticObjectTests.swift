import Testing
@testable import BPFObject

/// Objects built section by section, each exercising one feature of the inspection.
@Suite struct SyntheticObjectTests {
    static let exit: UInt8 = 0x95, movImm: UInt8 = 0xB7, call: UInt8 = 0x85, ldImm64: UInt8 = 0x18

    /// An object with an `xdp` program `prog` calling `callee` in .text, a helper, a kfunc and
    /// a tail call through a legacy prog-array map.
    static func object(littleEndian: Bool) -> [UInt8] {
        var b = ELFBuilder()
        b.littleEndian = littleEndian
        let text = b.insn(movImm, dst: 0, imm: 0) + b.insn(call, imm: 5) + b.insn(exit)          // callee: ktime_get_ns
        let prog = b.insn(call, src: 1, imm: -1)                                               // call callee (relocated)
            + b.insn(ldImm64, dst: 2, src: 1) + b.insn(0)                                     // r2 = &jumps (relocated)
            + b.insn(call, imm: 12)                                                           // bpf_tail_call
            + b.insn(call, src: 1, imm: -1)                                                   // kfunc (relocated to extern)
            + b.insn(movImm, dst: 0, imm: 2) + b.insn(exit)
        let mapDef = [2, 4, 8, 16, 0, 0, 2, 0, 0].flatMap { b.u32(UInt32($0)) }        // array "counters", pinned global
            + [3, 4, 4, 1, 0, 0, 0, 0, 0].flatMap { b.u32(UInt32($0)) }                 // prog_array "jumps"
        let textIndex = b.add(.init(name: ".text", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: text))
        let progIndex = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: prog))
        let mapsIndex = b.add(.init(name: "maps", type: ELFBuilder.progbits, flags: 3, data: mapDef))
        _ = b.add(.init(name: "license", type: ELFBuilder.progbits, flags: 3, data: Array("GPL\0".utf8)))
        let strings = Array("\0callee\0prog\0counters\0jumps\0bpf_kfunc_thing\0".utf8)
        // name offsets: callee 1, prog 8, counters 13, jumps 22, bpf_kfunc_thing 28
        let symbols = b.symbol(name: 0, info: 0, section: 0, value: 0, size: 0)
            + b.symbol(name: 1, info: 0x02, section: UInt16(textIndex), value: 0, size: 24)         // local func
            + b.symbol(name: 8, info: 0x12, section: UInt16(progIndex), value: 0, size: UInt64(prog.count))
            + b.symbol(name: 13, info: 0x11, section: UInt16(mapsIndex), value: 0, size: 36)
            + b.symbol(name: 22, info: 0x11, section: UInt16(mapsIndex), value: 36, size: 36)
            + b.symbol(name: 28, info: 0x12, section: 0, value: 0, size: 0)                         // extern func
        let strtabIndex = b.sections.count + 2
        let symtabIndex = b.add(.init(name: ".symtab", type: ELFBuilder.symtab, data: symbols, link: UInt32(strtabIndex),
                                      info: 1, entrySize: 24))
        _ = b.add(.init(name: ".strtab", type: ELFBuilder.strtab, data: strings))
        let relocations = b.rel(offset: 0, symbol: 1, type: 10) + b.rel(offset: 8, symbol: 4, type: 1)
            + b.rel(offset: 32, symbol: 5, type: 10)
        _ = b.add(.init(name: ".relxdp", type: ELFBuilder.rel, data: relocations, link: UInt32(symtabIndex),
                        info: UInt32(progIndex), entrySize: 16))
        return b.build()
    }

    @Test(arguments: [true, false])
    func inspectsEveryFeature(littleEndian: Bool) throws {
        let report = try BPFObjectInspector().inspect(Self.object(littleEndian: littleEndian))
        #expect(report.byteOrder == (littleEndian ? "little" : "big"))
        #expect(report.license == "GPL")
        #expect(report.gplCompatible)
        #expect(!report.hasBTF)
        let program = try #require(report.program(named: "prog"))
        #expect(program.kind == "xdp")
        #expect(program.type == "xdp")
        #expect(program.instructions == 7)
        #expect(program.helpers.map(\.id) == [5, 12])
        #expect(program.helpers.map(\.name) == ["ktime_get_ns", "tail_call"])
        #expect(program.subprograms == ["callee"])
        #expect(program.kfuncs == ["bpf_kfunc_thing"])
        #expect(program.tailCalls == 1)
        #expect(program.tailCallMaps == ["jumps"])
        #expect(program.maps == ["jumps"])
        #expect(report.subprograms.map(\.name) == ["callee"])
        let counters = try #require(report.map(named: "counters"))
        #expect((counters.type, counters.keySize, counters.valueSize, counters.maxEntries) == ("array", 4, 8, 16))
        #expect(counters.pinning == "global")
        #expect(counters.definition == .legacy)
        let jumps = try #require(report.map(named: "jumps"))
        #expect((jumps.type, jumps.maxEntries, jumps.pinning) == ("prog_array", 1, "none"))
    }

    @Test func littleAndBigEndianAgreeButForByteOrder() throws {
        var little = try BPFObjectInspector().inspect(Self.object(littleEndian: true))
        let big = try BPFObjectInspector().inspect(Self.object(littleEndian: false))
        little.byteOrder = "big"
        #expect(little == big)
    }

    @Test func sectionWithoutSymbolsIsOneProgram() throws {
        var b = ELFBuilder()
        _ = b.add(.init(name: "tp/sched/sched_switch", type: ELFBuilder.progbits, flags: ELFBuilder.exec,
                        data: b.insn(Self.movImm) + b.insn(Self.exit)))
        _ = b.add(.init(name: "license", type: ELFBuilder.progbits, data: Array("Proprietary\0".utf8)))
        let report = try BPFObjectInspector().inspect(b.build())
        #expect(report.programs.count == 1)
        #expect(report.programs[0].name == "tp/sched/sched_switch")
        #expect(report.programs[0].attachTarget == "sched/sched_switch")
        #expect(report.license == "Proprietary")
        #expect(!report.gplCompatible)
    }

    @Test(arguments: [
        ("xdp", "xdp", "xdp", nil), ("xdp.frags", "xdp", "xdp", nil), ("tc", "sched_cls", "tc", nil),
        ("tc/ingress", "sched_cls", "tc", "ingress"), ("classifier", "sched_cls", "tc", nil),
        ("tracepoint/syscalls/sys_enter_open", "tracepoint", "tracepoint", "syscalls/sys_enter_open"),
        ("tp_btf/sched_switch", "tracing", "tp_btf", "sched_switch"), ("lsm/file_open", "lsm", "lsm", "file_open"),
        ("kretprobe/do_unlinkat", "kprobe", "kretprobe", "do_unlinkat"), ("uprobe", "kprobe", "uprobe", nil),
        ("cgroup_skb/egress", "cgroup_skb", "cgroup_skb", "egress"), ("fentry.s/foo", "tracing", "fentry", "foo"),
        ("struct_ops/dummy", "struct_ops", "struct_ops", "dummy"), ("socket", "socket_filter", "socket_filter", nil),
    ] as [(String, String, String, String?)])
    func sectionConventions(section: String, type: String, kind: String, target: String?) throws {
        let convention = try #require(SectionConvention(sectionName: section))
        #expect(convention.programType == type)
        #expect(convention.kind == kind)
        #expect(convention.attachTarget == target)
    }

    @Test(arguments: ["tracepoint", "tp/", "lsm", "nonsense", "xdpfoo", ".text"])
    func unknownOrIncompleteSections(section: String) {
        #expect(SectionConvention(sectionName: section) == nil)
    }

    @Test func helperTableCoversEveryId() {
        #expect(HelperFunction.all.count == 212)
        for (index, helper) in HelperFunction.all.enumerated() { #expect(Int(helper.id) == index) }
        #expect(HelperFunction.helper(id: 6)?.name == "trace_printk")
        #expect(HelperFunction.helper(id: 6)?.gplOnly == true)
        #expect(HelperFunction.helper(named: "bpf_probe_write_user")?.securitySensitive == true)
        #expect(HelperFunction.helper(id: 212) == nil)
        #expect(HelperFunction.helper(id: -1) == nil)
    }

    @Test(arguments: [("GPL", true), ("Dual BSD/GPL", true), ("Dual MIT/GPL", true), ("GPL v2", true),
                      ("GPL-2.0", false), ("gpl", false), ("BSD-2-Clause", false), ("", false)])
    func kernelLicenseRules(license: String, compatible: Bool) {
        #expect(KernelLicense.isGPLCompatible(license) == compatible)
    }
}
