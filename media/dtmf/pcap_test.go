package dtmf

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/pion/rtp"
)

// readRTPCapture returns the RTP packets of a classic pcap file of
// Ethernet/IPv4/UDP traffic, such as the RFC 2833 captures shipped with sipp.
// It reads only what those captures hold and fails the test on anything else.
func readRTPCapture(t *testing.T, path string) []rtp.Packet {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	packets, err := parseRTPCapture(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return packets
}

// Link type and protocol numbers of the layers read.
const (
	linkTypeEthernet = 1      // pcap LINKTYPE_ETHERNET
	etherTypeIPv4    = 0x0800 // IEEE 802.3
	etherTypeVLAN    = 0x8100 // IEEE 802.1Q
	ipProtocolUDP    = 17     // IANA protocol numbers
)

func parseRTPCapture(data []byte) ([]rtp.Packet, error) {
	// Global header: magic, version 2.4, zone, sigfigs, snaplen, link type;
	// the magic's byte order is the file's (microsecond or nanosecond).
	if len(data) < 24 {
		return nil, fmt.Errorf("short pcap header: %d bytes", len(data))
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file: magic %x", data[:4])
	}
	if lt := order.Uint32(data[20:]); lt != linkTypeEthernet {
		return nil, fmt.Errorf("link type %d, want Ethernet", lt)
	}
	var packets []rtp.Packet
	for rest := data[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			return nil, fmt.Errorf("short record header: %d bytes", len(rest))
		}
		n := int(order.Uint32(rest[8:]))
		if len(rest) < 16+n {
			return nil, fmt.Errorf("record of %d bytes, %d left", n, len(rest)-16)
		}
		frame := rest[16 : 16+n]
		rest = rest[16+n:]
		payload, err := udpPayload(frame)
		if err != nil {
			return nil, err
		}
		var p rtp.Packet
		if err := p.Unmarshal(payload); err != nil {
			return nil, fmt.Errorf("RTP: %w", err)
		}
		packets = append(packets, p)
	}
	return packets, nil
}

// udpPayload returns the UDP payload of an Ethernet frame carrying IPv4.
func udpPayload(frame []byte) ([]byte, error) {
	if len(frame) < 14 {
		return nil, fmt.Errorf("short Ethernet frame: %d bytes", len(frame))
	}
	etherType, ip := binary.BigEndian.Uint16(frame[12:]), frame[14:]
	if etherType == etherTypeVLAN && len(frame) >= 18 {
		etherType, ip = binary.BigEndian.Uint16(frame[16:]), frame[18:]
	}
	if etherType != etherTypeIPv4 {
		return nil, fmt.Errorf("ether type %#04x, want IPv4", etherType)
	}
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return nil, fmt.Errorf("not an IPv4 header")
	}
	headerLen, totalLen := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if ip[9] != ipProtocolUDP {
		return nil, fmt.Errorf("IP protocol %d, want UDP", ip[9])
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return nil, fmt.Errorf("fragmented IPv4 packet")
	}
	if totalLen > len(ip) || headerLen+8 > totalLen {
		return nil, fmt.Errorf("IPv4 lengths %d/%d in %d bytes", headerLen, totalLen, len(ip))
	}
	udp := ip[headerLen:totalLen]
	udpLen := int(binary.BigEndian.Uint16(udp[4:]))
	if udpLen < 8 || udpLen > len(udp) {
		return nil, fmt.Errorf("UDP length %d in %d bytes", udpLen, len(udp))
	}
	return udp[8:udpLen], nil
}
