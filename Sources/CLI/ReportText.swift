import BPFObject
import PackageFormat

/// The human-readable form of inspection reports.
enum ReportText {
    static func package(_ report: PackageReport) -> String {
        var lines: [String] = []
        lines.append("\(report.artifact ?? report.topLevel)  \(report.sha256)  \(report.size) bytes")
        if let manifest = report.manifest {
            lines.append("package \(manifest.name) \(manifest.version)  license \(manifest.license)")
            lines.append("  \(manifest.description)")
            lines.append("  artifact \(manifest.artifact)  platforms \(manifest.platforms.joined(separator: ","))  architectures \(manifest.architectures.joined(separator: ","))")
            if let user = manifest.userProgram {
                lines.append("  user program \(user.cmdStart)\(user.daemon ? " (daemon)" : "")"
                             + (user.dependencies.isEmpty ? "" : ", needs: \(user.dependencies.joined(separator: "; "))"))
            }
        }
        lines.append("")
        lines.append("files (\(report.files.count)) under \(report.topLevel)/:")
        for file in report.files {
            let size = String(file.size)
            lines.append("  \(file.mode) \(String(repeating: " ", count: max(0, 10 - size.count)))\(size)  \(file.path)"
                         + (file.linkTarget.map { " -> \($0)" } ?? ""))
        }
        for object in report.objects {
            lines.append("")
            if let inspection = object.report {
                lines.append(Self.object(inspection, path: object.path))
            } else {
                lines.append("object \(object.path): cannot be inspected: \(object.error ?? "unknown error")")
            }
        }
        lines.append("")
        lines.append(findings(report.findings))
        return lines.joined(separator: "\n")
    }

    static func object(_ report: ObjectReport, path: String) -> String {
        var lines: [String] = []
        let license = report.license.map { "license \"\($0)\" (\(report.gplCompatible ? "GPL-compatible" : "not GPL-compatible"))" } ?? "no license section"
        var features = [report.byteOrder + "-endian", license]
        features.append(report.hasBTF ? "BTF" : "no BTF")
        if report.hasBTFExt { features.append("BTF.ext") }
        features.append(report.isCORE ? "CO-RE (\(report.coreRelocations) relocations)" : "not CO-RE")
        lines.append("object \(path): " + features.joined(separator: ", "))
        lines.append("  programs (\(report.programs.count)):")
        for program in report.programs {
            let target = program.attachTarget.map { " -> \($0)" } ?? ""
            lines.append("    \(program.name)  \(program.kind) [\(program.type)\(target)]  section \(program.section)  \(program.instructions) instructions")
            if !program.helpers.isEmpty {
                lines.append("      helpers: " + program.helpers.map { "\($0.id) \($0.name)\($0.gplOnly ? " (GPL)" : "")\($0.securitySensitive ? " (sensitive)" : "")" }.joined(separator: ", "))
            }
            if !program.kfuncs.isEmpty { lines.append("      kfuncs: " + program.kfuncs.joined(separator: ", ")) }
            if !program.maps.isEmpty { lines.append("      maps: " + program.maps.joined(separator: ", ")) }
            if program.tailCalls > 0 {
                lines.append("      tail calls: \(program.tailCalls)" + (program.tailCallMaps.isEmpty ? "" : " through " + program.tailCallMaps.joined(separator: ", ")))
            }
            if !program.subprograms.isEmpty { lines.append("      calls: " + program.subprograms.joined(separator: ", ")) }
            if program.coreRelocations > 0 { lines.append("      CO-RE relocations: \(program.coreRelocations)") }
        }
        if !report.maps.isEmpty {
            lines.append("  maps (\(report.maps.count)):")
            for map in report.maps {
                lines.append("    \(map.name)  \(map.type)  key \(map.keySize)  value \(map.valueSize)  max \(map.maxEntries)"
                             + (map.flags != 0 ? "  flags 0x\(String(map.flags, radix: 16))" : "")
                             + (map.pinning != "none" ? "  pinned \(map.pinning)" : "") + "  (\(map.definition.rawValue))")
            }
        }
        if !report.subprograms.isEmpty {
            lines.append("  subprograms: " + report.subprograms.map { "\($0.name) (\($0.instructions))" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    static func findings(_ findings: [Finding]) -> String {
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        var lines = findings.map { "  " + $0.description }
        lines.insert("findings: \(errors) error(s), \(warnings) warning(s)" + (findings.isEmpty ? "" : ":"), at: 0)
        return lines.joined(separator: "\n")
    }
}
