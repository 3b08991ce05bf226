import SockDiag
#if canImport(Glibc)
import Glibc
#endif

/// Formats sockets as ss-like table lines or NDJSON objects into a `ByteWriter`.
struct SocketPrinter {
    var json: Bool
    var showNetns: Bool
    var showNetid: Bool
    var extended: Bool
    var info: Bool
    var memory: Bool
    var processes: Bool
    var header: Bool

    static func netid(_ s: Socket) -> String {
        switch s.kind {
        case .stream: return "u_str"
        case .dgram: return "u_dgr"
        case .seqpacket: return "u_seq"
        default: return s.kind.rawValue
        }
    }

    /// Table columns, in order. Widths are the minimum a cell is padded to; a wider value pushes the
    /// rest of its line to the right rather than being cut.
    enum Column: Int, CaseIterable { case netns, netid, state, recvQ, sendQ, localAddress, localPort, peerAddress, peerPort }

    /// Header texts; the address columns are right-aligned and their port columns left-aligned, so
    /// that the header reads `Local Address:Port` across the pair, as in ss.
    static let titles = ["Netns", "Netid", "State", "Recv-Q", "Send-Q", "Local Address", "Port", "Peer Address", "Port"]

    /// Starting widths: the titles, and room for any IPv4 endpoint. Streaming output cannot know its
    /// widest value (ss buffers the whole listing to find it); `widen(for:iface:)` grows these from
    /// rows seen before the first line is printed.
    var widths: [Int] = [16, 5, 10, 6, 6, 15, 5, 15, 5]

    func writeHeader(_ w: inout ByteWriter) {
        guard header, !json else { return }
        var none: [Int]? = nil
        if showNetns { cell(&w, .netns, &none) { $0.write(Self.titles[0]) } }
        if showNetid { cell(&w, .netid, &none) { $0.write(Self.titles[1]) } }
        for c in [Column.state, .recvQ, .sendQ] { cell(&w, c, &none) { $0.write(Self.titles[c.rawValue]) } }
        cell(&w, .localAddress, &none, right: true, separator: ":") { $0.write(Self.titles[5]) }
        cell(&w, .localPort, &none) { $0.write(Self.titles[6]) }
        cell(&w, .peerAddress, &none, right: true, separator: ":") { $0.write(Self.titles[7]) }
        cell(&w, .peerPort, &none) { $0.write(Self.titles[8]) }
        if processes { w.write("Process") }
        w.trimTrailingSpaces()
        w.write("\n")
    }

    /// Starts measuring: widths shrink to the titles (ports keep room for five digits, which
    /// ephemeral ports have) and then grow with `widen(for:iface:)`.
    mutating func startMeasuring() {
        widths = Self.titles.map { $0.utf8.count }
        widths[Column.localPort.rawValue] = 5
        widths[Column.peerPort.rawValue] = 5
    }

    /// Grows the column widths to fit this socket's line (nothing is written).
    mutating func widen(for s: Socket, iface: String?) {
        guard !json else { return }
        var scratch = ByteWriter(formattingInMemory: 256)
        var grown: [Int]? = widths
        writeCells(s, iface: iface, into: &scratch, &grown)
        widths = grown!
    }

    /// Address text of an endpoint: `addr`, `[v6]`, `*` for none, `%iface` when bound to one.
    private func address(_ w: inout ByteWriter, _ a: InetAddress?, iface: String?) {
        if let a {
            if a.isIPv4 { w.write(address: a) } else { w.write(byte: UInt8(ascii: "[")); w.write(address: a); w.write(byte: UInt8(ascii: "]")) }
        } else { w.write("*") }
        if let iface { w.write("%"); w.write(iface) }
    }

    private func port(_ w: inout ByteWriter, _ port: UInt16) {
        if port == 0 { w.write("*") } else { w.write(port) }
    }

    func write(_ s: Socket, iface: String?, into w: inout ByteWriter) {
        if json { writeJSON(s, iface: iface, into: &w) } else { writeLine(s, iface: iface, into: &w) }
    }

