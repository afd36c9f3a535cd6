package sipptest

import (
	"bytes"
	"encoding/binary"
	"time"
)

// RTPCapture makes a pcap file of n RTP packets of one source, 20 ms
// apart: 160 bytes of silence in the payload type pt (0 PCMU, 8 PCMA), with
// sequence numbers and timestamps that run on from first. Packets for
// which drop(i) is true (i from 1) are left out, as a network that lost
// them would; their numbers are not reused. sipp's play_pcap_audio sends
// each packet at its capture time, to the call's media address.
func RTPCapture(n int, pt uint8, first uint16, drop func(i int) bool) []byte {
	return RTPCaptureLate(n, pt, first, drop, nil)
}

// RTPCaptureLate is RTPCapture with packet i captured, and so sent,
// late(i) after its time (nil: none late) while its RTP timestamp keeps
// to the 20 ms grid: jitter, as a network that delays some packets makes
// it (RFC 3550 A.8). A packet must not be so late that it overtakes the
// next.
func RTPCaptureLate(n int, pt uint8, first uint16, drop func(i int) bool, late func(i int) time.Duration) []byte {
	var b bytes.Buffer
	// The global header: magic, version 2.4, no zone, no accuracy,
	// snapshot length, Ethernet link layer.
	for _, v := range []any{uint32(0xa1b2c3d4), uint16(2), uint16(4), int32(0), uint32(0), uint32(65535), uint32(1)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	silence := byte(0xFF)
	if pt == 8 {
		silence = 0xD5
	}
	payload := bytes.Repeat([]byte{silence}, 160)
	start := time.Unix(1_700_000_000, 0)
	for i := 1; i <= n; i++ {
		if drop != nil && drop(i) {
			continue
		}
		frame := ethernetRTP(pt, first+uint16(i-1), uint32(i-1)*160, payload)
		at := start.Add(time.Duration(i-1) * 20 * time.Millisecond)
		if late != nil {
			at = at.Add(late(i))
		}
		for _, v := range []uint32{uint32(at.Unix()), uint32(at.Nanosecond() / 1000), uint32(len(frame)), uint32(len(frame))} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(frame)
	}
	return b.Bytes()
}

// ethernetRTP is one RTP packet in UDP in IPv4 in Ethernet. The addresses
// and ports are placeholders: sipp sends from and to the call's.
func ethernetRTP(pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	rtp := make([]byte, 12, 12+len(payload))
	rtp[0], rtp[1] = 0x80, pt
	binary.BigEndian.PutUint16(rtp[2:], seq)
	binary.BigEndian.PutUint32(rtp[4:], ts)
	binary.BigEndian.PutUint32(rtp[8:], 0x12345678)
	rtp = append(rtp, payload...)

	udp := make([]byte, 8, 8+len(rtp))
	binary.BigEndian.PutUint16(udp[0:], 6000)
	binary.BigEndian.PutUint16(udp[2:], 6002)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(rtp)))
	udp = append(udp, rtp...) // checksum 0: none (RFC 768)

	ip := make([]byte, 20, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	ip = append(ip, udp...)

	eth := make([]byte, 14, 14+len(ip))
	binary.BigEndian.PutUint16(eth[12:], 0x0800)
	return append(eth, ip...)
}

// RTPAudioCapture makes a pcap file of RTP packets of one source, 20 ms
// apart, one for each payload (160 bytes of audio in the payload type pt,
// 0 PCMU or 8 PCMA), with sequence numbers from first: audio of the
// test's own making (a tone, a fax's calling tone) for play_pcap_audio.
func RTPAudioCapture(pt uint8, first uint16, payloads [][]byte) []byte {
	var b bytes.Buffer
	for _, v := range []any{uint32(0xa1b2c3d4), uint16(2), uint16(4), int32(0), uint32(0), uint32(65535), uint32(1)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	start := time.Unix(1_700_000_000, 0)
	for i, payload := range payloads {
		frame := ethernetRTP(pt, first+uint16(i), uint32(i)*160, payload)
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		for _, v := range []uint32{uint32(at.Unix()), uint32(at.Nanosecond() / 1000), uint32(len(frame)), uint32(len(frame))} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(frame)
	}
	return b.Bytes()
}
