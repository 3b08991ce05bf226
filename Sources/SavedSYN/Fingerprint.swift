/// Facts derived from a SYN that a server usually wants without reading RFCs.
public struct SYNFacts: Equatable, Sendable {
    /// The initial TTL the sender most likely used: 32, 64, 128 or 255 (the next one at or above the
    /// observed TTL, as p0f guesses it).
    public var initialTTL: Int
    /// Hops between the sender and us (`initialTTL - ttl`).
    public var distance: Int
    /// The SYN asks for ECN (ECE and CWR set, RFC 3168), or for AccECN (ECE, CWR and AE/NS, RFC 9768).
    public var ecnRequested: Bool
    public var accurateECNRequested: Bool
    /// The IP header carries ECT(0), ECT(1) or CE on the SYN itself.
    public var ecnMarkedIP: Bool
    /// The SYN carries a TCP Fast Open option (RFC 7413); `tfoCookie` is empty for a cookie request.
    public var fastOpen: Bool
    public var fastOpenCookie: [UInt8]?
    /// The SYN carries an MPTCP option (RFC 8684): the client speaks multipath TCP.
    public var mptcp: Bool
    public var timestamps: Bool
    public var sackPermitted: Bool
    /// Payload bytes announced after the TCP header (data on the SYN, usually with TFO).
    public var payloadLength: Int

    public init(packet: SYNPacket) {
        let ttl = Int(packet.ip.ttl)
        initialTTL = ttl <= 32 ? 32 : ttl <= 64 ? 64 : ttl <= 128 ? 128 : 255
        distance = initialTTL - ttl
        let f = packet.tcp.flags
        ecnRequested = f.contains(.ece) && f.contains(.cwr)
        accurateECNRequested = ecnRequested && f.contains(.ns)
        ecnMarkedIP = packet.ip.ecn != 0
        var cookie: [UInt8]? = nil
        var mp = false, ts = false, sok = false
        for o in packet.tcp.options {
            switch o {
            case let .fastOpen(c, _): cookie = c
            case .mptcp: mp = true
            case .timestamp: ts = true
            case .sackPermitted: sok = true
            default: break
            }
        }
        fastOpen = cookie != nil
        fastOpenCookie = cookie
        mptcp = mp
        timestamps = ts
        sackPermitted = sok
        payloadLength = packet.payloadLength
    }
}

/// Everything sockctl derives from one saved SYN.
public struct SYNFingerprint: Equatable, Sendable {
    public var packet: SYNPacket
    public var p0f: P0fSignature
    public var muonFP: MuonFP
    public var facts: SYNFacts
    /// The database match, when a database was given and matched.
    public var match: P0fDatabase.Match?

    public init(packet: SYNPacket, database: P0fDatabase? = nil) {
        self.packet = packet
        p0f = P0fSignature(packet: packet)
        muonFP = MuonFP(tcp: packet.tcp)
        facts = SYNFacts(packet: packet)
        match = database?.match(p0f)
    }

    /// Parses saved-SYN bytes and fingerprints them.
    public init(bytes: [UInt8], linkLayer: SYNParser.LinkLayer = .none, database: P0fDatabase? = nil) throws(SYNParseError) {
        self.init(packet: try SYNParser.parse(bytes, linkLayer: linkLayer), database: database)
    }

    /// The OS (or tool) label of the match, e.g. "Linux 3.11 and newer".
    public var os: String? { match?.label }
    /// The p0f v3 raw signature.
    public var signature: String { p0f.rawSignature }
    /// The MuonFP string.
    public var fingerprint: String { muonFP.description }
}
