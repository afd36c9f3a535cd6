package media

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPacerTick measures one pacer tick over many streams, each
// sending a 20 ms PCMU frame to a UDP sink: the cost per frame is what one
// call's audio costs the server every 20 ms.
func BenchmarkPacerTick(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			go func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := sink.ReadFromUDP(buf); err != nil {
						return
					}
				}
			}()
			p := NewPacer(1, nil)
			clip := NewClip(make([]int16, 8000*60), nil)
			var streams []*Stream
			for range n {
				conn, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
				if err != nil {
					b.Fatal(err)
				}
				s, err := p.Start(StreamConfig{Conn: conn, Remote: sink.LocalAddr().(*net.UDPAddr).AddrPort(), Codec: PCMU, DTMFPayloadType: -1})
				if err != nil {
					b.Fatal(err)
				}
				s.Play(clip)
				streams = append(streams, s)
			}
			defer func() {
				for _, s := range streams {
					s.Close()
				}
			}()
			st := &PacerStats{}
			now := time.Now()
			b.ResetTimer()
			for range b.N {
				for _, s := range streams {
					s.tick(now.UnixNano(), st, nil)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
		})
	}
}
