package identity

import (
	"context"
	"time"
)

// Hooks for tests of the ended-sessions machinery that must see what the cache burial,
// the trust horizon and the cache generation do on their own, without a poll happening
// to hide their absence.

// WatchEndedSessionsEvery is WatchEndedSessions with another poll interval.
func (s *Service) WatchEndedSessionsEvery(ctx context.Context, every time.Duration) {
	s.ended.pollEvery = every
	s.ended.watch(ctx)
}

// PollEndedSessions reads the tombstones now, as the poller does.
func (s *Service) PollEndedSessions(ctx context.Context) { s.ended.poll(ctx) }

// WriteBack is what a request that read sess from the database does with it afterwards.
func (s *Sessions) WriteBack(ctx context.Context, sess Session) { s.remember(ctx, sess) }

// BeforeTouch makes f run just before each write of a session's last-seen time.
func (s *Sessions) BeforeTouch(f func()) { s.beforeTouch = f }

// PollOverlap sets how far behind the newest tombstone seen each poll re-reads.
func (s *Service) PollOverlap(d time.Duration) { s.ended.overlap = d }
