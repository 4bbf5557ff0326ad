package db

import "time"

// SetConnMaxIdleTime shortens how long idle connections stay open, for tests.
func SetConnMaxIdleTime(d time.Duration) (restore func()) {
	old := connMaxIdleTime
	connMaxIdleTime = d
	return func() { connMaxIdleTime = old }
}
