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
        // --- filter (issue 3) ---
        .library(name: "SocketFilter", targets: ["SocketFilter"]),
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

        // --- filter language: ss FILTER -> AST -> INET_DIAG_BC_* bytecode + residual (issue 3) ---
        .target(name: "SocketFilter", dependencies: ["SockDiag", "CLinuxUAPI"]),
        .testTarget(name: "SocketFilterTests", dependencies: ["SocketFilter", "SockDiag"]),
        .testTarget(name: "FilterEquivalenceTests", dependencies: ["SocketFilter", "SockDiag", "CLinuxUAPI"],
                    exclude: ["fixture.py", "peer.py"]),

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
