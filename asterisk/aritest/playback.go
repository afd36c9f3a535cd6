package aritest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// playback is one POST /play: a list of media played in turn on one
// channel. A channel's playbacks run one after another, as the commands
// of its Stasis control queue do.
type playback struct {
	seq      uint64
	id       string
	ch       *channel
	medias   []string
	index    int // the media playing now
	lang     string
	skip     time.Duration // how far forward and reverse move
	state    string        // queued, playing, paused, continuing, done, failed
	canceled bool          // stopped while queued: it finishes when its turn comes

	task    *task         // the end of the current media
	ends    time.Time     // when it ends, while playing
	left    time.Duration // what is left of it, while paused
	length  time.Duration // its whole length
	endless bool          // a tone: it plays until stopped
}

func (pb *playback) json() playbackJSON {
	j := playbackJSON{
		ID:        pb.id,
		MediaURI:  pb.medias[pb.index],
		TargetURI: "channel:" + pb.ch.id,
		Language:  pb.lang,
		State:     pb.state,
	}
	if pb.index+1 < len(pb.medias) {
		j.NextMediaURI = pb.medias[pb.index+1]
	}
	return j
}

// play is POST /channels/{id}/play and /play/{playbackId}: 201 with the
// playback queued and its Location; PlaybackStarted follows at once when
// nothing else plays on the channel.
func (s *Server) play(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	medias := rq.list("media")
	skip := rq.integer("skipms", 3000)
	if len(medias) == 0 || skip < 0 || rq.integer("offsetms", 0) < 0 {
		return fail(http.StatusInternalServerError, "Failed to queue media for playback")
	}
	if skip == 0 {
		skip = 3000
	}
	id := rq.path["playbackId"]
	if id == "" {
		id = rq.str("playbackId")
	}
	if id == "" {
		id = uuid.NewString()
	}
	lang := rq.str("lang")
	if lang == "" {
		lang = ch.language
	}
	s.objSeq++
	pb := &playback{
		seq:    s.objSeq,
		id:     id,
		ch:     ch,
		medias: medias,
		lang:   lang,
		skip:   time.Duration(skip) * time.Millisecond,
		state:  "queued",
	}
	s.playbacks[id] = pb
	ch.plays = append(ch.plays, pb)
	rep := reply{
		status:  http.StatusCreated,
		body:    pb.json(),
		headers: [][2]string{{"Location", "/ari/playbacks/" + id}},
	}
	if len(ch.plays) == 1 {
		s.nextPlaybackLocked(ch)
	}
	return rep
}

// nextPlaybackLocked starts the channel's next queued playback, skipping
// those that end at once.
func (s *Server) nextPlaybackLocked(ch *channel) {
	for len(ch.plays) > 0 {
		pb := ch.plays[0]
		if pb.canceled {
			// Cancelled while queued: Asterisk publishes its end when its
			// turn comes, without a start.
			pb.state = "done"
			s.emitPlaybackLocked("PlaybackFinished", pb)
			s.dropPlaybackLocked(pb)
			continue
		}
		if s.startMediaLocked(pb) {
			return
		}
	}
}

// startMediaLocked plays pb's current media. It reports whether pb is
// still playing; when not, pb is gone and the next playback may start.
func (s *Server) startMediaLocked(pb *playback) bool {
	pb.state = "playing"
	s.emitPlaybackLocked("PlaybackStarted", pb)
	media := pb.medias[pb.index]
	pb.ch.party.noteLocked(Note{Kind: NotePlaybackStarted, MediaURI: media, Language: pb.lang, PlaybackID: pb.id})
	length, exists, supported := s.mediaLength(media, pb.lang)
	if !supported {
		// An unknown scheme, a recording that does not exist or a number
		// that is not one: Asterisk logs an error and returns without a
		// final update, so no PlaybackFinished, and the playback is gone.
		s.dropPlaybackLocked(pb)
		return false
	}
	if !exists {
		return s.mediaEndedLocked(pb, false)
	}
	pb.endless = length < 0
	if !pb.endless {
		pb.length = length
		s.scheduleMediaLocked(pb, length)
	}
	return true
}

func (s *Server) scheduleMediaLocked(pb *playback, d time.Duration) {
	s.cancelLocked(pb.task)
	pb.ends = time.Now().Add(time.Duration(float64(d) / s.opts.Speed))
	pb.task = s.afterLocked(d, func() {
		pb.task = nil
		if !s.mediaEndedLocked(pb, true) {
			s.nextPlaybackLocked(pb.ch)
		}
	})
}

// mediaEndedLocked ends the current media, played or failed; like
// play_on_channel, a list goes on with its next item even after a
// failure. It reports whether pb is still playing.
func (s *Server) mediaEndedLocked(pb *playback, played bool) bool {
	last := pb.index+1 >= len(pb.medias)
	if played && !last {
		pb.state = "continuing"
		s.emitPlaybackLocked("PlaybackContinuing", pb)
		pb.index++
		return s.startMediaLocked(pb)
	}
	pb.state = "done"
	if !played {
		pb.state = "failed"
	}
	s.finishPlaybackLocked(pb)
	if !last {
		pb.index++
		return s.startMediaLocked(pb)
	}
	s.dropPlaybackLocked(pb)
	return false
}

func (s *Server) finishPlaybackLocked(pb *playback) {
	s.emitPlaybackLocked("PlaybackFinished", pb)
	pb.ch.party.noteLocked(Note{
		Kind: NotePlaybackFinished, MediaURI: pb.medias[pb.index], Language: pb.lang,
		PlaybackID: pb.id, PlaybackState: pb.state,
	})
}