    /// One cell padded to its column's width, then `separator`. With `grow`, the width is raised to
    /// fit instead (used to measure rows before printing).
    private func cell(_ w: inout ByteWriter, _ c: Column, _ grow: inout [Int]?, right: Bool = false,
                      separator: StaticString = " ", _ body: (inout ByteWriter) -> Void) {
        let start = w.count
        body(&w)
        let length = w.count - start
        if grow != nil {
            grow![c.rawValue] = max(grow![c.rawValue], length)
        } else {
            let pad = widths[c.rawValue] - length
            if pad > 0 {
                if right { w.insertSpaces(pad, at: start) } else { w.pad(pad) }
            }
        }
        w.write(separator)
    }

    /// The aligned columns of a line, up to and including the peer's port.
    private func writeCells(_ s: Socket, iface: String?, into w: inout ByteWriter, _ grow: inout [Int]?) {
        if showNetns { cell(&w, .netns, &grow) { $0.write(s.netns ?? "-") } }
        if showNetid { cell(&w, .netid, &grow) { $0.write(Self.netid(s)) } }
        cell(&w, .state, &grow) { $0.write(s.state.shortName) }
        cell(&w, .recvQ, &grow) { $0.write(s.receiveQueue) }
        cell(&w, .sendQ, &grow) { $0.write(s.sendQueue) }
        if s.isUnix {
            // ss's unix columns: path and inode, then the peer's `*` and inode.
            cell(&w, .localAddress, &grow, right: true) { $0.write(s.path ?? "*") }
            cell(&w, .localPort, &grow) { $0.write(s.inode) }
            cell(&w, .peerAddress, &grow, right: true) { $0.write("*") }
            cell(&w, .peerPort, &grow) { $0.write(s.peerInode ?? 0) }
        } else {
            cell(&w, .localAddress, &grow, right: true, separator: ":") { address(&$0, s.source, iface: iface) }
            cell(&w, .localPort, &grow) { port(&$0, s.sourcePort) }
            cell(&w, .peerAddress, &grow, right: true, separator: ":") { address(&$0, s.destination, iface: nil) }
            cell(&w, .peerPort, &grow) { port(&$0, s.destinationPort) }
        }
    }

    private func writeLine(_ s: Socket, iface: String?, into w: inout ByteWriter) {
        var none: [Int]? = nil
        writeCells(s, iface: iface, into: &w, &none)
        if processes && !s.processes.isEmpty {
            w.write("users:(")
            for (i, p) in s.processes.enumerated() {
                if i > 0 { w.write(",") }
                w.write("(\""); w.write(p.comm); w.write("\",pid="); w.write(p.pid); w.write(",fd="); w.write(p.fd); w.write(")")
            }
            w.write(")")
        }
        if extended {
            w.write(" uid:"); w.write(s.uid); w.write(" ino:"); w.write(s.inode); w.write(" sk:")
            w.write(String(s.cookie, radix: 16))
            if let c = s.cgroupID { w.write(" cgroup:"); w.write(c) }
            if let m = s.mark, m != 0 { w.write(" fwmark:0x"); w.write(String(m, radix: 16)) }
        }
        if memory, let m = s.memInfo {
            w.write(" skmem:(r"); w.write(m.rmemAlloc); w.write(",rb"); w.write(m.rcvbuf); w.write(",t"); w.write(m.wmemAlloc)
            w.write(",tb"); w.write(m.sndbuf); w.write(",f"); w.write(m.fwdAlloc); w.write(",w"); w.write(m.wmemQueued)
            w.write(",o"); w.write(m.optmem); w.write(",bl"); w.write(m.backlog); w.write(",d"); w.write(m.drops); w.write(")")
        }
        if info, let t = s.tcpInfo {
            w.write("\n\t")
            if let c = s.congestion { w.write(c); w.write(" ") }
            w.write("wscale:"); w.write(t.sendWindowScale); w.write(","); w.write(t.receiveWindowScale)
            w.write(" rto:"); w.write(t.rto / 1000); w.write(" rtt:"); writeMs(&w, t.rtt); w.write("/"); writeMs(&w, t.rttvar)
            w.write(" mss:"); w.write(t.sendMSS); w.write(" cwnd:"); w.write(t.sendCwnd)
            w.write(" bytes_acked:"); w.write(t.bytesAcked); w.write(" bytes_received:"); w.write(t.bytesReceived)
            w.write(" retrans:"); w.write(t.retrans); w.write("/"); w.write(t.totalRetrans)
            writeRate(&w, " delivery_rate:", t.deliveryRate)
            writeRate(&w, " pacing_rate:", t.pacingRate)
            w.write(" min_rtt:"); writeMs(&w, t.minRTT)
        }
        w.trimTrailingSpaces()
        w.write("\n")
    }

