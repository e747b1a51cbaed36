// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "labnode",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "labnode", targets: ["labnode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .executableTarget(
            name: "labnode",
            dependencies: [
                "Cluster", "Runtime", "ServiceProxy", "Addons", "Labs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Cluster",
            dependencies: [
                "APIServer", "Store", "APIMachinery", "Controllers", "Runtime", "Networking", "ServiceProxy", "Addons",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "Controllers",
            dependencies: [
                "APIMachinery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "Runtime",
            dependencies: [
                "APIMachinery", "Controllers", "Networking", "CArchive", "CShims", "CSeccomp", "CCap",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Images/README.md", "Container/README.md", "Agent/README.md"]
        ),
        // Debian's C libraries (scripts/setup installs the -dev packages).
        .systemLibrary(name: "CArchive", path: "Sources/CArchive"),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp"),
        .systemLibrary(name: "CCap", path: "Sources/CCap"),
        // zlib (zlib1g-dev) for SPDY/3 header blocks.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // libnftables (libnftables-dev) for the nftables proxy's incremental updates.
        .systemLibrary(name: "CNftables", path: "Sources/CNftables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        // The little C that Swift cannot do safely (raw syscalls, prctl).
        .target(name: "CShims"),
        .target(
            name: "ServiceProxy",
            dependencies: [
                "APIMachinery", "Controllers", "Networking", "CNftables",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The userspace mode's listeners and splices.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // kube-proxy's sync metrics on :10249/metrics.
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["README.md"]
        ),
        // The DNS add-on (`labnode dns`), run as the kube-dns pods; its manifests too.
        .target(
            name: "Addons",
            dependencies: [
                "APIMachinery", "Controllers", "CShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["README.md", "DNS/README.md", "InCluster/README.md"] + ["cache", "errors", "forward", "health", "hosts", "kubernetes", "loadbalance", "log", "loop", "prometheus", "ready", "reload", "tls"].map { "DNS/Plugins/\($0)/README.md" }
        ),
        // Guided labs (`labnode lab`): scenarios from labs/, run and graded through kubectl only.
        .target(
            name: "Labs",
            dependencies: [
                "APIMachinery",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "Networking",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        .target(
            name: "APIMachinery",
            dependencies: [
                .product(name: "Collections", package: "swift-collections"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "Store",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "APIServer",
            dependencies: [
                "APIMachinery", "Store", "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["README.md"]
        ),
        // Child processes for tests (posix_spawn with a clean signal mask); not shipped.
        .target(name: "TestSupport", dependencies: ["CShims", "APIMachinery"], path: "Tests/TestSupport"),
        .testTarget(name: "APIMachineryTests", dependencies: ["APIMachinery"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "APIMachinery"]),
        .testTarget(name: "NetworkingTests", dependencies: ["Networking"]),
        .testTarget(name: "ServiceProxyTests", dependencies: [
            "ServiceProxy", "APIMachinery", "Networking",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "ControllersTests", dependencies: ["Controllers", "APIServer", "Store", "APIMachinery", "TestSupport"]),
        .testTarget(name: "APIServerTests", dependencies: [
            "APIServer", "APIMachinery", "Store", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster"]),
        .testTarget(name: "AddonsTests", dependencies: [
            "Addons", "APIMachinery", "APIServer", "Controllers", "Store", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "LabsTests", dependencies: ["Labs", "APIMachinery"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Cluster", "TestSupport"]),
    ]
)
