// swift-tools-version:6.1
// sockctl: see, kill, hand off and fingerprint live Linux sockets.
// Each library target is one folder under Sources/ (see ../shared/DESIGN.md for the map).
import PackageDescription

let package = Package(
    name: "sockctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sockctl", targets: ["sockctl"]),
        .library(name: "SockCtl", targets: ["Netlink", "SockDiag"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // --- kernel UAPI shim -------------------------------------------------------------
        .target(name: "CLinuxUAPI"),

        // --- netlink + sock_diag ------------------------------------------------------------
        .target(name: "Netlink", dependencies: ["CLinuxUAPI"]),
        .target(name: "SockDiag", dependencies: ["Netlink", "CLinuxUAPI"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "SockDiag"]),

        // --- command-line tool -------------------------------------------------------------
        .executableTarget(
            name: "sockctl",
            dependencies: [
                "Netlink", "SockDiag",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)

// --- SavedSYN: TCP_SAVED_SYN parsing, fingerprints, policy, NIO handler, `sockctl syn` (issue 7) ---
package.dependencies += [
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
]
package.targets += [
    .target(
        name: "SavedSYN",
        dependencies: [.product(name: "Yams", package: "Yams")]
    ),
    .target(
        name: "SavedSYNNIO",
        dependencies: [
            "SavedSYN",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]
    ),
    .executableTarget(
        name: "syn-example-server",
        dependencies: [
            "SavedSYN", "SavedSYNNIO",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Examples/syn-example-server"
    ),
    .executableTarget(name: "syn-bench", dependencies: ["SavedSYN"], path: "Benchmarks/syn-bench"),
    .testTarget(
        name: "SavedSYNTests",
        dependencies: [
            "SavedSYN", "SavedSYNNIO", "sockctl",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        exclude: ["craft_syn.py"]
    ),
]
package.products += [
    .library(name: "SavedSYN", targets: ["SavedSYN"]),
    .library(name: "SavedSYNNIO", targets: ["SavedSYNNIO"]),
]
for target in package.targets where target.name == "sockctl" {
    target.dependencies.append("SavedSYN")
}
