package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/triage"
)

const collCalendar = "calendar_years"

// CalendarStore keeps the holiday calendars admins added after the release (years
// beyond the embedded ones, or corrections), in the holiday-cn JSON format.
type CalendarStore struct{ db *DB }

// NewCalendarStore returns the calendar store of db.
func NewCalendarStore(db *DB) *CalendarStore { return &CalendarStore{db: db} }

// PutYear stores year's calendar, replacing an earlier one. The caller validates it.
func (s *CalendarStore) PutYear(ctx context.Context, year int, data []byte, by string) error {
	_, err := s.db.coll(collCalendar).ReplaceOne(ctx, bson.M{"_id": year},
		calendarDoc{Year: year, Data: string(data), AddedBy: by, AddedAt: s.db.now().UTC()}, options.Replace().SetUpsert(true))
	return storeError("store calendar year", err, nil, nil)
}

// calendarDoc is one stored calendar.
type calendarDoc struct {
	Year    int       `bson:"_id"`
	Data    string    `bson:"data"`
	AddedBy string    `bson:"added_by"`
	AddedAt time.Time `bson:"added_at"`
}

// Years returns every stored calendar, in year order.
func (s *CalendarStore) Years(ctx context.Context) ([]triage.StoredYear, error) {
	docs, err := findAll[calendarDoc](ctx, s.db, collCalendar, "load calendar years", bson.M{}, options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, err
	}
	out := make([]triage.StoredYear, len(docs))
	for i, d := range docs {
		out[i] = triage.StoredYear{Year: d.Year, Data: d.Data, AddedBy: d.AddedBy, AddedAt: d.AddedAt.UTC()}
	}
	return out, nil
}
