package mongo

import (
	"testing"

	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestRuleStore(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Rules(t, func(t *testing.T) storetest.RuleStore { return NewRuleStore(openTestDB(t, tg)) })
	})
}
