package network

// The published ports' relays share half of the supervisor's descriptor
// limit (RLIMIT_NOFILE, which Go raised to the hard limit at start); the
// other half stays for what the whole stack needs of the supervisor: its
// logs, cgroups, state and the containers' pipes. Without a share, a
// client that keeps opening connections or sends from ever new source
// ports took descriptors until the supervisor had none left for anything.

// connFiles is the descriptors one relayed TCP connection holds: the
// accepted socket, the one dialed to the container, and for each
// direction the pipe (two descriptors) that io.Copy splices through,
// which Go takes from its pool for as long as the copy lasts.
const connFiles = 6

// relayLimits is how many connections each of tcp published TCP ports,
// and how many flows each of udp published UDP ports, may hold, given
// the descriptor limit nofile: maxConns and maxFlows, or fewer where the
// limit is low, so that all the ports together take at most half of it,
// an equal share each. A port range is one published port per number
// ("30000-30100/udp" is 101): at 1024 flows each, the hard limit of 4096
// that some systems still have would be gone at the fourth UDP port, at
// 1024 connections of connFiles each, within the first TCP one.
func relayLimits(nofile uint64, tcp, udp int) (conns, flows int) {
	ports := tcp + udp
	if ports == 0 {
		return maxConns, maxFlows
	}
	share := nofile / 2 / uint64(ports)
	conns = int(max(1, min(share/connFiles, maxConns)))
	flows = int(max(1, min(share, maxFlows)))
	return conns, flows
}
