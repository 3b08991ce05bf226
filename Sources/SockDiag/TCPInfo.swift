import CLinuxUAPI

/// `INET_DIAG_INFO` for TCP sockets: `struct tcp_info` (include/uapi/linux/tcp.h).
/// Older kernels send a shorter struct; missing tail fields read as zero.
public struct TCPInfo: Sendable {
    /// The kernel's struct, zero-padded when the kernel sent fewer bytes.
    public let raw: sockctl_tcp_info
    /// How many bytes the kernel actually sent.
    public let length: Int

    public init(bytes: UnsafeRawBufferPointer) {
        var info = sockctl_tcp_info()
        let n = min(bytes.count, MemoryLayout<sockctl_tcp_info>.size)
        withUnsafeMutableBytes(of: &info) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(n)))
        }
        raw = info
        length = bytes.count
    }

    public var state: UInt8 { raw.tcpi_state }
    public var caState: UInt8 { raw.tcpi_ca_state }
    public var retransmits: UInt8 { raw.tcpi_retransmits }
    public var probes: UInt8 { raw.tcpi_probes }
    public var backoff: UInt8 { raw.tcpi_backoff }
    public var options: UInt8 { raw.tcpi_options }
    public var sendWindowScale: UInt8 { raw.tcpi_snd_wscale }
    public var receiveWindowScale: UInt8 { raw.tcpi_rcv_wscale }
    public var deliveryRateAppLimited: Bool { raw.tcpi_delivery_rate_app_limited != 0 }
    /// Retransmission timeout, µs.
    public var rto: UInt32 { raw.tcpi_rto }
    public var ato: UInt32 { raw.tcpi_ato }
    public var sendMSS: UInt32 { raw.tcpi_snd_mss }
    public var receiveMSS: UInt32 { raw.tcpi_rcv_mss }
    public var unacked: UInt32 { raw.tcpi_unacked }
    public var sacked: UInt32 { raw.tcpi_sacked }
    public var lost: UInt32 { raw.tcpi_lost }
    public var retrans: UInt32 { raw.tcpi_retrans }
    public var lastDataSent: UInt32 { raw.tcpi_last_data_sent }
    public var lastDataReceived: UInt32 { raw.tcpi_last_data_recv }
    public var lastAckReceived: UInt32 { raw.tcpi_last_ack_recv }
    public var pmtu: UInt32 { raw.tcpi_pmtu }
    public var receiveSsthresh: UInt32 { raw.tcpi_rcv_ssthresh }
    /// Smoothed round-trip time and its variance, µs.
    public var rtt: UInt32 { raw.tcpi_rtt }
    public var rttvar: UInt32 { raw.tcpi_rttvar }
    public var sendSsthresh: UInt32 { raw.tcpi_snd_ssthresh }
    public var sendCwnd: UInt32 { raw.tcpi_snd_cwnd }
    public var advmss: UInt32 { raw.tcpi_advmss }
    public var reordering: UInt32 { raw.tcpi_reordering }
    public var receiveRTT: UInt32 { raw.tcpi_rcv_rtt }
    public var receiveSpace: UInt32 { raw.tcpi_rcv_space }
    public var totalRetrans: UInt32 { raw.tcpi_total_retrans }
    /// Bytes per second.
    public var pacingRate: UInt64 { raw.tcpi_pacing_rate }
    public var maxPacingRate: UInt64 { raw.tcpi_max_pacing_rate }
    public var bytesAcked: UInt64 { raw.tcpi_bytes_acked }
    public var bytesReceived: UInt64 { raw.tcpi_bytes_received }
    public var segsOut: UInt32 { raw.tcpi_segs_out }
    public var segsIn: UInt32 { raw.tcpi_segs_in }
    public var notsentBytes: UInt32 { raw.tcpi_notsent_bytes }
    public var minRTT: UInt32 { raw.tcpi_min_rtt }
    public var dataSegsIn: UInt32 { raw.tcpi_data_segs_in }
    public var dataSegsOut: UInt32 { raw.tcpi_data_segs_out }
    /// Bytes per second.
    public var deliveryRate: UInt64 { raw.tcpi_delivery_rate }
    public var busyTime: UInt64 { raw.tcpi_busy_time }
    public var rwndLimited: UInt64 { raw.tcpi_rwnd_limited }
    public var sndbufLimited: UInt64 { raw.tcpi_sndbuf_limited }
    public var delivered: UInt32 { raw.tcpi_delivered }
    public var deliveredCE: UInt32 { raw.tcpi_delivered_ce }
    public var bytesSent: UInt64 { raw.tcpi_bytes_sent }
    public var bytesRetrans: UInt64 { raw.tcpi_bytes_retrans }
    public var dsackDups: UInt32 { raw.tcpi_dsack_dups }
    public var reorderSeen: UInt32 { raw.tcpi_reord_seen }
    public var receiveOutOfOrder: UInt32 { raw.tcpi_rcv_ooopack }
    public var sendWindow: UInt32 { raw.tcpi_snd_wnd }

    /// Every field as (JSON name, value), in struct order. Names follow the C field without `tcpi_`.
    public var fields: [(String, UInt64)] {
        [
            ("state", UInt64(state)), ("ca_state", UInt64(caState)), ("retransmits", UInt64(retransmits)),
            ("probes", UInt64(probes)), ("backoff", UInt64(backoff)), ("options", UInt64(options)),
            ("snd_wscale", UInt64(sendWindowScale)), ("rcv_wscale", UInt64(receiveWindowScale)),
            ("delivery_rate_app_limited", deliveryRateAppLimited ? 1 : 0),
            ("rto", UInt64(rto)), ("ato", UInt64(ato)), ("snd_mss", UInt64(sendMSS)), ("rcv_mss", UInt64(receiveMSS)),
            ("unacked", UInt64(unacked)), ("sacked", UInt64(sacked)), ("lost", UInt64(lost)), ("retrans", UInt64(retrans)),
            ("last_data_sent", UInt64(lastDataSent)), ("last_data_recv", UInt64(lastDataReceived)),
            ("last_ack_recv", UInt64(lastAckReceived)), ("pmtu", UInt64(pmtu)), ("rcv_ssthresh", UInt64(receiveSsthresh)),
            ("rtt", UInt64(rtt)), ("rttvar", UInt64(rttvar)), ("snd_ssthresh", UInt64(sendSsthresh)),
            ("snd_cwnd", UInt64(sendCwnd)), ("advmss", UInt64(advmss)), ("reordering", UInt64(reordering)),
            ("rcv_rtt", UInt64(receiveRTT)), ("rcv_space", UInt64(receiveSpace)), ("total_retrans", UInt64(totalRetrans)),
            ("pacing_rate", pacingRate), ("max_pacing_rate", maxPacingRate), ("bytes_acked", bytesAcked),
            ("bytes_received", bytesReceived), ("segs_out", UInt64(segsOut)), ("segs_in", UInt64(segsIn)),
            ("notsent_bytes", UInt64(notsentBytes)), ("min_rtt", UInt64(minRTT)),
            ("data_segs_in", UInt64(dataSegsIn)), ("data_segs_out", UInt64(dataSegsOut)),
            ("delivery_rate", deliveryRate), ("busy_time", busyTime), ("rwnd_limited", rwndLimited),
            ("sndbuf_limited", sndbufLimited), ("delivered", UInt64(delivered)), ("delivered_ce", UInt64(deliveredCE)),
            ("bytes_sent", bytesSent), ("bytes_retrans", bytesRetrans), ("dsack_dups", UInt64(dsackDups)),
            ("reord_seen", UInt64(reorderSeen)), ("rcv_ooopack", UInt64(receiveOutOfOrder)), ("snd_wnd", UInt64(sendWindow)),
        ]
    }
}
