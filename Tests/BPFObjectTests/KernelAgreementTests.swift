import Foundation
import TestSupport
import Testing
@testable import BPFObject

/// Loads every example object into the running kernel's verifier (through bpftool, never
/// attaching anything) and checks that the programs and maps the kernel created are the ones
/// inspection reported. A refusal by the kernel fails the test; nothing is skipped.
@Suite(.serialized) struct KernelAgreementTests {
    struct KernelProgram: Decodable {
        let type: String
        let name: String
        let gpl_compatible: Bool
        let map_ids: [Int]?
    }

    struct KernelMap: Decodable {
        let type: String
        let name: String
        let bytes_key: UInt32
        let bytes_value: UInt32
        let max_entries: UInt32
    }

    // LSM and fentry programs are refused with EPERM by kernels that lock down trampolines, so the
    // kfunc fixture is loaded in its tp_btf build; its LSM build is checked by inspection alone.
    static let kernelObjects = Fixtures.exampleObjects + ["fixtures/kfunc_tp_btf.bpf.o"]

    static func bpftool(_ arguments: [String]) throws -> String {
        let tool = try #require(Fixtures.tool("bpftool"), "bpftool is not installed (scripts/install-bpf-toolchain.sh installs it)")
        let (status, output) = try Fixtures.run(tool, arguments)
        try #require(status == 0, "bpftool \(arguments.joined(separator: " ")) failed:\n\(output)")
        return output
    }

    static func ensureBPFFilesystem() throws {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        if mounts.split(separator: "\n").contains(where: { $0.split(separator: " ").dropFirst().first == "/sys/fs/bpf" && $0.contains(" bpf ") }) {
            return
        }
        let (status, output) = try Fixtures.run("/bin/mount", ["-t", "bpf", "bpf", "/sys/fs/bpf"])
        try #require(status == 0, "cannot mount the BPF filesystem (root and CAP_BPF are needed): \(output)")
    }

    /// The name the kernel gives an object: at most 15 bytes.
    static func kernelName(_ name: String) -> String { String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self) }

    @Test(arguments: kernelObjects)
    func kernelCreatesWhatInspectionReports(object: String) throws {
        try Self.ensureBPFFilesystem()
        let report = try BPFObjectInspector().inspect(Fixtures.bytes(object))
        let pins = "/sys/fs/bpf/epr-test-\(getpid())-" + object.split(separator: "/").last!.split(separator: ".")[0]
        defer {
            try? FileManager.default.removeItem(atPath: pins)
            for map in report.maps where map.pinning == "by_name" { try? FileManager.default.removeItem(atPath: "/sys/fs/bpf/\(map.name)") }
        }
        _ = try Self.bpftool(["prog", "loadall", Fixtures.examples.appendingPathComponent(object).path, pins])

        let pinned = try FileManager.default.contentsOfDirectory(atPath: pins).sorted()
        #expect(pinned == report.programs.map(\.name).sorted(), "programs the kernel loaded")
        for program in report.programs {
            let json = try Self.bpftool(["-j", "prog", "show", "pinned", "\(pins)/\(program.name)"])
            let loaded = try JSONDecoder().decode(KernelProgram.self, from: Data(json.utf8))
            // The kernel keeps 15 bytes of the name; bpftool shows the whole name from BTF when it can.
            #expect([program.name, Self.kernelName(program.name)].contains(loaded.name))
            #expect(loaded.type == program.type, "type of \(program.name)")
            #expect(loaded.gpl_compatible == report.gplCompatible)

            var kernelMaps: [KernelMap] = []
            for id in loaded.map_ids ?? [] {
                kernelMaps.append(try JSONDecoder().decode(KernelMap.self, from: Data(try Self.bpftool(["-j", "map", "show", "id", "\(id)"]).utf8)))
            }
            #expect(kernelMaps.count == program.maps.count, "maps used by \(program.name): kernel \(kernelMaps.map(\.name)), inspection \(program.maps)")
            for name in program.maps {
                let map = try #require(report.map(named: name))
                let match: KernelMap?
                if map.definition == .globalData {
                    // libbpf names global-data maps "<object prefix><section>", truncated.
                    match = kernelMaps.first { $0.name.contains(".") && map.name.hasPrefix(String($0.name.drop { $0 != "." })) }
                } else {
                    match = kernelMaps.first { $0.name == Self.kernelName(name) }
                }
                let kernel = try #require(match, "the kernel has no map \(name) for \(program.name): \(kernelMaps.map(\.name))")
                #expect(kernel.type == map.type, "type of map \(name)")
                #expect(kernel.bytes_key == map.keySize, "key size of map \(name)")
                #expect(kernel.bytes_value == map.valueSize, "value size of map \(name)")
                #expect(kernel.max_entries == map.maxEntries, "max entries of map \(name)")
            }
        }
    }
}
