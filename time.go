package qingfeng

import "time"

// Shanghai is Asia/Shanghai, the time zone every user of the service lives in: deadlines
// count its working days, months and dates are its own, and times on the wire carry its
// offset. It is the one definition of the zone; it falls back to a fixed +08:00 where
// the system has no time zone database (China has kept +08:00 without daylight saving
// since 1991).
var Shanghai = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600)
}()

// WireTime renders t as every time on the wire is rendered — API responses, webhook
// events, exported records: RFC 3339 with the +08:00 offset, to the second. The zero
// time is "".
func WireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(Shanghai).Format(time.RFC3339)
}
