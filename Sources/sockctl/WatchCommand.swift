import ArgumentParser
import SockCtlCLIBase
import Namespaces
import Netlink
import SockDiag
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Stream TCP and UDP sockets as they are closed or destroyed (like ss -E), until interrupted.",
        discussion: """
        Subscribes to the kernel's SKNLGRP_INET{,6}_{TCP,UDP}_DESTROY groups in each selected namespace. \
        FILTER as for `list` (state terms are ignored: every socket is reported once, when it goes).
          sockctl watch --all-netns --json 'dst 10.0.0.0/8'
        """
    )

    @OptionGroup var selectors: SocketSelectors
    @Flag(name: .customLong("json"), help: "One JSON object per socket per line (NDJSON).")
    var json = false
    @Flag(name: [.customShort("H"), .customLong("no-header")], help: "Do not print the header line.")
    var noHeader = false
    @Option(name: .customLong("count"), help: "Exit after N sockets were reported.")
    var count: Int?
    @Argument(parsing: .remaining, help: "Filter expression (ss syntax).")
    var filter: [String] = []

    func run() throws {
        do {
            let parsed = try SocketFilter.parse(filter.joined(separator: " "))
            let query = SocketQuery(selectors: selectors, filterText: "", output: OutputOptions())
            let spaces = try query.namespaces() ?? [try NetworkNamespace.current()]
            var groups: [UInt32] = []
            let kinds = selectors.kinds
            for f in selectors.families {
                let v6 = f == UInt8(AF_INET6)
                if kinds.contains(.tcp) { groups.append(v6 ? SockDiagConstants.Group.inet6TCPDestroy : SockDiagConstants.Group.inetTCPDestroy) }
                if kinds.contains(.udp) { groups.append(v6 ? SockDiagConstants.Group.inet6UDPDestroy : SockDiagConstants.Group.inetUDPDestroy) }
            }
            if groups.isEmpty {
                FileHandleStderr.write("sockctl: watch reports TCP and UDP sockets only (-t, -u)\n")
                throw ExitCode(Exit.usage)
            }
            let labelled = selectors.allNetns || !selectors.netns.isEmpty
            var printer = SocketPrinter(json: json, showNetns: labelled, showNetid: true, extended: false, info: false,
                                        memory: false, processes: false, header: !noHeader)
            printer.showNetns = labelled
            var w = ByteWriter()
            printer.writeHeader(&w)
            try w.flush()
            var seen = 0
            enum Event { case socket(Socket), lost }
            // One listening thread per namespace, all at once: they never finish on their own.
            try NamespaceRunner.stream(spaces, parallelism: spaces.count, bufferLimit: 64, produce: { (ns: NetworkNamespace, emit: (Event) throws -> Void) in
                let nl = try SockDiagClient.openSocket(receiveBufferSize: 8 << 20)
                for g in groups { try nl.join(group: g) }
                let label: String? = labelled ? ns.label : nil
                while true {
                    do {
                        var batch: [Socket] = []
                        try nl.receive { datagram in
                            try forEachMessage(in: datagram) { msg in
                                guard msg.header.type == SockDiagConstants.sockDiagByFamily, msg.payload.count >= 2 else { return }
                                // Destroy broadcasts carry INET_DIAG_PROTOCOL, which says TCP or UDP.
                                var s = try Socket(inetDiag: msg.payload, kind: .tcp)
                                if s.rawProtocol == UInt8(IPPROTO_UDP) { s.kind = .udp }
                                s.netns = label
                                batch.append(s)
                            }
                        }
                        for s in batch { try emit(.socket(s)) }
                    } catch let e as NetlinkError where e.code == ENOBUFS {
                        try emit(.lost)
                    }
                }
            }, consume: { ns, event in
                switch event {
                case .item(.socket(let s)):
                    guard parsed.matches(s) else { return }
                    printer.write(s, iface: nil, into: &w)
                    try w.flush()
                    seen += 1
                    // The listening threads sit in recv(2) for good: leave without joining them.
                    if let count, seen >= count { Glibc.exit(0) }
                case .item(.lost):
                    FileHandleStderr.write("sockctl: netns \(ns.label): events lost (receive queue overflowed)\n")
                case .finished: break
                case .failed(let error): throw error
                }
            })
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}
