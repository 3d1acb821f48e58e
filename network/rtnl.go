package network

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A netlink socket of its own, where the netlink package's handle sends
// one request per write and waits for its answer: requests sends several
// in one write, which costs one trip to the kernel for all of them.

// rtnlSocket is a new NETLINK_ROUTE socket in the calling thread's
// network namespace.
func rtnlSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// requests sends reqs, each with NLM_F_ACK, in one write on fd and
// returns each one's error from the kernel's answer (nil for success);
// err is about the socket.
func requests(fd int, reqs ...*nl.NetlinkRequest) (errs []error, err error) {
	_, errs, err = exchange(fd, reqs...)
	return errs, err
}

// exchange sends reqs in one write on fd and reads until every one has
// been answered: data gets the messages the kernel sent back that are
// neither errors nor acknowledgements, errs each request's error.
func exchange(fd int, reqs ...*nl.NetlinkRequest) (data [][]syscall.NetlinkMessage, errs []error, err error) {
	var buf []byte
	seqs := map[uint32]int{}
	for i, r := range reqs {
		seqs[r.Seq] = i
		buf = append(buf, r.Serialize()...)
	}
	if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, fmt.Errorf("netlink send: %w", err)
	}
	data = make([][]syscall.NetlinkMessage, len(reqs))
	errs = make([]error, len(reqs))
	done := make([]bool, len(reqs))
	left := len(reqs)
	for left > 0 {
		// A buffer for each read: the messages kept in data point
		// into it.
		rb := make([]byte, 16<<10)
		n, _, err := unix.Recvfrom(fd, rb, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return nil, nil, fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			i, ok := seqs[m.Header.Seq]
			if !ok || done[i] {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, nil, errors.New("netlink receive: short error message")
				}
				if code := int32(nl.NativeEndian().Uint32(m.Data[:4])); code != 0 {
					errs[i] = syscall.Errno(-code)
				}
				done[i] = true
				left--
			case unix.NLMSG_DONE:
				done[i] = true
				left--
			default:
				data[i] = append(data[i], m)
			}
		}
	}
	return data, errs, nil
}

// linkIndex is the ifindex of the link named name in fd's namespace.
func linkIndex(fd int, name string) (int, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	data, errs, err := exchange(fd, req)
	if err != nil {
		return 0, err
	}
	if errs[0] != nil {
		return 0, fmt.Errorf("look up link %s: %w", name, errs[0])
	}
	for _, m := range data[0] {
		if m.Header.Type == unix.RTM_NEWLINK && len(m.Data) >= unix.SizeofIfInfomsg {
			return int(nl.DeserializeIfInfomsg(m.Data).Index), nil
		}
	}
	return 0, fmt.Errorf("look up link %s: no answer", name)
}
