import ArgumentParser
import SockCtlCLIBase
import Namespaces
import SockDiag
#if canImport(Glibc)
import Glibc
#endif

/// `sockctl netns`: the network namespaces `--all-netns` works on, with the labels list/kill/watch
/// print, the user namespace that owns each (what destroy permission is checked against) and how
/// many TCP/UDP sockets each holds, so an operator can see where sockets are before a kill.
struct Netns: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netns",
        abstract: "Show the network namespaces sockctl sees (what --all-netns covers), or identify some.",
        discussion: """
        Without arguments: every network namespace on the host, named or not (/run/netns, nsfs bind \
        mounts, /proc/*/ns/net), the host's first. With NAME|PATH|PID arguments: those, resolved as \
        --netns resolves them (e.g. `sockctl netns 1234` says which namespace process 1234 is in). \
        Columns: the label list/kill/watch print (name or ino:N), the nsfs inode, `*` for the host's, \
        the owning user namespace (`init` for the initial one; SOCK_DESTROY needs CAP_NET_ADMIN \
        there), TCP and UDP sockets in use (IPv4 + IPv6, from /proc/net/sockstat inside), and the \
        path sockctl enters it by.
        Exit status: 0 listed, 2 bad usage or a namespace that cannot be found, 3 no permission.
        """
    )

    @Flag(name: .customLong("json"), help: "One JSON object per namespace per line.")
    var json = false
    @Flag(name: .customLong("threads"), help: "Also look at every thread's namespace (/proc/PID/task/TID/ns/net).")
    var threads = false
    @Argument(help: ArgumentHelp("Namespaces to show (name under /run/netns, path, or PID).", valueName: "NAME|PATH|PID"))
    var specs: [String] = []

    struct Row {
        var ns: NetworkNamespace
        var owner: NamespaceIdentity?
        /// nil when the namespace could not be entered.
        var counts: SocketCounts?
    }

    func run() throws {
        do {
            let spaces: [NetworkNamespace]
            if specs.isEmpty {
                spaces = try NamespaceResolver().discover(includeThreads: threads).namespaces
            } else {
                spaces = try NamespaceResolver().resolveAll(specs)
            }
            // The initial user namespace has had the fixed nsfs inode PROC_USER_INIT_INO
            // (0xEFFFFFFD, include/linux/proc_ns.h) since Linux 3.8; PID 1's may not be readable.
            let initUser = NamespaceIdentity(path: "/proc/1/ns/user")
                ?? NamespaceIdentity(path: "/proc/self/ns/user").map { NamespaceIdentity(device: $0.device, inode: 0xEFFF_FFFD) }
            let counts = NamespaceRunner.map(spaces) { _ in SocketCounts.current() }
            let rows = zip(spaces, counts).map { ns, c in
                Row(ns: ns, owner: ns.ownerUserNamespace(), counts: try? c.get())
            }
            var out = ByteWriter()
            if json {
                for r in rows { writeJSON(r, initUser: initUser, into: &out) }
            } else {
                writeTable(rows, initUser: initUser, into: &out)
            }
            try out.flush()
        } catch let e as ByteWriter.WriteError where e.errno == EPIPE {
            throw ExitCode.success
        } catch {
            throw fail(error)
        }
    }

    func ownerText(_ o: NamespaceIdentity?, initUser: NamespaceIdentity?) -> String {
        guard let o else { return "-" }
        return o == initUser ? "init" : "user:[\(o.inode)]"
    }

    func writeTable(_ rows: [Row], initUser: NamespaceIdentity?, into out: inout ByteWriter) {
        let header = ["NETNS", "INODE", "HOST", "OWNER", "TCP", "UDP", "PATH"]
        let cells: [[String]] = rows.map { r in
            [r.ns.label, String(r.ns.inode), r.ns.isHost ? "*" : "-", ownerText(r.owner, initUser: initUser),
             r.counts.map { String($0.tcp) } ?? "-", r.counts.map { String($0.udp) } ?? "-", r.ns.path]
        }
        var widths = header.map(\.count)
        for row in cells { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        for row in [header] + cells {
            for (i, c) in row.enumerated() {
                out.write(c)
                if i < row.count - 1 { out.pad(widths[i] - c.count + 2) }
            }
            out.write(byte: UInt8(ascii: "\n"))
        }
    }

    func writeJSON(_ r: Row, initUser: NamespaceIdentity?, into out: inout ByteWriter) {
        out.write("{\"netns\":")
        out.write(jsonString: r.ns.label)
        out.write(",\"inode\":")
        out.write(r.ns.inode)
        out.write(",\"host\":")
        out.write(r.ns.isHost ? "true" : "false")
        if let n = r.ns.name {
            out.write(",\"name\":")
            out.write(jsonString: n)
        }
        if let o = r.owner {
            out.write(",\"owner_userns\":")
            out.write(o.inode)
            out.write(",\"owner_is_init\":")
            out.write(o == initUser ? "true" : "false")
        }
        if let c = r.counts {
            out.write(",\"tcp\":"); out.write(c.tcp)
            out.write(",\"udp\":"); out.write(c.udp)
        }
        out.write(",\"paths\":[")
        for (i, p) in r.ns.paths.enumerated() {
            if i > 0 { out.write(byte: UInt8(ascii: ",")) }
            out.write(jsonString: p)
        }
        out.write("]}\n")
    }
}

/// Sockets in use in the calling thread's network namespace, IPv4 and IPv6 together, as the kernel
/// counts them in /proc/net/sockstat and sockstat6 ("inuse"; TCP counts every hashed socket, TIME-WAIT
/// ones excepted).
struct SocketCounts: Sendable, Equatable {
    var tcp = 0
    var udp = 0

    /// Read from /proc/thread-self/net (the calling thread's namespace); files that cannot be read count 0.
    static func current() -> SocketCounts {
        var c = SocketCounts()
        for file in ["/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count >= 3, f[1] == "inuse", let n = Int(f[2]) else { continue }
                switch f[0] {
                case "TCP:", "TCP6:": c.tcp += n
                case "UDP:", "UDP6:": c.udp += n
                default: break
                }
            }
        }
        return c
    }
}
