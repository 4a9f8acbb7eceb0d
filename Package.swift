// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "epr",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "epr", targets: ["epr"]),
        .library(name: "BPFObject", targets: ["BPFObject"]),
        .library(name: "PackageFormat", targets: ["PackageFormat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .target(name: "BPFObject"),
        .target(
            name: "PackageFormat",
            dependencies: [
                "BPFObject", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "Checks", dependencies: ["PackageFormat"]),
        .target(
            name: "Signing",
            dependencies: [
                "PackageFormat",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .target(
            name: "Storage",
            dependencies: [
                "PackageFormat",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Registry",
            dependencies: [
                "BPFObject", "Checks", "PackageFormat", "RegistryAPI", "Signing", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ]
        ),
        .target(name: "RegistryAPI"),
        .target(
            name: "Node",
            dependencies: [
                "Client", "PackageFormat", "RegistryAPI", "Signing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .target(
            name: "Server",
            dependencies: [
                "PackageFormat", "Registry", "RegistryAPI", "Signing", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Client",
            dependencies: [
                "PackageFormat", "RegistryAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(
            name: "CLI",
            dependencies: [
                "BPFObject", "Checks", "PackageFormat", "Server", "Client", "Node", "Registry", "RegistryAPI", "Signing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "epr", dependencies: ["CLI"]),
        .target(name: "TestSupport", dependencies: ["PackageFormat"], path: "Tests/TestSupport"),
        .testTarget(name: "BPFObjectTests", dependencies: ["BPFObject", "TestSupport"]),
        .testTarget(name: "PackageFormatTests", dependencies: ["PackageFormat", "BPFObject", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "PackageFormat", "BPFObject", "TestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "PackageFormat", "TestSupport", "Registry", "Node", "Signing",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "NodeTests", dependencies: ["Node", "Signing", "TestSupport", .product(name: "X509", package: "swift-certificates")]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "PackageFormat", "TestSupport"]),
        .testTarget(name: "ChecksTests", dependencies: ["Checks", "PackageFormat", "TestSupport"]),
        .testTarget(
            name: "SigningTests",
            dependencies: ["Signing", "PackageFormat", "TestSupport", .product(name: "X509", package: "swift-certificates")]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Registry", "Storage", "PackageFormat", "Checks", "Signing", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
