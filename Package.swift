// swift-tools-version:6.1
// sockctl: see, kill, hand off and fingerprint live Linux sockets.
// Each library target is one folder under Sources/ (see ../shared/DESIGN.md for the map).
import PackageDescription

let package = Package(
    name: "sockctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sockctl", targets: ["sockctl"]),
        .executable(name: "sockctl-full", targets: ["sockctl-full"]),
        .library(name: "SockCtl", targets: ["Netlink", "SockDiag", "Namespaces", "BPF"]),
        // --- filter (issue 3) ---
        .library(name: "SocketFilter", targets: ["SocketFilter"]),
        // --- handoff (products) ---
        .library(name: "Handoff", targets: ["Handoff"]),
        .library(name: "HandoffNIO", targets: ["HandoffNIO"]),
        .executable(name: "handoff-example-server", targets: ["handoff-example-server"]),
        .executable(name: "handoff-nio-example", targets: ["handoff-nio-example"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // --- handoff (dependencies) ---
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // --- kernel UAPI shim -------------------------------------------------------------
        .target(name: "CLinuxUAPI"),

        // --- netlink + sock_diag ------------------------------------------------------------
        .target(name: "Netlink", dependencies: ["CLinuxUAPI"]),
        .target(name: "SockDiag", dependencies: ["Netlink", "Namespaces", "CLinuxUAPI"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "SockDiag", "Namespaces", "CLinuxUAPI"]),
        // CLI-level oracle tests: run .build/debug/sockctl against ss in test namespaces.
        .testTarget(name: "ListTests", dependencies: ["sockctl", "sockctl-full", "SockDiag", "Namespaces"], exclude: ["fixture.py", "kill_fixture.py"]),

        // --- namespaces: discovery, setns runner, interface names, socket inode -> process --------
        .target(name: "Namespaces", dependencies: ["CLinuxUAPI"]),
        .testTarget(name: "NamespacesTests", dependencies: ["Namespaces"]),
        .executableTarget(name: "sockctl-bench-procindex", dependencies: ["Namespaces"], path: "Benchmarks/ProcIndexBench"),
        // --- BPF backend: iter/tcp + iter/udp with bpf_sock_destroy, libbpf.so.1 by dlopen (issue 4) ---
        .target(name: "CSockDestroy"),
        .target(
            name: "BPF",
            dependencies: ["CSockDestroy", .product(name: "Logging", package: "swift-log")],
            exclude: ["bpf", "README.md"]
        ),
        .testTarget(name: "BPFTests", dependencies: ["BPF", "CSockDestroy"]),
        // benchmark helper for scripts/bench-bpf-floor (not part of the CLI)
        .executableTarget(name: "sockctl-bpf-floor", dependencies: ["BPF", "CSockDestroy"], path: "Benchmarks/BPFFloor"),
        // --- filter language: ss FILTER -> AST -> INET_DIAG_BC_* bytecode + residual (issue 3) ---
        .target(name: "SocketFilter", dependencies: ["SockDiag", "CLinuxUAPI"]),
        .testTarget(name: "SocketFilterTests", dependencies: ["SocketFilter", "SockDiag"]),
        .testTarget(name: "FilterEquivalenceTests", dependencies: ["SocketFilter", "SockDiag", "CLinuxUAPI"],
                    exclude: ["fixture.py", "peer.py"]),
        // --- handoff: fd handoff, LISTEN_FDS, NOTIFY_SOCKET, generations supervisor ---------
        .target(name: "Handoff", dependencies: ["CLinuxUAPI"]),
        .target(
            name: "HandoffNIO",
            dependencies: [
                "Handoff",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "handoff-example-server",
            dependencies: ["Handoff"],
            path: "Examples/handoff-example-server"
        ),
        .executableTarget(
            name: "handoff-nio-example",
            dependencies: ["Handoff", "HandoffNIO", .product(name: "NIOPosix", package: "swift-nio")],
            path: "Examples/handoff-nio-example"
        ),
        .testTarget(
            name: "HandoffTests",
            dependencies: ["Handoff", "sockctl", "sockctl-full", "handoff-example-server", "handoff-nio-example"]
        ),

        // --- command-line tool -------------------------------------------------------------
        // `sockctl`: list, kill, watch, netns, built without the heavy libraries so that it starts
        // fast; it execs `sockctl-full` (same directory) for the other verbs (SockCtlCLIBase/Verbs.swift).
        .target(
            name: "SockCtlCLIBase",
            dependencies: ["Namespaces", "Netlink", "SocketFilter", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "sockctl",
            dependencies: [
                "Netlink", "SockDiag", "Namespaces", "SocketFilter", "SockCtlCLIBase",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "sockctl-full",
            dependencies: [
                "Netlink", "SockDiag",
                "Handoff", "Namespaces", "SocketFilter", "SockCtlCLIBase",
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
            "SavedSYN", "SavedSYNNIO", "sockctl", "sockctl-full", "syn-example-server",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        exclude: ["craft_syn.py", "fuzz-regressions"]
    ),
]
package.products += [
    .library(name: "SavedSYN", targets: ["SavedSYN"]),
    .library(name: "SavedSYNNIO", targets: ["SavedSYNNIO"]),
]
for target in package.targets where target.name == "sockctl-full" {
    target.dependencies.append("SavedSYN")
}

// --- Kill: select -> destroy by cookie -> per-socket outcome; the SocketKiller API (issue 4) ---
package.targets += [
    .target(name: "Kill", dependencies: ["SockDiag", "Netlink", "Namespaces", "SocketFilter", "BPF"]),
    .testTarget(name: "KillTests", dependencies: ["Kill", "SockDiag", "Namespaces", "SocketFilter"]),
    // benchmark helper for scripts/bench kill's netns case: the kill's kernel work alone (not part of the CLI)
    .executableTarget(name: "sockctl-netns-floor", dependencies: ["Kill", "SockDiag", "Namespaces", "SocketFilter"],
                      path: "Benchmarks/NetnsFloor"),
]
package.products += [
    .library(name: "Kill", targets: ["Kill"]),
]
for target in package.targets where target.name == "sockctl" || target.name == "sockctl-full" {
    target.dependencies.append("Kill")
}

// --- Policy daemon: YAML rules, rtnetlink events per netns, control API, metrics, audit (issue 5) ---
package.dependencies += [
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
]
package.targets += [
    .target(
        name: "Policy",
        dependencies: [
            "Netlink", "SockDiag", "Namespaces", "SocketFilter", "Kill", "Handoff", "CLinuxUAPI",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]
    ),
    .testTarget(name: "PolicyTests", dependencies: ["Policy", "Netlink", "SockDiag", "Handoff", "sockctl", "sockctl-full", .product(name: "Yams", package: "Yams")],
                exclude: ["daemon_fixture.py"]),
]
for target in package.targets where target.name == "sockctl-full" {
    target.dependencies.append("Policy")
}

// ordo-one/benchmark suite for SavedSYN (allocations and throughput per SYN). Only with
// SOCKCTL_BENCHMARKS=1 in the environment, so that normal builds and CI do not fetch or build it:
//   SOCKCTL_BENCHMARKS=1 swift package --scratch-path .build-bench benchmark --target SavedSYNParse
if Context.environment["SOCKCTL_BENCHMARKS"] == "1" {
    package.dependencies += [
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ]
    package.targets += [
        .executableTarget(
            name: "SavedSYNParse",
            dependencies: ["SavedSYN", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/SavedSYNParse",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
}

// --- list start-up (issue 3): release builds of `sockctl` and `sockctl-full` link the Swift
// runtime (and Foundation, where used) statically (what `swift build --static-swift-stdlib` does,
// for these products). Loading ~15 shared Swift libraries and binding their symbols cost about
// half of a short run. The compile flag makes the static Foundation modules' link dependencies
// (ICU) known to the linker. `sockctl` imports no Foundation, but ArgumentParser uses
// FoundationEssentials, whose static library needs three more (named here: nothing else pulls
// them in). Debug builds (tests) stay dynamic. The benches' floor programs are linked the same
// way: where a bench times their whole process, they must not pay a start-up sockctl does not.
//
// Two more for `sockctl` and the floor programs, which are started once per command:
// - The toolchain's static-stdlib link line exports every symbol of the executable
//   (-export-dynamic); they take that back (sockctl: 4,095 dynamic symbols -> 394, which the loader
//   no longer searches when it binds libc). 0.1 ms of each start-up, measured over 300 runs.
// - libstdc++ (which the Swift runtime needs) can be linked statically too. The link line names
//   `-lstdc++` before any flag a package can add, so it cannot be switched with -Bstatic; instead
//   .build/static-libstdc++ is on their library search path, ahead of the compiler's own
//   directory, and `scripts/static-libstdcxx` (which scripts/bench runs) puts a link to the
//   toolchain's libstdc++.a there, so that `-lstdc++` finds the archive. Without it (the
//   directory does not exist) the link is as before. Loading libstdc++.so.6 and binding its
//   symbols took 0.75 ms of each start-up: `sockctl list -t 'dport = :1'` 4.2 -> 3.5 ms (300
//   interleaved runs).
// sockctl-full, a long-running daemon and supervisor for the most part, keeps the default link.
let staticallyLinked: Set<String> = ["sockctl", "sockctl-full", "sockctl-bpf-floor", "sockctl-netns-floor"]
let startedPerCommand: Set<String> = ["sockctl", "sockctl-bpf-floor", "sockctl-netns-floor"]
let staticLibstdcxx = String(#filePath.dropLast("Package.swift".count)) + ".build/static-libstdc++"
for target in package.targets where staticallyLinked.contains(target.name) {
    let staticStdlib = BuildSettingCondition.when(platforms: [.linux], configuration: .release)
    var extra = target.name == "sockctl" ? ["-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization"] : []
    if startedPerCommand.contains(target.name) {
        extra += ["-Xlinker", "--no-export-dynamic", "-L" + staticLibstdcxx]
    }
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-static-stdlib"], staticStdlib)]
    target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags(["-static-stdlib"] + extra, staticStdlib)]
}

// --- TestSupport: one copy of the helpers the test targets share (commands, throwaway network
// namespaces, holder processes, plain sockets). A regular target under Tests/ so test targets can
// depend on it; the loop adds it to the test targets that use it.
package.targets += [
    .target(name: "TestSupport", path: "Tests/TestSupport"),
]
let testSupportUsers: Set<String> = ["KillTests", "BPFTests", "ListTests", "PolicyTests", "HandoffTests", "SavedSYNTests", "FilterEquivalenceTests", "NamespacesTests", "SocketFilterTests"]
for target in package.targets where testSupportUsers.contains(target.name) {
    target.dependencies.append("TestSupport")
}