    /// A rate in bytes/s printed as bits/s; the kernel's "unlimited" (all ones) is left out.
    private func writeRate(_ w: inout ByteWriter, _ label: String, _ bytesPerSecond: UInt64) {
        guard bytesPerSecond != 0, bytesPerSecond < UInt64.max / 8 else { return }
        w.write(label); w.write(bytesPerSecond * 8); w.write("bps")
    }

    /// µs as milliseconds with three decimals.
    private func writeMs(_ w: inout ByteWriter, _ us: UInt32) {
        w.write(us / 1000); w.write("."); let r = us % 1000
        if r < 100 { w.write("0") }; if r < 10 { w.write("0") }; w.write(r)
    }

    private func writeJSON(_ s: Socket, iface: String?, into w: inout ByteWriter) {
        w.write("{")
        if let ns = s.netns { w.write("\"netns\":"); w.write(jsonString: ns); w.write(",") }
        w.write("\"family\":\""); w.write(s.familyName)
        w.write("\",\"protocol\":\""); w.write(s.kind.rawValue)
        w.write("\",\"state\":\""); w.write(s.state.name); w.write("\"")
        if s.isUnix {
            if let p = s.path { w.write(",\"path\":"); w.write(jsonString: p) }
            if let p = s.peerInode { w.write(",\"peer\":"); w.write(p) }
        } else {
            if let a = s.source { w.write(",\"src\":\""); w.write(address: a); w.write("\"") }
            w.write(",\"sport\":"); w.write(s.sourcePort)
            if let a = s.destination { w.write(",\"dst\":\""); w.write(address: a); w.write("\"") }
            w.write(",\"dport\":"); w.write(s.destinationPort)
        }
        w.write(",\"inode\":"); w.write(s.inode)
        w.write(",\"cookie\":"); w.write(s.cookie)
        w.write(",\"uid\":"); w.write(s.uid)
        if let iface { w.write(",\"iface\":"); w.write(jsonString: iface) }
        w.write(",\"recv_q\":"); w.write(s.receiveQueue)
        w.write(",\"send_q\":"); w.write(s.sendQueue)
        if let m = s.mark { w.write(",\"mark\":"); w.write(m) }
        if let c = s.cgroupID { w.write(",\"cgroup_id\":"); w.write(c) }
        if let c = s.congestion { w.write(",\"congestion\":"); w.write(jsonString: c) }
        if processes {
            w.write(",\"processes\":[")
            for (i, p) in s.processes.enumerated() {
                if i > 0 { w.write(",") }
                w.write("{\"pid\":"); w.write(p.pid); w.write(",\"comm\":"); w.write(jsonString: p.comm)
                w.write(",\"fd\":"); w.write(p.fd); w.write("}")
            }
            w.write("]")
        }
        if memory, let m = s.memInfo {
            w.write(",\"meminfo\":{\"rmem_alloc\":"); w.write(m.rmemAlloc); w.write(",\"rcvbuf\":"); w.write(m.rcvbuf)
            w.write(",\"wmem_alloc\":"); w.write(m.wmemAlloc); w.write(",\"sndbuf\":"); w.write(m.sndbuf)
            w.write(",\"fwd_alloc\":"); w.write(m.fwdAlloc); w.write(",\"wmem_queued\":"); w.write(m.wmemQueued)
            w.write(",\"optmem\":"); w.write(m.optmem); w.write(",\"backlog\":"); w.write(m.backlog)
            w.write(",\"drops\":"); w.write(m.drops); w.write("}")
        }
        if info, let t = s.tcpInfo {
            w.write(",\"tcp_info\":{")
            for (i, f) in t.fields.enumerated() {
                if i > 0 { w.write(",") }
                w.write("\""); w.write(f.0); w.write("\":"); w.write(f.1)
            }
            w.write("}")
        }
        w.write("}\n")
    }
}
