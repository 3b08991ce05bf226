import ArgumentParser
import SockCtlCLIBase
import Namespaces
import Netlink
import SockDiag
import SocketFilter
import Kill
#if canImport(Glibc)
import Glibc
#endif

/// Output options shared by `list` (and later `kill`/`watch`), named as in ss.
struct OutputOptions: ParsableArguments {
    @Flag(name: [.short, .customLong("processes")], help: "Show the processes holding each socket (pid, comm, fd).")
    var processes = false
    @Flag(name: [.short, .customLong("extended")], help: "Show uid, inode, cookie, cgroup and mark.")
    var extended = false
    @Flag(name: [.short, .customLong("info")], help: "Show TCP internals (tcp_info) and the congestion algorithm.")
    var info = false
    @Flag(name: [.short, .customLong("memory")], help: "Show socket memory (skmeminfo).")
    var memory = false
    @Flag(name: [.customShort("H"), .customLong("no-header")], help: "Do not print the header line.")
    var noHeader = false
    @Flag(name: .short, help: "Numeric output (always on; accepted for ss compatibility).")
    var numeric = false
    @Flag(name: .customLong("json"), help: "One JSON object per socket per line (NDJSON).")
    var json = false
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List sockets in one, several or every network namespace (like ss).",
        discussion: """
        FILTER is ss's filter language plus `uid N[-M]`, `pid N`, `comm NAME`, `cookie N`, e.g.
          sockctl list -t 'dport = :443 and dst 10.0.0.0/8' -p -i
          sockctl list --all-netns -tan --json 'state established'
        What the kernel can evaluate is sent to it as bytecode; the rest is checked here.
        Exit status: 0 sockets listed, 1 none matched, 2 bad usage or filter, 3 no permission.
        """
    )

    @OptionGroup var selectors: SocketSelectors
    @OptionGroup var output: OutputOptions
    @Argument(parsing: .remaining, help: "Filter expression (ss syntax).")
    var filter: [String] = []

    func run() throws {
        do {
            let count = try SocketQuery(selectors: selectors, filterText: filter.joined(separator: " "),
                                        output: output).run()
            if count == 0 { throw ExitCode(Exit.nothingMatched) }
        } catch let e as ExitCode {
            throw e
        } catch let e as ByteWriter.WriteError where e.errno == EPIPE {
            throw ExitCode.success
        } catch {
            throw fail(error)
        }
    }
}

/// Selects sockets in the chosen namespaces and streams them to the printer.
struct SocketQuery {
    var selectors: SocketSelectors
    var filterText: String
    var output: OutputOptions

    /// The namespaces to look in; nil = the caller's own, without switching threads.
    func namespaces() throws -> [NetworkNamespace]? {
        if selectors.allNetns { return try NetworkNamespace.discoverAll() }
        if !selectors.netns.isEmpty { return try NamespaceResolver().resolveAll(selectors.netns) }
        return nil
    }

    /// Runs the query and prints; returns how many sockets were printed.
    func run() throws -> Int {
        let filter = try SocketFilter.parse(filterText)
        let spaces = try namespaces()
        let kinds = selectors.kinds
        var printer = SocketPrinter(json: output.json, showNetns: spaces.map { $0.count > 1 || selectors.allNetns } ?? false,
                                    showNetid: kinds.count > 1, extended: output.extended, info: output.info,
                                    memory: output.memory, processes: output.processes, header: !output.noHeader)
        if spaces != nil && output.json { printer.showNetns = true }
        var ext: InetDiagExtensions = []
        if output.info { ext.formUnion([.info, .congestion]) }
        if output.memory { ext.insert(.skMemInfo) }
        let needProcesses = output.processes || filter.needsProcesses
        let lookup = needProcesses ? try ProcessLookup() : nil
        let owners: ((UInt32) throws -> [SocketProcess])? = lookup.map { l in { try l.owners($0) } }
        var w = ByteWriter()
        var count = 0
        let sel = selectors
        let families = selectors.families
        // The table's columns are sized to the first rows (up to `alignWindow` of them, held until
        // then): ss sizes them to the whole listing, which means holding all of it.
        var window: [(Socket, String?)] = []
        var aligning = !output.json
        func releaseWindow() {
            guard aligning else { return }
            aligning = false
            printer.writeHeader(&w)
            for (s, iface) in window { printer.write(s, iface: iface, into: &w) }
            window = []
        }
        if aligning { printer.startMeasuring() } else { printer.writeHeader(&w) }
        // Sockets wait for the process index only when they need it; the scan runs alongside the dump.
        func emit(_ s: Socket, _ iface: String?) throws {
            var s = s
            if let owners, s.processes.isEmpty { s.processes = try owners(s.inode) }
            count += 1
            if aligning {
                printer.widen(for: s, iface: iface)
                window.append((s, iface))
                if window.count < Self.alignWindow { return }
                releaseWindow()
            } else {
                printer.write(s, iface: iface, into: &w)
            }
            try w.flushIfNeeded()
        }
        // What was found before a failure is still printed.
        defer { releaseWindow(); try? w.flush() }
        if let spaces {
            typealias Batch = [(Socket, String?)]
            let compiler = SelectionCompiler()
            // A few batches in flight per namespace: enough to overlap dump and print, flat memory however many sockets.
            try NamespaceRunner.stream(spaces, bufferLimit: 8, produce: { (ns: NetworkNamespace, push: (Batch) throws -> Void) in
                var batch: Batch = []
                batch.reserveCapacity(256)
                try SocketSelection.collect(kinds: kinds, families: families, filter: filter, states: sel.defaultStates(for:),
                                        extensions: ext, label: ns.label, owners: owners, compiler: compiler) { s, iface in
                    batch.append((s, iface))
                    if batch.count == 256 { try push(batch); batch.removeAll(keepingCapacity: true) }
                }
                if !batch.isEmpty { try push(batch) }
            }, consume: { ns, event in
                switch event {
                case .item(let batch): for (s, iface) in batch { try emit(s, iface) }
                case .finished: break
                case .failed(let error):
                    // One namespace failing (e.g. it vanished) is reported; the others still print.
                    if spaces.count == 1 { throw error }
                    FileHandleStderr.write("sockctl: netns \(ns.label): \(describe(error).0)\n")
                }
            })
        } else {
            try SocketSelection.collect(kinds: kinds, families: families, filter: filter, states: sel.defaultStates(for:),
                                    extensions: ext, label: nil, owners: owners, emit)
        }
        releaseWindow()
        try w.flush()
        return count
    }

    /// How many rows the table's column widths are measured over before the first line is printed.
    static let alignWindow = 1000
}
