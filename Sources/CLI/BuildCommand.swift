import ArgumentParser
import Checks
import Foundation
import PackageFormat

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a package from its sources as its [build] table says, run its tests, and write its archive.",
        discussion: """
        Kernel objects are compiled with clang -O2 -g -target bpf -D__TARGET_ARCH_<arch> (CO-RE: \
        vmlinux.h is made from /sys/kernel/btf/vmlinux unless --vmlinux supplies one), the \
        user-space program with the system compiler and libbpf, then the package's test script \
        runs and the archive is written as `epr package` writes it. The same sources give the \
        same bytes: the archive's times come from SOURCE_DATE_EPOCH (else the epoch). CLANG, \
        LLVM_STRIP, CC and BPFTOOL choose the tools. See docs/building.md.
        """
    )

    @Argument(help: "The package directory, holding epr.toml.")
    var directory: String = "."

    @Option(name: .shortAndLong, help: "Output file, or a directory to write <artifact> into (default: the current directory).")
    var output: String = "."

    @Option(help: "The architecture to build for, one the package declares (default: this machine's).")
    var arch: String?

    @Option(help: "A vmlinux.h to compile CO-RE objects against instead of one made from this machine's kernel.")
    var vmlinux: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        var options = PackageBuild.Options()
        options.architecture = arch
        options.vmlinux = vmlinux.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let directoryURL = URL(fileURLWithPath: directory)
        let built: (manifest: Manifest, steps: [PackageBuild.Step])
        do {
            built = try PackageBuild(options: options).run(directory: directoryURL)
        } catch let failure as PackageBuild.Failure {
            if json {
                try Output.json(BuildResult(path: nil, sha256: nil, log: PackageBuild.log(failure.steps), error: failure.message, findings: []))
            } else {
                FileHandle.standardError.write(Data(PackageBuild.log(failure.steps).utf8))
                Output.error("the build failed [\(failure.check)]: \(failure.message)")
            }
            throw ReportedFailure()
        }
        if !json { FileHandle.standardError.write(Data(PackageBuild.log(built.steps).utf8)) }
        let result: PackageBuilder.Result
        do {
            result = try PackageBuilder().build(directory: directoryURL, output: URL(fileURLWithPath: output),
                                                modificationTime: PackageBuilder.modificationTime(environment: ProcessInfo.processInfo.environment))
        } catch let failure as PackageBuilder.Failure {
            for finding in failure.findings { Output.error(finding.description) }
            throw ReportedFailure()
        } catch let failure as ManifestError {
            for finding in failure.findings { Output.error(finding.description) }
            throw ReportedFailure()
        }
        if json {
            try Output.json(BuildResult(path: result.path, sha256: result.digest.description, log: PackageBuild.log(built.steps), error: nil,
                                        findings: result.warnings))
        } else {
            for finding in result.warnings { Output.error(finding.description) }
            Output.line("built \(result.manifest.name)@\(result.manifest.version) -> \(result.path)")
            Output.line("\(result.digest)")
        }
    }

    struct BuildResult: Encodable {
        var path: String?
        var sha256: String?
        var log: String
        var error: String?
        var findings: [Finding]
    }
}
