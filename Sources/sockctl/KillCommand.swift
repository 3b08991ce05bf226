import ArgumentParser
import Namespaces
import Netlink
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Destroy the sockets a filter selects (SOCK_DESTROY: TCP gets an RFC 793 ABORT, UDP ECONNABORTED).",
        discussion: """
        Selectors and FILTER as for `list`. Every destroy names the socket by its cookie, so a socket
        that closed and whose 4-tuple was reused since the dump is never hit. TIME-WAIT sockets are
        reported as not destroyable. Kill selects every state but TIME-WAIT by default; -a/--all is
        required to run with an empty filter (destroy every selected socket).
          sockctl kill 'dst 10.1.2.3' --dry-run
          sockctl kill --all-netns -t 'dst 10.244.1.7 and dport = :8080'
        Exit status: 0 done, 1 nothing matched, 2 usage/filter error or --max exceeded,
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
    @Argument(parsing: .remaining, help: "Filter expression (ss syntax).")
    var filter: [String] = []

    func run() throws {
        let text = filter.joined(separator: " ")
        do {
            let parsed = try SocketFilter.parse(text)
            if parsed.isEmpty && !selectors.all {
                FileHandleStderr.write("sockctl: refusing to kill with an empty filter: give a FILTER, or --all to destroy every selected socket\n")
                throw ExitCode(Exit.usage)
            }
            // Kill's default is every state but TIME-WAIT (which cannot be destroyed), not ss's connected set.
            var sel = selectors
            if !sel.listening { sel.all = true }
            let query = SocketQuery(selectors: sel, filterText: text, output: OutputOptions())
            let spaces = try query.namespaces()
            let kinds = sel.kinds.filter { !$0.isUnix }
            if kinds.isEmpty {
                FileHandleStderr.write("sockctl: unix sockets cannot be destroyed by the kernel (SOCK_DESTROY is inet only)\n")
                throw ExitCode(Exit.usage)
            }
            let defaultStates: (SocketKind) -> UInt32 = { k in
                parsed.stateMask == nil ? (sel.defaultStates(for: k) & ~SocketState.timeWait.mask) : sel.defaultStates(for: k)
            }
            // Select in each namespace, then (unless --max is exceeded anywhere) destroy there.
            let lookup = parsed.needsProcesses ? try ProcessLookup() : nil
            let owners: ((UInt32) throws -> [SocketProcess])? = lookup.map { l in { try l.owners($0) } }
            typealias Found = (label: String?, sockets: [(Socket, String?)])
            func select(_ label: String?) throws -> Found {
                var found: [(Socket, String?)] = []
                try SocketQuery.collect(kinds: kinds, families: sel.families, filter: parsed, states: defaultStates,
                                        extensions: [], label: label, owners: owners) { s, iface in found.append((s, iface)) }
                return (label, found)
            }
            func destroy(_ f: Found) throws -> [DestroyOutcome] {
                if dryRun { return f.sockets.map { $0.0.state == .timeWait ? .notDestroyable : .wouldDestroy } }
                let nl = try SockDiagClient.openSocket()
                return try SockDiagClient.destroy(f.sockets.map { $0.0 }, on: nl)
            }
            var results: [(Found, [DestroyOutcome])] = []
            if let spaces {
                let found = try NamespaceRunner.map(spaces) { ns in try select(ns.label) }.map { try $0.get() }
                try checkMax(found.reduce(0) { $0 + $1.sockets.count })
                let byNamespace = Dictionary(uniqueKeysWithValues: zip(spaces, found))
                let outcomes = try NamespaceRunner.map(spaces) { ns in try destroy(byNamespace[ns]!) }
                for (f, o) in zip(found, outcomes) { results.append((f, try o.get())) }
            } else {
                let f = try select(nil)
                try checkMax(f.sockets.count)
                results.append((f, try destroy(f)))
            }
            try report(results, showNetns: spaces != nil)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }

    func checkMax(_ count: Int) throws {
        if let max, count > max {
            FileHandleStderr.write("sockctl: \(count) sockets match, more than --max \(max): nothing destroyed\n")
            throw ExitCode(Exit.usage)
        }
    }

    func report(_ results: [((label: String?, sockets: [(Socket, String?)]), [DestroyOutcome])], showNetns: Bool) throws {
        var w = ByteWriter()
        let printer = SocketPrinter(json: json, showNetns: showNetns, showNetid: true, extended: false, info: false,
                                    memory: false, processes: false, header: !noHeader)
        var total = 0, failed = 0, permission = 0, unsupported = 0
        var summary: [String] = []
        if !json && !noHeader { w.write("Outcome         "); printer.writeHeader(&w) }
        for (found, outcomes) in results {
            var counts: [String: Int] = [:]
            for ((s, iface), o) in zip(found.sockets, outcomes) {
                total += 1
                counts[o.name, default: 0] += 1
                if case .failed(let e) = o {
                    failed += 1
                    if e == EPERM || e == EACCES { permission += 1 }
                    if e == EOPNOTSUPP { unsupported += 1 }
                }
                if json {
                    var line = ByteWriter()
                    printer.write(s, iface: iface, into: &line)
                    line.bytes.removeLast(2)  // "}\n"
                    w.write(bytes: line.bytes)
                    w.write(",\"outcome\":\""); w.write(o.name); w.write("\"")
                    if case .failed(let e) = o { w.write(",\"errno\":"); w.write(e) }
                    w.write("}\n")
                } else {
                    w.write(o.name); w.pad(16 - o.name.utf8.count)
                    printer.write(s, iface: iface, into: &w)
                }
                try w.flushIfNeeded()
            }
            let parts = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            summary.append((found.label.map { "netns \($0): " } ?? "") + (parts.isEmpty ? "nothing matched" : parts))
        }
        try w.flush()
        let line = (dryRun ? "dry run: " : "") + "\(total) sockets matched; " + summary.joined(separator: "; ") + "\n"
        if json { FileHandleStderr.write(line) } else { w.write(line); try w.flush() }
        if unsupported > 0 {
            FileHandleStderr.write("sockctl: SOCK_DESTROY: Operation not supported: kernel built without CONFIG_INET_DIAG_DESTROY\n")
            throw ExitCode(Exit.permission)
        }
        if permission > 0 && permission == failed {
            FileHandleStderr.write("sockctl: SOCK_DESTROY: Operation not permitted: needs CAP_NET_ADMIN in the socket's network namespace\n")
            throw ExitCode(Exit.permission)
        }
        if failed > 0 { throw ExitCode(Exit.partial) }
        if total == 0 { throw ExitCode(Exit.nothingMatched) }
    }
}
