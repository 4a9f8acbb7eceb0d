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
        .target(
            name: "CLI",
            dependencies: [
                "BPFObject", "PackageFormat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "epr", dependencies: ["CLI"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BPFObjectTests", dependencies: ["BPFObject", "TestSupport"]),
        .testTarget(name: "PackageFormatTests", dependencies: ["PackageFormat", "BPFObject", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "PackageFormat", "BPFObject", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
