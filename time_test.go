package qingfeng_test

import (
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

func ExampleWireTime() {
	stored := time.Date(2026, 12, 1, 19, 30, 0, 0, time.UTC) // times are UTC in storage
	fmt.Println(qingfeng.WireTime(stored))
	fmt.Printf("%q\n", qingfeng.WireTime(time.Time{}))
	// Output:
	// 2026-12-02T03:30:00+08:00
	// ""
}
