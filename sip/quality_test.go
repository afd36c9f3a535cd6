package sip

import (
	"testing"
	"time"

	"github.com/hotline12345/hotline/media"
)

func TestQualityRecord(t *testing.T) {
	if q := qualityRecord(media.Quality{}); q != nil {
		t.Errorf("a stream that received nothing has quality %+v", *q)
	}
	rec := qualityRecord(media.Quality{
		Receive: media.ReceiveStats{Received: 95, Expected: 100, Lost: 5, Jitter: 1500 * time.Microsecond},
		MOS:     4.1,
	})
	if rec.PacketsReceived != 95 || rec.PacketsExpected != 100 || rec.PacketsLost != 5 || rec.LossRatio != 0.05 ||
		rec.JitterMS != 1.5 || rec.MOS != 4.1 || rec.RTTMS != nil || rec.RemoteLossRatio != nil || rec.RemoteJitterMS != nil {
		t.Errorf("record %+v", *rec)
	}
	rec = qualityRecord(media.Quality{
		Receive:  media.ReceiveStats{Received: 10, Expected: 10},
		Remote:   &media.RemoteReport{LossRatio: 0.02, Jitter: 3 * time.Millisecond},
		RTT:      42 * time.Millisecond,
		RTTKnown: true,
	})
	if rec.RTTMS == nil || *rec.RTTMS != 42 || rec.RemoteLossRatio == nil || *rec.RemoteLossRatio != 0.02 || *rec.RemoteJitterMS != 3 {
		t.Errorf("record %+v", *rec)
	}
}
