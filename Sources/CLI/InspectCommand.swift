import ArgumentParser
import BPFObject
import Foundation
import PackageFormat

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Report what a package archive or a BPF object contains, and what is wrong with it.",
        discussion: "Exits with status 1 when the file is refused or has error findings."
    )

    @Argument(help: "A package archive (.tar.gz) or a BPF ELF object (.o).")
    var file: String

    @Flag(help: "Print the report as JSON (schema: docs/inspect-json.md).")
    var json = false

    func run() throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
        let magic = try handle.read(upToCount: 4) ?? Data()
        try handle.close()
        if Array(magic) == [0x7F, 0x45, 0x4C, 0x46] {
            try inspectObject()
        } else {
            try inspectPackage()
        }
    }

    private func inspectObject() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file)))
        let report: ObjectReport
        do {
            report = try BPFObjectInspector().inspect(bytes)
        } catch {
            try refuse(code: error.code, message: error.description)
        }
        if json { try Output.json(report) } else { Output.line(ReportText.object(report, path: file)) }
    }

    private func inspectPackage() throws {
        let name = URL(fileURLWithPath: file).lastPathComponent
        let artifact = name.hasSuffix(".tar.gz") ? name : nil
        let report: PackageReport
        do {
            report = try PackageInspector().inspect(path: file, artifact: artifact)
        } catch {
            try refuse(code: error.code, message: error.description)
        }
        if json { try Output.json(report) } else { Output.line(ReportText.package(report)) }
        if !report.isValid { throw ReportedFailure() }
    }

    private func refuse(code: String, message: String) throws -> Never {
        if json {
            try Output.json(["error": code, "message": message, "file": file])
        } else {
            Output.error("\(file): \(message) [\(code)]")
        }
        throw ReportedFailure()
    }
}
