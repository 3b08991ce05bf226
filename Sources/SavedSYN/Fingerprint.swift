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

    public init(headers h: SYNHeaders) {
        let ttl = Int(h.ttl)
        initialTTL = ttl <= 32 ? 32 : ttl <= 64 ? 64 : ttl <= 128 ? 128 : 255
        distance = initialTTL - ttl
        let f = h.flags
        ecnRequested = f.contains(.ece) && f.contains(.cwr)
        accurateECNRequested = ecnRequested && f.contains(.ns)
        ecnMarkedIP = h.ecn != 0
        if let at = h.fastOpenCookieOffset {
            let start = Int(at)
            fastOpenCookie = Array(h.tcpOptions[start..<(start + Int(h.fastOpenCookieLength))])
        } else {
            fastOpenCookie = nil
        }
        fastOpen = h.fastOpen
        mptcp = h.mptcp
        timestamps = h.timestampValue != nil
        sackPermitted = h.sackPermitted
        payloadLength = h.payloadLength
    }
}

/// Everything sockctl derives from one saved SYN.
///
/// Built on the allocation-free `SYNHeaders` parse; this type adds the rich `SYNPacket` view (arrays)
/// and the database match. For the hot path without allocations use `SYNHeaders.parse`,
/// `P0fSignature(headers:)`, `MuonFP(headers:)` and `P0fDatabase.match(_:)` directly.
public struct SYNFingerprint: Equatable, Sendable {
    /// The fixed-size parse.
    public var headers: SYNHeaders
    /// The same SYN with its variable parts as arrays.
    public var packet: SYNPacket
    public var p0f: P0fSignature
    public var muonFP: MuonFP
    public var facts: SYNFacts
    /// The database match, when a database was given and matched.
    public var match: P0fDatabase.Match?

    public init(headers: SYNHeaders, bytes: [UInt8], database: P0fDatabase? = nil) {
        self.headers = headers
        packet = SYNPacket(headers: headers, bytes: bytes)
        p0f = P0fSignature(headers: headers)
        muonFP = MuonFP(headers: headers)
        facts = SYNFacts(headers: headers)
        match = database?.match(p0f)
    }

    /// Parses saved-SYN bytes and fingerprints them.
    public init(bytes: [UInt8], linkLayer: SYNParser.LinkLayer = .none, database: P0fDatabase? = nil) throws(SYNParseError) {
        self.init(headers: try SYNHeaders.parse(bytes, linkLayer: linkLayer), bytes: bytes, database: database)
    }

    /// The OS (or tool) label of the match, e.g. "Linux 3.11 and newer".
    public var os: String? { match?.label }
    /// The p0f v3 raw signature.
    public var signature: String { p0f.rawSignature }
    /// The MuonFP string.
    public var fingerprint: String { muonFP.description }
}
