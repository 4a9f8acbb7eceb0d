import BPFObject

/// Reads a package archive in one streaming pass and reports what it holds and what is wrong
/// with it: the manifest, every file with its digest, every BPF object's inspection, and the
/// manifest cross-checked against the objects.
public struct PackageInspector: Sendable {
    public var archiveLimits: ArchiveLimits
    public var inspectionLimits: InspectionLimits
    /// BPF objects are inspected in memory; larger ones are refused.
    public var maxObjectSize = 64 << 20
    public var maxTotalObjectSize = 256 << 20

    public init(archiveLimits: ArchiveLimits = ArchiveLimits(), inspectionLimits: InspectionLimits = InspectionLimits()) {
        self.archiveLimits = archiveLimits
        self.inspectionLimits = inspectionLimits
    }

    /// Inspects the archive at `path`. When `artifact` is given (the file name L3AFD will
    /// request), the top-level directory must be named after it.
    public func inspect(path: String, artifact: String? = nil) throws(ArchiveError) -> PackageReport {
        try inspect(source: try FileSource(path: path), artifact: artifact)
    }

    /// Throws only when the archive itself is unreadable or unsafe; problems with the package's
    /// contents are findings in the report.
    public func inspect<Source: ByteSource>(source: Source, artifact: String?) throws(ArchiveError) -> PackageReport {
        let hashing = HashingSource(source)
        let expected = artifact.map(Manifest.artifactBase)
        let reader = try ArchiveReader(hashing, limits: archiveLimits, expectedTopLevel: expected)
        var files: [PackageReport.FileReport] = []
        var manifestText: [UInt8]?
        var objectBytes: [String: [UInt8]] = [:]
        var objectTotal = 0
        var findings: [Finding] = []
        var userSpace: [String: (UserSpaceELF, UInt64)] = [:]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }

        while let entry = try reader.next() {
            guard !entry.relativePath.isEmpty else { continue }
            var report = PackageReport.FileReport(path: entry.relativePath, kind: entry.kind, size: entry.size,
                                                  mode: Self.octal(entry.mode), sha256: nil, linkTarget: entry.linkTarget)
            if entry.mode & 0o6000 != 0 {
                findings.append(Finding(.error, "package.setuid", "\(entry.relativePath) is set-user-ID or set-group-ID; packages may not carry such files",
                                        at: entry.relativePath))
            }
            guard entry.kind == .file else { files.append(report); continue }
            let keep = (entry.relativePath == Manifest.fileName && entry.size <= UInt64(Manifest.maxSize))
                || (entry.relativePath.hasSuffix(".o") && entry.size <= UInt64(maxObjectSize)
                    && objectTotal + Int(entry.size) <= maxTotalObjectSize)
            if entry.relativePath == Manifest.fileName && !keep {
                findings.append(Finding(.error, "manifest.too-large", "\(Manifest.fileName) is larger than \(Manifest.maxSize) bytes",
                                        at: Manifest.fileName))
            }
            if entry.relativePath.hasSuffix(".o") && !keep {
                findings.append(Finding(.error, "object.too-large", "\(entry.relativePath) is too large to inspect (\(entry.size) bytes)",
                                        at: entry.relativePath))
            }
            var hasher = StreamingSHA256()
            var secrets = SecretScanner()
            var kept: [UInt8] = []
            if keep { kept.reserveCapacity(Int(entry.size)) }
            var elf: UserSpaceELF.Reader?
            var first = true
            while true {
                let n = try reader.read(into: buffer)
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                hasher.update(chunk)
                secrets.scan(chunk)
                if keep { kept.append(contentsOf: chunk) }
                if first, chunk.starts(with: [0x7F, 0x45, 0x4C, 0x46]) { elf = UserSpaceELF.Reader() }
                first = false
                elf?.feed(chunk)
            }
            if let summary = elf?.finish() { userSpace[entry.relativePath] = (summary, entry.size) }
            for kind in secrets.found {
                findings.append(Finding(.error, "package.secret", "\(entry.relativePath) contains what looks like \(kind); secrets never belong in a package",
                                        at: entry.relativePath))
            }
            report.sha256 = hasher.finalize()
            files.append(report)
            if entry.relativePath == Manifest.fileName {
                manifestText = kept
            } else if keep, kept.starts(with: [0x7F, 0x45, 0x4C, 0x46]) || entry.relativePath.hasSuffix(".bpf.o") {
                objectBytes[entry.relativePath] = kept
                objectTotal += kept.count
            }
        }

        let inspector = BPFObjectInspector(limits: inspectionLimits)
        var results: [String: Result<ObjectReport, BPFObjectError>] = [:]
        for (path, bytes) in objectBytes {
            do throws(BPFObjectError) { results[path] = .success(try inspector.inspect(bytes)) } catch { results[path] = .failure(error) }
        }
        var manifest: Manifest?
        if let manifestText {
            if let text = String(validating: manifestText, as: UTF8.self) {
                do throws(ManifestError) {
                    let parsed = try Manifest.parse(text)
                    manifest = parsed.manifest
                    findings += parsed.warnings
                } catch {
                    findings += error.findings
                }
            } else {
                findings.append(Finding(.error, "manifest.encoding", "\(Manifest.fileName) is not UTF-8", at: Manifest.fileName))
            }
        } else if !findings.contains(where: { $0.check == "manifest.too-large" }) {
            findings.append(Finding(.error, "manifest.missing", "the package has no \(Manifest.fileName) in its top-level directory"))
        }
        if let manifest {
            if let artifact, artifact != manifest.artifact {
                findings.append(Finding(.error, "package.artifact-mismatch",
                                        "the archive is named \(artifact) but its manifest declares artifact \(manifest.artifact)"))
            } else if reader.topLevel != manifest.artifactBase {
                findings.append(Finding(.error, "package.top-level-mismatch",
                                        "the top-level directory is \(reader.topLevel ?? "missing"), but artifact \(manifest.artifact) needs \(manifest.artifactBase)/"))
            }
            let packageFiles = files.filter { $0.kind == .file || $0.kind == .hardlink }
                .map { ManifestConsistency.PackageFile(path: $0.path, isExecutable: (UInt32($0.mode, radix: 8) ?? 0) & 0o111 != 0) }
            findings += ManifestConsistency(manifest: manifest, files: packageFiles, objects: results, userSpace: userSpace).findings()
        }
        return PackageReport(
            artifact: artifact, topLevel: reader.topLevel ?? "", sha256: hashing.digest, size: hashing.count,
            manifest: manifest, files: files.sorted { $0.path < $1.path },
            objects: results.keys.sorted().map { path in
                switch results[path]! {
                case let .success(report): PackageReport.ObjectEntry(path: path, report: report, error: nil)
                case let .failure(error): PackageReport.ObjectEntry(path: path, report: nil, error: "\(error) [\(error.code)]")
                }
            },
            findings: findings.sorted { ($0.severity, $0.location ?? "", $0.check) < ($1.severity, $1.location ?? "", $1.check) })
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
