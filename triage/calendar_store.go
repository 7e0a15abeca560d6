package triage

import (
	"context"
	"time"
)

// CalendarStore keeps the holiday calendars admins added after the release (years
// beyond the embedded ones, or corrections), in the holiday-cn JSON format, so that
// every instance and the next start load them into their Calendar.
type CalendarStore interface {
	// PutYear stores year's calendar, replacing an earlier one. The caller validates it
	// (CheckYear).
	PutYear(ctx context.Context, year int, data []byte, by string) error
	// Years returns every stored calendar, in year order.
	Years(ctx context.Context) ([]StoredYear, error)
}

// StoredYear is one stored calendar.
type StoredYear struct {
	Year    int
	Data    string // holiday-cn JSON
	AddedBy string
	AddedAt time.Time
}
