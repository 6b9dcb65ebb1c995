"""RTP/RTCP media (RFC 3550), sans-I/O: packets, statistics, jitter buffer, DTMF, codecs."""
