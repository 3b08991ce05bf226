import ArgumentParser
import SockCtlCLIBase
import Kill
import Namespaces
import Netlink
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

extension KillBackend: ExpressibleByArgument {}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Destroy the sockets a filter selects (SOCK_DESTROY: TCP gets an RFC 793 ABORT, UDP ECONNABORTED).",
        discussion: """
        Selectors and FILTER as for `list`. Every destroy names the socket by its cookie, so a socket \
        that closed and whose 4-tuple was reused since the dump is never hit. TIME-WAIT sockets are \
        reported as not destroyable. Kill selects every state but TIME-WAIT by default; -a/--all is \
        required to run with an empty filter (destroy every selected socket).
          sockctl kill 'dst 10.1.2.3' --dry-run
          sockctl kill --all-netns -t 'dst 10.244.1.7 and dport = :8080'
          sockctl kill -v --backend bpf -t 'sport = :443 and state established'
        --backend bpf uses the BPF iterator (bpf_sock_destroy, filter run in the kernel; needs \
        libbpf.so.1 and a filter that translates to BPF clauses: addresses, ports, states, uid, \
        cookies). --backend auto uses netlink SOCK_DESTROY (its pipelined dump and destroys beat \
        loading the programs for one kill); the daemon, which loads them at start, takes BPF for \
        kills in one namespace. -v says which ran and why, and how destroy support was probed.
        Exit status: 0 done, 1 nothing matched, 2 usage/filter error or --max exceeded, \
        3 permission or kernel support missing, 4 some destroys failed.
        """
    )

    @OptionGroup var selectors: SocketSelectors
    @Flag(name: .customLong("dry-run"), help: "Print what would be destroyed; destroy nothing.")
    var dryRun = false
    @Option(name: .customLong("max"), help: "Refuse to destroy anything when more than N sockets match.")
    var max: Int?
    @Flag(name: .customLong("json"), help: "One JSON object per socket, with an `outcome` field.")
    var json = false
    @Flag(name: [.customShort("H"), .customLong("no-header")], help: "Do not print the header line.")
    var noHeader = false
    @Option(name: .customLong("backend"), help: "auto (BPF when the kernel, libbpf and the filter allow it, else netlink), netlink, or bpf.")
    var backend: KillBackend = .auto
    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Say which backend ran and why (stderr).")
    var verbose = false
    @Argument(parsing: .remaining, help: "Filter expression (ss syntax).")
    var filter: [String] = []

    func run() throws {
        let text = filter.joined(separator: " ")
        do {
            let parsed = try SocketFilter.parse(text)
            var request = KillRequest(filter: parsed, protocols: selectors.kinds.filter { !$0.isUnix },
                                      families: selectors.families, all: selectors.all, dryRun: dryRun, max: max)
            request.backend = backend
            // Kill's default is every state but TIME-WAIT (which cannot be destroyed), not ss's connected set.
            if selectors.listening { request.states = selectors.defaultStates(for: .tcp) }
            if selectors.allNetns { request.namespaces = .all }
            else if !selectors.netns.isEmpty { request.namespaces = .list(try NamespaceResolver().resolveAll(selectors.netns)) }
            let showNetns: Bool
            if case .current = request.namespaces { showNetns = false } else { showNetns = true }
            try report(request, showNetns: showNetns)
        } catch let e as ExitCode {
            throw e
        } catch let e as KillError {
            FileHandleStderr.write("sockctl: \(e)\n")
            throw ExitCode(e.exitStatus)
        } catch {
            throw fail(error)
        }
    }

    func report(_ request: KillRequest, showNetns: Bool) throws {
        // Plain locals: reading an ArgumentParser property wrapper costs a metadata lookup, and the
        // closure below runs once per socket.
        let json = json, noHeader = noHeader
        var w = ByteWriter()
        let printer = SocketPrinter(json: json, showNetns: showNetns, showNetid: true, extended: false, info: false,
                                    memory: false, processes: false, header: !noHeader)
        var failed = 0, permission = 0
        var headerDone = false
        let summary = try SocketKiller().kill(request) { r in
            if !json && !noHeader && !headerDone { w.write("Outcome         "); printer.writeHeader(&w); headerDone = true }
            let o = r.outcome
            if case .failed(let e, _) = o {
                failed += 1
                if e == EPERM || e == EACCES { permission += 1 }
            }
            if json {
                var line = ByteWriter(formattingInMemory: 512)
                printer.write(r.socket, iface: r.interface, into: &line)
                line.removeLast(2)  // "}\n"
                w.write(contentsOf: line)
                w.write(",\"outcome\":\""); w.write(o.name); w.write("\"")
                if case .failed(let e, _) = o { w.write(",\"errno\":"); w.write(e) }
                w.write("}\n")
            } else {
                w.write(o.name); w.pad(16 - o.name.utf8.count)
                printer.write(r.socket, iface: r.interface, into: &w)
            }
            try w.flushIfNeeded()
        }
        if !json && !noHeader && !headerDone { w.write("Outcome         "); printer.writeHeader(&w) }
        try w.flush()
        if verbose {
            FileHandleStderr.write("sockctl: backend \(summary.backend): \(summary.backendReason)\n")
            FileHandleStderr.write("sockctl: destroy probe: \(summary.probe)\n")
        }
        // Per namespace: what happened where something matched or went wrong; over several
        // namespaces the quiet ones are counted, not listed (--all-netns may cover hundreds).
        var parts: [String] = []
        var quiet = 0
        let several = summary.namespaces.count > 1
        for ns in summary.namespaces {
            let counts = [("already-gone", ns.alreadyGone), ("destroyed", ns.destroyed), ("failed", ns.failed),
                          ("not-destroyable", ns.notDestroyable), ("would-destroy", ns.wouldDestroy)]
                .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
            if several && ns.error == nil && counts.isEmpty { quiet += 1; continue }
            let what = ns.error.map { "not worked on: \($0)" } ?? (counts.isEmpty ? "nothing matched" : counts)
            parts.append((ns.netns.map { "netns \($0): " } ?? "") + what)
        }
        if quiet > 0 {
            parts.append("nothing matched in \(quiet)\(parts.isEmpty ? "" : " other") namespace\(quiet == 1 ? "" : "s")")
        }
        let line = (dryRun ? "dry run: " : "") + "\(summary.matched) sockets matched; " + parts.joined(separator: "; ") + "\n"
        if json { FileHandleStderr.write(line) } else { w.write(line); try w.flush() }
        if permission > 0 && permission == failed {
            FileHandleStderr.write("sockctl: SOCK_DESTROY: Operation not permitted: needs CAP_NET_ADMIN in the socket's network namespace\n")
            throw ExitCode(Exit.permission)
        }
        if failed > 0 || summary.namespaceErrors > 0 { throw ExitCode(Exit.partial) }
        if summary.matched == 0 { throw ExitCode(Exit.nothingMatched) }
    }
}