// dropPlaybackLocked forgets pb.
func (s *Server) dropPlaybackLocked(pb *playback) {
	s.cancelLocked(pb.task)
	pb.task = nil
	delete(s.playbacks, pb.id)
	pb.ch.plays = slices.DeleteFunc(pb.ch.plays, func(x *playback) bool { return x == pb })
}

// stopPlaybacksLocked ends the channel's playbacks when it hangs up: the
// one playing fails (the stream returns -1 on hang-up); the queued ones
// are flushed with the control queue, unannounced.
func (s *Server) stopPlaybacksLocked(ch *channel) {
	if len(ch.plays) > 0 && ch.plays[0].state != "queued" {
		pb := ch.plays[0]
		s.cancelLocked(pb.task)
		pb.state = "failed"
		s.finishPlaybackLocked(pb)
	}
	for _, pb := range slices.Clone(ch.plays) {
		s.dropPlaybackLocked(pb)
	}
}

// mediaLength says how long a media URI plays: a negative length plays
// until stopped; exists is false for a missing sound; supported is false
// for what play_on_channel gives up on.
func (s *Server) mediaLength(media, lang string) (length time.Duration, exists, supported bool) {
	scheme, rest, _ := strings.Cut(media, ":")
	switch scheme {
	case "sound":
		d, ok := s.sound(rest, lang)
		return d, ok, true
	case "tone":
		return -1, true, true
	case "digits":
		return s.saidLength(rest, lang, "digits/"), true, true
	case "characters":
		return s.saidLength(rest, lang, "letters/"), true, true
	case "number":
		n, err := strconv.Atoi(rest)
		if err != nil {
			return 0, false, false
		}
		// The digits stand in for ast_say_number's words.
		return s.saidLength(strconv.Itoa(n), lang, "digits/"), true, true
	}
	return 0, false, false
}

// saidLength is how long saying each character takes: one sound file each,
// from dir (digits always from digits/); missing files are skipped.
func (s *Server) saidLength(text, lang, dir string) time.Duration {
	var total time.Duration
	for _, c := range strings.ToLower(text) {
		d := dir
		if c >= '0' && c <= '9' {
			d = "digits/"
		}
		if n, ok := s.sound(d+string(c), lang); ok {
			total += n
		}
	}
	return total
}

func (s *Server) sound(name, lang string) (time.Duration, bool) {
	if s.opts.Sound == nil {
		return time.Second, true
	}
	return s.opts.Sound(name, lang)
}

// Playback operations.

func (s *Server) getPlayback(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	pb := s.playbacks[rq.path["playbackId"]]
	if pb == nil {
		return fail(http.StatusNotFound, "Playback not found")
	}
	return okJSON(pb.json())
}

// stopPlayback is DELETE /playbacks/{id}: a playing one finishes at once
// with state "done" (Asterisk has no "stopped" state in its events); a
// queued one is cancelled and finishes when its turn comes.
func (s *Server) stopPlayback(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	pb := s.playbacks[rq.path["playbackId"]]
	if pb == nil {
		return fail(http.StatusNotFound, "Playback not found")
	}
	if pb.state == "queued" {
		pb.canceled = true
		return noContent()
	}
	s.cancelLocked(pb.task)
	pb.state = "done"
	s.finishPlaybackLocked(pb)
	s.dropPlaybackLocked(pb)
	s.nextPlaybackLocked(pb.ch)
	return noContent()
}

// controlPlayback is POST /playbacks/{id}/control, following the table of
// operations per state in res_stasis_playback.c.
func (s *Server) controlPlayback(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	pb := s.playbacks[rq.path["playbackId"]]
	if pb == nil {
		return fail(http.StatusNotFound, "Playback not found")
	}
	op := rq.str("operation")
	switch op {
	case "restart", "pause", "unpause", "reverse", "forward":
	default:
		return fail(http.StatusBadRequest, "Invalid operation "+op)
	}
	notPlaying := fail(http.StatusConflict, "Can only "+op+" while media is playing")
	switch pb.state {
	case "queued":
		if op != "restart" {
			return notPlaying
		}
	case "paused":
		switch op {
		case "unpause":
			pb.state = "playing"
			s.emitPlaybackLocked("PlaybackStarted", pb)
			if !pb.endless {
				s.scheduleMediaLocked(pb, pb.left)
			}
		case "pause":
		default:
			return notPlaying
		}
	case "playing":
		s.movePlaybackLocked(pb, op)
	default:
		return notPlaying
	}
	return noContent()
}

// movePlaybackLocked applies restart, pause, forward or reverse to a
// playing playback.
func (s *Server) movePlaybackLocked(pb *playback, op string) {
	if pb.endless {
		if op == "pause" {
			pb.state = "paused"
		}
		return
	}
	left := time.Duration(float64(time.Until(pb.ends)) * s.opts.Speed)
	switch op {
	case "restart":
		left = pb.length
	case "pause":
		// Paused is not published: only playing, continuing, done and
		// failed have events.
		s.cancelLocked(pb.task)
		pb.task = nil
		pb.left = left
		pb.state = "paused"
		return
	case "forward":
		left -= pb.skip
	case "reverse":
		left += pb.skip
	}
	s.scheduleMediaLocked(pb, max(0, min(left, pb.length)))
}
