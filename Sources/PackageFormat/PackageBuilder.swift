import BPFObject
import Foundation

/// Turns a package directory (with its `epr.toml`) into a package archive: validates the
/// manifest against the objects first, then writes the archive deterministically.
public struct PackageBuilder {
    public struct Failure: Error, CustomStringConvertible {
        public let findings: [Finding]
        public var description: String { findings.filter { $0.severity == .error }.map(\.description).joined(separator: "\n") }
    }

    public struct Result: Sendable {
        public var path: String
        public var digest: SHA256Digest
        public var manifest: Manifest
        public var warnings: [Finding]
    }

    public var inspectionLimits = InspectionLimits()
    /// Leaves out what the `[build]` table builds (objects, the user-space program): a package
    /// of sources, which the repository's build workers build.
    public var sourcesOnly = false
    public init() {}

    /// Paths of the package's built files: what `[build]` writes.
    public static func builtFiles(_ manifest: Manifest) -> Set<String> {
        guard let build = manifest.build else { return [] }
        return Set(build.objects.map(\.object) + (build.user.map { [$0.output] } ?? []))
    }

    /// The files a package directory contributes, by path inside the package.
    public func files(of manifest: Manifest, in directory: URL) throws(Failure) -> [ArchiveWriter.File] {
        var findings: [Finding] = []
        if sourcesOnly, manifest.build == nil {
            throw Failure(findings: [Finding(.error, "build.unsupported", "a package of sources needs a [build] table saying how it is built", at: "build")])
        }
        let leftOut = sourcesOnly ? Self.builtFiles(manifest) : []
        var paths: [String] = [Manifest.fileName, manifest.readme, manifest.licenseFile] + manifest.declaredObjects.filter { !leftOut.contains($0) }
        var executables: Set<String> = []
        if let user = manifest.userProgram {
            paths += user.files.filter { !leftOut.contains($0) }
            executables = Set([user.cmdStart, user.cmdStop, user.cmdStatus, user.cmdUpdate].compactMap { $0 }.filter { !$0.isEmpty })
        }
        if !manifest.sources.isEmpty {
            let all = Self.walk(directory)
            for pattern in manifest.sources {
                let matched = all.filter { RelativePath.matches($0, pattern: pattern) }
                if matched.isEmpty {
                    findings.append(Finding(.error, "package.file-missing", "sources pattern \(pattern) matches no file", at: "package.sources"))
                }
                paths += matched
            }
        }
        var files: [ArchiveWriter.File] = []
        for path in Set(paths).sorted() {
            let url = directory.appendingPathComponent(path)
            // No directory on the way may be a link: the package takes files of its own
            // directory only (a build could otherwise point one at the rest of the machine).
            var parent = directory, linked = false
            for component in path.split(separator: "/").dropLast() {
                parent = parent.appendingPathComponent(String(component))
                var info = stat()
                if lstat(parent.path, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR { linked = true; break }
            }
            if linked {
                findings.append(Finding(.error, "package.not-regular-file", "\(path) is not below a directory of the package (a link or nothing is on its way)", at: path))
                continue
            }
            var info = stat()
            guard lstat(url.path, &info) == 0 else {
                findings.append(Finding(.error, "package.file-missing", "\(path) does not exist", at: path))
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                findings.append(Finding(.error, "package.not-regular-file", "\(path) is not a regular file (links are not packaged)", at: path))
                continue
            }
            let executable = executables.contains(path) || info.st_mode & 0o111 != 0
            files.append(ArchiveWriter.File(path: path, source: url.path, executable: executable))
        }
        guard !findings.hasErrors else { throw Failure(findings: findings) }
        return files
    }

    /// Validates the package in `directory` and writes its archive. `output` is a file path,
    /// or a directory to write `<artifact>` into.
    public func build(directory: URL, output: URL, modificationTime: UInt64) throws -> Result {
        let manifestURL = directory.appendingPathComponent(Manifest.fileName)
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw Failure(findings: [Finding(.error, "manifest.missing", "\(manifestURL.path) does not exist")])
        }
        guard data.count <= Manifest.maxSize, let text = String(data: data, encoding: .utf8) else {
            throw Failure(findings: [Finding(.error, "manifest.encoding", "\(Manifest.fileName) must be UTF-8 and at most \(Manifest.maxSize) bytes")])
        }
        let (manifest, warnings) = try Manifest.parse(text)
        let files = try files(of: manifest, in: directory)
        let inspector = BPFObjectInspector(limits: inspectionLimits)
        var objects: [String: Swift.Result<ObjectReport, BPFObjectError>] = [:]
        for object in manifest.declaredObjects {
            guard let file = files.first(where: { $0.path == object }), let bytes = FileManager.default.contents(atPath: file.source) else { continue }
            do throws(BPFObjectError) { objects[object] = .success(try inspector.inspect(Array(bytes))) } catch { objects[object] = .failure(error) }
        }
        // User-space programs, read as the registry reads them.
        var userSpace: [String: (UserSpaceELF, UInt64)] = [:]
        for path in Set((manifest.userProgram?.files ?? []) + [manifest.userProgram?.cmdStart].compactMap { $0 }) {
            guard let file = files.first(where: { $0.path == path }), let handle = FileHandle(forReadingAtPath: file.source) else { continue }
            defer { try? handle.close() }
            var reader = UserSpaceELF.Reader(), size: UInt64 = 0, first = true
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                if first, !chunk.starts(with: [0x7F, 0x45, 0x4C, 0x46]) { break }
                first = false
                size += UInt64(chunk.count)
                chunk.withUnsafeBytes { reader.feed($0) }
            }
            if let summary = reader.finish() { userSpace[path] = (summary, size) }
        }
        let consistency = ManifestConsistency(
            manifest: manifest, files: files.map { .init(path: $0.path, isExecutable: $0.executable) }, objects: objects, userSpace: userSpace)
        let findings = warnings + consistency.findings()
        guard !findings.hasErrors else { throw Failure(findings: findings) }

        var isDirectory: ObjCBool = false
        let destination = FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? output.appendingPathComponent(manifest.artifact) : output
        let writer = ArchiveWriter(topLevel: manifest.artifactBase, modificationTime: modificationTime)
        let digest = try writer.write(files, to: destination.path)
        return Result(path: destination.path, digest: digest, manifest: manifest, warnings: findings)
    }

    /// Every regular file below `directory`, as relative paths, skipping hidden directories.
    static func walk(_ directory: URL) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        var result: [String] = []
        while let path = enumerator.nextObject() as? String {
            if path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            if enumerator.fileAttributes?[.type] as? FileAttributeType == .typeRegular { result.append(path) }
        }
        return result.sorted()
    }

    /// SOURCE_DATE_EPOCH when it is set and valid, else 0.
    public static func modificationTime(environment: [String: String]) -> UInt64 {
        environment["SOURCE_DATE_EPOCH"].flatMap { UInt64($0) } ?? 0
    }
}
