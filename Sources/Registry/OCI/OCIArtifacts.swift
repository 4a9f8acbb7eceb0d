import BPFObject
import Foundation
import PackageFormat
import Storage

/// What the repository publishes through the OCI API for one version: a bpfman bytecode image
/// (an image index when the package declares several architectures), the whole package as an
/// artifact that refers to the image, the contributor's signature attached to that artifact,
/// and a cosign-style signature of every manifest it makes.
public struct OCIArtifacts: Sendable {
    /// Blobs to store, by digest.
    public var blobs: [SHA256Digest: Data] = [:]
    public var publication: OCIPublication
    /// The image (or index) the version's tag names.
    public var image: SHA256Digest

    static let emptyConfig = Data("{}".utf8)

    public static func make(record: VersionRecord, canonical: String, archive: [UInt8], signer: OCISigner?) throws -> OCIArtifacts {
        let manifest = try JSONDecoder().decode(Manifest.self, from: record.manifest)
        let report = try JSONDecoder().decode(PackageReport.self, from: record.report)
        var blobs: [SHA256Digest: Data] = [:]
        func blob(_ data: Data) -> (SHA256Digest, Int64) {
            let digest = SHA256Digest(of: data)
            blobs[digest] = data
            return (digest, Int64(data.count))
        }
        let created = ISO8601DateFormatter().string(from: record.publishedAt)
        var manifests: [OCIManifestRecord] = []
        func add(_ document: OCIManifestDocument, blobs refs: [SHA256Digest], children: [SHA256Digest] = []) -> (SHA256Digest, Int64) {
            let content = document.encoded()
            let digest = SHA256Digest(of: content)
            manifests.append(OCIManifestRecord(
                repository: canonical, digest: digest, mediaType: document.mediaType ?? OCIMediaType.imageManifest,
                artifactType: document.artifactType ?? document.config?.mediaType, subject: document.subject.flatMap { SHA256Digest(oci: $0.digest) },
                content: content, blobs: refs, children: children, annotations: document.annotations ?? [:], origin: .generated,
                isPublic: true, pusher: nil, submission: nil, createdAt: record.publishedAt))
            return (digest, Int64(content.count))
        }

        // The kernel objects, from the archive, at the layer's root.
        let objects = try Self.objects(archive: archive, manifest: manifest)
        let layer = try OCILayer.tarGzip(objects.map { (name: String($0.path.split(separator: "/").last ?? ""), bytes: $0.bytes) },
                                         modificationTime: UInt64(max(0, record.publishedAt.timeIntervalSince1970)))
        let (layerDigest, layerSize) = blob(Data(layer.archive))
        var labels = Self.labels(manifest: manifest, report: report)
        if objects.count == 1 { labels["io.ebpf.filename"] = String(objects[0].path.split(separator: "/").last ?? "") }
        let annotations = Self.annotations(manifest: manifest, created: created)

        let architectures = manifest.architectures.isEmpty ? ["x86_64"] : manifest.architectures
        var images: [(OCIDescriptor, SHA256Digest)] = []
        for architecture in architectures {
            let platform = OCIPlatform(architecture: Self.ociArchitecture(architecture), os: "linux")
            let config = OCIImageConfig(created: created, architecture: platform.architecture, os: platform.os,
                                        config: .init(Labels: labels), rootfs: .init(type: "layers", diff_ids: [layer.diffID.description]))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let (configDigest, configSize) = blob(try encoder.encode(config))
            let document = OCIManifestDocument(
                mediaType: OCIMediaType.imageManifest,
                config: OCIDescriptor(mediaType: OCIMediaType.imageConfig, digest: configDigest, size: configSize),
                layers: [OCIDescriptor(mediaType: OCIMediaType.layerTarGzip, digest: layerDigest, size: layerSize)],
                annotations: annotations)
            let (digest, size) = add(document, blobs: [configDigest, layerDigest])
            images.append((OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: digest, size: size, platform: platform), digest))
        }
        let top: OCIDescriptor
        if images.count == 1 {
            var only = images[0].0
            only.platform = nil
            top = only
        } else {
            let index = OCIManifestDocument(mediaType: OCIMediaType.imageIndex, manifests: images.map(\.0), annotations: annotations)
            let (digest, size) = add(index, blobs: [], children: images.map(\.1))
            top = OCIDescriptor(mediaType: OCIMediaType.imageIndex, digest: digest, size: size)
        }

