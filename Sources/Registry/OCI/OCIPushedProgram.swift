import BPFObject
import Foundation
import PackageFormat

/// An eBPF program pushed through the OCI API in the form bpfman, Bumblebee or Inspektor
/// Gadget use, turned into a package directory (objects, a generated `epr.toml`, README and
/// LICENSE) so that it goes through the same inspection, checks and review as an upload.
struct OCIPushedProgram {
    var objects: [(name: String, bytes: [UInt8])]
    var labels: [String: String]
    var architecture: String?

    static let elfMagic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]

    /// Whether `bytes` is an ELF object for the BPF machine (EM_BPF, 247).
    static func isBPFObject(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 20, Array(bytes.prefix(4)) == elfMagic else { return false }
        let machine = bytes[5] == 2 ? UInt16(bytes[18]) << 8 | UInt16(bytes[19]) : UInt16(bytes[19]) << 8 | UInt16(bytes[18])
        return machine == 247
    }

    /// The BPF objects a pushed image or artifact carries: raw ELF layers (Bumblebee, Inspektor
    /// Gadget or any `+binary` layer) and `.o` files in tar+gzip layers (bpfman).
    static func find(layers: [(OCIDescriptor, [UInt8])], config: [UInt8]?, annotations: [String: String],
                     limits: OCILayer.Limits = OCILayer.Limits()) throws -> OCIPushedProgram? {
        var objects: [(name: String, bytes: [UInt8])] = []
        for (descriptor, bytes) in layers {
            objects += try self.objects(in: descriptor, source: MemorySource(bytes), limits: limits, found: objects)
        }
        return program(objects: objects, config: config, annotations: annotations)
    }

    /// The BPF objects of one layer read as a stream: only BPF objects are held in memory, and
    /// the read stops at the limits (a raw object, or all of them together, over
    /// `limits.keptBytes`; any bound of a tar+gzip layer), so a small compressed layer cannot
    /// make the server hold more than the objects it may keep.
    static func objects<Source: ByteSource>(in descriptor: OCIDescriptor, source: Source, limits: OCILayer.Limits,
                                            found: [(name: String, bytes: [UInt8])]) throws -> [(name: String, bytes: [UInt8])] {
        var source = source
        var limits = limits
        limits.keptBytes -= found.reduce(0) { $0 + $1.bytes.count }
        var head = [UInt8](repeating: 0, count: 64), filled = 0
        while filled < head.count {
            let n = try head.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            guard n > 0 else { break }
            filled += n
        }
        head.removeLast(head.count - filled)
        if isBPFObject(head) {
            var bytes = head, buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                guard n > 0 else { break }
                bytes += buffer[0..<n]
                guard bytes.count <= min(limits.fileBytes, limits.keptBytes) else {
                    throw OCILayer.Failure(description: "the pushed objects are larger than \(min(limits.fileBytes, limits.keptBytes)) bytes")
                }
            }
            let title = descriptor.annotations?["org.opencontainers.image.title"].map { String($0.split(separator: "/").last ?? "") }
            let name = title.flatMap { $0.hasSuffix(".o") && RelativePath.isSafe($0) ? $0 : nil } ?? "program\(found.isEmpty ? "" : "-\(found.count)").bpf.o"
            return [(name, bytes)]
        }
        guard [OCIMediaType.layerTarGzip, OCIMediaType.dockerLayerGzip].contains(descriptor.mediaType) else { return [] }
        let files = try OCILayer.regularFiles(tarGzip: PrefixedSource(head: head, rest: source), limits: limits, keep: isBPFObject)
        return files.map { (String($0.name.split(separator: "/").last ?? ""), $0.bytes) }
    }

    /// The program made of the objects found, or nil when there is none. Objects are named
    /// apart from each other and from the files the package is written with.
    static func program(objects found: [(name: String, bytes: [UInt8])], config: [UInt8]?, annotations: [String: String]) -> OCIPushedProgram? {
        var taken: Set<String> = ["epr.toml", "README.md", "LICENSE"]
        let objects = found.enumerated().map { index, object in
            var name = object.name
            if name.isEmpty || !RelativePath.isSafe(name) || taken.contains(name) { name = "program-\(index).bpf.o" }
            while taken.contains(name) { name = "program-\(index)-\(taken.count).bpf.o" }
            taken.insert(name)
            return (name: name, bytes: object.bytes)
        }
        guard !objects.isEmpty else { return nil }
        var labels = annotations
        var architecture: String?
        if let config, let image = try? JSONDecoder().decode(OCIImageConfig.self, from: Data(config)) {
            labels.merge(image.config?.Labels ?? [:]) { current, _ in current }
            architecture = image.architecture
        }
        return OCIPushedProgram(objects: objects, labels: labels, architecture: architecture)
    }

    /// Writes the package directory for `name@version` into `directory`.
    func write(name: String, version: SemanticVersion, publisher: String, into directory: URL) throws {
        let inspector = BPFObjectInspector()
        var programs: [String] = []
        var elfLicense: String?
        var kinds: [String: String] = [:]
        if let text = labels["io.ebpf.programs"], let declared = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) {
            kinds = declared
        }
        for object in objects {
            try Data(object.bytes).write(to: directory.appendingPathComponent(object.name))
            let report: ObjectReport
            do throws(BPFObjectError) { report = try inspector.inspect(object.bytes) } catch {
                throw OCIError.manifestInvalid("\(object.name) is not a BPF object the repository can read: \(error)")
            }
            elfLicense = elfLicense ?? report.license
            for program in report.programs {
                let type = kinds[program.name] ?? program.type
                programs.append("""
                    [[program]]
                    object = \(Self.quoted(object.name))
                    entry = \(Self.quoted(program.name))
                    type = \(Self.quoted(type))
                    maps = [\(program.maps.map(Self.quoted).joined(separator: ", "))]
                    co_re = \(report.isCORE)

                    """)
            }
        }
        guard !programs.isEmpty else { throw OCIError.manifestInvalid("the pushed objects hold no BPF program") }
        guard let license = labels["org.opencontainers.image.licenses"] ?? elfLicense.flatMap(Self.spdx) else {
            throw OCIError.manifestInvalid("say the program's licence with the annotation or label org.opencontainers.image.licenses (an SPDX expression)")
        }
        let description = labels["org.opencontainers.image.description"] ?? "The eBPF program \(name), pushed as an OCI artifact."
        let architecture = architecture.map(OCIArtifacts.packageArchitecture) ?? "x86_64"
        let platforms = (labels["io.epr.platforms"] ?? "any").split(separator: ",").map { Self.quoted($0.trimmingCharacters(in: .whitespaces)) }
        var manifest = """
            [package]
            name = \(Self.quoted(name))
            version = \(Self.quoted(version.description))
            description = \(Self.quoted(description))
            license = \(Self.quoted(license))
            artifact = \(Self.quoted(name.replacingOccurrences(of: "-", with: "_") + ".tar.gz"))
            readme = "README.md"
            license_file = "LICENSE"
            platforms = [\(platforms.joined(separator: ", "))]
            architectures = [\(Self.quoted(architecture))]

            """
        manifest += "authors = [\(Self.quoted(labels["org.opencontainers.image.authors"] ?? publisher))]\n"
        if let source = labels["org.opencontainers.image.source"] { manifest += "repository = \(Self.quoted(source))\n" }
        if let url = labels["org.opencontainers.image.url"] { manifest += "homepage = \(Self.quoted(url))\n" }
        manifest += "\n" + programs.joined(separator: "\n")
        try Data(manifest.utf8).write(to: directory.appendingPathComponent(Manifest.fileName))
        try Data("# \(name)\n\n\(description)\n\nPushed to the repository as an OCI artifact.\n".utf8).write(to: directory.appendingPathComponent("README.md"))
        try Data("SPDX-License-Identifier: \(license)\n".utf8).write(to: directory.appendingPathComponent("LICENSE"))
    }

    /// The SPDX expression for a license string the kernel accepts.
    static func spdx(_ elf: String) -> String? {
        switch elf {
        case "GPL", "GPL v2", "GPL and additional rights": "GPL-2.0-only"
        case "Dual BSD/GPL": "BSD-2-Clause OR GPL-2.0-only"
        case "Dual MIT/GPL": "MIT OR GPL-2.0-only"
        case "Dual MPL/GPL": "MPL-2.0 OR GPL-2.0-only"
        default: nil
        }
    }

    /// A TOML basic string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f { out += String(format: "\\u%04X", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// Bytes already read from the front of a source, then the rest of it.
struct PrefixedSource<Rest: ByteSource>: ByteSource {
    var head: [UInt8]
    var rest: Rest

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard head.isEmpty || buffer.isEmpty else {
            let count = min(buffer.count, head.count)
            head.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
            head.removeFirst(count)
            return count
        }
        return try rest.read(into: buffer)
    }
}
