import Crypto
import Foundation
import PackageFormat
import Storage
@testable import Registry
@testable import Server
import TestSupport
import Testing

/// The OCI API's pure pieces: names and tags, layers, bearer tokens, pushed programs' manifests.
@Suite struct OCIUnitTests {
    @Test func namesAndTagsFollowTheSpecification() {
        for name in ["a", "xdp-port-filter", "a.b_c__d--e", "org/sub-name", "a0"] { #expect(OCIReference.isValidName(name), "\(name)") }
        for name in ["", "A", "-a", "a-", "a..b", "a___b", "a/", "/a", "a//b", "a b", "a.-b"] { #expect(!OCIReference.isValidName(name), "\(name)") }
        for tag in ["latest", "1.0.0", "1.0.0_build.5", "_x", "A-b.c"] { #expect(OCIReference.isValidTag(tag), "\(tag)") }
        for tag in ["", ".x", "-x", "a+b", String(repeating: "a", count: 129), "a/b"] { #expect(!OCIReference.isValidTag(tag), "\(tag)") }
        #expect(OCIReference.tag(version: "1.2.3+build.7") == "1.2.3_build.7")
        #expect(OCIReference.version(tag: "1.2.3_build.7")?.description == "1.2.3+build.7")
        #expect(OCIReference.version(tag: "notes") == nil)
        #expect(SHA256Digest(oci: "sha256:" + String(repeating: "a", count: 64)) != nil)
        #expect(SHA256Digest(oci: "sha256:" + String(repeating: "A", count: 64)) == nil)
        #expect(SHA256Digest(oci: "sha512:" + String(repeating: "a", count: 128)) == nil)
    }

    @Test func layersRoundTripAndAreDeterministic() throws {
        let files = [(name: "b.o", bytes: [UInt8](repeating: 7, count: 1000)), (name: "a.o", bytes: Array("hello".utf8))]
        let first = try OCILayer.tarGzip(files, modificationTime: 1_700_000_000)
        let second = try OCILayer.tarGzip(files.reversed(), modificationTime: 1_700_000_000)
        #expect(first.archive == second.archive)
        let read = try OCILayer.regularFiles(tarGzip: first.archive)
        #expect(read.map(\.name) == ["a.o", "b.o"])
        #expect(read[1].bytes == files[0].bytes)
        // The diff_id is the digest of the uncompressed tar.
        var tar: [UInt8] = []
        let gzip = try GzipReader(MemorySource(first.archive))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try gzip.read(into: $0) }
            if n == 0 { break }
            tar += buffer[0..<n]
        }
        #expect(SHA256Digest(of: tar) == first.diffID)
        #expect(throws: OCILayer.Failure.self) { try OCILayer.tarGzip([(name: "../x.o", bytes: [1])]) }
        #expect(throws: OCILayer.Failure.self) { try OCILayer.regularFiles(tarGzip: Array("not gzip".utf8)) }
    }

    @Test func bearerTokensAreSignedAndExpire() throws {
        let tokens = OCITokens(key: SymmetricKey(size: .bits256))
        let now = Date()
        let token = tokens.issue(.init(sub: "alice", th: "abc", access: ["xdp": ["pull", "push"]], exp: now.timeIntervalSince1970 + 300,
                                       iat: now.timeIntervalSince1970))
        let claims = try #require(tokens.verify(token, now: now))
        #expect(claims.sub == "alice")
        #expect(claims.access == ["xdp": ["pull", "push"]])
        #expect(tokens.verify(token, now: now.addingTimeInterval(301)) == nil, "expired")
        // Another key, or a changed payload, does not verify.
        #expect(OCITokens(key: SymmetricKey(size: .bits256)).verify(token, now: now) == nil)
        let parts = token.dropFirst(OCITokens.prefix.count).split(separator: ".")
        let forged = try JSONEncoder().encode(OCITokens.Claims(sub: "admin", th: "abc", access: ["xdp": ["*"]], exp: now.timeIntervalSince1970 + 300,
                                                               iat: now.timeIntervalSince1970))
        #expect(tokens.verify(OCITokens.prefix + OCITokens.base64URL(forged) + "." + parts[1], now: now) == nil)
        #expect(OCITokens.parse(scopes: ["repository:a:pull,push", "repository:b:pull repository:a:delete", "repository:c:pull+repository:d:push"])
                == ["a": ["pull", "push", "delete"], "b": ["pull"], "c": ["pull"], "d": ["push"]])
        let caller = OCICaller(principal: nil, access: ["a": ["pull"]])
        #expect(caller.allows("pull", on: "a"))
        #expect(!caller.allows("push", on: "a"))
        #expect(!caller.allows("pull", on: "b"))
    }

    @Test func pushedProgramsBecomeManifests() throws {
        let object = try Fixtures.bytes("xdp-port-filter/port_filter.bpf.o")
        #expect(OCIPushedProgram.isBPFObject(object))
        #expect(!OCIPushedProgram.isBPFObject(Array("#!/bin/sh".utf8)))
        let layer = try OCILayer.tarGzip([(name: "port_filter.bpf.o", bytes: object), (name: "README", bytes: Array("x".utf8))])
        let descriptor = OCIDescriptor(mediaType: OCIMediaType.layerTarGzip, digest: SHA256Digest(of: layer.archive), size: Int64(layer.archive.count))
        let program = try #require(try OCIPushedProgram.find(layers: [(descriptor, layer.archive)], config: nil,
                                                             annotations: ["org.opencontainers.image.description": "A \"quoted\"\ndescription"]))
        #expect(program.objects.map(\.name) == ["port_filter.bpf.o"])
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try program.write(name: "pushed-filter", version: try SemanticVersion("2.1.0"), publisher: "alice", into: directory)
        let built = try PackageBuilder().build(directory: directory, output: directory.appendingPathComponent("out.tar.gz"), modificationTime: 0)
        #expect(built.manifest.name.value == "pushed-filter")
        #expect(built.manifest.description == "A \"quoted\"\ndescription")
        #expect(built.manifest.license == "BSD-2-Clause OR GPL-2.0-only" || built.manifest.license == "GPL-2.0-only", "from the object's licence")
        #expect(built.manifest.programs.map(\.entry) == ["xdp_port_filter"])
        #expect(built.manifest.programs.first?.type == "xdp")
        #expect(OCIPushedProgram.spdx("Dual MIT/GPL") == "MIT OR GPL-2.0-only")
        #expect(OCIPushedProgram.spdx("Proprietary") == nil)
        #expect(OCIPushedProgram.quoted("a\u{1}b") == "\"a\\u0001b\"")
    }

    /// A package for two architectures is an image index of two images; the contributor's
    /// signature hangs off the package artifact; every manifest made is signed.
    @Test func severalArchitecturesMakeAnIndex() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("pkg")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-port-filter"), to: source)
        let toml = source.appendingPathComponent("epr.toml")
        let text = try String(contentsOf: toml, encoding: .utf8)
        try text.replacingOccurrences(of: #"architectures = ["x86_64"]"#, with: #"architectures = ["x86_64", "arm64"]"#)
            .write(to: toml, atomically: true, encoding: .utf8)
        let built = try PackageBuilder().build(directory: source, output: directory, modificationTime: 0)
        #expect(built.manifest.architectures == ["x86_64", "arm64"])
        let report = try PackageInspector().inspect(path: built.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: built.path)))
        let envelope = Data(#"{"payloadType":"x","payload":"","signatures":[]}"#.utf8)
        let record = VersionRecord(package: "xdp-port-filter", version: "1.0.0+arm.1", artifact: built.manifest.artifact, platforms: built.manifest.platforms,
                                   digest: report.sha256, size: Int64(archive.count), manifest: try encoder.encode(built.manifest),
                                   report: try encoder.encode(report), publisher: "alice", publishedAt: Date(timeIntervalSince1970: 1_800_000_000),
                                   signature: SignatureRecord(envelope: envelope, signer: "alice", keyID: "k1", checkedAt: Date()))
        let signer = OCISigner(key: P256.Signing.PrivateKey(), referencePrefix: "epr.example/")
        let artifacts = try OCIArtifacts.make(record: record, canonical: "xdp-port-filter", archive: archive, signer: signer)

        let byDigest = Dictionary(uniqueKeysWithValues: artifacts.publication.manifests.map { ($0.digest, $0) })
        let top = try #require(byDigest[artifacts.image])
        #expect(top.mediaType == OCIMediaType.imageIndex)
        let index = try JSONDecoder().decode(OCIManifestDocument.self, from: top.content)
        #expect(index.manifests?.compactMap { $0.platform?.architecture } == ["amd64", "arm64"])
        #expect(Set(top.children) == Set(index.manifests?.compactMap { SHA256Digest(oci: $0.digest) } ?? []))
        // Each image's config names its architecture; both share the layer with the object.
        var layers: Set<PackageFormat.SHA256Digest> = []
        for child in top.children {
            let childManifest = try #require(byDigest[child])
            let image = try JSONDecoder().decode(OCIManifestDocument.self, from: childManifest.content)
            let configDigest = try #require(SHA256Digest(oci: image.config?.digest ?? ""))
            let configBytes = try #require(artifacts.blobs[configDigest])
            let config = try JSONDecoder().decode(OCIImageConfig.self, from: configBytes)
            #expect(["amd64", "arm64"].contains(config.architecture ?? ""))
            let layerDigest = try #require(SHA256Digest(oci: image.layers?.first?.digest ?? ""))
            layers.insert(layerDigest)
        }
        #expect(layers.count == 1)
        #expect(artifacts.publication.tags.first.map { $0.tag } == "1.0.0_arm.1")

        // The package artifact refers to the index; the contributor's signature to the package.
        let package = try #require(artifacts.publication.manifests.first { $0.artifactType == OCIMediaType.packageArtifact })
        #expect(package.subject == artifacts.image)
        #expect(package.blobs.contains(report.sha256))
        let signature = try #require(artifacts.publication.manifests.first { $0.artifactType == OCIMediaType.packageSignature })
        #expect(signature.subject == package.digest)
        #expect(signature.blobs.contains { artifacts.blobs[$0] == envelope })
        // cosign-style signatures: the index, the package artifact and each image, each verifiable.
        let signatures = artifacts.publication.manifests.filter { $0.artifactType == OCIMediaType.cosignSignature }
        #expect(Set(signatures.compactMap(\.subject)) == Set([artifacts.image, package.digest] + top.children))
        for manifest in signatures {
            let document = try JSONDecoder().decode(OCIManifestDocument.self, from: manifest.content)
            let layer = try #require(document.layers?.first)
            let payloadDigest = try #require(SHA256Digest(oci: layer.digest))
            let payload = try #require(artifacts.blobs[payloadDigest])
            let encoded = try #require(layer.annotations?["dev.cosignproject.cosign/signature"])
            let der = try #require(Data(base64Encoded: encoded))
            #expect(signer.publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: der), for: payload))
            let claims = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
            let critical = try #require(claims["critical"] as? [String: Any])
            #expect((critical["image"] as? [String: String])?["docker-manifest-digest"] == manifest.subject?.description)
            #expect((critical["identity"] as? [String: String])?["docker-reference"] == "epr.example/xdp-port-filter")
            #expect(artifacts.publication.tags.contains { $0.tag == "sha256-\(manifest.subject!.hex).sig" && $0.digest == manifest.digest })
        }
        // Every blob a manifest names is among those stored.
        for manifest in artifacts.publication.manifests { #expect(manifest.blobs.allSatisfy { artifacts.blobs[$0] != nil }) }
    }
}
