package mongo

import (
	"testing"

	"github.com/qingfeng-zj/qingfeng/outbox"
)

// The outbox's scenarios (relay, backoff, once per webhook, giving up) are
// storetest's Outbox and OutboxGivesUp, part of Cases.

func TestParseWebhooks(t *testing.T) {
	ws, err := outbox.ParseWebhooks("app=https://app.example/hook|k1; sms=http://10.0.0.5:8080/q")
	if err != nil || len(ws) != 2 || ws[0].Secret != "k1" || ws[1].Name != "sms" {
		t.Fatalf("%+v %v", ws, err)
	}
	for _, bad := range []string{"app", "=https://x", "a=ftp://x", "a=https://x;a=https://y", "a=notaurl"} {
		if _, err := outbox.ParseWebhooks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
