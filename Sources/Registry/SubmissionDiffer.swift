import Foundation
import PackageFormat
import RegistryAPI
import Storage

/// What a submission changes against the version before it: the manifest's fields, programs,
/// maps, helpers per program, files and sources.
enum SubmissionDiffer {
    static func diff(_ submission: SubmissionRecord, base: VersionRecord?) throws -> SubmissionDiff {
        let decoder = JSONDecoder()
        let after = try decoder.decode(PackageReport.self, from: submission.version.report)
        let before = try base.map { try decoder.decode(PackageReport.self, from: $0.report) }
        let manifest = fields(base?.manifest, submission.version.manifest)

        func programs(_ report: PackageReport?) -> [String: Set<String>] {
            var result: [String: Set<String>] = [:]
            for object in report?.objects ?? [] {
                for program in object.report?.programs ?? [] { result["\(object.path):\(program.name)"] = Set(program.helpers.map(\.name)) }
            }
            return result
        }
        func maps(_ report: PackageReport?) -> Set<String> {
            Set((report?.objects ?? []).flatMap { object in (object.report?.maps ?? []).map { "\(object.path):\($0.name) (\($0.type))" } })
        }
        func files(_ report: PackageReport?) -> [String: String] {
            Dictionary((report?.files ?? []).filter { $0.kind == .file }.map { ($0.path, $0.sha256?.hex ?? "") }, uniquingKeysWith: { a, _ in a })
        }
        let (oldPrograms, newPrograms) = (programs(before), programs(after))
        let helpers = newPrograms.keys.sorted().compactMap { name -> SubmissionDiff.HelperChange? in
            guard let old = oldPrograms[name], let new = newPrograms[name], old != new else { return nil }
            return SubmissionDiff.HelperChange(program: name, added: new.subtracting(old).sorted(), removed: old.subtracting(new).sorted())
        }
        let (oldMaps, newMaps) = (maps(before), maps(after))
        let (oldFiles, newFiles) = (files(before), files(after))
        let added = Set(newFiles.keys).subtracting(oldFiles.keys).sorted()
        let removed = Set(oldFiles.keys).subtracting(newFiles.keys).sorted()
        let changed = newFiles.keys.filter { oldFiles[$0] != nil && oldFiles[$0] != newFiles[$0] }.sorted()
        let patterns = (after.manifest?.sources ?? []) + (before?.manifest?.sources ?? [])
        let sources = (added + removed + changed).filter { path in patterns.contains { RelativePath.matches(path, pattern: $0) } }.sorted()
        return SubmissionDiff(base: base?.version, manifest: manifest,
                              programs_added: Set(newPrograms.keys).subtracting(oldPrograms.keys).sorted(),
                              programs_removed: Set(oldPrograms.keys).subtracting(newPrograms.keys).sorted(),
                              maps_added: newMaps.subtracting(oldMaps).sorted(), maps_removed: oldMaps.subtracting(newMaps).sorted(),
                              helpers: helpers, files_added: added, files_removed: removed, files_changed: changed, sources_changed: sources)
    }

    /// Top-level manifest fields whose values differ (the version aside), as JSON text.
    static func fields(_ before: Data?, _ after: Data) -> [SubmissionDiff.FieldChange] {
        func object(_ data: Data?) -> [String: Any] {
            data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        }
        func text(_ value: Any?) -> String? {
            guard let value else { return nil }
            guard JSONSerialization.isValidJSONObject([value]),
                  let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .withoutEscapingSlashes]) else {
                return "\(value)"
            }
            // Drop the brackets of the one-element array that carried it.
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
        let (old, new) = (object(before), object(after))
        return Set(old.keys).union(new.keys).subtracting(["version"]).sorted().compactMap { key in
            let (a, b) = (text(old[key]), text(new[key]))
            return a == b ? nil : SubmissionDiff.FieldChange(field: key, before: a, after: b)
        }
    }
}

extension RegistryService {
    /// What a submission changes against the highest published version below it.
    public func diff(_ id: String, by principal: Principal?) async throws -> SubmissionDiff {
        let submission = try await visibleSubmission(id, principal)
        let mine = try? SemanticVersion(submission.version.version)
        let base = VersionResolver.sorted(try await versions(canonical: submission.canonical)).last { record in
            guard let mine, let version = record.semanticVersion else { return false }
            return version < mine
        }
        return try SubmissionDiffer.diff(submission, base: base)
    }
}
