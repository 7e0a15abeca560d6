package sqlite

import (
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestStatsConformance(t *testing.T) {
	storetest.Stats(t, func(t *testing.T, now func() time.Time) storetest.StatsStore {
		db := openTestDB(t)
		db.now = now
		return NewCaseStore(db)
	})
}
