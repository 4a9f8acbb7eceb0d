import Foundation
import TestSupport
import Testing
@testable import BPFObject

/// Inspection of the example packages' objects: the facts their sources establish, and
/// agreement with LLVM's own disassembler and symbol table.
@Suite struct ExampleInspectionTests {
    func inspect(_ path: String) throws -> ObjectReport {
        try BPFObjectInspector().inspect(Fixtures.bytes(path))
    }

    @Test func chainedXDPProgram() throws {
        let report = try inspect("xdp-port-filter/port_filter.bpf.o")
        #expect(report.license == "Dual BSD/GPL")
        #expect(report.gplCompatible)
        #expect(report.hasBTF && report.hasBTFExt)
        let program = try #require(report.program(named: "xdp_port_filter"))
        #expect((program.kind, program.type, program.section) == ("xdp", "xdp", "xdp"))
        #expect(Set(program.helpers.map(\.id)) == [1, 12])
        #expect(program.tailCalls == 1)
        #expect(program.tailCallMaps == ["xdp_pf_next_prog"])
        #expect(program.subprograms == ["port_verdict"])
        #expect(Set(program.maps) == ["xdp_pf_next_prog", "pf_blocked_ports", "pf_drop_count"])
        let chain = try #require(report.map(named: "xdp_pf_next_prog"))
        #expect((chain.type, chain.keySize, chain.valueSize, chain.maxEntries, chain.pinning) == ("prog_array", 4, 4, 1, "by_name"))
        let ports = try #require(report.map(named: "pf_blocked_ports"))
        #expect((ports.type, ports.keySize, ports.valueSize) == ("hash", 2, 1))
        #expect(report.map(named: "pf_drop_count")?.type == "percpu_array")
    }

    @Test func tcProgram() throws {
        let report = try inspect("tc-egress-marker/egress_marker.bpf.o")
        #expect(report.license == "GPL")
        let program = try #require(report.program(named: "tc_egress_marker"))
        #expect((program.kind, program.type) == ("tc", "sched_cls"))
        #expect(program.helpers.contains { $0.id == 10 && $0.name == "l3_csum_replace" })
        #expect(report.map(named: "tcm_dscp_by_port")?.type == "hash")
        #expect(report.map(named: "tcm_marked_count")?.type == "array")
    }

    @Test func coreTracepointProgram() throws {
        let report = try inspect("exec-tracker/exec_tracker.bpf.o")
        #expect(report.isCORE)
        #expect(report.programs.map(\.name) == ["handle_exec", "handle_exit"])
        let exec = try #require(report.program(named: "handle_exec"))
        #expect((exec.kind, exec.attachTarget) == ("tracepoint", "sched/sched_process_exec"))
        #expect(exec.coreRelocations > 0)
        #expect(report.programs.reduce(0) { $0 + $1.coreRelocations } == report.coreRelocations)
        #expect(Set(exec.helpers.map(\.id)).isSuperset(of: [131, 132])) // ringbuf_reserve, ringbuf_submit
        let events = try #require(report.map(named: "et_events"))
        #expect((events.type, events.keySize, events.valueSize) == ("ringbuf", 0, 0))
        #expect(events.maxEntries.nonzeroBitCount == 1) // a power of two, as the kernel requires
    }

    @Test func nonGPLProgramCallsNoGPLOnlyHelper() throws {
        let report = try inspect("xdp-proto-counter/proto_counter.bpf.o")
        #expect(report.license == "BSD-2-Clause")
        #expect(!report.gplCompatible)
        #expect(!report.programs.isEmpty)
        #expect(report.programs.allSatisfy { $0.helpers.allSatisfy { !$0.gplOnly } && $0.kfuncs.isEmpty })
    }

    @Test func kfuncsAndLSM() throws {
        let report = try inspect("fixtures/kfunc_lsm.bpf.o")
        let program = try #require(report.programs.first)
        #expect((program.kind, program.attachTarget) == ("lsm", "file_open"))
        #expect(!program.kfuncs.isEmpty)
        #expect(report.kfuncs == program.kfuncs)
    }

    @Test func legacyMapDefinitions() throws {
        let report = try inspect("fixtures/legacy_maps.bpf.o")
        #expect(report.maps.allSatisfy { $0.definition == .legacy })
        #expect(report.maps.contains { $0.pinning == "global" })
        #expect(report.programs.first?.kind == "tc")
    }

    @Test func bigEndianBuildMatchesLittleEndian() throws {
        let little = try inspect("xdp-port-filter/port_filter.bpf.o")
        let big = try inspect("fixtures/port_filter_be.bpf.o")
        #expect(big.byteOrder == "big")
        #expect(big.maps == little.maps)
        #expect(big.programs.map(\.name) == little.programs.map(\.name))
        #expect(big.programs.map(\.helpers) == little.programs.map(\.helpers))
        #expect(big.programs.map(\.tailCallMaps) == little.programs.map(\.tailCallMaps))
    }

    static let allObjects = Fixtures.exampleObjects + ["fixtures/kfunc_lsm.bpf.o", "fixtures/kfunc_tp_btf.bpf.o", "fixtures/legacy_maps.bpf.o", "fixtures/port_filter_be.bpf.o"]

    /// Helper ids agree with what llvm-objdump disassembles, and instruction counts with the
    /// sizes llvm-readelf reports for each function symbol.
    @Test(arguments: allObjects)
    func agreesWithLLVM(object: String) throws {
        let objdump = try #require(Fixtures.tool("llvm-objdump", "llvm-objdump-14"), "llvm-objdump is not installed")
        let readelf = try #require(Fixtures.tool("llvm-readelf", "llvm-readelf-14"), "llvm-readelf is not installed")
        let path = Fixtures.examples.appendingPathComponent(object).path
        let report = try inspect(object)

        let (status, disassembly) = try Fixtures.run(objdump, ["-d", "--no-show-raw-insn", path])
        try #require(status == 0, "\(disassembly)")
        var helperIDs = Set<Int32>()
        for line in disassembly.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if fields.count == 3, fields[1] == "call", let id = Int32(fields[2]), id >= 0 { helperIDs.insert(id) }
        }
        let reported = Set(report.programs.flatMap { $0.helpers.map(\.id) })
        #expect(reported == helperIDs, "helpers of \(object)")

        let (readStatus, symbols) = try Fixtures.run(readelf, ["-s", "--wide", path])
        try #require(readStatus == 0, "\(symbols)")
        var sizes: [String: Int] = [:]
        for line in symbols.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 8, fields[3] == "FUNC", let size = Int(fields[2]), fields[6] != "UND" { sizes[String(fields[7])] = size / 8 }
        }
        for program in report.programs { #expect(sizes[program.name] == program.instructions, "\(program.name)") }
        for subprogram in report.subprograms { #expect(sizes[subprogram.name] == subprogram.instructions, "\(subprogram.name)") }
        #expect(sizes.count == report.programs.count + report.subprograms.count)
    }
}