        // The whole package, attached to the image.
        let (manifestDigest, manifestSize) = blob(record.manifest)
        let archiveDigest = SHA256Digest(of: archive)
        blobs[archiveDigest] = Data(archive)
        let package = OCIManifestDocument(
            mediaType: OCIMediaType.imageManifest, artifactType: OCIMediaType.packageArtifact,
            config: OCIDescriptor(mediaType: OCIMediaType.packageManifest, digest: manifestDigest, size: manifestSize),
            layers: [OCIDescriptor(mediaType: OCIMediaType.packageArchive, digest: archiveDigest, size: Int64(archive.count),
                                   annotations: ["org.opencontainers.image.title": record.artifact])],
            subject: top, annotations: annotations)
        let (packageDigest, packageSize) = add(package, blobs: [manifestDigest, archiveDigest])
        let packageDescriptor = OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: packageDigest, size: packageSize)

        // The contributor's signature, attached to the package.
        let (emptyDigest, emptySize) = blob(Self.emptyConfig)
        let emptyDescriptor = OCIDescriptor(mediaType: OCIMediaType.empty, digest: emptyDigest, size: emptySize)
        if let signature = record.signature {
            let (envelopeDigest, envelopeSize) = blob(signature.envelope)
            let document = OCIManifestDocument(
                mediaType: OCIMediaType.imageManifest, artifactType: OCIMediaType.packageSignature, config: emptyDescriptor,
                layers: [OCIDescriptor(mediaType: OCIMediaType.dsseEnvelope, digest: envelopeDigest, size: envelopeSize)],
                subject: packageDescriptor,
                annotations: ["dev.epr.signer": signature.signer, "dev.epr.signer-key-id": signature.keyID, "org.opencontainers.image.created": created])
            _ = add(document, blobs: [emptyDigest, envelopeDigest])
        }

        // cosign-style signatures of the images and the package artifact.
        var tags: [(tag: String, digest: SHA256Digest)] = [(OCIReference.tag(version: record.version), SHA256Digest(oci: top.digest)!)]
        if let signer {
            var signed = [top, packageDescriptor]
            if images.count > 1 { signed += images.map { var d = $0.0; d.platform = nil; return d } }
            for subject in signed {
                let subjectDigest = SHA256Digest(oci: subject.digest)!
                let payload = signer.payload(repository: canonical, manifest: subjectDigest)
                let (payloadDigest, payloadSize) = blob(payload)
                let document = OCIManifestDocument(
                    mediaType: OCIMediaType.imageManifest, artifactType: OCIMediaType.cosignSignature, config: emptyDescriptor,
                    layers: [OCIDescriptor(mediaType: OCIMediaType.cosignSimpleSigning, digest: payloadDigest, size: payloadSize,
                                           annotations: ["dev.cosignproject.cosign/signature": try signer.sign(payload)])],
                    subject: subject, annotations: ["org.opencontainers.image.created": created])
                let (signatureDigest, _) = add(document, blobs: [emptyDigest, payloadDigest])
                tags.append(("sha256-\(subjectDigest.hex).sig", signatureDigest))
            }
        }
        let publication = OCIPublication(canonical: canonical, version: record.version,
                                         blobs: blobs.map { ($0.key, Int64($0.value.count)) }, manifests: manifests, tags: tags)
        return OCIArtifacts(blobs: blobs, publication: publication, image: SHA256Digest(oci: top.digest)!)
    }

    /// The package's kernel objects, read from its archive.
    static func objects(archive: [UInt8], manifest: Manifest) throws -> [(path: String, bytes: [UInt8])] {
        try manifest.regularFiles(Set(manifest.declaredObjects), inArchive: archive).map { (path: $0.key, bytes: $0.value) }.sorted { $0.path < $1.path }
    }

    /// bpfman's labels: program name to type, map name to type.
    static func labels(manifest: Manifest, report: PackageReport) -> [String: String] {
        var programs: [String: String] = [:]
        for program in manifest.programs { programs[program.entry] = program.type }
        var maps: [String: String] = [:]
        for object in report.objects {
            for map in object.report?.maps ?? [] where map.definition != .globalData { maps[map.name] = map.type }
        }
        func json(_ value: [String: String]) -> String {
            String(decoding: (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        }
        var labels = ["io.ebpf.programs": json(programs), "io.ebpf.maps": json(maps)]
        if manifest.programs.count == 1, let program = manifest.programs.first {
            labels["io.ebpf.program_name"] = program.entry
            labels["io.ebpf.bpf_function_name"] = program.entry
            labels["io.ebpf.program_type"] = program.type
        }
        labels.merge(annotations(manifest: manifest, created: nil)) { current, _ in current }
        return labels
    }

    static func annotations(manifest: Manifest, created: String?) -> [String: String] {
        var values = [
            "org.opencontainers.image.title": manifest.name.value,
            "org.opencontainers.image.version": manifest.version.description,
            "org.opencontainers.image.description": manifest.description,
            "org.opencontainers.image.licenses": manifest.license,
        ]
        if let created { values["org.opencontainers.image.created"] = created }
        if let source = manifest.repository { values["org.opencontainers.image.source"] = source }
        if let url = manifest.homepage { values["org.opencontainers.image.url"] = url }
        if !manifest.authors.isEmpty { values["org.opencontainers.image.authors"] = manifest.authors.joined(separator: ", ") }
        return values
    }

    /// Architecture names as OCI platforms spell them (Go's GOARCH).
    public static func ociArchitecture(_ name: String) -> String {
        switch name.lowercased() {
        case "x86_64", "amd64", "x86-64": "amd64"
        case "aarch64", "arm64": "arm64"
        case "armv7", "armhf", "arm": "arm"
        case "i386", "i686", "x86": "386"
        case "ppc64le", "powerpc64le": "ppc64le"
        default: name.lowercased()
        }
    }

    /// The other way: how package manifests name an OCI platform's architecture.
    public static func packageArchitecture(_ oci: String) -> String {
        switch oci {
        case "amd64": "x86_64"
        case "arm64v8", "aarch64": "arm64"
        default: oci
        }
    }
}
